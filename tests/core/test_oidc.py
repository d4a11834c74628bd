"""The OpenID client protocol (app/core/oidc.py) and the session's sign-in (app/core/auth.py).

The loopback listener is driven by real HTTP requests; the flows run against the real OpenID
provider of tests/fixtures/oidc.py (npm ``oidc-provider``, signed in through headless Chromium)
and the companion server; scripted servers (tests/fixtures/scripted.py) play a provider that
answers what the real one cannot be made to (a wrong nonce, ``slow_down`` on a schedule, an
expired code). Time is driven by :class:`FakeTime`: no test sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import random
import socket
import webbrowser
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from app.core import oidc
from app.core.auth import AuthSession, Tokens
from app.core.config import AuthProfile, ConfigError, Endpoints, StreamSettings, from_dict
from app.core.config.schema import DEFAULT_SCOPES
from app.core.config.values import parse_ports
from app.core.errors import (
    LoginRequired,
    ProtocolError,
    ProviderError,
    SignInCancelled,
    SignInTimedOut,
    WrongCredentials,
)
from app.core.http import make_client
from app.core.oidc import BrowserPrompt, DevicePrompt, Prompt, Waits
from app.core.oidc_callback import LoopbackListener
from app.core.secrets import MemorySecretStore, login_key
from app.server.config import OidcSettings
from app.server.embedded import EmbeddedServer
from tests.fixtures.browser import Chromium, Page
from tests.fixtures.oidc import (
    CONSOLE_CLIENT_ID,
    DEVICE_CONFIRM,
    DEVICE_FORM,
    PUBLISHER_GROUP,
    TRAY_CLIENT_ID,
    OidcProvider,
    browser_command,
    complete_sign_in,
    enter_device_code,
)
from tests.fixtures.scripted import Conn, ScriptedServer
from tests.fixtures.server import ServerFactory

Scripted = Callable[..., ScriptedServer]
SETTINGS = StreamSettings(heartbeat_timeout=10.0, connect_timeout=5.0)
ISSUER = "https://login.example.org/realms/staff"
PROVIDER = oidc.Provider(ISSUER, TRAY_CLIENT_ID)
BOUND = 30.0  # seconds any wait of a test may take


class FakeTime:
    """A clock that moves only when the test says; a sleeper wakes once the clock has passed
    its time. ``auto``: every sleep moves the clock on by its own length at once."""

    def __init__(self, *, auto: bool = False) -> None:
        self.now = 1000.0
        self.auto = auto
        self.slept: list[float] = []
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []
        self._changed = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.auto:
            self.now += seconds
            await asyncio.sleep(0)
            return
        future = asyncio.get_running_loop().create_future()
        entry = (self.now + seconds, future)
        self._sleepers.append(entry)
        self._changed.set()
        try:
            await future
        finally:
            self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for due, future in self._sleepers:
            if due <= self.now and not future.done():
                future.set_result(None)

    async def sleeping(self, count: int = 1) -> None:
        """Until ``count`` sleeps wait on this clock."""

        async def wait() -> None:
            while len(self._sleepers) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), BOUND)

    def waits(self, timeout: float = oidc.WAIT_TIMEOUT) -> Waits:
        return Waits(timeout=timeout, clock=self.clock, sleep=self.sleep)


class Prompts:
    """Records the prompts of a sign-in; ``wait()`` for the first."""

    def __init__(self) -> None:
        self.seen: list[Prompt] = []
        self._came = asyncio.Event()

    def __call__(self, prompt: Prompt) -> None:
        self.seen.append(prompt)
        self._came.set()

    async def first(self) -> Prompt:
        await asyncio.wait_for(self._came.wait(), BOUND)
        return self.seen[0]


def _not_opened(url: str) -> bool:
    return True


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(trust_env=False, timeout=BOUND) as c:
        yield c


def _metadata(base: str = "https://login.example.invalid") -> oidc.ProviderMetadata:
    return oidc.ProviderMetadata(
        issuer=ISSUER,
        authorization_endpoint=f"{base}/auth",
        token_endpoint=f"{base}/token",
        device_authorization_endpoint=f"{base}/device",
    )


# ---------------------------------------------------------------------- the loopback listener


async def test_a_wrong_or_missing_state_is_ignored_and_the_right_one_taken(
    client: httpx.AsyncClient,
) -> None:
    async with LoopbackListener(state="s-right", issuer=ISSUER) as listener:
        assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
        waiting = asyncio.ensure_future(listener.code())
        wrong = await client.get(listener.redirect_uri, params={"code": "x", "state": "s-other"})
        missing = await client.get(listener.redirect_uri, params={"code": "x"})
        twice = await client.get(
            listener.redirect_uri + "?code=x&state=s-right&state=s-right"  # ambiguous: ignored
        )
        elsewhere = await client.get(f"http://127.0.0.1:{listener.port}/favicon.ico")
        assert [r.status_code for r in (wrong, missing, twice, elsewhere)] == [400, 400, 400, 404]
        assert "ignored" in wrong.text and "已忽略" in wrong.text
        assert not waiting.done()  # the wait goes on
        right = await client.get(
            listener.redirect_uri, params={"code": "c-123", "state": "s-right"}
        )
        assert right.status_code == 200
        assert "You may close this window" in right.text and "可以关闭此窗口" in right.text
        assert right.headers["content-type"] == "text/plain; charset=utf-8"
        assert right.headers["x-content-type-options"] == "nosniff"
        assert await asyncio.wait_for(waiting, BOUND) == "c-123"
        late = await client.get(listener.redirect_uri, params={"code": "c-2", "state": "s-right"})
        assert "already ended" in late.text


async def test_an_error_callback_ends_the_wait_with_the_reason_never_as_markup(
    client: httpx.AsyncClient,
) -> None:
    words = "<script>alert(1)</script> You said no"
    async with LoopbackListener(state="s1", issuer=ISSUER) as listener:
        waiting = asyncio.ensure_future(listener.code())
        page = await client.get(
            listener.redirect_uri,
            params={"error": "access_denied", "error_description": words, "state": "s1"},
        )
        with pytest.raises(ProviderError) as failed:
            await asyncio.wait_for(waiting, BOUND)
    assert words in failed.value.reason and "(access_denied)" in failed.value.reason
    assert str(failed.value).startswith("Your organisation's sign-in did not succeed: <script>")
    # the page says it in words, as plain text that no browser renders as markup
    assert page.headers["content-type"] == "text/plain; charset=utf-8"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "did not finish" in page.text and "登录未完成" in page.text
    assert "\r" not in failed.value.reason


async def test_an_answer_from_another_issuer_is_refused(client: httpx.AsyncClient) -> None:
    async with LoopbackListener(state="s1", issuer=ISSUER) as listener:
        waiting = asyncio.ensure_future(listener.code())
        params = {"code": "c", "state": "s1", "iss": "https://evil.example.org"}
        await client.get(listener.redirect_uri, params=params)
        with pytest.raises(ProviderError, match="another identity provider"):
            await asyncio.wait_for(waiting, BOUND)


def _two_ports() -> tuple[socket.socket, int]:
    """A listening socket on a port P whose next port P+1 is free (at the time of the look),
    below the ephemeral range: ports the system hands to other programs' connections meanwhile
    are not among them."""
    chooser = random.Random()
    for _ in range(200):
        port = chooser.randrange(20000, 32000)
        taken = socket.socket()
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener binds
        try:
            taken.bind(("127.0.0.1", port))
            taken.listen()
            probe.bind(("127.0.0.1", port + 1))
        except OSError:
            taken.close()
            continue
        finally:
            probe.close()
        return taken, port
    raise AssertionError("no two adjacent free ports found")


async def test_a_port_range_takes_its_first_free_port() -> None:
    taken, port = _two_ports()
    with taken:
        async with LoopbackListener(state="s", issuer=ISSUER, ports=f"{port}-{port + 1}") as one:
            assert one.port == port + 1
            assert one.redirect_uri == f"http://127.0.0.1:{port + 1}/callback"
        with pytest.raises(ProtocolError, match=rf"no free port .* port {port}\b.*redirect_ports"):
            async with LoopbackListener(state="s", issuer=ISSUER, ports=str(port)):
                pass


@pytest.mark.parametrize(
    ("text", "ports"),
    [("0", range(0, 1)), ("53100", range(53100, 53101)), (" 53100 - 53109 ", range(53100, 53110))],
)
def test_redirect_ports_forms(text: str, ports: range) -> None:
    assert parse_ports(text) == ports


@pytest.mark.parametrize("text", ["", "any", "53109-53100", "0-5", "70000", "-1", "1,2"])
def test_redirect_ports_refused(text: str) -> None:
    with pytest.raises(ValueError, match="port"):
        parse_ports(text)


# ---------------------------------------------------------------------- the waits


async def test_cancel_ends_the_wait_and_closes_the_listener() -> None:
    prompts, opened = Prompts(), []
    cancel = asyncio.Event()

    def open_browser(url: str) -> bool:
        opened.append(url)
        return True

    async with make_client(SETTINGS) as client:
        sign_in = asyncio.ensure_future(
            oidc.browser_sign_in(
                client,
                PROVIDER,
                _metadata(),
                open_browser=open_browser,
                on_prompt=prompts,
                cancel=cancel,
            )
        )
        prompt = await prompts.first()
        cancel.set()
        with pytest.raises(SignInCancelled, match="cancelled"):
            await asyncio.wait_for(sign_in, BOUND)
    assert isinstance(prompt, BrowserPrompt)
    query = parse_qs(urlsplit(prompt.url).query)
    redirect = urlsplit(query["redirect_uri"][0])
    with pytest.raises(OSError):  # nobody listens there any more
        socket.create_connection(("127.0.0.1", redirect.port or 0), timeout=BOUND).close()
    # the provider's page carries public values only
    assert set(query) == {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
    }
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [TRAY_CLIENT_ID]
    assert query["scope"] == [" ".join(DEFAULT_SCOPES)]
    assert prompt.url.startswith("https://login.example.invalid/auth?")
    assert len(query["state"][0]) >= 32 and query["state"] != query["nonce"]


async def test_the_wait_is_bounded_on_the_injected_clock() -> None:
    time, prompts = FakeTime(), Prompts()
    async with make_client(SETTINGS) as client:
        sign_in = asyncio.ensure_future(
            oidc.browser_sign_in(
                client,
                PROVIDER,
                _metadata(),
                open_browser=_not_opened,
                on_prompt=prompts,
                waits=time.waits(),
            )
        )
        await prompts.first()
        await time.sleeping()
        time.advance(299)
        await asyncio.sleep(0)
        assert not sign_in.done()
        time.advance(1)
        with pytest.raises(SignInTimedOut, match="within 5 minutes"):
            await asyncio.wait_for(sign_in, BOUND)
    assert time.slept == [300]  # one wait for the whole bound: no polling


# ---------------------------------------------------------------------- a scripted provider


def _answer(body: dict[str, Any], status: int = 200) -> Callable[[Conn], Any]:
    async def script(conn: Conn) -> None:
        await conn.respond(status, json.dumps(body).encode(), content_type="application/json")

    return script


def _id_token(**claims: Any) -> str:
    payload = {"iss": ISSUER, "aud": TRAY_CLIENT_ID, "sub": "s-1", **claims}
    return jwt.encode(payload, "a test key of at least 32 bytes....", algorithm="HS256")


async def test_the_code_is_exchanged_with_its_verifier_and_the_nonce_checked(
    scripted: Scripted, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The token request (PKCE S256, a public client) as the provider sees it; an ID token
    of another sign-in (its nonce) is refused; no code, verifier or token in a log line."""
    caplog.set_level(logging.DEBUG)
    for nonce_matches in (True, False):
        prompts = Prompts()
        nonce: list[str] = []

        async def tokens(
            conn: Conn, nonce: list[str] = nonce, matches: bool = nonce_matches
        ) -> None:
            token = _id_token(nonce=nonce[0] if matches else "another")
            body = {"access_token": "at-1", "id_token": token, "refresh_token": "rt-1"}
            await conn.respond(200, json.dumps(body).encode(), content_type="application/json")

        provider = scripted(tokens)
        async with make_client(SETTINGS) as http_client:
            sign_in = asyncio.ensure_future(
                oidc.browser_sign_in(
                    http_client,
                    PROVIDER,
                    _metadata(provider.url),
                    open_browser=_not_opened,
                    on_prompt=prompts,
                )
            )
            prompt = await prompts.first()
            assert isinstance(prompt, BrowserPrompt)
            query = parse_qs(urlsplit(prompt.url).query)
            nonce.append(query["nonce"][0])
            redirect = query["redirect_uri"][0]
            await client.get(redirect, params={"code": "c-secret-9", "state": query["state"][0]})
            if nonce_matches:
                got = await asyncio.wait_for(sign_in, BOUND)
                assert got.claims["sub"] == "s-1" and got.refresh_token == "rt-1"
                assert "at-1" not in repr(got)
            else:
                with pytest.raises(ProviderError, match="nonce"):
                    await asyncio.wait_for(sign_in, BOUND)
        form = parse_qs(provider.requests[0].body.decode())
        verifier = form["code_verifier"][0]
        assert form == {
            "grant_type": ["authorization_code"],
            "code": ["c-secret-9"],
            "redirect_uri": [redirect],
            "client_id": [TRAY_CLIENT_ID],
            "code_verifier": [verifier],
        }
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        assert query["code_challenge"] == [challenge.rstrip(b"=").decode()]
        assert 43 <= len(verifier) <= 128
        assert "authorization" not in provider.requests[0].headers  # no secret: public client
        # (the test's own client logs the callback's address: the browser's part here)
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("app"))
        for secret in ("c-secret-9", verifier, "at-1", "rt-1"):
            assert secret not in logged


