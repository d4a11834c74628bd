"""The test identity provider itself (tests/fixtures/oidc.py, tests/web/oidc_provider.mjs): what
the single sign-on tests of the server, the tray and the console build on.

Discovery; the tray's way in (authorization code with PKCE through the system browser, here
``webbrowser`` with ``BROWSER`` pointing at the tests' Chromium, back to a loopback listener, the
code exchanged with httpx; a refresh token that refreshes and is revoked); a wrong password or an
unknown person refused; the device flow; a restart with a new signing key; the console's client
(a redirect URI added at run time, the code exchanged by ``fetch`` from the page across origins);
and the tokens ``mint_id_token`` forges.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import jwt
import pytest

from tests.fixtures.browser import Chromium, Page
from tests.fixtures.oidc import (
    CONSOLE_CLIENT_ID,
    IDP_USERS,
    PUBLISHER_GROUP,
    TRAY_CLIENT_ID,
    OidcProvider,
    browser_command,
    complete_sign_in,
    enter_device_code,
    sign_in_on_page,
)
from tests.fixtures.wait import wait_until

pytestmark = [pytest.mark.browser]

WAIT = 20.0  # seconds: the bound of every wait here
SCOPES = "openid profile email offline_access"
CLOSE_PAGE = b"<!DOCTYPE html><title>Signed in</title><p>You may close this page.</p>"


# ------------------------------------------------------------------ helpers


@dataclass
class Listener:
    """A loopback HTTP listener (the tray's redirect, or the console's page): records the query
    of each GET of ``path`` and answers a small page."""

    path: str
    queries: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != listener.path:
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                listener.queries.append(query)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(CLOSE_PAGE)))
                self.end_headers()
                self.wfile.write(CLOSE_PAGE)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def url(self) -> str:
        return self.origin + self.path

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=WAIT)


@pytest.fixture
def callback() -> Iterator[Listener]:
    listener = Listener("/callback")
    yield listener
    listener.close()


@dataclass(frozen=True)
class Authorization:
    """One authorization request's secrets and address."""

    url: str
    state: str
    nonce: str
    verifier: str
    redirect_uri: str


def authorization(
    discovery: dict[str, Any], client_id: str, redirect_uri: str, scope: str = SCOPES
) -> Authorization:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    url = f"{discovery['authorization_endpoint']}?{urlencode(query)}"
    return Authorization(url, state, nonce, verifier, redirect_uri)


def discover(provider: OidcProvider) -> dict[str, Any]:
    reply = httpx.get(f"{provider.issuer}/.well-known/openid-configuration", timeout=WAIT)
    reply.raise_for_status()
    document: dict[str, Any] = reply.json()
    return document


def open_in_browser(chromium: Chromium, url: str) -> None:
    """What the tray does: ``webbrowser.open(url)``, in a child that has ``BROWSER`` set."""
    env = {**os.environ, "BROWSER": browser_command(chromium)}
    program = "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.argv[1]) else 1)"
    subprocess.run([sys.executable, "-c", program, url], env=env, check=True, timeout=WAIT)


def verify_id_token(
    provider: OidcProvider, token: str, *, audience: str = TRAY_CLIENT_ID
) -> dict[str, Any]:
    """The ID token's claims, checked against the provider's published keys."""
    keys = jwt.PyJWKClient(discover(provider)["jwks_uri"], cache_keys=False)
    key = keys.get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], audience=audience, issuer=provider.issuer
    )
    return claims


def tray_sign_in(
    provider: OidcProvider, chromium: Chromium, callback: Listener, username: str, password: str
) -> dict[str, Any]:
    """The tray's sign-in end to end; the token endpoint's answer."""
    discovery = discover(provider)
    request = authorization(discovery, TRAY_CLIENT_ID, callback.url)
    open_in_browser(chromium, request.url)
    landed = complete_sign_in(
        chromium, url_prefix=provider.issuer, username=username, password=password
    )
    assert landed.startswith(callback.url + "?"), landed
    wait_until(lambda: bool(callback.queries), WAIT, "the redirect to the loopback listener")
    answer = callback.queries[-1]
    assert answer["state"] == request.state
    assert answer["iss"] == provider.issuer  # RFC 9207
    reply = httpx.post(
        discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": request.redirect_uri,
            "client_id": TRAY_CLIENT_ID,
            "code_verifier": request.verifier,
        },
        timeout=WAIT,
    )
    assert reply.status_code == 200, reply.text
    tokens: dict[str, Any] = reply.json()
    assert verify_id_token(provider, tokens["id_token"])["nonce"] == request.nonce
    return tokens


# ------------------------------------------------------------------ tests


