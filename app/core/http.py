"""The one place that builds HTTP clients and follows redirects.

Every client: timeouts on connect, read, write and pool; TLS verification always on, with an
optional CA bundle of a private certificate authority added to the public roots; proxies from
the standard environment variables (``HTTPS_PROXY``, ``NO_PROXY``...); redirects never followed
by httpx, but by :func:`send`, which never lets a secret leave the origin (scheme, host and
port) a request was meant for: the headers that carry one (:data:`SECRET_HEADERS`) are dropped
as soon as a redirect leaves it, and a request body (a password, a refresh token) is never sent
to another origin: a 307/308 there is refused with a ProtocolError.

Ordinary (non-stream) calls go through :func:`call`, which reads at most
:data:`MAX_REPLY_BYTES` of the answer's body, decoded: a huge answer, or a small gzip one that
inflates to gigabytes, is refused with ReplyTooLarge before it can fill the memory.
"""

from __future__ import annotations

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
from app.core import pointer
from app.core.config import StreamSettings
from app.core.errors import (
    CertificateError,
    ConfigError,
    ProtocolError,
    ReplyTooLarge,
    ServerUnreachable,
    TrayNotifierError,
)

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
    (``[stream] heartbeat_timeout``: a backend without keepalives needs a long one). Raises
    ConfigError when the CA bundle cannot be read.
    """
    read = settings.heartbeat_timeout if read_timeout is None else read_timeout
    timeout = httpx.Timeout(
        connect=settings.connect_timeout, read=read, write=REQUEST_TIMEOUT, pool=REQUEST_TIMEOUT
    )
    verify = _verify(settings.ca_bundle)
    if transport is None and not urllib.request.getproxies():
        # (with a proxy from the environment httpx builds the proxy transports itself, and the
        # proxy's own timeouts govern the silent leg beyond it)
        transport = httpx.AsyncHTTPTransport(
            verify=verify, trust_env=True, socket_options=keepalive_options()
        )
    return httpx.AsyncClient(
        timeout=timeout,
        verify=verify,
        trust_env=True,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
        transport=transport,
    )


class _RootsAtFirstUse(ssl.SSLContext):
    """A TLS client context (certificates and host names always verified) whose trust roots
    are loaded just before its first handshake: a tray on a plain ``http://`` server (the
    embedded demo, a loopback one) never pays for them (about 20 ms and 0.7 MiB each)."""

    _load: threading.Lock
    _roots: dict[str, str] | None

    def load_roots_now(self) -> None:
        with self._load:
            roots, self._roots = self._roots, None
            if roots is not None:
                self.load_verify_locations(**roots)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        self.load_roots_now()
        return super().wrap_bio(*args, **kwargs)

    def wrap_socket(self, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self.load_roots_now()
        return super().wrap_socket(*args, **kwargs)


_default_contexts: dict[tuple[str, str], _RootsAtFirstUse] = {}
_default_lock = threading.Lock()


def default_tls_context() -> ssl.SSLContext:
    """The roots httpx's ``verify=True`` uses (``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else
    certifi), in one context the process's clients share, loaded at its first handshake."""
    cert_file = os.environ.get("SSL_CERT_FILE", "")
    cert_dir = os.environ.get("SSL_CERT_DIR", "")
    with _default_lock:
        context = _default_contexts.get((cert_file, cert_dir))
        if context is None:
            context = _RootsAtFirstUse(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
            keylog = os.environ.get("SSLKEYLOGFILE")  # as ssl.create_default_context does
            if keylog and not sys.flags.ignore_environment:
                context.keylog_filename = keylog
            context._load = threading.Lock()
            context._roots = (
                {"cafile": cert_file} if cert_file
                else {"capath": cert_dir} if cert_dir
                else {"cafile": certifi.where()}
            )  # fmt: skip
            _default_contexts[(cert_file, cert_dir)] = context
    return context


def _verify(ca_bundle: str) -> ssl.SSLContext:
    if not ca_bundle:
        return default_tls_context()
    path = Path(ca_bundle).expanduser()
    context = ssl.create_default_context(cafile=certifi.where())
    try:
        context.load_verify_locations(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot use the CA bundle {path}: {exc}. Set ca_bundle to a PEM file of your "
            "organisation's certificate authority, or leave it empty."
        ) from exc
    return context


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
            f"the TLS certificate of {where} could not be verified ({_root(exc)}). If your "
            "organisation uses its own certificate authority, set the CA bundle to its PEM "
            "file: ca_bundle in the [stream] section of the settings file; verification is "
            "never turned off."
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
