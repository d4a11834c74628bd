"""The answer of the provider's sign-in page (RFC 6749 4.1.2, RFC 8252 7.3): the tray's
loopback listener that receives the redirect, and the provider's error codes put in words.

:class:`LoopbackListener` listens on ``127.0.0.1`` at the first free port of ``redirect_ports``
for ``/callback``; :func:`callback_error` words an ``error`` answer (of the redirect, and of the
token endpoint, read by :mod:`app.core.oidc`). Every page it shows is plain text, in English and
Simplified Chinese: nothing of the query ever becomes markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app.core.config.values import parse_ports
from app.core.errors import ProtocolError, ProviderError

log = logging.getLogger(__name__)

CALLBACK_PATH = "/callback"
LOOPBACK_HOST = "127.0.0.1"
_HEAD_LIMIT = 16 * 1024  # bytes of a callback request's line and headers
_HEAD_TIMEOUT = 10.0  # seconds a browser connection may take to send its request
_REASON_LIMIT = 300  # characters of a provider's words kept


_DONE_PAGE = (
    "You are signed in to Tray Notifier. You may close this window.\n\n"
    "您已登录 Tray Notifier。现在可以关闭此窗口。\n"
)
_IGNORED_PAGE = (
    "This answer does not belong to the sign-in in progress: it was ignored.\n\n"
    "此应答不属于正在进行的登录，已忽略。\n"
)
_FINISHED_PAGE = (
    "This sign-in has already ended. You may close this window.\n\n"
    "此次登录已经结束。现在可以关闭此窗口。\n"
)
_NOT_FOUND_PAGE = "Not found.\n\n未找到。\n"


def _failed_page(reason: str) -> str:
    return (
        f"The sign-in did not finish: {reason}\nYou may close this window.\n\n"
        f"登录未完成：{reason}\n现在可以关闭此窗口。\n"
    )


class LoopbackListener:
    """The redirect target of a browser sign-in: an HTTP listener on ``127.0.0.1`` (RFC 8252)
    at the first free port of ``ports`` (:func:`parse_ports`).

    :meth:`code` waits for the callback whose ``state`` is this sign-in's: a request with a
    wrong or missing ``state`` is answered with a short page and ignored; one with ``error``
    ends the wait with :class:`ProviderError`. Every page is plain text (``nosniff``): nothing
    of the query becomes markup. Use it as an async context manager (closed on the way out).
    """

    def __init__(self, *, state: str, issuer: str, ports: str = "0") -> None:
        self._state = state.encode()
        self._issuer = issuer
        self._ports = parse_ports(ports)
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._result: asyncio.Future[str] | None = None
        self.port = 0

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.port}{CALLBACK_PATH}"

    async def __aenter__(self) -> LoopbackListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Listen on the first free port of the range; ProtocolError when none is free."""
        self._result = asyncio.get_running_loop().create_future()
        last: OSError | None = None
        for port in self._ports:
            try:
                self._server = await asyncio.start_server(
                    self._serve, LOOPBACK_HOST, port, limit=_HEAD_LIMIT
                )
            except OSError as exc:
                last = exc
                log.debug("port %d is taken: %s", port, exc)
                continue
            self.port = int(self._server.sockets[0].getsockname()[1])
            log.info("waiting for the sign-in's redirect on %s", self.redirect_uri)
            return
        raise ProtocolError(
            f"no free port on {LOOPBACK_HOST} for the sign-in's redirect among "
            f"{_ports_text(self._ports)} ({last}): close the program that holds them, or ask "
            "IT about [auth] redirect_ports."
        )

    async def code(self) -> str:
        """The authorization code of this sign-in's callback; ProviderError when the provider
        answered with an error. Cancel the caller (or bound it) to stop waiting."""
        assert self._result is not None, "start() first"
        return await asyncio.shield(self._result)

    async def aclose(self) -> None:
        server, self._server = self._server, None
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        if server is not None:
            server.close()
            await server.wait_closed()
        if self._result is not None and not self._result.done():
            self._result.cancel()
        elif self._result is not None and not self._result.cancelled():
            self._result.exception()  # retrieved: never "exception was never retrieved"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            status, page = self._answer(head)
            body = page.encode("utf-8")
            writer.write(
                (
                    f"HTTP/1.1 {status}\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    "Cache-Control: no-store\r\n"
                    "X-Content-Type-Options: nosniff\r\n"
                    "Referrer-Policy: no-referrer\r\n"
                    "Connection: close\r\n\r\n"
                ).encode("ascii")
                + body
            )
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            log.debug("a connection to the sign-in's listener failed: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError, asyncio.CancelledError):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    def _answer(self, head: bytes) -> tuple[str, str]:
        """The status line's tail and the page for one request; settles the wait when it is
        this sign-in's callback."""
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            return "405 Method Not Allowed", _NOT_FOUND_PAGE
        target = urlsplit(parts[1])
        if target.path != CALLBACK_PATH:
            return "404 Not Found", _NOT_FOUND_PAGE
        query = parse_qs(target.query, keep_blank_values=True)

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[0] if values and len(values) == 1 else None

        result = self._result
        if result is None or result.done():
            return "200 OK", _FINISHED_PAGE
        state = one("state")
        if state is None or not hmac.compare_digest(state.encode(), self._state):
            log.warning("a sign-in callback with a wrong or missing state was ignored")
            return "400 Bad Request", _IGNORED_PAGE
        iss = one("iss")  # RFC 9207: the provider that answered, when it says
        if iss is not None and iss != self._issuer:
            error = ProviderError(
                "The sign-in's answer came from another identity provider than the one asked: "
                "it was refused.",
                reason="the answer came from another identity provider",
            )
            result.set_exception(error)
            return "400 Bad Request", _failed_page(error.reason)
        if one("error") is not None:
            error = callback_error(one("error") or "", one("error_description") or "")
            result.set_exception(error)
            return "200 OK", _failed_page(error.reason)
        code = one("code")
        if not code:
            error = ProviderError(
                "The identity provider's answer held no authorization code.",
                reason="the provider's answer held no code",
            )
            result.set_exception(error)
            return "400 Bad Request", _failed_page(error.reason)
        result.set_result(code)
        return "200 OK", _DONE_PAGE


def _ports_text(ports: range) -> str:
    if ports == range(0, 1):
        return "any port"
    if len(ports) == 1:
        return f"port {ports[0]}"
    return f"ports {ports[0]}-{ports[-1]}"


def callback_error(error: str, description: str) -> ProviderError:
    """The ProviderError of an ``error`` answer (the callback, the token endpoint)."""
    reason = clean_words(description) or _ERROR_WORDS.get(error, "") or "it gave no reason"
    code = clean_words(error)
    if code and code not in reason:
        reason = f"{reason} ({code})"
    return ProviderError(f"Your organisation's sign-in did not succeed: {reason}.", reason=reason)


_ERROR_WORDS = {
    "access_denied": "access was denied",
    "invalid_grant": "the sign-in is no longer valid",
    "invalid_client": "this program is not registered with the identity provider",
    "unauthorized_client": "this program may not sign in this way",
    "invalid_scope": "a scope asked for is not known to the identity provider",
    "login_required": "a sign-in at the identity provider is needed",
    "consent_required": "consent at the identity provider is needed",
    "server_error": "the identity provider failed",
    "temporarily_unavailable": "the identity provider is unavailable for now",
}


def clean_words(text: str) -> str:
    """Someone else's words, on one line and not too long (for messages and pages)."""
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text[:_REASON_LIMIT] + ("…" if len(text) > _REASON_LIMIT else "")