async def test_device_polling_honours_pending_and_slow_down(scripted: Scripted) -> None:
    start = {
        "device_code": "dc-secret",
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://login.example.org/device",
        "verification_uri_complete": "https://login.example.org/device?user_code=WDJB-MJHT",
        "expires_in": 600,
        "interval": 5,
    }
    provider = scripted(
        _answer(start),
        _answer({"error": "authorization_pending"}, 400),
        _answer({"error": "slow_down"}, 400),
        _answer({"error": "authorization_pending"}, 400),
        _answer({"access_token": "at", "id_token": _id_token(preferred_username="alice")}),
    )
    time, prompts = FakeTime(auto=True), Prompts()
    async with make_client(SETTINGS) as client:
        got = await oidc.device_sign_in(
            client, PROVIDER, _metadata(provider.url), on_prompt=prompts, waits=time.waits()
        )
    assert got.claims["preferred_username"] == "alice"
    assert time.slept == [5, 5, 10, 10]  # slow_down: 5 s more from then on
    assert prompts.seen == [
        DevicePrompt(
            verification_uri="https://login.example.org/device",
            user_code="WDJB-MJHT",
            verification_uri_complete="https://login.example.org/device?user_code=WDJB-MJHT",
            expires_in=600,
        )
    ]
    assert parse_qs(provider.requests[0].body.decode()) == {
        "client_id": [TRAY_CLIENT_ID],
        "scope": [" ".join(DEFAULT_SCOPES)],
    }
    assert parse_qs(provider.requests[1].body.decode()) == {
        "grant_type": ["urn:ietf:params:oauth:grant-type:device_code"],
        "device_code": ["dc-secret"],
        "client_id": [TRAY_CLIENT_ID],
    }


