"""The announcement stream, ``GET /sse/connect/{userId}``: one SSE response from connect to
close (:func:`serve_stream`, :class:`SseStream`), and the one task that pings the idle streams
the hub writes to (:class:`DirectStreams`).

A stream sees the application only through its :class:`StreamContext`; the handlers
(``app/server/api.py``) decide who may open one, then hand it over here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import hdrs, web
from multidict import istr

from app.server import wire
from app.server.auth import AccessClaims
from app.server.broker import Broker
from app.server.config import HttpSettings
from app.server.hub import OVERFLOW, SHUTDOWN, TOKEN_EXPIRED, Sink, Subscription
from app.server.metrics import Metrics
from app.server.model import NOTHING_YET, BrokerUnavailable, Delivery, InvalidCursor, Record
from app.server.returns import ReturnSpread

log = logging.getLogger(__name__)


# header names as istr, like aiohttp's own (``hdrs``): a plain str name costs every open
# stream a lower-cased copy of it for its life
_X_ACCEL_BUFFERING = istr("X-Accel-Buffering")


class _EventStream(web.StreamResponse):
    # the head goes out with the first event (retry, connected), one send instead of two:
    # a fleet reconnecting after a restart makes that many thousands per second
    _send_headers_immediately = False


def event_stream() -> web.StreamResponse:
    """A text/event-stream response: never cached, never buffered by a proxy (nginx). Its
    head is sent with its first write, which must follow ``prepare`` at once."""
    return _EventStream(
        headers={
            hdrs.CONTENT_TYPE: "text/event-stream; charset=utf-8",
            hdrs.CACHE_CONTROL: "no-store",
            _X_ACCEL_BUFFERING: "no",
        }
    )


class DirectStreams:
    """The live streams the hub writes to (:meth:`SseStream._send_now`), pinged from one task
    while the application runs (:meth:`keepalive`): their own tasks then sleep until something
    is queued or the token expires, and a broadcast never lands in a burst of thousands of
    per-stream ping wake-ups."""

    def __init__(self, settings: HttpSettings, clock: Callable[[], float]) -> None:
        self._interval = settings.ping_interval
        self._batch = settings.ping_batch
        self._clock = clock
        self._streams: set[SseStream] = set()

    def add(self, stream: SseStream) -> None:
        self._streams.add(stream)

    def discard(self, stream: SseStream) -> None:
        self._streams.discard(stream)

    async def keepalive(self, app: web.Application) -> AsyncIterator[None]:
        """Runs :meth:`_ping_loop` while the application runs (an aiohttp cleanup context)."""
        task = asyncio.create_task(self._ping_loop(), name="sse keepalive")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _ping_loop(self) -> None:
        interval, batch = self._interval, self._batch
        while True:
            await asyncio.sleep(interval / 4)
            due, now = time.monotonic() - interval, self._clock()
            for count, stream in enumerate(list(self._streams), start=1):
                stream.ping_if_idle(since=due, now=now)
                if count % batch == 0:
                    await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class StreamContext:
    """All a stream uses of the application: one per application, built by the API."""

    broker: Broker
    settings: HttpSettings
    metrics: Metrics  # the API's counters: a stream adds to them
    clock: Callable[[], float]  # epoch seconds, the token issuer's: expiry is measured on it
    direct: DirectStreams  # the live streams the hub writes to, pinged from one task
    retry: bytes  # every stream's first line (``retry:``)
    returns: ReturnSpread  # after a shutdown, when each stream's client is to come back

    @classmethod
    def create(
        cls,
        broker: Broker,
        settings: HttpSettings,
        metrics: Metrics,
        clock: Callable[[], float],
    ) -> StreamContext:
        direct = DirectStreams(settings, clock)
        retry = wire.retry(settings.retry_ms)
        return cls(broker, settings, metrics, clock, direct, retry, ReturnSpread(settings))

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)


def _close_event(reason: str, context: StreamContext) -> bytes:
    """``event: close``; after a shutdown, preceded by this stream's own ``retry:`` time, so
    that the fleet comes back spread out (app/server/returns.py)."""
    close = wire.json_event({"reason": reason}, name="close")
    return wire.retry(context.returns.retry_ms()) + close if reason == SHUTDOWN else close


def serve_stream(
    context: StreamContext, request: web.Request, claims: AccessClaims
) -> Coroutine[Any, Any, web.StreamResponse]:
    """The coroutine that subscribes the caller (already authorised), writes its stream until
    it ends (the client leaves, the stream is closed or replaced, its token expires, the server
    stops), then unsubscribes: :meth:`SseStream.serve`, to be awaited at once. Not a coroutine
    function itself: an open stream's task holds one frame for all this, not two."""
    return SseStream(context, request.transport, claims).serve(request)


