"""The one place that builds HTTP clients and follows redirects.

Every client: timeouts on connect, read, write and pool; TLS verification always on, against
the operating system's trust store (:func:`tls_context`) plus an optional CA bundle of a
private certificate authority; proxies as ``[network]`` says (:mod:`app.core.proxy`: one
decision per destination, with the proxy's Basic credentials from the keyring, a 407 becoming
ProxyAuthRequired), the process's one policy set by :func:`use_network`; redirects never followed
by httpx, but by :func:`send`, which never lets a secret leave the origin (scheme, host and
port) a request was meant for: the headers that carry one (:data:`SECRET_HEADERS`) are dropped
as soon as a redirect leaves it, and a request body (a password, a refresh token) is never sent
to another origin: a 307/308 there is refused with a ProtocolError.

Ordinary (non-stream) calls go through :func:`call`, which reads at most
:data:`MAX_REPLY_BYTES` of the answer's body, decoded: a huge answer, or a small gzip one that
inflates to gigabytes, is refused with ReplyTooLarge before it can fill the memory.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import ssl
import sys
import threading
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import httpx

from app import APP_ID, __version__
from app.core import network_policy, pointer
from app.core.config import NetworkSettings, StreamSettings
from app.core.errors import (
    CertificateError,
    ConfigError,
    ProtocolError,
    ProxyAuthRequired,
    ProxyCredentialsRefused,
    ReplyTooLarge,
    ServerUnreachable,
    TrayNotifierError,
)
from app.core.proxy import (
    ProxyCredentials,
    ProxyResolver,
    Route,
    os_proxy_settings,
    read_credentials,
    shown_url,
    wpad_urls,
)
from app.core.secrets import SecretStore, SecretStoreUnavailable

log = logging.getLogger(__name__)

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
SECRET_HEADERS = ("authorization", "cookie", "proxy-authorization")
MAX_REDIRECTS = 10
REQUEST_TIMEOUT = 20.0  # read timeout of ordinary (non-stream) calls
USER_AGENT = f"{APP_ID}/{__version__}"
#: the most of an ordinary answer's body that is read, decoded: tokens, an id, a refusal's
#: words; what is larger is not an announcement server's answer
MAX_REPLY_BYTES = 1024 * 1024
#: the content codings :func:`call` asks for: the ones it decodes itself, bounded
REPLY_ENCODINGS = "gzip, deflate"
_RAW_CHUNK = 16 * 1024  # bytes of the body (as sent) decoded at a time
#: TCP keepalive on every connection: a backend that sends nothing for hours (no SSE
#: keepalive) keeps its stream, and a dead peer is still noticed within about two minutes
KEEPALIVE_IDLE = 60  # seconds of silence before the first probe
KEEPALIVE_INTERVAL = 15  # seconds between probes
KEEPALIVE_PROBES = 4  # unanswered probes before the connection counts as dead


def keepalive_options() -> list[tuple[int, int, int]]:
    """``setsockopt`` arguments that turn TCP keepalive on with short times, for the constants
    this platform has (Linux and Windows: TCP_KEEPIDLE; macOS: TCP_KEEPALIVE)."""
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    for name, value in (
        (idle, KEEPALIVE_IDLE),
        (getattr(socket, "TCP_KEEPINTVL", None), KEEPALIVE_INTERVAL),
        (getattr(socket, "TCP_KEEPCNT", None), KEEPALIVE_PROBES),
    ):
        if name is not None:
            options.append((socket.IPPROTO_TCP, name, value))
    return options


@dataclass(frozen=True, slots=True)
class Reply:
    """A server's answer to an ordinary (non-stream) call, read in full: what callers above the
    core get instead of an ``httpx.Response``. ``json`` is the decoded body, or None when the
    body is empty or not JSON."""

    status: int
    json: Any = None

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300

    def refused(self, code_pointer: str = "/code") -> bool:
        """Whether the server refused the token: HTTP 401, or an HTTP 200 whose JSON says 401
        at ``code_pointer`` (``{"code": 401, "msg": ...}``, as Spring/RuoYi security filters
        answer an expired token). The one reading of a refusal, for every authorised call."""
        if self.status == 401:
            return True
        if self.status != 200 or self.json is None:
            return False
        return pointer.resolve(self.json, code_pointer) in (401, "401")

    def reason(self) -> str | None:
        """The server's own words for a refusal (the ``error`` or ``msg`` of a JSON object)."""
        if isinstance(self.json, dict):
            for key in ("error", "msg", "message"):
                text = self.json.get(key)
                if isinstance(text, str) and text:
                    return text
        return None

    @classmethod
    def parse(cls, status: int, body: bytes) -> Reply:
        """The Reply of status ``status`` with the (decoded) ``body``."""
        try:
            value = json.loads(body) if body else None
        except (ValueError, RecursionError):  # not JSON (UnicodeDecodeError is a ValueError)
            value = None
        return cls(status, value)