@pytest.mark.parametrize(
    ("error", "raised", "words"),
    [
        ("expired_token", SignInTimedOut, "code expired"),
        ("access_denied", ProviderError, "access was denied"),
    ],
)
async def test_device_polling_ends_on_expiry_or_refusal(
    scripted: Scripted, error: str, raised: type[Exception], words: str
) -> None:
    start = {"device_code": "d", "user_code": "U", "verification_uri": "https://x.example.org/d"}
    provider = scripted(_answer(start), _answer({"error": error}, 400))
    time = FakeTime(auto=True)
    async with make_client(SETTINGS) as client:
        with pytest.raises(raised, match=words):
            await oidc.device_sign_in(
                client, PROVIDER, _metadata(provider.url), on_prompt=Prompts(), waits=time.waits()
            )
    assert time.slept == [oidc.DEFAULT_POLL_INTERVAL]  # no interval given: 5 s


async def test_device_polling_is_bounded_and_cancellable(scripted: Scripted) -> None:
    start = {"device_code": "d", "user_code": "U", "verification_uri": "https://x.example.org/d"}
    provider = scripted(_answer(start), _answer({"error": "authorization_pending"}, 400))
    time = FakeTime()
    async with make_client(SETTINGS) as client:
        polling = asyncio.ensure_future(
            oidc.device_sign_in(
                client, PROVIDER, _metadata(provider.url), on_prompt=Prompts(), waits=time.waits()
            )
        )
        for polls in range(1, 4):  # each pause is one wait on the clock, then one poll
            await time.sleeping()
            time.advance(5)
            await asyncio.to_thread(provider.wait_requests, 1 + polls, BOUND)
        time.advance(300)
        with pytest.raises(SignInTimedOut):
            await asyncio.wait_for(polling, BOUND)
        cancel = asyncio.Event()
        provider = scripted(_answer(start), _answer({"error": "authorization_pending"}, 400))
        polling = asyncio.ensure_future(
            oidc.device_sign_in(
                client,
                PROVIDER,
                _metadata(provider.url),
                on_prompt=Prompts(),
                cancel=cancel,
                waits=time.waits(),
            )
        )
        await time.sleeping()
        cancel.set()
        with pytest.raises(SignInCancelled):
            await asyncio.wait_for(polling, BOUND)