def test_discovery_names_every_endpoint_the_clients_use(oidc_provider: OidcProvider) -> None:
    document = discover(oidc_provider)
    issuer = oidc_provider.issuer
    assert issuer == f"http://127.0.0.1:{oidc_provider.port}"
    assert document["issuer"] == issuer
    assert document["authorization_endpoint"] == f"{issuer}/auth"
    assert document["token_endpoint"] == f"{issuer}/token"
    assert document["jwks_uri"] == f"{issuer}/jwks"
    assert document["device_authorization_endpoint"] == f"{issuer}/device/auth"
    assert document["revocation_endpoint"] == f"{issuer}/token/revocation"
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert set(SCOPES.split()) <= set(document["scopes_supported"])
    jwks = httpx.get(document["jwks_uri"], timeout=WAIT).json()
    assert [(k["kid"], k["alg"], k["kty"]) for k in jwks["keys"]] == [
        (oidc_provider.kid, "RS256", "RSA")
    ]
    assert "d" not in jwks["keys"][0]  # the public half only
    # node starts well within the bound the fixture allows
    assert oidc_provider.start_seconds < 5.0


def test_tray_signs_in_with_code_and_pkce_through_the_browser(
    oidc_provider: OidcProvider, chromium: Chromium, callback: Listener
) -> None:
    alice = oidc_provider.user("alice")
    tokens = tray_sign_in(oidc_provider, chromium, callback, "alice", alice.password)

    claims = verify_id_token(oidc_provider, tokens["id_token"])
    assert claims["sub"] == alice.sub
    assert claims["preferred_username"] == "alice"
    assert claims["name"] == alice.name
    assert claims["email"] == alice.email
    assert claims["groups"] == ["staff", "it"]
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == oidc_provider.kid
    assert "offline_access" in tokens["scope"].split()
    assert tokens["refresh_token"]

    # the refresh token refreshes (rotated: a new one each time), then is revoked
    token_endpoint = f"{oidc_provider.issuer}/token"
    refreshed = httpx.post(
        token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": TRAY_CLIENT_ID,
        },
        timeout=WAIT,
    )
    assert refreshed.status_code == 200, refreshed.text
    renewed = refreshed.json()
    assert verify_id_token(oidc_provider, renewed["id_token"])["sub"] == alice.sub
    assert renewed["refresh_token"] != tokens["refresh_token"]
    revoked = httpx.post(
        f"{oidc_provider.issuer}/token/revocation",
        data={"token": renewed["refresh_token"], "client_id": TRAY_CLIENT_ID},
        timeout=WAIT,
    )
    assert revoked.status_code == 200, revoked.text
    again = httpx.post(
        token_endpoint,
        data={
            "grant_type": "refresh_token",
            "refresh_token": renewed["refresh_token"],
            "client_id": TRAY_CLIENT_ID,
        },
        timeout=WAIT,
    )
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_pkce_is_required(oidc_provider: OidcProvider, callback: Listener) -> None:
    query = {
        "response_type": "code",
        "client_id": TRAY_CLIENT_ID,
        "redirect_uri": callback.url,
        "scope": "openid",
        "state": "s",
    }
    reply = httpx.get(f"{oidc_provider.issuer}/auth?{urlencode(query)}", timeout=WAIT)
    assert reply.status_code == 303
    refusal = parse_qs(urlsplit(reply.headers["location"]).query)
    assert refusal["error"] == ["invalid_request"]
    assert "PKCE" in refusal["error_description"][0]


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "not-her-password"), ("mallory", "alice-idp-pw")],
    ids=["wrong-password", "unknown-person"],
)
def test_a_wrong_password_or_unknown_person_is_refused(
    oidc_provider: OidcProvider,
    chromium: Chromium,
    callback: Listener,
    username: str,
    password: str,
) -> None:
    request = authorization(discover(oidc_provider), TRAY_CLIENT_ID, callback.url)
    open_in_browser(chromium, request.url)
    with pytest.raises(AssertionError, match="Wrong username or password"):
        complete_sign_in(
            chromium, url_prefix=oidc_provider.issuer, username=username, password=password
        )
    assert callback.queries == []


