"""Holding the server up under too many connections: the fd limit, a cap on open connections,
the wait for a request, and logging that does not flood.

- :func:`raise_fd_limit`: the soft ``RLIMIT_NOFILE`` up to the hard one, at start.
- :class:`ConnectionGuard`: the protocol factory given to ``loop.create_server``. It counts
  the open connections; at the cap it first closes the oldest connection that has not started
  a request (an idle socket holds no one's work), and when every connection is busy (streams,
  requests in progress) it answers the new one ``503`` with ``Retry-After`` and closes it.
  Streams never take the last connections (:attr:`ConnectionGuard.stream_cap`): a reserve
  stays for logins, publishes and health checks, so streams alone never make every connection
  busy. It
  never refuses to accept, so the accept loop never spins on a full backlog, and the cap
  (below the fd limit) keeps ``accept()`` from ever failing with EMFILE. A connection whose
  first request has not arrived (headers complete) within ``header_timeout`` is closed;
  idle kept-alive connections are aiohttp's ``keepalive_timeout``; the body's own timeout is
  in ``app/server/bodies.py``.
- :class:`RepeatLog`: a message that repeats is logged once per interval, with a count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger(__name__)

try:  # not on Windows
    import resource
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]


def raise_fd_limit() -> int | None:
    """Raise the soft limit on open files to the hard one; returns the soft limit now (None
    where the platform has no such limit)."""
    if resource is None:  # pragma: no cover - Windows
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def default_cap(fd_limit: int | None, reserve: int) -> int:
    """The connection cap that leaves ``reserve`` descriptors (database, Redis, logs, the
    listening socket, one refused connection at a time) below the limit."""
    if fd_limit is None:
        return 10_000
    return max(fd_limit - reserve, 8)


class RepeatLog:
    """Logs a message the first time, then at most once per ``interval`` seconds per key,
    saying how many times it happened meanwhile."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = logger
        self._interval = interval
        self._clock = clock
        self._seen: dict[str, tuple[float, int]] = {}  # key -> (last logged, count since)

    def __call__(self, level: int, key: str, message: str, *args: Any) -> None:
        now = self._clock()
        last, count = self._seen.get(key, (None, 0))
        if last is not None and now - last < self._interval:
            self._seen[key] = (last, count + 1)
            return
        self._seen[key] = (now, 0)
        if count:
            message += " (%d more times in the last %.0f s)"
            args = (*args, count, now - last) if last is not None else args
        self._log.log(level, message, *args)