# ---------------------------------------------------------------------- the real provider


@pytest.mark.browser
async def test_discovery_needs_the_exact_issuer(
    oidc_provider: OidcProvider, client: httpx.AsyncClient
) -> None:
    async with make_client(SETTINGS) as http_client:
        found = await oidc.discover(http_client, oidc_provider.issuer)
        assert found.token_endpoint.startswith(oidc_provider.issuer)
        assert found.device_authorization_endpoint and found.revocation_endpoint
        with pytest.raises(ProtocolError, match="names another issuer"):
            await oidc.discover(http_client, oidc_provider.issuer + "/")
    with pytest.raises(ProtocolError, match="https://"):
        await oidc.discover(client, "http://login.example.org")


def _opener(chromium: Chromium) -> Callable[[str], bool]:
    """``webbrowser``'s own way of running a ``BROWSER`` command, aimed at the test Chromium."""
    return webbrowser.GenericBrowser(browser_command(chromium)).open


def _real(provider: OidcProvider) -> oidc.Provider:
    return oidc.Provider(provider.issuer, TRAY_CLIENT_ID)


@pytest.mark.browser
async def test_browser_sign_in_refresh_and_revoke_at_the_real_provider(
    oidc_provider: OidcProvider, chromium: Chromium
) -> None:
    alice = oidc_provider.user("alice")
    provider = _real(oidc_provider)
    async with make_client(SETTINGS) as client:
        metadata = await oidc.discover(client, oidc_provider.issuer)
        person = asyncio.ensure_future(
            asyncio.to_thread(
                complete_sign_in,
                chromium,
                url_prefix=oidc_provider.issuer,
                username="alice",
                password=alice.password,
            )
        )
        got = await oidc.browser_sign_in(
            client, provider, metadata, open_browser=_opener(chromium), on_prompt=Prompts()
        )
        sent_to = await person
        assert sent_to.startswith("http://127.0.0.1:")  # the loopback redirect
        assert got.claims["preferred_username"] == "alice"
        assert got.claims["groups"] == ["staff", "it"]
        assert got.refresh_token and got.expires_in

        renewed = await oidc.refresh(client, provider, metadata, got.refresh_token)
        assert renewed.access_token != got.access_token
        assert renewed.refresh_token and renewed.refresh_token != got.refresh_token  # rotated
        assert await oidc.revoke(client, provider, metadata, renewed.refresh_token)
        with pytest.raises(ProviderError, match=r"no longer valid|invalid_grant"):
            await oidc.refresh(client, provider, metadata, renewed.refresh_token)