def test_device_flow(oidc_provider: OidcProvider, chromium: Chromium) -> None:
    dave = oidc_provider.user("dave")
    started = httpx.post(
        f"{oidc_provider.issuer}/device/auth",
        data={"client_id": TRAY_CLIENT_ID, "scope": SCOPES},
        timeout=WAIT,
    )
    assert started.status_code == 200, started.text
    device = started.json()
    assert device["interval"] == 1
    assert device["verification_uri"] == f"{oidc_provider.issuer}/device"

    # the device polls (as the tray's `login --device` does) while the person signs in elsewhere
    outcome: list[httpx.Response] = []
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(timeout=WAIT) as client:
            while not stop.is_set():
                reply = client.post(
                    f"{oidc_provider.issuer}/token",
                    data={
                        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                        "device_code": device["device_code"],
                        "client_id": TRAY_CLIENT_ID,
                    },
                )
                if reply.status_code != 400 or reply.json()["error"] != "authorization_pending":
                    outcome.append(reply)
                    return
                stop.wait(device["interval"])

    poller = threading.Thread(target=poll, name="device-poller", daemon=True)
    poller.start()
    try:
        # a wrong code first: the page says so
        with pytest.raises(AssertionError, match="incorrect"):
            enter_device_code(
                chromium,
                verification_uri=device["verification_uri"],
                user_code="BCDF-GHJK" if device["user_code"] != "BCDF-GHJK" else "GHJK-BCDF",
                username="dave",
                password=dave.password,
            )
        enter_device_code(
            chromium,
            verification_uri=device["verification_uri"],
            user_code=device["user_code"],
            username="dave",
            password=dave.password,
        )
        wait_until(lambda: bool(outcome), WAIT, "the device's tokens")
    finally:
        stop.set()
        poller.join(timeout=WAIT)
    assert outcome[0].status_code == 200, outcome[0].text
    tokens = outcome[0].json()
    claims = verify_id_token(oidc_provider, tokens["id_token"])
    assert claims["sub"] == dave.sub
    assert claims["preferred_username"] == "dave"
    assert "groups" not in claims  # dave has none: no claim at all
    assert tokens["refresh_token"]


def test_restart_with_a_new_key(
    oidc_provider: OidcProvider, chromium: Chromium, callback: Listener
) -> None:
    issuer, old_kid, old_key = oidc_provider.issuer, oidc_provider.kid, oidc_provider.private_key
    oidc_provider.restart(new_key=True)
    assert oidc_provider.issuer == issuer  # same port
    assert oidc_provider.kid != old_kid
    assert oidc_provider.private_key is not old_key
    jwks = httpx.get(discover(oidc_provider)["jwks_uri"], timeout=WAIT).json()
    assert [k["kid"] for k in jwks["keys"]] == [oidc_provider.kid]

    bob = oidc_provider.user("bob")
    tokens = tray_sign_in(oidc_provider, chromium, callback, "bob", bob.password)
    assert jwt.get_unverified_header(tokens["id_token"])["kid"] == oidc_provider.kid
    claims = verify_id_token(oidc_provider, tokens["id_token"])
    assert (claims["sub"], claims["groups"]) == (bob.sub, ["staff", "hr"])

    # and without a new key: the same kid is published again
    oidc_provider.restart(new_key=False)
    jwks = httpx.get(discover(oidc_provider)["jwks_uri"], timeout=WAIT).json()
    assert [k["kid"] for k in jwks["keys"]] == [oidc_provider.kid]


async def test_console_client_signs_in_from_its_page(
    oidc_provider: OidcProvider, browser_page: Page
) -> None:
    """The console's public web client: its redirect URI added at run time, the code exchanged
    with fetch from the page's own origin (CORS), one of the two "sam"s told apart by email."""
    console = Listener("/console/")
    try:
        discovery = discover(oidc_provider)
        request = authorization(discovery, CONSOLE_CLIENT_ID, console.url)
        # unknown to the provider until a redirect URI is registered
        before = httpx.get(request.url, timeout=WAIT)
        assert before.status_code == 400
        assert "invalid_client" in before.text
        oidc_provider.add_console_redirect(console.url)

        sam = oidc_provider.user("sam.south@example.org")
        await browser_page.goto(request.url)
        await sign_in_on_page(browser_page, username=sam.email, password=sam.password)
        await browser_page.wait_for(
            f"location.href.startsWith({json.dumps(console.url + '?')})", "back on the console"
        )
        answer = console.queries[-1]
        assert answer["state"] == request.state

        form = {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": console.url,
            "client_id": CONSOLE_CLIENT_ID,
            "code_verifier": request.verifier,
        }
        exchange = f"""
            fetch({json.dumps(discovery["token_endpoint"])}, {{
              method: "POST", body: new URLSearchParams({json.dumps(form)}),
            }}).then(async (r) => ({{status: r.status, body: await r.json()}}))
        """
        reply = await browser_page.evaluate(exchange)
        assert reply["status"] == 200, (reply, browser_page.log)
        claims = verify_id_token(
            oidc_provider, reply["body"]["id_token"], audience=CONSOLE_CLIENT_ID
        )
        assert (claims["sub"], claims["preferred_username"]) == (sam.sub, "sam")
        assert claims["nonce"] == request.nonce
        assert "refresh_token" not in reply["body"]  # the console's client has no refresh grant
    finally:
        console.close()