def make_client(
    settings: StreamSettings,
    *,
    read_timeout: float | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient with our timeouts, TLS policy, proxy policy and TCP keepalive.

    ``read_timeout`` defaults to the heartbeat timeout: the stream's "no byte for so long"
    (``[stream] heartbeat_timeout``: a backend without keepalives needs a long one). The
    proxy of each destination is the process's network policy's (:func:`use_network`).
    Raises ConfigError when the CA bundle cannot be read.
    """
    read = settings.heartbeat_timeout if read_timeout is None else read_timeout
    timeout = httpx.Timeout(
        connect=settings.connect_timeout, read=read, write=REQUEST_TIMEOUT, pool=REQUEST_TIMEOUT
    )
    verify = tls_context(settings.ca_bundle)
    if transport is None:
        transport = RoutedTransport(network(), verify=verify)
    return httpx.AsyncClient(
        timeout=timeout,
        verify=verify,
        trust_env=False,  # the proxies are the network policy's (it reads the environment)
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        transport=transport,
    )


# ---------------------------------------------------------------- proxies


#: how long fetching a PAC file may take (connect and read): a tray must not hang on it
PAC_TIMEOUT = 10.0
#: the largest PAC file read (large organisations' files are a few hundred KiB)
MAX_PAC_BYTES = 4 * 1024 * 1024


class Network:
    """The process's network policy: each destination's route (:class:`ProxyResolver`) and
    the proxy's Basic credentials from ``secrets`` (none without it)."""

    def __init__(
        self,
        settings: NetworkSettings,
        *,
        secrets: SecretStore | None = None,
        environ: Any = None,
        os_settings: Any = os_proxy_settings,
        wpad: Any = wpad_urls,
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.resolver = ProxyResolver(
            settings, fetch=fetch_pac, environ=environ, os_settings=os_settings, wpad=wpad
        )

    async def route(self, url: httpx.URL) -> Route:
        scheme, host, port = origin(url)
        return await self.resolver.route(scheme, host, port or 0)

    async def credentials(self) -> ProxyCredentials | None:
        """The stored proxy credentials, or None (none stored, no keyring: logged)."""
        if self.secrets is None:
            return None
        try:
            return await asyncio.to_thread(read_credentials, self.secrets)
        except SecretStoreUnavailable as exc:
            log.warning("the proxy credentials cannot be read: %s", exc)
            return None


_network: Network | None = None
_network_generation = -1
_network_lock = threading.Lock()


def use_network(
    settings: NetworkSettings, *, secrets: SecretStore | None = None, **seams: Any
) -> Network:
    """Set the process's network policy (:mod:`app.core.network_policy`) and return it: every
    client made from now on routes by it. ``seams``: ``environ``, ``os_settings``, ``wpad``
    (tests)."""
    network_policy.use(settings, secrets=secrets, **seams)
    return network()


def network() -> Network:
    """The process's network policy (the defaults, no credentials, until it is set)."""
    global _network, _network_generation
    policy = network_policy.current()
    with _network_lock:
        if _network is None or _network_generation != policy.generation:
            _network = Network(policy.settings, secrets=policy.secrets, **policy.seams)
            _network_generation = policy.generation
        return _network


class RoutedTransport(httpx.AsyncBaseTransport):
    """Sends each request directly or through its destination's proxy (the route decided
    once per destination), with ``verify`` for the server's TLS (inside the proxy's CONNECT
    tunnel too) and TCP keepalive on every connection. A proxy's 407 raises
    ProxyAuthRequired; a proxy that cannot be reached, or cannot reach the server, raises
    ServerUnreachable naming it."""

    def __init__(self, net: Network, *, verify: ssl.SSLContext) -> None:
        self._net = net
        self._verify = verify
        self._direct: httpx.AsyncHTTPTransport | None = None
        self._via: dict[str, tuple[httpx.AsyncHTTPTransport, bool]] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        route = await self._net.route(request.url)
        if route.proxy is None:
            if self._direct is None:
                self._direct = httpx.AsyncHTTPTransport(
                    verify=self._verify, socket_options=keepalive_options()
                )
            return await self._direct.handle_async_request(request)
        transport, with_credentials = await self._proxied(route.proxy)
        try:
            response = await transport.handle_async_request(request)
        except httpx.ProxyError as exc:
            raise _proxy_failure(exc, route, request.url, with_credentials) from exc
        except httpx.ConnectError as exc:
            if _is_certificate_failure(exc):
                raise
            raise ServerUnreachable(
                f"cannot reach the proxy {shown_url(route.proxy)} ({_root(exc)}), chosen by "
                f"{route.reason}: check the network connection, or ask IT whether the proxy "
                "moved. `python -m app doctor` walks every hop."
            ) from exc
        if response.status_code == 407:  # a plain http:// request, forwarded by the proxy
            await response.aclose()
            raise _proxy_auth_error(route, with_credentials)
        return response

    async def _proxied(self, proxy_url: str) -> tuple[httpx.AsyncHTTPTransport, bool]:
        known = self._via.get(proxy_url)
        if known is None:
            credentials = await self._net.credentials()
            auth = (credentials.user, credentials.password) if credentials else None
            transport = httpx.AsyncHTTPTransport(
                verify=self._verify,
                proxy=httpx.Proxy(proxy_url, auth=auth),
                socket_options=keepalive_options(),
            )
            known = self._via.setdefault(proxy_url, (transport, credentials is not None))
        return known

    async def aclose(self) -> None:
        transports = [t for t, _ in self._via.values()]
        if self._direct is not None:
            transports.append(self._direct)
        for transport in transports:
            await transport.aclose()


def _proxy_auth_error(route: Route, with_credentials: bool) -> ProxyAuthRequired:
    proxy = shown_url(route.proxy or "")  # HTTPS_PROXY may hold a user name and password
    if with_credentials:
        return ProxyCredentialsRefused(
            f"the proxy {proxy} refused the stored proxy credentials (HTTP 407): store "
            "the right ones with `python -m app proxy-login --user NAME --password-stdin`.",
            proxy=proxy,
        )
    return ProxyAuthRequired(
        f"the proxy {proxy} asks for credentials (HTTP 407): store them with "
        "`python -m app proxy-login --user NAME --password-stdin` (the keyring keeps them).",
        proxy=proxy,
    )


def _proxy_failure(
    exc: httpx.ProxyError, route: Route, url: httpx.URL, with_credentials: bool
) -> TrayNotifierError:
    text = str(exc)
    if text.startswith("407"):
        return _proxy_auth_error(route, with_credentials)
    return ServerUnreachable(
        f"the proxy {shown_url(route.proxy or '')} (chosen by {route.reason}) could not open "
        f"the way to {_origin_text(url)} ({text}): check the server URL, or ask IT whether the "
        "proxy lets it through."
    )


async def fetch_pac(url: str) -> str:
    """The text of the PAC file at ``url`` (http, https or file), fetched directly (never
    through a proxy), with the process's TLS context; at most :data:`MAX_PAC_BYTES`."""
    if url.startswith("file:"):
        path = Path(urllib.request.url2pathname(httpx.URL(url).path))
        data = await asyncio.to_thread(_read_small, path)
        return data.decode("utf-8", "replace")
    timeout = httpx.Timeout(PAC_TIMEOUT)
    async with httpx.AsyncClient(
        timeout=timeout,
        verify=tls_context(),
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    ) as client:
        response = await send(client, client.build_request("GET", url), stream=True)
        try:
            if response.status_code != 200:
                raise ProtocolError(f"HTTP {response.status_code}")
            body = await read_bounded(response, MAX_PAC_BYTES)
        except httpx.TransportError as exc:
            raise transport_error(exc, response.url) from exc
        finally:
            await response.aclose()
    return body.decode("utf-8", "replace")


def _read_small(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_PAC_BYTES + 1)
    if len(data) > MAX_PAC_BYTES:
        raise ValueError(f"larger than {_size(MAX_PAC_BYTES)}")
    return data


# ---------------------------------------------------------------- trust

#: where the OS keeps its roots when OpenSSL's compiled-in paths hold none (another
#: distribution's OpenSSL, a frozen binary): the same candidates truststore and pip use
CA_FILE_CANDIDATES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora, RHEL
    "/etc/pki/tls/cert.pem",  # older Fedora, RHEL, CentOS
    "/etc/ssl/cert.pem",  # Alpine, Arch, BSD
    "/etc/ssl/ca-bundle.pem",  # SUSE
)
#: the OS's own verifier (truststore) where the roots are not files OpenSSL reads
PLATFORM_VERIFIER = sys.platform in ("win32", "darwin")


class _RootsAtFirstUse(ssl.SSLContext):
    """A TLS client context (certificates and host names always verified) whose system trust
    roots are loaded just before its first handshake: a tray on a plain ``http://`` server
    (the embedded demo, a loopback one) never pays for them."""

    _load: threading.Lock
    _pending: bool
    roots_from: str

    def load_roots_now(self) -> None:
        with self._load:
            if self._pending:
                self._pending = False
                self.roots_from = load_system_roots(self)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_roots_now()
        return super().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_roots_now()
        return super().wrap_socket(*args, **kwargs)


def load_system_roots(context: ssl.SSLContext) -> str:
    """Load the operating system's trust roots into ``context`` (Linux and other OpenSSL
    systems): OpenSSL's default paths, which honour ``SSL_CERT_FILE`` and ``SSL_CERT_DIR``
    (what ``update-ca-certificates`` fills), else the distributions' usual files, else, on a
    system with no store at all, the public roots shipped with the program (certifi). Returns
    where they came from, in words."""
    paths = ssl.get_default_verify_paths()
    if paths.cafile or (paths.capath and _holds_hashed_certs(paths.capath)):
        context.set_default_verify_paths()
        where = [p for p in (paths.cafile, paths.capath) if p]
        return "the system's trust store (" + ", ".join(where) + ")"
    for candidate in CA_FILE_CANDIDATES:
        if Path(candidate).is_file():
            context.load_verify_locations(cafile=candidate)
            return f"the system's trust store ({candidate})"
    log.warning("no system trust store was found: using the public roots shipped with the program")
    context.load_verify_locations(cafile=certifi.where())
    return "the public roots shipped with the program (no system trust store was found)"


def _holds_hashed_certs(folder: str) -> bool:
    try:
        names = [entry.name for entry in Path(folder).iterdir()]
    except OSError:
        return False
    return any(len(n) == 10 and n[8] == "." and n[9].isdigit() for n in names)


_contexts: dict[tuple[str, str, str], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def tls_context(ca_bundle: str = "") -> ssl.SSLContext:
    """The process's one TLS client context (per CA bundle): verification always on, against
    the operating system's trust store plus ``ca_bundle`` (a PEM file; "" none). On Windows and
    macOS the OS verifies (truststore: its store and Group Policy's or profiles' roots, with
    no revocation check unless asked, so a private CA without CRLs works); elsewhere OpenSSL
    reads the system's roots (:func:`load_system_roots`) at the first handshake. Shared by the
    stream, login, receipts, publish and the self-test. Raises ConfigError when ``ca_bundle``
    cannot be read."""
    key = (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""), ca_bundle)
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _new_context(ca_bundle)
            _contexts[key] = context
    return context


def default_tls_context() -> ssl.SSLContext:
    """The context without a CA bundle: the operating system's trust store only."""
    return tls_context("")


def _new_context(ca_bundle: str) -> ssl.SSLContext:
    context: ssl.SSLContext
    if PLATFORM_VERIFIER:
        import truststore

        context = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        lazy = _RootsAtFirstUse(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
        lazy._load = threading.Lock()
        lazy._pending = True
        lazy.roots_from = ""
        context = lazy
    keylog = os.environ.get("SSLKEYLOGFILE")  # as ssl.create_default_context does
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    if ca_bundle:
        add_ca_bundle(context, ca_bundle)
    return context


def add_ca_bundle(context: ssl.SSLContext, ca_bundle: str) -> None:
    """Add the PEM file ``ca_bundle`` to ``context``'s roots; ConfigError saying what to do."""
    path = Path(ca_bundle).expanduser()
    try:
        context.load_verify_locations(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot use the CA bundle {path}: {exc}. Set ca_bundle to a PEM file of your "
            "organisation's certificate authority, or leave it empty."
        ) from exc


def _verify(ca_bundle: str) -> ssl.SSLContext:
    return tls_context(ca_bundle)


def trust_sources(ca_bundle: str) -> list[tuple[str, ssl.SSLContext]]:
    """Each trust source alone, as a context of its own, for the doctor to say which one
    accepted a chain: the operating system's store, then ``stream.ca_bundle`` (when set)."""
    if PLATFORM_VERIFIER:
        import truststore

        system: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        where = "the operating system's trust store"
    else:
        system = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        where = load_system_roots(system)
    sources = [(where, system)]
    if ca_bundle:
        bundle = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        add_ca_bundle(bundle, ca_bundle)
        sources.append((f"stream.ca_bundle ({Path(ca_bundle).expanduser()})", bundle))
    return sources


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and effective port: what must match for a token to be carried along."""
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, port


async def send(
    client: httpx.AsyncClient, request: httpx.Request, *, stream: bool = False
) -> httpx.Response:
    """Send, following up to MAX_REDIRECTS redirects ourselves.

    301/302/303 turn a non-GET request into a body-less GET (as browsers do); 307/308 repeat it
    as it was. Once a redirect leaves the first origin, ``Authorization``, ``Cookie`` and
    ``Proxy-Authorization`` are dropped for good, and a 307/308 of a request with a body to
    another origin raises ProtocolError (the body is never sent there). Network failures become
    ServerUnreachable or CertificateError; the caller closes the returned (possibly streaming)
    response.
    """
    first = origin(request.url)
    for _ in range(MAX_REDIRECTS + 1):
        response = await _send_once(client, request, stream=stream)
        if response.status_code not in REDIRECT_CODES:
            return response
        location = response.headers.get("location")
        await response.aclose()
        if not location:
            raise ProtocolError(
                f"the server answered HTTP {response.status_code} without a Location: "
                "check the server URL"
            )
        request = _redirected(request, response.status_code, response.url.join(location), first)
    raise ProtocolError(f"more than {MAX_REDIRECTS} redirects: check the server URL")


async def call(
    client: httpx.AsyncClient, request: httpx.Request, *, limit: int = MAX_REPLY_BYTES
) -> Reply:
    """Send an ordinary (non-stream) request as :func:`send` does and read its answer: at most
    ``limit`` bytes of body once decoded (gzip, deflate), read and decoded a piece at a time.

    Raises ReplyTooLarge as soon as the body passes ``limit`` (the connection is closed, the
    rest never read nor inflated), ProtocolError for a body that cannot be decoded, and what
    :func:`send` raises.
    """
    request.headers["Accept-Encoding"] = REPLY_ENCODINGS
    response = await send(client, request, stream=True)
    try:
        body = await read_bounded(response, limit)
    except httpx.TransportError as exc:
        raise transport_error(exc, response.url) from exc
    finally:
        await response.aclose()
    return Reply.parse(response.status_code, body)


async def read_bounded(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed ``response``, decoded, at most ``limit`` bytes: ReplyTooLarge
    past it (nothing more is read nor inflated), ProtocolError for a body that cannot be
    decoded."""
    decoder = _Decoder(response.headers.get("content-encoding", ""), response.url)
    body = bytearray()
    async for raw in response.aiter_raw(_RAW_CHUNK):
        body += decoder.decode(raw, room=limit - len(body) + 1)
        if len(body) > limit:
            raise _too_large(response.url, limit)
    body += decoder.flush()
    if len(body) > limit:
        raise _too_large(response.url, limit)
    return bytes(body)


def _too_large(url: httpx.URL, limit: int) -> ReplyTooLarge:
    return ReplyTooLarge(
        f"the answer of {_origin_text(url)}{url.path} was larger than {_size(limit)} "
        "(once decoded), more than any answer of an announcement server: it was not read. "
        "Check the server URL."
    )


def _size(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):g} MiB"
    return f"{count / 1024:g} KiB" if count >= 1024 else f"{count} bytes"


class _Decoder:
    """Decodes a body's content coding (identity, gzip or deflate) giving out no more than
    asked for at a time: a gzip bomb is never inflated beyond the room left."""

    def __init__(self, content_encoding: str, url: httpx.URL) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        self._url = url
        self._coding = codings[0] if codings else "identity"
        if len(codings) > 1 or self._coding not in ("identity", "gzip", "x-gzip", "deflate"):
            raise ProtocolError(
                f"{_origin_text(url)} answered with Content-Encoding {content_encoding!r}, "
                f"though asked for {REPLY_ENCODINGS} only: check the server URL."
            )
        gzip = self._coding in ("gzip", "x-gzip")
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        self._raw_deflate_possible = self._coding == "deflate"  # the bare kind, as httpx takes

    def decode(self, data: bytes, *, room: int) -> bytes:
        """The decoded bytes of ``data``: at most ``room`` (then the rest is not decoded)."""
        if self._coding == "identity":
            return data
        out = bytearray()
        try:
            while data and len(out) < room:
                piece = self._inflate(data, room - len(out))
                tail = self._zlib.unconsumed_tail
                if not piece and len(tail) == len(data):
                    break  # (zlib took nothing: no more to get from this input)
                out += piece
                data = tail
        except zlib.error as exc:
            raise self._undecodable(exc) from exc
        return bytes(out)

    def _inflate(self, data: bytes, most: int) -> bytes:
        if not self._raw_deflate_possible:
            return self._zlib.decompress(data, most)
        self._raw_deflate_possible = False
        try:
            return self._zlib.decompress(data, most)
        except zlib.error:  # no zlib header: a bare deflate stream
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._zlib.decompress(data, most)

    def flush(self) -> bytes:
        if self._coding == "identity":
            return b""
        try:
            return self._zlib.flush()
        except zlib.error as exc:
            raise self._undecodable(exc) from exc

    def _undecodable(self, exc: zlib.error) -> ProtocolError:
        return ProtocolError(
            f"the {self._coding} answer of {_origin_text(self._url)}{self._url.path} could not "
            f"be decoded ({exc}): check the server URL."
        )


def _redirected(
    request: httpx.Request, status: int, url: httpx.URL, first: tuple[str, str, int | None]
) -> httpx.Request:
    headers = httpx.Headers(request.headers)
    headers.pop("host", None)
    method, content = request.method, request.content
    if status in (301, 302, 303) and method not in ("GET", "HEAD"):
        method, content = "GET", b""
        for name in ("content-type", "content-length", "transfer-encoding"):
            headers.pop(name, None)
    if origin(url) != first:
        if content:
            raise ProtocolError(
                f"{_origin_text(request.url)} redirected a {method} request (HTTP {status}) to "
                f"another origin, {_origin_text(url)}; it was not followed, so its content "
                "(which may hold a password or a token) was not sent there. Check the server "
                "URL: use the address the server moved to, if you trust it, or ask its "
                "administrator about the redirect."
            )
        for name in SECRET_HEADERS:
            headers.pop(name, None)
        log.info("redirected to another origin: no credential header is sent there")
    return httpx.Request(method, url, headers=headers, content=content or None)


def _origin_text(url: httpx.URL) -> str:
    """``scheme://host:port`` of ``url``, for messages: never its path, query or user info."""
    scheme, host, port = origin(url)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"


async def _send_once(
    client: httpx.AsyncClient, request: httpx.Request, *, stream: bool
) -> httpx.Response:
    try:
        return await client.send(request, stream=stream)
    except httpx.TransportError as exc:
        raise transport_error(exc, request.url) from exc


def transport_error(exc: httpx.TransportError, url: httpx.URL) -> TrayNotifierError:
    """The user-facing error for a network failure (never showing the query or a token)."""
    where = f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"
    if _is_certificate_failure(exc):
        return CertificateError(
            f"the TLS certificate of {where} could not be verified ({_root(exc)}) against the "
            "operating system's trust store. If your organisation uses its own certificate "
            "authority (or inspects TLS), IT must install its root certificate on this "
            "computer, or set the CA bundle to its PEM file: ca_bundle in the [stream] section "
            "of the settings file; verification is never turned off. `python -m app doctor` "
            "names the certificate's issuer."
        )
    if isinstance(exc, httpx.TimeoutException):
        return ServerUnreachable(
            f"{where} did not answer in time: check the network connection and the server URL."
        )
    return ServerUnreachable(
        f"cannot reach {where} ({_root(exc)}): check the network connection and the server URL."
    )


def _is_certificate_failure(exc: BaseException) -> bool:
    chain: list[BaseException] = []
    inner: BaseException | None = exc
    while inner is not None and inner not in chain:
        chain.append(inner)
        inner = inner.__cause__ or inner.__context__
    return any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or (
        "CERTIFICATE_VERIFY_FAILED" in str(exc)
    )


def _root(exc: BaseException) -> str:
    """The innermost cause's text: "Connection refused" rather than httpx's wrapper."""
    seen = {id(exc)}
    inner = exc.__cause__ or exc.__context__
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc, inner = inner, inner.__cause__ or inner.__context__
    return str(exc) or type(exc).__name__


def in_clear(url: str) -> bool:
    """True when ``url`` is plain ``http://`` to a host that is not this computer (loopback):
    a password or token sent there can be read by anyone on the way."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if parsed.scheme != "http":
        return False
    host = parsed.host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: it may resolve anywhere
