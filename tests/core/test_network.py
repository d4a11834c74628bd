"""Corporate networks, with real parts (issue 23): the operating system's trust store with a
private CA made here (``SSL_CERT_FILE``, no ``ca_bundle``), and Debian's squid on loopback:
plain, asking for Basic credentials (407 without them, fine after ``proxy-login``), chosen by a
PAC file served on loopback, bypassed by an exclusion; the stream held and reconnected through
it. squid's access log says which requests went through it."""

from __future__ import annotations

import argparse
import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from app import proxy_login
from app.core import http
from app.core.auth import AuthSession
from app.core.config import Endpoints, NetworkSettings, StreamSettings
from app.core.errors import CertificateError, ProxyAuthRequired, ProxyCredentialsRefused
from app.core.model import ConnState, RawEvent, Status, StreamEvent
from app.core.proxy import OsProxySettings, ProxyResolver, Route, read_credentials, shown_url
from app.core.secrets import MemorySecretStore
from app.core.stream import StaticToken, StreamEngine
from app.server.embedded import EmbeddedServer
from tests.fixtures.proxy import PacServer, Squid, SquidFactory
from tests.fixtures.server import DEMO_PASSWORD, ServerFactory
from tests.fixtures.tls import private_ca
from tests.fixtures.wait import wait_until

BOUND = 30.0  # seconds: every wait here is on a condition, bounded by this


def _no_os_proxy() -> OsProxySettings:
    return OsProxySettings()


def _policy(
    proxy: str = "system",
    pac_url: str = "",
    *,
    environ: dict[str, str] | None = None,
    secrets: MemorySecretStore | None = None,
) -> http.Network:
    return http.use_network(
        NetworkSettings(proxy=proxy, pac_url=pac_url),
        secrets=secrets,
        environ=environ if environ is not None else {},
        os_settings=_no_os_proxy,
    )