class RequestErrorLog(logging.Logger):
    """The logger of aiohttp's request handlers. A request that cannot be parsed (a NUL in a
    header, a line over 8 KiB, a broken chunk) is the client's fault and may come by the
    thousand: one line through the :class:`RepeatLog` (once per interval, with a count), no
    traceback and nothing of the request's bytes. Everything else is logged as aiohttp logs
    it, through its ``aiohttp.server`` logger."""

    def __init__(self, repeat_log: RepeatLog) -> None:
        super().__init__("aiohttp.server")
        self.parent = logging.getLogger("aiohttp.server")  # its level, and the handlers above
        self._repeat_log = repeat_log

    def handle(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            self._repeat_log(
                logging.INFO,
                "malformed",
                "answered %d to a malformed HTTP request (%s)",
                exc.code,
                type(exc).__name__,
            )
            return
        super().handle(record)


class _Refused(asyncio.Protocol):
    """Answers 503 with Retry-After and closes: the server is at its connection cap."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._answer)
        transport.close()

    def data_received(self, data: bytes) -> None:
        pass  # the request is not read: the answer is already on its way


class ConnectionGuard:
    """The protocol factory of one listening socket: see the module's docstring.

    It is built in two steps, because the application and the guard need each other: the
    application's handlers count their streams in the guard and its middleware marks the
    connections that are busy, so the guard is built first and handed to
    :func:`~app.server.application.create_app`; the aiohttp ``web.Server`` it makes the
    connections with exists only once an ``AppRunner`` has set that application up, and is
    given to :meth:`attach`, once, before the guard is passed to ``loop.create_server``.
    """

    def __init__(
        self,
        *,
        cap: int,
        header_timeout: float,
        retry_after: int,
        repeat_log: RepeatLog,
        request_reserve: float,
    ) -> None:
        self._server: web.Server | None = None  # attach()
        self.cap = cap
        # streams may hold all but a reserve (a share of the cap, at least 2) of the cap
        self.stream_cap = max(cap - max(2, int(cap * request_reserve)), 1)
        self.streams = 0
        self._header_timeout = header_timeout
        self._repeat_log = repeat_log
        # every connection of this socket, oldest first -> whether a request is in progress
        self._open: dict[RequestHandler, bool] = {}
        self._served: set[RequestHandler] = set()  # has had a request: keepalive rules it
        # the connections whose first request is awaited, by deadline (loop time), oldest
        # first: one timer for the oldest, not one per connection (a timer is a third of what
        # accepting a connection costs here, and a fleet reconnects by the thousand)
        self._first_due: deque[tuple[float, RequestHandler]] = deque()
        self._first_timer: asyncio.TimerHandle | None = None
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0
        body = b'{"error": "the server is at its connection limit: try again shortly"}'
        self._refusal = (
            b"HTTP/1.1 503 Service Unavailable\r\n"
            b"Content-Type: application/json\r\n"
            + f"Retry-After: {retry_after}\r\nContent-Length: {len(body)}\r\n".encode()
            + b"Connection: close\r\nCache-Control: no-store\r\n"
            b"X-Content-Type-Options: nosniff\r\n\r\n" + body
        )

    def attach(self, server: web.Server) -> None:
        """Make this socket's connections with ``server`` (the runner's, once set up), and
        forget each one when it closes. Once, before the first connection."""
        if self._server is not None:
            raise RuntimeError("this ConnectionGuard is already attached to a server")
        self._server = server
        lost = server.connection_lost

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            self._forget(handler)
            lost(handler, exc)

        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def __len__(self) -> int:
        return len(self._open)

    def __call__(self) -> asyncio.BaseProtocol:
        if len(self._open) >= self.cap and not self._evict_idle():
            self.refused += 1
            self._repeat_log(
                logging.WARNING,
                "cap",
                "at the connection cap (%d open): answered a new connection 503",
                len(self._open),
            )
            return _Refused(self._refusal)
        if self._server is None:
            raise RuntimeError("ConnectionGuard.attach(server) must come before connections")
        handler = self._server()
        self._open[handler] = False
        loop = asyncio.get_running_loop()
        due = loop.time() + self._header_timeout
        self._first_due.append((due, handler))
        if self._first_timer is None:
            self._first_timer = loop.call_at(due, self._check_first_requests, due)
        return handler

    # called by the HTTP layer when a stream starts and ends
    def open_stream(self) -> bool:
        """Count a new stream in; False (count nothing) when streams hold all they may."""
        if self.streams >= self.stream_cap:
            self._repeat_log(
                logging.WARNING,
                "stream-cap",
                "at the stream cap (%d of %d connections): answered a new stream 503, the"
                " rest stay for other requests",
                self.streams,
                self.cap,
            )
            return False
        self.streams += 1
        return True

    def close_stream(self) -> None:
        self.streams -= 1

    # called by the HTTP layer's middleware around each request
    def request_started(self, handler: Any) -> None:
        if handler in self._open:
            self._open[handler] = True
            self._served.add(handler)

    def request_ended(self, handler: Any) -> None:
        if handler in self._open:
            self._open[handler] = False

    def _forget(self, handler: RequestHandler) -> None:
        self._open.pop(handler, None)
        self._served.discard(handler)

    def _evict_idle(self) -> bool:
        """Close the oldest connection that has no request in progress; False if none."""
        for handler, busy in self._open.items():
            if not busy:
                self._forget(handler)
                if handler.transport is not None:
                    self._close(handler)
                else:  # accepted in the same burst: connected by a callback already queued
                    asyncio.get_running_loop().call_soon(self._close, handler)
                self.evicted += 1
                self._repeat_log(
                    logging.WARNING,
                    "evict",
                    "at the connection cap (%d): closed the oldest idle connection",
                    self.cap,
                )
                return True
        return False

    def _check_first_requests(self, due: float) -> None:
        """The timer of the oldest connection awaiting its first request, due at ``due``:
        check it and every other one due by now, then set the timer for the next."""
        waiting = self._first_due
        loop = asyncio.get_running_loop()
        until = max(due, loop.time())  # (a timer may run a little before its time)
        try:
            while waiting and waiting[0][0] <= until:
                self._check_first_request(waiting.popleft()[1])
        finally:
            next_due = waiting[0][0] if waiting else None
            self._first_timer = (
                loop.call_at(next_due, self._check_first_requests, next_due)
                if next_due is not None
                else None
            )

    def _check_first_request(self, handler: RequestHandler) -> None:
        if handler not in self._open or handler in self._served or self._open[handler]:
            return
        self.timed_out += 1
        self._repeat_log(
            logging.INFO,
            "header-timeout",
            "closed a connection that sent no request within %g s",
            self._header_timeout,
        )
        self._forget(handler)
        self._close(handler)

    @staticmethod
    def _close(handler: RequestHandler) -> None:
        transport = handler.transport
        if transport is not None:
            transport.abort()


def loop_exception_handler(repeat_log: RepeatLog) -> Callable[[Any, dict[str, Any]], None]:
    """An event loop exception handler that logs each kind of error once per interval with a
    count (``socket.accept() out of system resource`` must not log thousands of lines)."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "unhandled error in the event loop"))
        exc = context.get("exception")
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else ""
        repeat_log(logging.ERROR, message, "%s %s", message, detail)

    return handle