@pytest.mark.browser
async def test_cancel_at_the_provider_ends_the_sign_in(
    oidc_provider: OidcProvider, browser_page: Page
) -> None:
    """The person presses Cancel on the provider's page: the provider sends access_denied
    back, and the wait ends with its words."""
    prompts = Prompts()
    async with make_client(SETTINGS) as client:
        metadata = await oidc.discover(client, oidc_provider.issuer)
        sign_in = asyncio.ensure_future(
            oidc.browser_sign_in(
                client, _real(oidc_provider), metadata, open_browser=_not_opened, on_prompt=prompts
            )
        )
        prompt = await prompts.first()
        assert isinstance(prompt, BrowserPrompt)
        await browser_page.goto(prompt.url)
        await browser_page.wait_for("!!document.getElementById('op-abort')", "the Cancel link")
        await browser_page.evaluate("document.getElementById('op-abort').click()")
        with pytest.raises(ProviderError, match="aborted") as failed:
            await asyncio.wait_for(sign_in, BOUND)
    assert "access_denied" in failed.value.reason
    text = await browser_page.wait_for("document.body && document.body.innerText", "the page")
    assert "The sign-in did not finish" in text and "aborted" in text


@pytest.mark.browser
async def test_device_sign_in_at_the_real_provider(
    oidc_provider: OidcProvider, chromium: Chromium
) -> None:
    prompts = Prompts()
    bob = oidc_provider.user("bob")
    async with make_client(SETTINGS) as client:
        metadata = await oidc.discover(client, oidc_provider.issuer)
        sign_in = asyncio.ensure_future(
            oidc.device_sign_in(client, _real(oidc_provider), metadata, on_prompt=prompts)
        )
        prompt = await prompts.first()
        assert isinstance(prompt, DevicePrompt)
        await asyncio.to_thread(
            enter_device_code,
            chromium,
            verification_uri=prompt.verification_uri,
            user_code=prompt.user_code,
            username="bob",
            password=bob.password,
        )
        got = await asyncio.wait_for(sign_in, BOUND)
    assert got.claims["preferred_username"] == "bob" and got.refresh_token