@pytest.fixture
def tls_server(
    server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> EmbeddedServer:
    """The companion server over HTTPS under a private CA that the "OS" trusts: SSL_CERT_FILE
    names the CA (as update-ca-certificates would have installed it), no ca_bundle."""
    ca_file, _ = private_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return server_factory(
        demo_users=True,
        ping_interval=0.5,
        tls_cert=tmp_path / "server.pem",
        tls_key=tmp_path / "server.key",
    )


async def _login(server: EmbeddedServer, settings: StreamSettings | None = None) -> AuthSession:
    session = AuthSession(
        server_url=server.url,
        username="alice",
        endpoints=Endpoints(),
        secrets=MemorySecretStore(),
        settings=settings or StreamSettings(),
    )
    await session.login(DEMO_PASSWORD)
    return session


async def _first_announcement(session: AuthSession, server: EmbeddedServer) -> str:
    """Open the stream with the session's login; publish once it is connected; the title."""
    got: list[str] = []
    engine: StreamEngine

    def on_event(raw: RawEvent, typed: StreamEvent) -> None:
        if raw.event in ("", "message", "announcement") and "title" in raw.data:
            got.append(raw.data)
            engine.stop()

    def on_status(status: Status) -> None:
        if status.state is ConnState.CONNECTED:
            asyncio.get_running_loop().run_in_executor(None, server.publish, "through", "it")

    engine = StreamEngine(
        url=session.stream_url(),
        settings=StreamSettings(),
        token_source=StaticToken(await session.access_token()),
        on_event=on_event,
        on_status=on_status,
    )
    outcome = await asyncio.wait_for(engine.run(), BOUND)
    assert got, outcome
    return got[0]


# ---------------------------------------------------------------- trust


async def test_a_private_root_in_the_os_store_is_trusted_with_no_setting(
    tls_server: EmbeddedServer,
) -> None:
    _policy("none")
    assert tls_server.url.startswith("https://")
    session = await _login(tls_server)  # login, then the stream: one context for both
    try:
        assert '"through"' in await _first_announcement(session, tls_server)
    finally:
        await session.aclose()
    assert http.tls_context("") is http.default_tls_context()  # one per process


async def test_a_chain_no_trust_source_holds_is_refused(
    server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private_ca(tmp_path)  # the server's CA, trusted nowhere
    (tmp_path / "other").mkdir()
    other, _ = private_ca(tmp_path / "other")  # the only root the "OS" trusts
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    _policy("none")
    server = server_factory(
        demo_users=True, tls_cert=tmp_path / "server.pem", tls_key=tmp_path / "server.key"
    )
    with pytest.raises(CertificateError, match="trust store"):
        await _login(server)


# ---------------------------------------------------------------- the decision


async def test_one_decision_per_destination_logged_once_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fetched: list[str] = []

    async def fetch(url: str) -> str:
        fetched.append(url)
        return (
            'function FindProxyForURL(url, host) { if (host == "intranet.example") '
            'return "DIRECT"; return "PROXY 127.0.0.1:3128; DIRECT"; }'
        )

    resolver = ProxyResolver(
        NetworkSettings(pac_url="http://pac.example/proxy.pac"),
        fetch=fetch,
        environ={"HTTPS_PROXY": "http://ignored:1"},  # pac_url wins over the environment
        os_settings=_no_os_proxy,
    )
    caplog.set_level("INFO", logger="app.core.proxy")
    for _ in range(3):
        route = await resolver.route("https", "news.example", 443)
    direct = await resolver.route("https", "intranet.example", 443)
    assert route.proxy == "http://127.0.0.1:3128" and route.source == "pac"
    assert "the PAC file at http://pac.example/proxy.pac answered" in route.reason
    assert direct.proxy is None
    assert fetched == ["http://pac.example/proxy.pac"]  # fetched once
    logged = [r.getMessage() for r in caplog.records if "is reached" in r.getMessage()]
    assert len(logged) == 2 and "news.example" in logged[0]


@pytest.mark.parametrize(
    ("settings", "environ", "host", "proxy", "reason"),
    [
        (NetworkSettings(proxy="none"), {"HTTPS_PROXY": "http://p:1"}, "a.example", None, "none"),
        (
            NetworkSettings(proxy="http://p:3128"),
            {},
            "127.0.0.1",  # an explicit proxy applies to loopback too
            "http://p:3128",
            "[network] proxy",
        ),
        (
            NetworkSettings(proxy="http://p:3128"),
            {"NO_PROXY": "internal.example"},
            "news.internal.example",
            None,
            "NO_PROXY excludes",
        ),
        (
            NetworkSettings(),
            {"https_proxy": "p:8080", "no_proxy": "other.example"},
            "localhost",
            "http://p:8080",
            "HTTPS_PROXY in the environment",
        ),
        (NetworkSettings(), {}, "a.example", None, "no proxy in the environment or the OS"),
    ],
)
async def test_the_contract_s_precedence(
    settings: NetworkSettings,
    environ: dict[str, str],
    host: str,
    proxy: str | None,
    reason: str,
) -> None:
    async def no_pac(url: str) -> str:
        raise AssertionError("no PAC file here")

    resolver = ProxyResolver(settings, fetch=no_pac, environ=environ, os_settings=_no_os_proxy)
    route = await resolver.route("https", host, 443)
    assert (route.proxy, reason in route.reason) == (proxy, True), route


async def test_the_os_settings_come_last_with_their_exclusions() -> None:
    async def no_pac(url: str) -> str:
        raise AssertionError("no PAC file here")

    def os_settings() -> OsProxySettings:
        return OsProxySettings(
            proxies={"https": "http://os-proxy:3128"},
            bypass=lambda host: host.endswith(".corp.example"),
            where="Windows' proxy settings",
        )

    resolver = ProxyResolver(NetworkSettings(), fetch=no_pac, environ={}, os_settings=os_settings)
    out = await resolver.route("https", "news.example", 443)
    inside = await resolver.route("https", "hr.corp.example", 443)
    assert (out.proxy, out.source) == ("http://os-proxy:3128", "os")
    assert inside.proxy is None and "exclude" in inside.reason


async def test_an_unreachable_pac_file_goes_direct_and_says_why() -> None:
    async def down(url: str) -> str:
        raise OSError("Connection refused")

    resolver = ProxyResolver(
        NetworkSettings(pac_url="auto"),
        fetch=down,
        environ={},
        os_settings=_no_os_proxy,
        wpad=lambda: ["http://wpad.corp.example/wpad.dat", "http://wpad.example/wpad.dat"],
    )
    route = await resolver.route("https", "a.example", 443)
    assert route.proxy is None
    assert "WPAD could not be had" in resolver.pac_problem
    assert "http://wpad.example/wpad.dat" in resolver.pac_problem


def test_credentials_never_show_in_a_route() -> None:
    route = Route("http://ann:s3cret@proxy:3128", "HTTPS_PROXY in the environment")
    assert "s3cret" not in route.describe() and "ann" not in route.describe()
    assert shown_url("http://ann:s3cret@proxy:3128/x") == "http://…@proxy:3128/x"


# ---------------------------------------------------------------- through squid


async def test_the_stream_goes_through_an_explicit_proxy_and_the_log_shows_it(
    squid: Squid, companion_server: EmbeddedServer
) -> None:
    _policy(squid.url)  # loopback included: an explicit proxy applies to every address
    session = await _login(companion_server)
    try:
        assert '"through"' in await _first_announcement(session, companion_server)
    finally:
        await session.aclose()
    port = f"127.0.0.1:{companion_server.port}"
    # squid logs a request when it ends: the login and the stream both went through it
    wait_until(lambda: {"POST", "GET"} <= {r.method for r in squid.went_through(port)}, BOUND)


async def test_tls_through_the_proxy_keeps_the_process_s_trust(
    squid: Squid, tls_server: EmbeddedServer
) -> None:
    """The sharp edge of conda#16253: a custom context dropped once a proxy is configured.
    Here the private root (trusted through the OS paths only) verifies inside CONNECT."""
    _policy(squid.url)
    session = await _login(tls_server)
    try:
        assert '"through"' in await _first_announcement(session, tls_server)
    finally:
        await session.aclose()
    where = f"127.0.0.1:{tls_server.port}"
    wait_until(lambda: len(squid.went_through(where)) >= 2, BOUND, "the login's and stream's")
    assert {r.method for r in squid.went_through(where)} == {"CONNECT"}


async def test_407_without_credentials_then_proxy_login_fixes_it(
    squid_factory: SquidFactory,
    tls_server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    squid = squid_factory(users={"ann": "proxy-pw-1"})
    secrets = MemorySecretStore()
    _policy(squid.url, secrets=secrets)
    with pytest.raises(ProxyAuthRequired, match="proxy-login"):
        await _login(tls_server)
    where = f"127.0.0.1:{tls_server.port}"
    wait_until(lambda: [r.status for r in squid.went_through(where)] == [407], BOUND)

    monkeypatch.setattr("sys.stdin", io.StringIO("proxy-pw-1\n"))
    code = proxy_login.run(argparse.Namespace(user="ann", password_stdin=True), secrets=secrets)
    assert code == 0
    stored = read_credentials(secrets)
    assert stored is not None and stored.user == "ann"

    _policy(squid.url, secrets=secrets)  # the next start (or connection) reads them
    session = await _login(tls_server)
    try:  # the stream's CONNECT authenticates too, not only the login's
        assert '"through"' in await _first_announcement(session, tls_server)
    finally:
        await session.aclose()

    def tunnels_of_ann() -> bool:
        opened = [r for r in squid.went_through(where) if r.status == 200]
        return len(opened) >= 2 and {r.user for r in opened} == {"ann"}

    wait_until(tunnels_of_ann, BOUND, "the login's and the stream's tunnels, as ann")


async def test_wrong_stored_credentials_say_so(
    squid_factory: SquidFactory, companion_server: EmbeddedServer
) -> None:
    squid = squid_factory(users={"ann": "right"})
    secrets = MemorySecretStore()
    from app.core.proxy import store_credentials

    store_credentials(secrets, "ann", "wrong")
    _policy(squid.url, secrets=secrets)
    with pytest.raises(ProxyAuthRequired, match="refused the stored proxy credentials") as info:
        await _login(companion_server)  # plain http: the proxy's own 407 answer
    assert "wrong" not in str(info.value)
    assert isinstance(info.value, ProxyCredentialsRefused)  # the tray's dialog says refused
    assert info.value.proxy == squid.url  # named for people, never with credentials


async def test_a_pac_file_on_loopback_chooses_the_proxy_and_its_exclusion_bypasses_it(
    squid: Squid,
    pac_server: PacServer,
    server_factory: ServerFactory,
) -> None:
    through = server_factory(demo_users=True, ping_interval=0.5)
    around = server_factory(demo_users=True, ping_interval=0.5)
    pac = pac_server.serve(
        "function FindProxyForURL(url, host) {\n"
        f'  if (shExpMatch(url, "*:{around.port}/*")) return "DIRECT";\n'
        f'  return "PROXY 127.0.0.1:{squid.port}; DIRECT";\n'
        "}\n"
    )
    _policy("system", pac, environ={"HTTPS_PROXY": "http://127.0.0.1:9"})  # PAC wins
    for server in (through, around):
        session = await _login(server)
        try:
            assert '"through"' in await _first_announcement(session, server)
        finally:
            await session.aclose()
    wait_until(lambda: bool(squid.went_through(f"127.0.0.1:{through.port}")), BOUND)
    assert not squid.went_through(f"127.0.0.1:{around.port}")  # the exclusion
    assert pac_server.fetches == 1


async def test_no_proxy_bypasses_the_environment_s_proxy(
    squid: Squid, server_factory: ServerFactory
) -> None:
    through = server_factory(demo_users=True)
    around = server_factory(demo_users=True)
    _policy(
        "system",
        environ={"HTTP_PROXY": squid.url, "NO_PROXY": f"127.0.0.1:{around.port}"},
    )
    for server in (through, around):
        session = await _login(server)
        await session.aclose()
    wait_until(lambda: bool(squid.went_through(f"127.0.0.1:{through.port}")), BOUND)
    assert not squid.went_through(f"127.0.0.1:{around.port}")


@pytest.fixture
def pac_chosen_squid_asking_for_credentials(
    squid_factory: SquidFactory, pac_server: PacServer, monkeypatch: pytest.MonkeyPatch
) -> Squid:
    """A PAC file (served on loopback) chooses a squid that asks for Basic credentials, which
    proxy-login stored; the process's network policy is "system" with that PAC file."""
    squid = squid_factory(users={"ann": "proxy-pw-1"})
    pac = pac_server.serve(
        f'function FindProxyForURL(url, host) {{ return "PROXY 127.0.0.1:{squid.port}"; }}\n'
    )
    secrets = MemorySecretStore()
    monkeypatch.setattr("sys.stdin", io.StringIO("proxy-pw-1\n"))
    assert (
        proxy_login.run(argparse.Namespace(user="ann", password_stdin=True), secrets=secrets) == 0
    )
    _policy("system", pac, secrets=secrets)
    return squid


def _tunnels_of_ann(squid: Squid, where: str, at_least: int) -> Callable[[], bool]:
    def check() -> bool:  # squid logs a tunnel when it ends
        opened = [r for r in squid.went_through(where) if r.status == 200]
        return len(opened) >= at_least and {r.user for r in opened} == {"ann"}

    return check


async def test_behind_a_pac_chosen_authenticating_proxy_a_private_root_is_trusted(
    pac_chosen_squid_asking_for_credentials: Squid, tls_server: EmbeddedServer
) -> None:
    """The issue's "done when", first half: the PAC file picks the proxy, the proxy asks for
    the stored credentials, the server's certificate is under a private root the OS store
    holds (SSL_CERT_FILE, no ca_bundle): the login and the stream go through, as ann."""
    squid = pac_chosen_squid_asking_for_credentials
    session = await _login(tls_server)
    try:
        assert '"through"' in await _first_announcement(session, tls_server)
    finally:
        await session.aclose()
    where = f"127.0.0.1:{tls_server.port}"
    wait_until(_tunnels_of_ann(squid, where, 2), BOUND, "the login's and the stream's tunnels")


async def test_the_stream_holds_and_reconnects_through_the_pac_chosen_authenticating_proxy(
    pac_chosen_squid_asking_for_credentials: Squid, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """The second half: the stream holds through that proxy (pings), and after the server
    restarts it reconnects through it, with the stored credentials, and resumes."""
    squid = pac_chosen_squid_asking_for_credentials
    first = server_factory(demo_users=True, ping_interval=0.3, data_dir=tmp_path / "s")
    session = await _login(first)
    token = await session.access_token()
    await session.aclose()
    states: list[ConnState] = []
    titles: list[str] = []
    first_title = asyncio.Event()
    reconnected = asyncio.Event()
    restarted: list[EmbeddedServer] = []
    loop = asyncio.get_running_loop()
    engine: StreamEngine

    def on_event(raw: RawEvent, typed: StreamEvent) -> None:
        if "title" in raw.data:
            titles.append(raw.data)
            first_title.set()
            if len(titles) == 2:
                engine.stop()

    def on_status(status: Status) -> None:
        states.append(status.state)
        connects = states.count(ConnState.CONNECTED)
        if status.state is ConnState.CONNECTED and connects == 1:
            loop.run_in_executor(None, first.publish, "one", "before")
        if status.state is ConnState.CONNECTED and connects == 2:
            reconnected.set()

    engine = StreamEngine(
        url=first.url + "/sse/connect/alice",
        settings=StreamSettings(heartbeat_timeout=5),
        token_source=StaticToken(token),
        on_event=on_event,
        on_status=on_status,
    )
    task = asyncio.ensure_future(engine.run())
    try:
        await asyncio.wait_for(first_title.wait(), BOUND)  # held, with pings around it

        def restart() -> None:
            first.stop()
            restarted.append(
                server_factory(
                    demo_users=True, ping_interval=0.3, data_dir=first.data_dir, port=first.port
                )
            )

        await loop.run_in_executor(None, restart)
        await asyncio.wait_for(reconnected.wait(), BOUND)
        await loop.run_in_executor(None, restarted[0].publish, "two", "after")
        await asyncio.wait_for(task, BOUND)
    finally:
        engine.stop()
        if not task.done():
            await asyncio.wait_for(task, BOUND)
    assert len(titles) == 2

    def both_streams_as_ann() -> bool:  # plain http: squid logs each GET when it ends
        streams = [
            r for r in squid.went_through(f"127.0.0.1:{first.port}/sse/") if r.method == "GET"
        ]
        return len(streams) >= 2 and {r.user for r in streams} == {"ann"}

    wait_until(both_streams_as_ann, BOUND, "both streams in squid's log, as ann")