def test_people() -> None:
    subs = [u.sub for u in IDP_USERS]
    assert len(set(subs)) == len(subs)
    assert all(u.username not in u.sub for u in IDP_USERS)  # opaque ids, not the names
    sams = [u for u in IDP_USERS if u.username == "sam"]
    assert len(sams) == 2
    assert len({u.sub for u in sams}) == 2
    assert any(u.groups == (PUBLISHER_GROUP,) for u in IDP_USERS)
    assert any(u.groups is None for u in IDP_USERS)


def test_people_by_name_or_email(oidc_provider: OidcProvider) -> None:
    north, south = (u for u in IDP_USERS if u.username == "sam")
    assert oidc_provider.user("sam") == north  # the first of that name
    assert oidc_provider.user("sam.south@example.org") == south
    assert oidc_provider.user("Alice@Example.org").username == "alice"
    with pytest.raises(KeyError):
        oidc_provider.user("mallory")
    minted = oidc_provider.mint_id_token(user="sam.south@example.org")
    assert verify_id_token(oidc_provider, minted)["sub"] == south.sub


def test_minted_tokens(oidc_provider: OidcProvider) -> None:
    alice = oidc_provider.user("alice")
    token = oidc_provider.mint_id_token()
    claims = verify_id_token(oidc_provider, token)
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == TRAY_CLIENT_ID
    assert (claims["sub"], claims["preferred_username"]) == (alice.sub, "alice")
    assert claims["groups"] == ["staff", "it"]
    assert claims["exp"] - claims["iat"] == 300
    assert "nonce" not in claims
    assert jwt.get_unverified_header(token) == {
        "alg": "RS256",
        "kid": oidc_provider.kid,
        "typ": "JWT",
    }

    # claims replaced, added and removed; dave has no groups claim
    token = oidc_provider.mint_id_token(user="dave", aud="other", nonce="n", email=None)
    claims = verify_id_token(oidc_provider, token, audience="other")
    assert "groups" not in claims
    assert "email" not in claims
    assert claims["nonce"] == "n"

    # unsigned
    unsigned = oidc_provider.mint_id_token(algorithm="none")
    head, body, signature = unsigned.split(".")
    assert signature == ""
    assert jwt.get_unverified_header(unsigned)["alg"] == "none"
    assert jwt.decode(unsigned, options={"verify_signature": False})["sub"] == alice.sub

    # key confusion: HS256 with the public key's PEM as the secret
    pem = oidc_provider.public_key_pem
    confused = oidc_provider.mint_id_token(algorithm="HS256", key=pem)
    head, body, signature = confused.split(".")
    expected = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert signature == base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
    assert jwt.get_unverified_header(confused)["kid"] == oidc_provider.kid
    with pytest.raises(jwt.PyJWTError):
        verify_id_token(oidc_provider, confused)

    # another key under the provider's kid: refused by the published key; no kid at all
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = oidc_provider.mint_id_token(key=stranger)
    with pytest.raises(jwt.InvalidSignatureError):
        verify_id_token(oidc_provider, forged)
    assert "kid" not in jwt.get_unverified_header(
        oidc_provider.mint_id_token(headers={"kid": None})
    )


def test_complete_sign_in_names_the_tabs_when_none_is_on_the_provider(
    oidc_provider: OidcProvider, chromium: Chromium, callback: Listener
) -> None:
    """An authorization the provider refuses at once (here: no PKCE) goes straight back to the
    client: no tab stays on the provider, and complete_sign_in fails at its bound naming the
    tabs it saw. (Tests of such refusals watch the redirect, not complete_sign_in.)"""
    query = {"response_type": "code", "client_id": TRAY_CLIENT_ID, "redirect_uri": callback.url}
    open_in_browser(chromium, f"{oidc_provider.issuer}/auth?{urlencode(query)}&scope=openid")
    wait_until(lambda: bool(callback.queries), WAIT, "the refusal sent back to the client")
    assert callback.queries[0]["error"] == "invalid_request"

    def left_the_provider() -> bool:
        tabs = httpx.get(f"{chromium.http_url}/json/list", timeout=WAIT).json()
        urls = [str(tab["url"]) for tab in tabs]
        on_callback = any(url.startswith(callback.url) for url in urls)
        return on_callback and not any(url.startswith(oidc_provider.issuer) for url in urls)

    # the callback server answers before Chromium commits the navigation: until then the tab
    # list still names the provider's address
    wait_until(
        left_the_provider,
        WAIT,
        "the tab on the client's callback, none left on the provider",
    )
    with pytest.raises(
        AssertionError, match=r"no Chromium tab on .*/callback\?error=invalid_request"
    ):
        complete_sign_in(
            chromium, url_prefix=oidc_provider.issuer, username="alice", password="x", timeout=1
        )
    for tab in httpx.get(f"{chromium.http_url}/json/list", timeout=WAIT).json():
        if tab["url"].startswith(callback.url):
            httpx.get(f"{chromium.http_url}/json/close/{tab['id']}", timeout=WAIT)