@pytest.mark.browser
async def test_device_sign_in_refused_on_the_other_device(
    oidc_provider: OidcProvider, browser_page: Page
) -> None:
    prompts = Prompts()
    async with make_client(SETTINGS) as client:
        metadata = await oidc.discover(client, oidc_provider.issuer)
        sign_in = asyncio.ensure_future(
            oidc.device_sign_in(client, _real(oidc_provider), metadata, on_prompt=prompts)
        )
        prompt = await prompts.first()
        assert isinstance(prompt, DevicePrompt)
        await browser_page.goto(prompt.verification_uri)
        await browser_page.wait_for(f"!!{DEVICE_FORM}", "the user-code form")
        await browser_page.evaluate(
            f"(() => {{ const form = {DEVICE_FORM};"
            f" form.querySelector('[name=user_code]').value = {json.dumps(prompt.user_code)};"
            " form.requestSubmit(); })()"
        )
        await browser_page.wait_for(f"!!{DEVICE_CONFIRM}", "the confirmation")
        await browser_page.evaluate("document.getElementById('op-device-abort').click()")
        with pytest.raises(ProviderError, match=r"access_denied|denied"):
            await asyncio.wait_for(sign_in, BOUND)


# ---------------------------------------------------------------------- the session


@pytest.fixture
def sso_server(server_factory: ServerFactory, oidc_provider: OidcProvider) -> EmbeddedServer:
    settings = OidcSettings(
        issuer=oidc_provider.issuer,
        client_id=TRAY_CLIENT_ID,
        console_client_id=CONSOLE_CLIENT_ID,
        publisher_groups=(PUBLISHER_GROUP,),
    )
    return server_factory(oidc=settings)


