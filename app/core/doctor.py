"""The doctor: walks every hop from this computer to the announcement stream and names the one
that fails, with what to do (``python -m app doctor``, *Diagnose connection…* in the tray).

Checks, in order (each ``ok``, ``warn`` or ``fail``, with its detail and remedy):

``settings`` (in effect, and where each came from), ``name resolution``, ``proxy`` (the one
chosen for the server, and why), ``tcp`` (the first hop: the proxy or the server),
``proxy credentials`` (a 407), ``tls`` (the chain, which trust source accepted it, days to
expiry; an untrusted chain names its issuer), ``server`` (its answer), ``clock`` (the offset
from the server's ``Date``), ``login`` (a stored login), ``stream`` (time to its first byte; a
proxy that holds it back is named), ``notifications`` (the notification service and its
actions), ``keyring``.

No secret ever appears in a check: no token, no password, no proxy credentials (their user
name only), no URL query. No Qt here: the tray's window shows :func:`report` of the same list.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
import socket
import ssl
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from app.core import http
from app.core.auth import AuthSession
from app.core.config import Config
from app.core.errors import (
    CertificateError,
    ConfigError,
    LoginRequired,
    ProxyAuthRequired,
    TrayNotifierError,
)
from app.core.proxy import ProxyCredentials, Route, read_credentials, shown_url
from app.core.secrets import SecretStore, SecretStoreUnavailable, login_key

OK, WARN, FAIL = "ok", "warn", "fail"
#: a stream whose first byte takes longer than this is held back on the way
STREAM_WAIT = 10.0
#: the clock's offset from the server's that makes tokens fail (warn at a fifth of it)
CLOCK_LIMIT = 300.0
#: a certificate expiring within this many days is a warning
EXPIRY_WARN_DAYS = 14
_HOP_TIMEOUT = 10.0
_PROBE_KEY = "doctor-probe"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    remedy: str = ""

    def as_json(self) -> dict[str, str]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "remedy": self.remedy,
        }


def failed(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


def report(checks: list[Check]) -> str:
    """The checks as plain text, for people and the helpdesk (no secret in it)."""
    lines = []
    for c in checks:
        lines.append(f"[{c.status.upper():4}] {c.name}: {c.detail}")
        if c.remedy:
            lines.append(f"       → {c.remedy}")
    verdict = "Something failed: see the first FAIL above." if failed(checks) else "No hop failed."
    return "\n".join([*lines, "", verdict])


@dataclass(slots=True)
class _Hop:
    """What the checks learnt so far about the way to the server."""

    scheme: str = ""
    host: str = ""
    port: int = 0
    route: Route | None = None
    credentials: ProxyCredentials | None = None
    broken: str = ""  # the failed hop's check name: the ones after it are not tried
    server_date: float | None = None


async def diagnose(
    config: Config,
    *,
    secrets: SecretStore,
    sources: dict[str, str] | None = None,
    stream_wait: float = STREAM_WAIT,
    notifications: Callable[[], Check] | None = None,
    clock: Callable[[], float] = time.time,
) -> list[Check]:
    """Every check, in order, for ``config`` (the process's network policy must be set:
    :func:`app.core.http.use_network`). ``sources``: where each setting came from."""
    checks: list[Check] = []
    hop = _Hop()
    checks.append(_settings(config, sources or {}))
    url = config.server_url.strip()
    if url:
        try:
            parsed = httpx.URL(url)
            hop.scheme, hop.host = parsed.scheme, parsed.host
            hop.port = parsed.port or (443 if parsed.scheme == "https" else 80)
        except (httpx.InvalidURL, TypeError, ValueError):
            hop.broken = "settings"
    else:
        hop.broken = "settings"
    if not hop.broken:
        hop.route = await http.network().route(httpx.URL(url))
        checks.append(await _resolution(hop))
        checks.append(_proxy(hop))
        checks.append(await _tcp(hop))
        checks.append(await _proxy_credentials(hop, secrets))
        checks.append(await _tls(hop, config))
        checks.append(await _server(hop, config))
        checks.append(_clock(hop, clock))
    login = _login(config, secrets)
    checks.append(login)
    if not hop.broken:
        checks.append(await _stream(hop, config, secrets, login, stream_wait))
    checks.append((notifications or notification_service)())
    checks.append(_keyring(secrets))
    return checks


# ---------------------------------------------------------------- the hops


def _settings(config: Config, sources: dict[str, str]) -> Check:
    def where(key: str) -> str:
        return sources.get(key, "default")

    parts = [
        f"server_url = {config.server_url or '(none)'} ({where('server_url')})",
        f"username = {config.username or '(none)'} ({where('username')})",
        f"network.proxy = {shown_url(config.network.proxy)} ({where('network.proxy')})",
        f"network.pac_url = {config.network.pac_url or '(none)'} ({where('network.pac_url')})",
        f"stream.ca_bundle = {config.stream.ca_bundle or '(none)'} ({where('stream.ca_bundle')})",
    ]
    if config.locked:
        parts.append("locked by IT: " + ", ".join(sorted(config.locked)))
    detail = "; ".join(parts)
    if not config.server_url.strip():
        return Check(
            "settings",
            FAIL,
            detail,
            "No server is set: IT sets server_url for everyone, or log in with the server's "
            "address (python -m app login --server URL).",
        )
    if config.problems:
        return Check(
            "settings",
            WARN,
            detail + ". IT's settings file has problems: " + " ".join(config.problems),
            "IT must fix the system settings file named above.",
        )
    return Check("settings", OK, detail)


async def _resolution(hop: _Hop) -> Check:
    names = [hop.host]
    proxy = _proxy_address(hop)
    if proxy is not None:
        names.insert(0, proxy[0])
    found, missing = [], []
    for name in names:
        try:
            infos = await asyncio.to_thread(socket.getaddrinfo, name, None, 0, socket.SOCK_STREAM)
            found.append(f"{name} → {', '.join(sorted({str(i[4][0]) for i in infos}))}")
        except OSError as exc:
            missing.append(f"{name} ({exc.strerror or exc})")
    detail = "; ".join(found)
    if missing and proxy is not None and missing == [m for m in missing if hop.host in m]:
        # the proxy resolves the server's name itself: not resolving it here is normal
        return Check(
            "name resolution",
            OK,
            f"{detail}; {hop.host} is not resolved here (the proxy resolves it)",
        )
    if missing:
        hop.broken = hop.broken or "name resolution"
        return Check(
            "name resolution",
            FAIL,
            "cannot resolve " + ", ".join(missing) + (f"; {detail}" if detail else ""),
            "Check the address for typing errors, and the network connection (VPN, DNS): ask "
            "IT if the name is internal.",
        )
    return Check("name resolution", OK, detail)


def _proxy(hop: _Hop) -> Check:
    route = hop.route
    assert route is not None
    problem = http.network().resolver.pac_problem
    detail = f"{hop.scheme}://{hop.host}:{hop.port} is reached {route.describe()}"
    if problem:
        return Check(
            "proxy",
            WARN,
            detail,
            "The PAC file could not be used, so the tray goes direct: IT must check pac_url "
            "(or WPAD) and that the PAC file answers from this network.",
        )
    return Check("proxy", OK, detail)


def _proxy_address(hop: _Hop) -> tuple[str, int] | None:
    if hop.route is None or hop.route.proxy is None:
        return None
    url = httpx.URL(hop.route.proxy)
    return url.host, url.port or (443 if url.scheme == "https" else 80)


def _first_hop(hop: _Hop) -> tuple[str, int]:
    return _proxy_address(hop) or (hop.host, hop.port)


async def _tcp(hop: _Hop) -> Check:
    if hop.broken:
        return _not_tried("tcp", hop)
    host, port = _first_hop(hop)
    what = "the proxy" if _proxy_address(hop) else "the server"
    started = time.monotonic()
    try:
        sock = await asyncio.to_thread(socket.create_connection, (host, port), _HOP_TIMEOUT)
        sock.close()
    except OSError as exc:
        hop.broken = "tcp"
        return Check(
            "tcp",
            FAIL,
            f"cannot connect to {what} at {host}:{port} ({exc.strerror or exc})",
            "A firewall or a stopped service: check the network connection; ask IT whether "
            f"{host}:{port} is reachable from this network"
            + (" and the proxy is up." if what == "the proxy" else "."),
        )
    took = (time.monotonic() - started) * 1000
    return Check("tcp", OK, f"connected to {what} at {host}:{port} in {took:.0f} ms")


async def _proxy_credentials(hop: _Hop, secrets: SecretStore) -> Check:
    name = "proxy credentials"
    try:
        hop.credentials = await asyncio.to_thread(read_credentials, secrets)
    except SecretStoreUnavailable:
        hop.credentials = None
    stored = f"stored for {hop.credentials.user}" if hop.credentials else "none stored"
    if hop.broken:
        return _not_tried(name, hop)
    if _proxy_address(hop) is None:
        return Check(name, OK, f"no proxy on the way (proxy credentials: {stored})")
    try:
        sock, status = await asyncio.to_thread(_through_proxy, hop, hop.credentials)
        sock.close()
    except OSError as exc:
        hop.broken = name
        return Check(
            name,
            FAIL,
            f"the proxy {hop.route and shown_url(hop.route.proxy or '')} did not open the "
            f"way to {hop.host}:{hop.port} ({exc})",
            "Ask IT whether the proxy lets this server through.",
        )
    if status == 407:
        hop.broken = name
        if hop.credentials is None:
            return Check(
                name,
                FAIL,
                "the proxy asks for credentials (HTTP 407) and none are stored",
                "Store them: python -m app proxy-login --user NAME --password-stdin",
            )
        return Check(
            name,
            FAIL,
            f"the proxy refused the stored credentials of {hop.credentials.user} (HTTP 407)",
            "Store the right ones: python -m app proxy-login --user NAME --password-stdin "
            "(a changed password?)",
        )
    if status != 200:
        hop.broken = name
        return Check(
            name,
            FAIL,
            f"the proxy answered HTTP {status} for {hop.host}:{hop.port}",
            "Ask IT whether the proxy lets this server through.",
        )
    return Check(name, OK, f"the proxy lets {hop.host}:{hop.port} through ({stored})")


def _through_proxy(hop: _Hop, credentials: ProxyCredentials | None) -> tuple[socket.socket, int]:
    """A connection through the proxy to the server: CONNECT for https (the tunnel, ready for
    TLS when the status is 200), a HEAD request for http. Returns it with the proxy's status."""
    proxy = _proxy_address(hop)
    assert proxy is not None
    sock = socket.create_connection(proxy, _HOP_TIMEOUT)
    target = f"{hop.host}:{hop.port}" if ":" not in hop.host else f"[{hop.host}]:{hop.port}"
    lines = (
        [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if hop.scheme == "https"
        else [f"HEAD http://{target}/ HTTP/1.1", f"Host: {target}", "Connection: close"]
    )
    lines.append(f"User-Agent: {http.USER_AGENT}")
    if credentials is not None:
        pair = f"{credentials.user}:{credentials.password}".encode()
        lines.append(f"Proxy-Authorization: Basic {base64.b64encode(pair).decode()}")
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            piece = sock.recv(4096)
            if not piece:
                break
            head += piece
    except OSError:
        sock.close()
        raise
    first = head.split(b"\r\n", 1)[0].decode("latin-1", "replace").split()
    if len(first) < 2 or not first[1].isdigit():
        sock.close()
        raise OSError("the proxy's answer was not HTTP")
    return sock, int(first[1])


def _open(hop: _Hop) -> socket.socket:
    """A TCP connection to the server, through the proxy's tunnel when there is one."""
    if _proxy_address(hop) is None:
        return socket.create_connection((hop.host, hop.port), _HOP_TIMEOUT)
    sock, status = _through_proxy(hop, hop.credentials)
    if status != 200:
        sock.close()
        raise OSError(f"the proxy answered HTTP {status}")
    return sock


def _handshake(hop: _Hop, context: ssl.SSLContext) -> tuple[bytes, list[bytes]]:
    """The server's certificate (DER) and the chain it sent, after a verified handshake."""
    sock = _open(hop)
    try:
        with context.wrap_socket(sock, server_hostname=hop.host) as tls:
            leaf = tls.getpeercert(binary_form=True) or b""
            return leaf, _chain(tls, verified=True)
    finally:
        sock.close()


def _unverified_chain(hop: _Hop) -> list[bytes]:
    """The chain the server (or whatever answers for it) sends, read without trusting it: to
    name its issuer. Nothing is sent over it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    sock = _open(hop)
    try:
        with context.wrap_socket(sock, server_hostname=hop.host) as tls:
            chain = _chain(tls, verified=False)
            leaf = tls.getpeercert(binary_form=True)
            return chain or ([leaf] if leaf else [])
    finally:
        sock.close()


def _chain(tls: ssl.SSLSocket, *, verified: bool) -> list[bytes]:
    inner: Any = getattr(tls, "_sslobj", None)
    name = "get_verified_chain" if verified else "get_unverified_chain"
    getter = getattr(tls, name, None) or getattr(inner, name, None)
    if getter is None:
        return []
    try:
        return [ssl.PEM_cert_to_DER_cert(c.public_bytes()) for c in getter() or []]
    except (ssl.SSLError, ValueError, AttributeError):
        return []


async def _tls(hop: _Hop, config: Config) -> Check:
    if hop.scheme != "https":
        return Check("tls", WARN, "not encrypted: the server URL is http://", _HTTP_REMEDY)
    if hop.broken:
        return _not_tried("tls", hop)
    try:
        context = http.tls_context(config.stream.ca_bundle)
        leaf, chain = await asyncio.to_thread(_handshake, hop, context)
    except ssl.SSLCertVerificationError as exc:
        hop.broken = "tls"
        return await _untrusted(hop, exc)
    except (OSError, ssl.SSLError, ConfigError) as exc:
        hop.broken = "tls"
        return Check(
            "tls",
            FAIL,
            f"the TLS handshake with {hop.host}:{hop.port} failed ({exc})",
            "Check that the server URL's port speaks HTTPS; ask IT.",
        )
    source = await _accepted_by(hop, config)
    names = [_describe(c) for c in (chain or [leaf])]
    days = _days_left(leaf)
    detail = f"chain: {' ← '.join(names)}; accepted by {source}; expires in {days} days"
    if days < EXPIRY_WARN_DAYS:
        return Check(
            "tls", WARN, detail, "The server's certificate expires soon: tell its administrator."
        )
    return Check("tls", OK, detail)


async def _accepted_by(hop: _Hop, config: Config) -> str:
    for name, context in http.trust_sources(config.stream.ca_bundle):
        try:
            await asyncio.to_thread(_handshake, hop, context)
        except (OSError, ssl.SSLError):
            continue
        return name
    return "the trust store and CA bundle together"


async def _untrusted(hop: _Hop, exc: ssl.SSLCertVerificationError) -> Check:
    why = exc.verify_message or str(exc)
    try:
        chain = await asyncio.to_thread(_unverified_chain, hop)
    except (OSError, ssl.SSLError):
        chain = []
    if not chain:
        return Check(
            "tls",
            FAIL,
            f"the server's certificate is not trusted ({why})",
            _INSPECTION_REMEDY,
        )
    leaf_issuer = _issuer(chain[0])
    top = chain[-1]
    names = [_describe(c) for c in chain]
    return Check(
        "tls",
        FAIL,
        f"the certificate of {hop.host} is not trusted ({why}): it was issued by "
        f"{leaf_issuer!r} (chain sent: {' ← '.join(names)}; its root: {_issuer(top)!r}). "
        "Neither the operating system's trust store nor stream.ca_bundle holds that issuer.",
        f"If {leaf_issuer!r} is your organisation's, your organisation inspects TLS: IT must "
        "install its root certificate on this computer (or set stream.ca_bundle to it). "
        "Otherwise something on the way is impersonating the server: do not go on.",
    )


def _certificate(der: bytes) -> Any:
    from cryptography import x509

    return x509.load_der_x509_certificate(der)


def _name(value: Any) -> str:
    from cryptography.x509.oid import NameOID

    common = value.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(common[0].value) if common else value.rfc4514_string()


def _issuer(der: bytes) -> str:
    try:
        return _name(_certificate(der).issuer)
    except ValueError:
        return "(unreadable)"


def _describe(der: bytes) -> str:
    try:
        cert = _certificate(der)
        return f"{_name(cert.subject)} (issued by {_name(cert.issuer)})"
    except ValueError:
        return "(unreadable certificate)"


def _days_left(der: bytes) -> int:
    try:
        end = _certificate(der).not_valid_after_utc
    except ValueError:
        return 0
    return int((end - datetime.datetime.now(datetime.UTC)).days)


async def _server(hop: _Hop, config: Config) -> Check:
    if hop.broken:
        return _not_tried("server", hop)
    url = config.server_url.strip()
    try:
        async with http.make_client(config.stream, read_timeout=_HOP_TIMEOUT) as client:
            response = await http.send(client, client.build_request("GET", url), stream=True)
            await response.aclose()
    except ProxyAuthRequired as exc:
        hop.broken = "server"
        return Check("server", FAIL, str(exc), _PROXY_LOGIN_REMEDY)
    except CertificateError as exc:
        hop.broken = "server"
        return Check("server", FAIL, str(exc), _INSPECTION_REMEDY)
    except (TrayNotifierError, ConfigError) as exc:
        hop.broken = "server"
        return Check("server", FAIL, str(exc), "Check the server URL and the network.")
    date = response.headers.get("date")
    if date:
        try:
            hop.server_date = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            hop.server_date = None
    status = response.status_code
    detail = f"{http._origin_text(response.url)} answered HTTP {status}"
    if status == 407:
        hop.broken = "server"
        return Check("server", FAIL, detail + " (proxy credentials)", _PROXY_LOGIN_REMEDY)
    if status >= 500:
        return Check(
            "server", WARN, detail, "The server (or a gateway) failed: tell its administrator."
        )
    return Check("server", OK, detail)


def _clock(hop: _Hop, clock: Callable[[], float]) -> Check:
    if hop.server_date is None:
        if hop.broken:
            return _not_tried("clock", hop)
        return Check("clock", WARN, "the server sent no Date: the clock was not compared")
    offset = clock() - hop.server_date
    ahead = "ahead of" if offset > 0 else "behind"
    detail = f"this computer's clock is {abs(offset):.0f} s {ahead} the server's"
    if abs(offset) >= CLOCK_LIMIT:
        return Check(
            "clock",
            FAIL,
            detail,
            "Logins expire early or look invalid: set the clock right (turn on automatic "
            "time, NTP).",
        )
    if abs(offset) >= CLOCK_LIMIT / 5:
        return Check("clock", WARN, detail, "Turn on automatic time (NTP).")
    return Check("clock", OK, detail)


def _login(config: Config, secrets: SecretStore) -> Check:
    if not (config.server_url and config.username):
        return Check(
            "login",
            WARN,
            "no user is set: nobody is logged in",
            "Log in from the tray, or: python -m app login --password-stdin",
        )
    try:
        stored = secrets.get(login_key(config.server_url, config.username)) is not None
    except SecretStoreUnavailable as exc:
        return Check("login", FAIL, f"the stored login cannot be read: {exc}", _KEYRING_REMEDY)
    if not stored:
        return Check(
            "login",
            WARN,
            f"no login is stored for {config.username} at {config.server_url}",
            "Log in from the tray, or: python -m app login --password-stdin",
        )
    return Check("login", OK, f"a login is stored for {config.username}")


async def _stream(
    hop: _Hop, config: Config, secrets: SecretStore, login: Check, wait: float
) -> Check:
    if hop.broken:
        return _not_tried("stream", hop)
    if login.status != OK:
        return Check("stream", WARN, "not tried: no stored login", login.remedy)
    session = AuthSession(
        server_url=config.server_url,
        username=config.username,
        endpoints=config.endpoints,
        secrets=secrets,
        settings=config.stream,
        profile=config.auth,
    )
    proxy = hop.route.proxy if hop.route else None
    try:
        token = await session.access_token()
        client = http.make_client(config.stream, read_timeout=wait)
        async with client:
            started = time.monotonic()
            request = client.build_request(
                "GET",
                session.stream_url(),
                headers={
                    "Accept": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "Authorization": f"Bearer {token}",
                },
            )
            response = await http.send(client, request, stream=True)
            try:
                return await _first_byte(response, started, wait, proxy)
            finally:
                await response.aclose()
    except LoginRequired as exc:
        return Check("stream", WARN, f"not tried: {exc}", "Log in again.")
    except ProxyAuthRequired as exc:
        return Check("stream", FAIL, str(exc), _PROXY_LOGIN_REMEDY)
    except (TrayNotifierError, ConfigError) as exc:
        return Check("stream", FAIL, str(exc), "Check the server URL and the network.")
    finally:
        await session.aclose()


async def _first_byte(
    response: httpx.Response, started: float, wait: float, proxy: str | None
) -> Check:
    status = response.status_code
    if status == 401:
        return Check("stream", WARN, "the server refused the stored login (HTTP 401)", "Log in.")
    if status != 200:
        return Check("stream", FAIL, f"the stream answered HTTP {status}", _STREAM_REMEDY)
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "text/event-stream":
        return Check(
            "stream",
            FAIL,
            f"the stream answered {media or 'no Content-Type'}, not text/event-stream: a proxy "
            "or login page is in the way",
            _STREAM_REMEDY,
        )
    headers_after = time.monotonic() - started
    try:
        async with asyncio.timeout(wait):
            async for chunk in response.aiter_raw():
                if chunk:
                    break
    except (TimeoutError, httpx.ReadTimeout):
        via = f"the proxy {shown_url(proxy)}" if proxy else "something on the way"
        return Check(
            "stream",
            FAIL,
            f"the stream's headers came after {headers_after:.1f} s but no byte of it within "
            f"{wait:g} s: {via} holds the stream back (buffering it)",
            f"IT must let the stream through unbuffered: {via} must not buffer or scan "
            "text/event-stream answers (docs/network.md).",
        )
    except httpx.HTTPError as exc:
        return Check("stream", FAIL, f"the stream broke ({type(exc).__name__})", _STREAM_REMEDY)
    first = time.monotonic() - started
    through = f" through the proxy {shown_url(proxy)}" if proxy else ""
    return Check("stream", OK, f"first byte after {first * 1000:.0f} ms{through}")


def _keyring(secrets: SecretStore) -> Check:
    try:
        secrets.get(_PROBE_KEY)
    except SecretStoreUnavailable as exc:
        return Check("keyring", FAIL, str(exc), _KEYRING_REMEDY)
    return Check("keyring", OK, "the system keyring answers")


def notification_service() -> Check:
    """The desktop's notification service: on Linux the freedesktop one on the session bus
    (its name, and whether it shows actions: Open, Acknowledge)."""
    if sys.platform != "linux":
        return Check("notifications", OK, "the system's own notifications")
    try:
        from jeepney import DBusAddress, new_method_call
        from jeepney.io.blocking import open_dbus_connection
    except ImportError:
        return Check("notifications", WARN, "no D-Bus library: cannot check", "")
    address = DBusAddress(
        "/org/freedesktop/Notifications",
        bus_name="org.freedesktop.Notifications",
        interface="org.freedesktop.Notifications",
    )
    try:
        with open_dbus_connection(bus="SESSION") as bus:
            info = bus.send_and_get_reply(
                new_method_call(address, "GetServerInformation"), timeout=5
            )
            caps = bus.send_and_get_reply(new_method_call(address, "GetCapabilities"), timeout=5)
    except Exception as exc:  # noqa: BLE001 - no bus, no service: all say the same
        return Check(
            "notifications",
            WARN,
            f"no notification service on the session bus ({type(exc).__name__})",
            "Toasts show in the tray's own window; for native ones, run the desktop's "
            "notification service (GNOME, KDE, dunst...).",
        )
    name = str(info.body[0]) if info.body else "unknown"
    capabilities = [str(c) for c in (caps.body[0] if caps.body else [])]
    if "actions" not in capabilities:
        return Check(
            "notifications",
            WARN,
            f"{name} shows notifications without actions (no Open or Acknowledge buttons)",
            "Urgent announcements still open their own window to acknowledge.",
        )
    return Check("notifications", OK, f"{name}, with actions")


def _not_tried(name: str, hop: _Hop) -> Check:
    return Check(name, WARN, f"not tried: the {hop.broken} check failed first")


_HTTP_REMEDY = "Use the server's https:// address unless IT says otherwise."
_INSPECTION_REMEDY = (
    "If your organisation inspects TLS, IT must install its root certificate on this "
    "computer (or set stream.ca_bundle to it)."
)
_PROXY_LOGIN_REMEDY = (
    "Store the proxy credentials: python -m app proxy-login --user NAME --password-stdin"
)
_KEYRING_REMEDY = (
    "Start or unlock the desktop's keyring (GNOME Keyring, KWallet, Windows Credential "
    "Manager, macOS Keychain)."
)
_STREAM_REMEDY = "Check the server URL; ask IT whether a proxy rewrites or blocks the stream."