def _dropped(metrics: Metrics, user_id: str, transport: asyncio.Transport | None) -> None:
    """A stream fell too far behind its deliveries: count it and cut it off (the client
    resumes by id)."""
    metrics.dropped += 1
    log.info("stream of %r fell too far behind: dropped", user_id)
    if transport is not None:
        transport.abort()


class SseStream:
    """Writes one SSE response: retry, connected, replay, sync, then live deliveries.

    ``connected`` carries, as its ``id:``, the position the stream starts from: the client's
    resume id, or for a client that sent none the newest announcement its viewer may see (or
    :data:`~app.server.broker.NOTHING_YET`), so every client has a resume point from its first
    connection. Every announcement after that position reaches the client: replayed, or live.
    A replay cut short (``sync`` with ``more: true``) ends the response, so no live delivery
    can overtake the announcements still to replay: the client continues from its last id.

    Live deliveries are written by the hub through :meth:`_send_now` while the socket keeps up
    (no wake-up of this task per announcement); this task writes what was queued instead, the
    pings and the final ``event: close``.
    """

    __slots__ = (
        "_claims",
        "_context",
        "_last_write",
        "_pinged_here",
        "_response",
        "_sub",
        "_transport",
    )

    _sub: Subscription  # serve(): from its start

    def __init__(
        self,
        context: StreamContext,
        transport: asyncio.Transport | None,
        claims: AccessClaims,
    ) -> None:
        self._context = context
        self._response = event_stream()
        self._transport = transport
        self._claims = claims
        self._last_write = time.monotonic()
        self._pinged_here = True  # start(): False when the hub writes to it directly

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """The stream's whole life: subscribe, :meth:`start`, then live deliveries until it
        ends (:meth:`_send_now` writes them while the socket keeps up; this task wakes only
        for what was queued, the pings of a stream the hub cannot write to, its token's
        expiry and the close), then unsubscribe. One frame: an idle stream's task holds
        this and its handler's, nothing of its start."""
        context, claims, transport = self._context, self._claims, self._transport
        cursor = request.headers.get("Last-Event-ID") or request.query.get("lastEventId") or None
        metrics = context.metrics
        # a partial, not a closure: every open stream holds it, and it is half the size
        overflow = functools.partial(_dropped, metrics, claims.principal.user_id, transport)
        sub = self._sub = context.broker.subscribe(
            claims.principal, queue_size=context.settings.queue_size, on_overflow=overflow
        )
        metrics.connections += 1
        metrics.connections_total += 1
        direct = context.direct
        try:
            await self._response.prepare(request)
            if not await self.start(cursor):
                return self._response
            ping, clock = context.settings.ping_interval, context.clock
            pinged_here = self._pinged_here
            if not pinged_here:
                direct.add(self)
            while True:
                timeout = claims.expires_at - clock()
                if pinged_here:
                    timeout = min(timeout, self._last_write + ping - time.monotonic())
                await sub.wait(timeout)
                chunk = b"".join(self._encode(item) for item in sub.take())
                reason = sub.closed_reason
                if reason is None and claims.expires_at <= clock():
                    reason = TOKEN_EXPIRED
                if reason == OVERFLOW:
                    break  # the socket is already aborted
                if reason is not None:
                    await self._write(chunk + _close_event(reason, context))
                    break
                if chunk:
                    await self._write(chunk)
                elif time.monotonic() >= self._last_write + ping:
                    await self._write(wire.PING)
        except ConnectionError:
            log.debug("stream %s: client gone", sub.conn_id)
        except BrokerUnavailable as exc:  # the replay could not be read: end, the client resumes
            log.warning("stream %s ended: %s", sub.conn_id, exc)
        finally:
            direct.discard(self)
            context.broker.unsubscribe(sub)
            metrics.connections -= 1
        return self._response

    async def _write(self, chunk: bytes) -> None:
        if chunk:
            await self._response.write(chunk)
            self._last_write = time.monotonic()

    async def start(self, cursor: str | None) -> bool:
        """Writes retry, connected, and the replay after ``cursor``; whether the stream goes
        on live (not when the replay was cut short: the client continues from its last id)."""
        sub = self._sub
        position: str | None = cursor
        if position is None:
            # nothing fanned out before it subscribed (NOTHING_YET): nothing it may see yet
            horizon = sub.horizon
            position = horizon if horizon == NOTHING_YET else await self._start_position()
        if not wire.valid_id(position):
            position = None  # a hand-made query that no SSE id can hold: nothing to echo
        await self._write(
            self._context.retry
            + wire.connected(sub.conn_id, sub.viewer.user_id, cursor is not None, position)
        )
        replayed: set[str] = set()
        if cursor is not None:
            replayed, more = await self._replay(cursor)
            if more:
                return False
        sink = self._sink()
        self._pinged_here = sink is None
        self._sub.go_live(sink, replayed)
        return True

    async def _start_position(self) -> str:
        """Where a stream without a resume id starts: the newest announcement its viewer may
        see among those fanned out before it subscribed (every later one comes live)."""
        newest = await self._context.broker.newest_visible_id(
            self._sub.viewer, upto=self._sub.horizon, now=self._context.now()
        )
        return newest if newest is not None else NOTHING_YET

    async def _replay(self, cursor: str) -> tuple[set[str], bool]:
        """Writes what was published after ``cursor``, then ``event: sync``; returns the ids
        written and whether more are left to replay."""
        context = self._context
        broker, limit = context.broker, context.settings.replay_limit
        now = context.now()
        viewer = self._sub.viewer
        records: list[Delivery]
        try:  # announcements and changes (corrections, reminders, revokes), in stream order
            records = await broker.replay(viewer, after=cursor, limit=limit + 1, now=now)
            more = len(records) > limit
            records = records[:limit]
        except InvalidCursor:
            log.info("unknown resume id from %r: replaying the newest", viewer.user_id)
            records = [*await broker.list_visible(viewer, after=None, limit=limit, now=now)]
            more = False  # nothing is newer than these: older ones are over REST only
        chunks = [wire.delivery(r) for r in records]
        context.metrics.replayed += len(records)
        context.metrics.delivered += len(records)
        last_id = records[-1].position if records else cursor
        sync = {"replayed": len(records), "more": more, "last_id": last_id}
        chunks.append(wire.json_event(sync, name="sync"))
        batch = context.settings.replay_write_batch
        for start in range(0, len(chunks), batch):
            await self._write(b"".join(chunks[start : start + batch]))
        return {r.position for r in records}, more

    def _sink(self) -> Sink | None:
        """:meth:`_send_now` when this response's framing is known: chunked, uncompressed (any
        HTTP/1.1 GET); anything else (HTTP/1.0, HEAD) keeps every write on aiohttp's writer."""
        chunked = self._response.headers.get(hdrs.TRANSFER_ENCODING, "").lower() == "chunked"
        if self._transport is None or not chunked or self._response.compression:
            return None
        return self._send_now

    def _send_now(self, item: Delivery, data: bytes) -> bool:
        """The hub's sink: :meth:`_write_now`, counting announcements."""
        if not self._write_now(data):
            return False
        if isinstance(item, Record):
            self._context.metrics.delivered += 1
        return True

    def _write_now(self, data: bytes) -> bool:
        """Write straight to the socket, framed as aiohttp frames a ``write``; False when the
        socket's buffer is full or the socket is closing (this task writes it instead)."""
        transport = self._transport
        assert transport is not None
        limit = self._context.settings.direct_write_limit
        if transport.is_closing() or transport.get_write_buffer_size() >= limit:
            return False
        transport.write(wire.chunk(data))
        self._last_write = time.monotonic()
        return True

    def ping_if_idle(self, *, since: float, now: float) -> None:
        """Ping when nothing was written after ``since``; if that cannot be done now, wake this
        stream's task to ping through aiohttp (it waits for the client, or finds it gone).
        Also wake it when its token has expired by ``now`` (the API's clock), should that clock
        have moved on faster than the task's timer."""
        if self._claims.expires_at <= now:
            self._sub.wake()
            return
        if self._last_write > since:
            return
        if self._sub.pending or not self._write_now(wire.PING):
            self._sub.wake()

    def _encode(self, item: Delivery) -> bytes:
        if isinstance(item, Record):
            self._context.metrics.delivered += 1
        return wire.delivery(item)