def _session(url: str, secrets: MemorySecretStore, profile: AuthProfile | None = None) -> Any:
    return AuthSession(
        server_url=url,
        username="",
        endpoints=Endpoints(),
        secrets=secrets,
        settings=SETTINGS,
        profile=profile,
    )


async def _sign_in_as(
    session: AuthSession, chromium: Chromium, provider: OidcProvider, name: str
) -> Tokens:
    person = asyncio.ensure_future(
        asyncio.to_thread(
            complete_sign_in,
            chromium,
            url_prefix=provider.issuer,
            username=name,
            password=provider.user(name).password,
        )
    )
    try:
        return await session.sign_in(on_prompt=Prompts(), open_browser=_opener(chromium))
    finally:
        await person


@pytest.mark.browser
async def test_the_server_says_how_to_sign_in(
    sso_server: EmbeddedServer, server_factory: ServerFactory, oidc_provider: OidcProvider
) -> None:
    session = _session(sso_server.url, MemorySecretStore())
    try:
        options = await session.sign_in_options()
    finally:
        await session.aclose()
    assert options.password is True
    assert options.provider == oidc.Provider(oidc_provider.issuer, TRAY_CLIENT_ID, DEFAULT_SCOPES)
    plain = server_factory()
    session = _session(plain.url, MemorySecretStore())
    try:
        assert await session.sign_in_options() == oidc.SignInOptions(plain.url)
        with pytest.raises(oidc.NoSingleSignOn, match="offers no sign-in"):
            await session.sign_in(on_prompt=Prompts(), open_browser=_not_opened)
    finally:
        await session.aclose()


@pytest.mark.browser
async def test_a_sign_in_stores_the_login_as_a_password_login_does(
    sso_server: EmbeddedServer, oidc_provider: OidcProvider, chromium: Chromium
) -> None:
    secrets = MemorySecretStore()
    session = _session(sso_server.url, secrets)
    try:
        tokens = await _sign_in_as(session, chromium, oidc_provider, "alice")
        assert session.username == "alice" and tokens.user_id == "alice"
        stored = Tokens.from_secret(secrets.get(login_key(sso_server.url, "alice")) or "")
        assert stored is not None and stored.access_token == tokens.access_token
        assert session.stream_url() == f"{sso_server.url}/sse/connect/alice"
        renewed = await session.refresh()  # the server's own refresh, with rotation
        assert renewed != tokens.access_token
        current = session._current()
        assert current is not None
        refresh_token = current.refresh_token
        await session.logout()
        assert secrets.get(login_key(sso_server.url, "alice")) is None
    finally:
        await session.aclose()
    refused = httpx.post(
        f"{sso_server.url}/auth/refresh", json={"refresh_token": refresh_token}, timeout=BOUND
    )
    assert refused.status_code == 401


@pytest.mark.browser
async def test_a_name_of_a_local_account_is_refused_and_nothing_stored(
    sso_server: EmbeddedServer, oidc_provider: OidcProvider, chromium: Chromium
) -> None:
    await asyncio.to_thread(sso_server.add_user, "alice", "local-pw")
    secrets = MemorySecretStore()
    session = _session(sso_server.url, secrets)
    try:
        with pytest.raises(WrongCredentials, match="refused the sign-in") as refused:
            await _sign_in_as(session, chromium, oidc_provider, "alice")
    finally:
        await session.aclose()
    assert refused.value.reason
    assert secrets._values == {}


@pytest.mark.browser
async def test_the_providers_access_token_as_bearer(
    oidc_provider: OidcProvider, chromium: Chromium
) -> None:
    """``bearer = "access_token"``: the provider's tokens are the login; renewed and revoked
    at the provider; the user id from the preferred_username claim (or the user_id pointer)."""
    for pointer, expected in (("", "carol"), ("/sub", oidc_provider.user("carol").sub)):
        profile = AuthProfile(
            style="oidc",
            issuer=oidc_provider.issuer,
            client_id=TRAY_CLIENT_ID,
            bearer="access_token",
            user_id=pointer,
        )
        secrets = MemorySecretStore()
        backend = "https://backend.example.invalid/prod-api"
        session = _session(backend, secrets, profile)
        try:
            options = await session.sign_in_options()
            assert options.password is False and options.provider is not None
            tokens = await _sign_in_as(session, chromium, oidc_provider, "carol")
            assert session.username == "carol" and tokens.user_id == expected
            assert secrets.get(login_key(backend, "carol")) is not None
            first_refresh = tokens.refresh_token
            renewed = await session.refresh()  # at the provider
            assert renewed != tokens.access_token
            kept = session._current()
            assert kept is not None and kept.refresh_token not in ("", first_refresh)
            await session.logout(end_streams=False)  # revoked at the provider
            assert secrets.get(login_key(backend, "carol")) is None
            metadata = await oidc.discover(session._client, oidc_provider.issuer)
            with pytest.raises(ProviderError):
                await oidc.refresh(
                    session._client, _real(oidc_provider), metadata, kept.refresh_token
                )
        finally:
            await session.aclose()


@pytest.mark.browser
async def test_a_refused_refresh_at_the_provider_needs_a_new_sign_in(
    oidc_provider: OidcProvider,
) -> None:
    profile = AuthProfile(
        style="oidc", issuer=oidc_provider.issuer, client_id=TRAY_CLIENT_ID, bearer="access_token"
    )
    backend = "https://backend.example.invalid"
    stale = Tokens("at", "rt-unknown", 0.0, "dave", 0.0)
    secrets = MemorySecretStore({login_key(backend, "dave"): stale.to_secret()})
    session = AuthSession(
        server_url=backend,
        username="dave",
        endpoints=Endpoints(),
        secrets=secrets,
        settings=SETTINGS,
        profile=profile,
    )
    try:
        with pytest.raises(LoginRequired, match="sign in again"):
            await session.access_token()
    finally:
        await session.aclose()
    assert secrets.get(login_key(backend, "dave")) is None


async def test_access_token_bearer_needs_the_provider_in_the_settings() -> None:
    profile = AuthProfile(style="oidc", bearer="access_token")
    session = _session("https://backend.example.invalid", MemorySecretStore(), profile)
    try:
        with pytest.raises(ConfigError, match="needs issuer and client_id"):
            await session.sign_in_options()
    finally:
        await session.aclose()


# ---------------------------------------------------------------------- the settings


def test_the_oidc_settings() -> None:
    config = from_dict(
        {
            "auth": {
                "style": "oidc",
                "issuer": "https://login.example.org/realms/staff",
                "client_id": "tray-notifier",
                "scopes": ["openid", "profile"],
                "redirect_ports": "53100-53109",
                "bearer": "access_token",
            }
        }
    )
    auth = config.auth
    assert auth.scopes == ("openid", "profile") and auth.provider_bearer
    assert auth.describe() == "organisation sign-in (https://login.example.org/realms/staff)"
    defaults = from_dict({}).auth
    assert (defaults.scopes, defaults.redirect_ports, defaults.bearer) == (
        DEFAULT_SCOPES,
        "0",
        "session",
    )
    assert from_dict({"auth": {"issuer": "http://127.0.0.1:8080"}}).auth.issuer


@pytest.mark.parametrize(
    ("setting", "value", "words"),
    [
        ("issuer", "http://login.example.org", "must be an https:// address"),
        ("issuer", "https://login.example.org/?x=1", "query"),
        ("issuer", "login.example.org", "https://"),
        ("scopes", ["profile"], 'must hold "openid"'),
        ("scopes", "profile email", 'must hold "openid"'),
        ("scopes", 5, "must be a list"),
        ("scopes", ["openid", "two words"], "must be a list"),
        ("redirect_ports", "53109-53100", "first no larger"),
        ("redirect_ports", 53100, "in quotes"),
        ("bearer", "cookie", "use one of session, access_token"),
        ("style", "saml", "use one of companion, token, oidc"),
    ],
)
def test_bad_oidc_settings_say_what_to_write(setting: str, value: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=f"auth.{setting} = .*{words}"):
        from_dict({"auth": {setting: value}}, source="config.toml")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Loopback peers: never through a proxy of the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield
