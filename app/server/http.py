"""The HTTP API of the companion server (DESIGN.md "Server API"), on aiohttp.

It talks only to the :class:`~app.server.broker.Broker` interface and the token issuer, so a
different backend slots in without a change here. Errors are JSON ``{"error": ..., "field": ...}``
(400), ``{"error": ...}`` otherwise; no response or log line carries a token or a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import hdrs, web

from app import __version__
from app.server import codec, reach, wire
from app.server.auth import (
    AccessClaims,
    InvalidToken,
    TokenIssuer,
    hash_refresh_token,
    new_refresh_token,
    new_session_id,
    verify_password,
)
from app.server.broker import Broker
from app.server.config import HttpSettings
from app.server.connections import ConnectionGuard
from app.server.hub import (
    OVERFLOW,
    REPLACED,
    SESSION_ENDED,
    SHUTDOWN,
    TOKEN_EXPIRED,
    Sink,
    Subscription,
)
from app.server.model import (
    NOTHING_YET,
    RECEIPT_KINDS,
    BrokerUnavailable,
    Delivery,
    InvalidCursor,
    Principal,
    Record,
    User,
)
from app.server.throttle import LoginThrottle
from app.server.validation import BadInput, parse_draft, require_object, string_field

log = logging.getLogger(__name__)

_CLOSE_OK = {"code": 200, "msg": "ok", "data": None}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class Metrics:
    """Counters of this process, shown by ``/metrics``."""

    connections: int = 0
    connections_total: int = 0
    published: int = 0
    delivered: int = 0
    replayed: int = 0
    dropped: int = 0
    revoked: int = 0
    acks: int = 0
    logins: int = 0
    login_failures: int = 0
    login_throttled: int = 0

    def prometheus(self, *, subscriptions: int, extra: dict[str, float] | None = None) -> str:
        rows: list[tuple[str, str, str, float]] = [
            ("connections", "gauge", "open SSE streams", self.connections),
            ("subscriptions", "gauge", "streams registered with the broker", subscriptions),
            ("connections_total", "counter", "SSE streams opened", self.connections_total),
            ("published_total", "counter", "announcements published", self.published),
            ("delivered_total", "counter", "announcements written to streams", self.delivered),
            ("replayed_total", "counter", "announcements written as replay", self.replayed),
            ("dropped_total", "counter", "streams dropped for falling behind", self.dropped),
            ("revoked_total", "counter", "announcements revoked", self.revoked),
            ("acks_total", "counter", "read receipts recorded", self.acks),
            ("logins_total", "counter", "successful logins", self.logins),
            ("login_failures_total", "counter", "refused logins", self.login_failures),
            ("login_throttled_total", "counter", "logins answered 429", self.login_throttled),
        ]
        rows += [(name, "gauge", "backend figure", value) for name, value in (extra or {}).items()]
        out: list[str] = []
        for name, kind, help_text, value in rows:
            metric = f"tray_notifier_{name}"
            out += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", f"{metric} {value}"]
        return "\n".join(out) + "\n"


class Api:
    """Request handlers; one instance per application."""

    def __init__(
        self,
        broker: Broker,
        issuer: TokenIssuer,
        settings: HttpSettings,
        *,
        clock: Callable[[], float] = time.time,
        cors_origins: Iterable[str] = (),
        metrics_token: str | None = None,
    ) -> None:
        self.broker = broker
        self.issuer = issuer
        self.settings = settings
        self.metrics = Metrics()
        self.cors_origins = frozenset(cors_origins)
        self._metrics_token = metrics_token
        # False until start-up work (demo users...) is done: /healthz answers 503 "starting"
        self.ready = False
        self.guard: ConnectionGuard | None = None  # set by the runtime once it listens
        self.throttle = LoginThrottle(
            free_failures=settings.login_free_failures,
            address_failures=settings.login_address_failures,
            backoff=settings.login_backoff,
            backoff_max=settings.login_backoff_max,
            forget=settings.login_forget,
            clock=clock,
        )
        self._clock = clock
        self._started = clock()
        self._direct: set[_Stream] = set()  # live streams the hub writes to: pinged from here
        # the open GET /console/events streams: None in one ends it (shutdown)
        self._console_queues: set[asyncio.Queue[str | None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/auth/login", self.login),
            web.post("/auth/refresh", self.refresh),
            web.post("/auth/logout", self.logout),
            web.post("/auth/revoke-all", self.revoke_all),
            # no HEAD: a stream has no end, and a HEAD answer must carry no body
            web.get("/sse/connect/{userId}", self.connect, allow_head=False),
            web.route("GET", "/sse/close/{userId}", self.close),
            web.route("POST", "/sse/close/{userId}", self.close),
            web.route("DELETE", "/sse/close/{userId}", self.close),
            web.post("/announcements", self.publish),
            web.get("/announcements", self.list),
            web.post("/announcements/{id}/ack", self.ack),
            web.get("/announcements/{id}/acks", self.acks),
            web.delete("/announcements/{id}", self.revoke),
            # receipts and reach (DESIGN.md "Server API"; docs/api.md "Receipts and reach")
            web.post("/receipts", self.receipts),
            web.get("/announcements/{id}/reach", self.reach),
            web.get("/announcements/{id}/reach.csv", self.reach_csv),
            web.get("/directory", self.directory),
            web.get("/console/events", self.console_events, allow_head=False),
            web.get("/healthz", self.healthz),
            web.get("/metrics", self.prometheus),
        ]

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # auth -------------------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.Response:
        obj = require_object(await _json_body(request))
        username = string_field(obj, "username")
        password = string_field(obj, "password")
        assert username is not None and password is not None
        address = request.remote or "unknown"
        wait = self.throttle.retry_after(username, address)
        if wait:
            self.metrics.login_throttled += 1
            raise _http_error(
                web.HTTPTooManyRequests,
                f"too many failed logins: try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        user = await self.broker.get_user(username)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(
            None, verify_password, password, user.password_hash if user else None
        )
        if user is None or not ok:
            self.metrics.login_failures += 1
            self.throttle.failed(username, address)
            log.info("refused login for %r from %s", username, address)
            raise _http_error(web.HTTPUnauthorized, "wrong user name or password")
        self.throttle.succeeded(username, address)
        self.metrics.logins += 1
        return web.json_response(await self._grant(user, new_session_id()))

    async def refresh(self, request: web.Request) -> web.Response:
        obj = require_object(await _json_body(request))
        token = string_field(obj, "refresh_token")
        assert token is not None
        grant = await self.broker.use_refresh_token(hash_refresh_token(token), now=self._clock())
        user = await self.broker.get_user(grant.user_id) if grant else None
        if grant is None or user is None:
            raise _http_error(
                web.HTTPUnauthorized,
                "the refresh token is not valid (used, expired or logged out): log in again",
            )
        return web.json_response(await self._grant(user, grant.session_id))

    async def logout(self, request: web.Request) -> web.Response:
        obj = require_object(await _json_body(request))
        token = string_field(obj, "refresh_token")
        assert token is not None
        await self.broker.revoke_refresh_token(hash_refresh_token(token), now=self._clock())
        return web.Response(status=204)

    async def revoke_all(self, request: web.Request) -> web.Response:
        """Ends every login session of the caller's user, on every process (a lost laptop:
        log in elsewhere, then call this; that new login ends too)."""
        claims = self._claims(request)
        user_id = claims.principal.user_id
        await self.broker.end_user_sessions(user_id, now=self._clock())
        log.info("every session of %r ended at its request", user_id)
        return web.Response(status=204)

    async def _grant(self, user: User, session_id: str) -> dict[str, Any]:
        access, ttl = self.issuer.issue(user, session_id=session_id)
        refresh, refresh_hash = new_refresh_token()
        await self.broker.add_refresh_token(
            refresh_hash,
            user_id=user.name,
            session_id=session_id,
            expires_at=self._clock() + self.settings.refresh_ttl,
        )
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": ttl,
            "user_id": user.name,
        }

    def _claims(self, request: web.Request) -> AccessClaims:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _http_error(web.HTTPUnauthorized, "a Bearer access token is required: log in")
        try:
            claims = self.issuer.verify(token.strip())
        except InvalidToken as exc:
            raise _http_error(web.HTTPUnauthorized, str(exc)) from None
        if self.broker.session_ended(claims.principal, issued_at=claims.issued_at):
            raise _http_error(
                web.HTTPUnauthorized,
                "this login session has ended (logged out or revoked): log in again",
            )
        return claims

    def _caller(self, request: web.Request, *, publisher: bool = False) -> Principal:
        principal = self._claims(request).principal
        if publisher and not principal.publisher:
            raise _http_error(web.HTTPForbidden, "this needs a publisher account")
        return principal

    def _same_user(self, request: web.Request) -> AccessClaims:
        claims = self._claims(request)
        if claims.principal.user_id != request.match_info["userId"]:
            raise _http_error(web.HTTPForbidden, "the access token belongs to another user")
        return claims

    # streams ----------------------------------------------------------------------------
    async def connect(self, request: web.Request) -> web.StreamResponse:
        claims = self._same_user(request)
        with self._stream_slot():
            self._make_room(claims.principal)
            return await self._connect(request, claims)

    @contextlib.contextmanager
    def _stream_slot(self) -> Iterator[None]:
        """Counts a long-lived response (a stream) in the connection guard for its life; 503
        with Retry-After when streams already hold all the connections they may."""
        guard = self.guard
        if guard is not None and not guard.open_stream():
            raise _http_error(
                web.HTTPServiceUnavailable,
                "the server holds as many streams as it may: try again shortly",
                headers={"Retry-After": str(self.settings.retry_after)},
            )
        try:
            yield
        finally:
            if guard is not None:
                guard.close_stream()

    def _make_room(self, viewer: Principal) -> None:
        """End the oldest streams of this login session, then of this user, beyond what one
        may hold with the new one (``max_streams_per_session``, ``max_streams_per_user``): a
        stolen token or a runaway client cannot take the server's connections from others."""
        settings = self.settings
        mine = self.broker.streams_of(viewer.user_id)
        same = [sub for sub in mine if sub.viewer.session_id == viewer.session_id]
        extra = same[: max(len(same) - settings.max_streams_per_session + 1, 0)]
        rest = [sub for sub in mine if sub not in extra]
        extra += rest[: max(len(rest) - settings.max_streams_per_user + 1, 0)]
        for sub in extra:
            sub.close(REPLACED)
        if extra:
            log.info(
                "%r opened more streams than it may hold: ended its %d oldest",
                viewer.user_id,
                len(extra),
            )

    async def _connect(self, request: web.Request, claims: AccessClaims) -> web.StreamResponse:
        cursor = request.headers.get("Last-Event-ID") or request.query.get("lastEventId") or None
        transport = request.transport

        def overflow() -> None:
            self.metrics.dropped += 1
            log.info("stream of %r fell too far behind: dropped", claims.principal.user_id)
            if transport is not None:
                transport.abort()

        sub = self.broker.subscribe(
            claims.principal, queue_size=self.settings.queue_size, on_overflow=overflow
        )
        self.metrics.connections += 1
        self.metrics.connections_total += 1
        response = _event_stream()
        try:
            await response.prepare(request)
            await _Stream(self, response, transport, sub, claims).run(cursor)
        except ConnectionError:
            log.debug("stream %s: client gone", sub.conn_id)
        except BrokerUnavailable as exc:  # the replay could not be read: end, the client resumes
            log.warning("stream %s ended: %s", sub.conn_id, exc)
        finally:
            self.broker.unsubscribe(sub)
            self.metrics.connections -= 1
        return response

    async def close(self, request: web.Request) -> web.Response:
        claims = self._same_user(request)
        everything = request.query.get("all", "").lower() in ("1", "true", "yes")
        await self.broker.close_streams(
            claims.principal.user_id,
            session_id=None if everything else claims.principal.session_id,
        )
        return web.json_response(_CLOSE_OK)

    # announcements ----------------------------------------------------------------------
    async def publish(self, request: web.Request) -> web.Response:
        author = self._caller(request, publisher=True)
        key = _idempotency_key(request)
        record = await self.publish_payload(
            await _json_body(request), author=author.user_id, idempotency_key=key
        )
        return web.json_response({"id": record.id}, status=201)

    async def publish_payload(
        self, payload: Any, *, author: str, idempotency_key: str | None = None
    ) -> Record:
        """Validate the API's JSON body, store and fan out: the one publish path, of ``POST
        /announcements`` and of the embedded server. Bad input raises BadInput. A key already
        used by ``author`` returns the first announcement instead."""
        now = self._now()
        draft = parse_draft(payload, now=now)
        users = await self.broker.list_users()
        unknown = reach.unknown_names(draft.audience, users)
        if unknown:
            raise BadInput(
                f"the audience names what does not exist: {', '.join(unknown)}", "audience"
            )
        record = await self.broker.publish(
            draft,
            author=author,
            now=now,
            idempotency_key=idempotency_key,
            recipients=reach.recipients(draft.audience, users),
        )
        if record.created_at != now:
            log.info("publish by %r repeated with its idempotency key: %s", author, record.id)
            return record
        self.metrics.published += 1
        log.info("announcement %s published by %r", record.id, author)
        return record

    async def list(self, request: web.Request) -> web.Response:
        viewer = self._caller(request)
        since = request.query.get("since") or None
        limit = _int_query(
            request, "limit", default=self.settings.list_limit, low=1, high=self.settings.list_max
        )
        try:
            records = await self.broker.list_visible(
                viewer, after=since, limit=limit, now=self._now()
            )
        except InvalidCursor as exc:
            raise BadInput(str(exc), "since") from None
        return web.json_response([codec.announcement_json(r) for r in records])

    async def _visible(self, request: web.Request, viewer: Principal) -> Record:
        """The announcement in the path, if it exists, is live and ``viewer`` may see it."""
        record = await self.broker.get(request.match_info["id"])
        if record is None or record.revoked or not record.audience.includes(viewer):
            raise _http_error(web.HTTPNotFound, "no such announcement")
        return record

    async def ack(self, request: web.Request) -> web.Response:
        viewer = self._caller(request)
        record = await self._visible(request, viewer)
        acked_at = await self.broker.ack(record.id, viewer.user_id, now=self._now())
        self.metrics.acks += 1
        return web.json_response({"id": record.id, "acked_at": codec.iso(acked_at)})

    async def acks(self, request: web.Request) -> web.Response:
        viewer = self._caller(request, publisher=True)
        record = await self._visible(request, viewer)
        return web.json_response(
            [
                {"user_id": a.user_id, "username": a.user_id, "acked_at": codec.iso(a.acked_at)}
                for a in await self.broker.acks(record.id)
            ]
        )

    async def revoke(self, request: web.Request) -> web.Response:
        author = self._caller(request, publisher=True)
        ann_id = request.match_info["id"]
        if not await self.revoke_id(ann_id, by=author.user_id):
            raise _http_error(web.HTTPNotFound, "no such announcement")
        return web.json_response({"id": ann_id, "revoked": True})

    async def revoke_id(self, ann_id: str, *, by: str) -> bool:
        """Revoke (once; again is a no-op); False when the id is unknown."""
        record = await self.broker.get(ann_id)
        if record is None:
            return False
        if not record.revoked:
            await self.broker.revoke(record.id)
            self.metrics.revoked += 1
            log.info("announcement %s revoked by %r", record.id, by)
        return True

    # receipts and reach -----------------------------------------------------------------
    async def receipts(self, request: web.Request) -> web.Response:
        """``{"delivered": [ids], "read": [ids], "acknowledged": [ids]}`` of the caller's own
        user: ids it may not see (unknown, revoked, not addressed to it) are ignored and
        counted. Answers ``{"recorded": n, "ignored": m}`` (receipts, not ids)."""
        viewer = self._caller(request)
        obj = require_object(await _json_body(request))
        marks: list[tuple[str, str]] = []
        for kind in RECEIPT_KINDS:
            ids = obj.get(kind, [])
            if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                raise BadInput(f"{kind} must be a list of announcement ids", kind)
            marks += [(i, kind) for i in dict.fromkeys(ids)]
        if len(marks) > RECEIPTS_MAX:
            raise BadInput(f"at most {RECEIPTS_MAX} receipts in one request", None)
        visible: dict[str, bool] = {}
        for ann_id in {i for i, _ in marks}:
            record = await self.broker.get(ann_id)
            visible[ann_id] = (
                record is not None and not record.revoked and record.audience.includes(viewer)
            )
        kept = [(i, kind) for i, kind in marks if visible[i]]
        if kept:
            await self.broker.record_receipts(viewer.user_id, kept, now=self._now())
        self.metrics.acks += sum(1 for _, kind in kept if kind == "acknowledged")
        return web.json_response({"recorded": len(kept), "ignored": len(marks) - len(kept)})

    async def _reach(self, request: web.Request) -> dict[str, Any]:
        self._caller(request, publisher=True)
        record = await self.broker.get(request.match_info["id"])
        if record is None:
            raise _http_error(web.HTTPNotFound, "no such announcement")
        named = await self.broker.recipients(record.id)
        receipts = await self.broker.receipts(record.id)
        users = {u.name: u for u in await self.broker.list_users()}
        everyone = set(named) | {r.user_id for r in receipts}
        return reach.reach_json(
            record.id, record.audience, named, receipts, users, self.broker.online(everyone)
        )

    async def reach(self, request: web.Request) -> web.Response:
        return web.json_response(await self._reach(request))

    async def reach_csv(self, request: web.Request) -> web.Response:
        data = await self._reach(request)
        return web.Response(
            text=reach.reach_csv(data),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="reach-{data["id"]}.csv"'},
        )

    async def directory(self, request: web.Request) -> web.Response:
        self._caller(request, publisher=True)
        return web.json_response(reach.directory_json(await self.broker.list_users()))

    async def console_events(self, request: web.Request) -> web.StreamResponse:
        """Publishers' live signal: ``event: reach`` ``{"id"}`` whenever receipts of that
        announcement are recorded (on any process), ``: ping`` comments, and ``event: close``
        when the token expires or the server stops."""
        claims = self._claims(request)
        if not claims.principal.publisher:
            raise _http_error(web.HTTPForbidden, "this needs a publisher account")
        with self._stream_slot():
            return await self._console_events(request, claims)

    async def _console_events(
        self, request: web.Request, claims: AccessClaims
    ) -> web.StreamResponse:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=CONSOLE_QUEUE)

        def changed(ann_id: str) -> None:
            if not queue.full():
                queue.put_nowait(ann_id)

        unwatch = self.broker.watch_reach(changed)
        self._console_queues.add(queue)
        response = _event_stream()
        try:
            await response.prepare(request)
            hello = {"user_id": claims.principal.user_id}
            await response.write(
                wire.retry(self.settings.retry_ms) + wire.json_event(hello, name="connected")
            )
            await self._console_loop(response, queue, claims)
        except ConnectionError:
            log.debug("console events: client gone")
        finally:
            unwatch()
            self._console_queues.discard(queue)
        return response

    async def _console_loop(
        self,
        response: web.StreamResponse,
        queue: asyncio.Queue[str | None],
        claims: AccessClaims,
    ) -> None:
        while True:
            left = claims.expires_at - self._clock()
            if left <= 0:
                await response.write(wire.json_event({"reason": TOKEN_EXPIRED}, name="close"))
                return
            # logged out or revoked (on any process): ends at the next wake, a ping interval
            # at most
            if self.broker.session_ended(claims.principal, issued_at=claims.issued_at):
                await response.write(wire.json_event({"reason": SESSION_ENDED}, name="close"))
                return
            try:
                async with asyncio.timeout(min(left, self.settings.ping_interval)):
                    first = await queue.get()
            except TimeoutError:
                await response.write(wire.PING)
                continue
            items = [first]
            while not queue.empty():
                items.append(queue.get_nowait())
            ids = [i for i in dict.fromkeys(items) if i is not None]
            chunk = b"".join(wire.json_event({"id": i}, name="reach") for i in ids)
            if None in items:
                await response.write(chunk + wire.json_event({"reason": SHUTDOWN}, name="close"))
                return
            await response.write(chunk)

    # operations -------------------------------------------------------------------------
    async def healthz(self, request: web.Request) -> web.Response:
        """200 ``ok`` when ready and the storage answers; 503 ``starting`` before start-up
        work is done, 503 ``degraded`` (with the problem) when the storage fails."""
        stats = self.broker.stats()
        problem = stats.problem if not stats.healthy else await self.broker.check()
        status = "starting" if not self.ready else "degraded" if problem else "ok"
        return web.json_response(
            {
                "status": status,
                "version": __version__,
                "connections": self.metrics.connections,
                "uptime_s": round(self._clock() - self._started, 3),
                **({"problem": problem} if problem else {}),
            },
            status=200 if status == "ok" else 503,
        )

    async def prometheus(self, request: web.Request) -> web.Response:
        if self._metrics_token is not None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            given = token.strip().encode()
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given, self._metrics_token.encode()
            ):
                raise _http_error(web.HTTPUnauthorized, "/metrics needs the metrics token")
        stats = self.broker.stats()
        text = self.metrics.prometheus(subscriptions=stats.subscriptions, extra=stats.extra)
        return web.Response(
            text=text,
            content_type="text/plain",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def on_shutdown(self, app: web.Application) -> None:
        self.broker.close_local_streams(SHUTDOWN)
        for queue in list(self._console_queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    async def keepalive(self, app: web.Application) -> AsyncIterator[None]:
        """Runs :meth:`_ping_loop` while the application runs (an aiohttp cleanup context)."""
        task = asyncio.create_task(self._ping_loop(), name="sse keepalive")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _ping_loop(self) -> None:
        """Pings the idle streams that the hub writes to, from one task: their own tasks then
        sleep until something is queued or the token expires, and a broadcast never lands in a
        burst of thousands of per-stream ping wake-ups."""
        interval, batch = self.settings.ping_interval, self.settings.ping_batch
        while True:
            await asyncio.sleep(interval / 4)
            due, now = time.monotonic() - interval, self._clock()
            for count, stream in enumerate(list(self._direct), start=1):
                stream.ping_if_idle(since=due, now=now)
                if count % batch == 0:
                    await asyncio.sleep(0)


API = web.AppKey("api", Api)


class _Stream:
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

    def __init__(
        self,
        api: Api,
        response: web.StreamResponse,
        transport: asyncio.Transport | None,
        sub: Subscription,
        claims: AccessClaims,
    ) -> None:
        self._api = api
        self._response = response
        self._transport = transport
        self._sub = sub
        self._claims = claims
        self._last_write = time.monotonic()

    async def _write(self, chunk: bytes) -> None:
        if chunk:
            await self._response.write(chunk)
            self._last_write = time.monotonic()

    async def run(self, cursor: str | None) -> None:
        connected = {
            "connection_id": self._sub.conn_id,
            "user_id": self._sub.viewer.user_id,
            "replay": cursor is not None,
        }
        position: str | None = cursor if cursor is not None else await self._start_position()
        if not wire.valid_id(position):
            position = None  # a hand-made query that no SSE id can hold: nothing to echo
        await self._write(
            wire.retry(self._api.settings.retry_ms)
            + wire.json_event(connected, name="connected", event_id=position)
        )
        replayed: set[str] = set()
        if cursor is not None:
            replayed, more = await self._replay(cursor)
            if more:
                return  # the client continues at once from the last replayed id
        sink = self._sink()
        self._sub.go_live(sink, replayed)
        if sink is None:
            await self._live(pinged_here=True)
            return
        self._api._direct.add(self)
        try:
            await self._live(pinged_here=False)
        finally:
            self._api._direct.discard(self)

    async def _start_position(self) -> str:
        """Where a stream without a resume id starts: the newest announcement its viewer may
        see among those fanned out before it subscribed (every later one comes live)."""
        newest = await self._api.broker.newest_visible_id(
            self._sub.viewer, upto=self._sub.horizon, now=self._api._now()
        )
        return newest if newest is not None else NOTHING_YET

    async def _replay(self, cursor: str) -> tuple[set[str], bool]:
        """Writes what was published after ``cursor``, then ``event: sync``; returns the ids
        written and whether more are left to replay."""
        broker, limit = self._api.broker, self._api.settings.replay_limit
        now = self._api._now()
        viewer = self._sub.viewer
        try:
            records = await broker.list_visible(viewer, after=cursor, limit=limit + 1, now=now)
            more = len(records) > limit
            records = records[:limit]
        except InvalidCursor:
            log.info("unknown resume id from %r: replaying the newest", viewer.user_id)
            records = await broker.list_visible(viewer, after=None, limit=limit, now=now)
            more = False  # nothing is newer than these: older ones are over REST only
        chunks = [wire.record(r) for r in records]
        self._api.metrics.replayed += len(records)
        self._api.metrics.delivered += len(records)
        last_id = records[-1].id if records else cursor
        sync = {"replayed": len(records), "more": more, "last_id": last_id}
        chunks.append(wire.json_event(sync, name="sync"))
        batch = self._api.settings.replay_write_batch
        for start in range(0, len(chunks), batch):
            await self._write(b"".join(chunks[start : start + batch]))
        return {r.id for r in records}, more

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
            self._api.metrics.delivered += 1
        return True

    def _write_now(self, data: bytes) -> bool:
        """Write straight to the socket, framed as aiohttp frames a ``write``; False when the
        socket's buffer is full or the socket is closing (this task writes it instead)."""
        transport = self._transport
        assert transport is not None
        limit = self._api.settings.direct_write_limit
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

    async def _live(self, *, pinged_here: bool) -> None:
        sub, ping = self._sub, self._api.settings.ping_interval
        while True:
            timeout = self._claims.expires_at - self._api._clock()
            if pinged_here:
                timeout = min(timeout, self._last_write + ping - time.monotonic())
            await sub.wait(timeout)
            chunk = b"".join(self._encode(item) for item in sub.take())
            reason = sub.closed_reason
            if reason is None and self._claims.expires_at <= self._api._clock():
                reason = TOKEN_EXPIRED
            if reason == OVERFLOW:
                return  # the socket is already aborted
            if reason is not None:
                await self._write(chunk + wire.json_event({"reason": reason}, name="close"))
                return
            if chunk:
                await self._write(chunk)
            elif time.monotonic() >= self._last_write + ping:
                await self._write(wire.PING)

    def _encode(self, item: Delivery) -> bytes:
        if isinstance(item, Record):
            self._api.metrics.delivered += 1
        return wire.delivery(item)


# ---------------------------------------------------------------- helpers


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadInput as exc:
        return web.json_response(exc.to_json(), status=400)
    except BrokerUnavailable as exc:
        log.warning("%s %s refused: %s", request.method, request.path, exc)
        retry_after = str(request.app[API].settings.retry_after)
        return web.json_response(
            {"error": str(exc)}, status=503, headers={"Retry-After": retry_after}
        )


CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Last-Event-ID",
    "Idempotency-Key",
    # what EventSourcePolyfill and fetch-based clients add
    "Accept",
    "Cache-Control",
    "X-Requested-With",
)
CORS_ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
CORS_MAX_AGE = 600  # seconds a browser may cache a preflight
# every answer is JSON, an event stream or text: nothing may load, frame or run anything
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


@web.middleware
async def _track(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Tells the connection guard a request is in progress on this connection (a busy
    connection is never closed to make room for a new one)."""
    guard = request.app[API].guard
    if guard is None:
        return await handler(request)
    guard.request_started(request.protocol)
    try:
        return await handler(request)
    finally:
        guard.request_ended(request.protocol)


@web.middleware
async def _cors_preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answers a CORS preflight (OPTIONS with ``Access-Control-Request-Method``) from an
    allowed origin; anything else goes on (a disallowed origin's preflight gets the 405 of
    an OPTIONS, with no CORS header)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
        and origin in request.app[API].cors_origins
    ):
        return web.Response(
            status=204,
            headers={
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: CORS_ALLOW_METHODS,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ", ".join(CORS_ALLOW_HEADERS),
                hdrs.ACCESS_CONTROL_MAX_AGE: str(CORS_MAX_AGE),
            },
        )
    return await handler(request)


async def _on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Headers of every answer (errors and the stream included): CORS for an allowed origin,
    ``nosniff``, the CSP, and ``no-store`` (answers carry tokens or per-user data)."""
    headers = response.headers
    origin = request.headers.get(hdrs.ORIGIN)
    api = request.app[API]
    if api.cors_origins:
        headers.add(hdrs.VARY, "Origin")
        if origin in api.cors_origins:
            headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Retry-After, WWW-Authenticate"
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault(hdrs.CACHE_CONTROL, "no-store")


async def _json_body(request: web.Request) -> Any:
    settings = request.app[API].settings
    length = request.content_length
    if length is not None and length > settings.max_body:
        raise _too_large(settings.max_body)  # at once: the body is not waited for
    try:
        async with asyncio.timeout(settings.body_timeout):
            raw = await request.read()
    except TimeoutError:
        error = _http_error(
            web.HTTPRequestTimeout,
            f"the request body did not arrive within {settings.body_timeout:g} s",
        )
        error.force_close()  # then close: the rest of the body is not waited for
        raise error from None
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(settings.max_body) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the request body is not UTF-8") from None
    if _nesting(text) > MAX_JSON_DEPTH:
        raise BadInput(f"the request body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadInput("the request body is not valid JSON") from None
    _check_strings(payload)
    return payload


def _too_large(max_body: int) -> web.HTTPError:
    """413, and the connection closed after it: the rest of the body is never read."""
    problem = BadInput(f"the request body is over {max_body // 1024} KiB")  # its JSON shape
    error = web.HTTPRequestEntityTooLarge(
        max_size=max_body, text=json.dumps(problem.to_json()), content_type="application/json"
    )
    error.force_close()
    return error


MAX_JSON_DEPTH = 32  # no request of this API nests deeper than 3
RECEIPTS_MAX = 3000  # receipts in one POST /receipts
CONSOLE_QUEUE = 1000  # reach signals a console stream may fall behind (more are dropped)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _nesting(text: str) -> int:
    """How deep ``[`` and ``{`` nest in JSON text, outside its strings (a title may hold any
    number of brackets); it never recurses, so it runs before the parser that would."""
    depth = deepest = 0
    for char in _JSON_STRING.sub('""', text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _check_strings(payload: Any) -> None:
    """BadInput for a string (or key) that is not valid Unicode text: a lone surrogate
    (``"\\ud800"``) parses, but can be neither stored nor sent."""
    todo = [payload]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo += item.keys()
            todo += item.values()
        elif isinstance(item, list):
            todo += item
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput(
                    "the request body holds a lone surrogate (\\ud800-\\udfff): not valid"
                    " Unicode text"
                ) from None


IDEMPOTENCY_KEY_MAX = 200


def _idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header: 1 to 200 visible ASCII characters, or none."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not (0 < len(key) <= IDEMPOTENCY_KEY_MAX and key.isascii() and key.isprintable()):
        raise BadInput(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters",
            "Idempotency-Key",
        )
    return key


def _int_query(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise BadInput(f"{name} must be a whole number from {low} to {high}", name)
    return int(text)


def _http_error(
    cls: type[web.HTTPError], message: str, *, headers: dict[str, str] | None = None
) -> web.HTTPError:
    headers = dict(headers or {})
    if cls.status_code == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return cls(
        text=json.dumps({"error": message}), content_type="application/json", headers=headers
    )


# ---------------------------------------------------------------- the publisher console
# GET /console/: the static files of app/server/console (docs/console.md), with the page's own
# CSP (its own script and style files only: nothing inline, nothing from elsewhere)
CONSOLE_DIR = Path(__file__).resolve().parent / "console"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
CONSOLE_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


async def _console_file(request: web.Request) -> web.Response:
    path = CONSOLE_DIR / request.match_info.get("name", "index.html")
    content_type = CONSOLE_TYPES.get(path.suffix)
    if content_type is None or not path.is_file():
        raise _http_error(web.HTTPNotFound, "no such file")
    return web.Response(
        body=path.read_bytes(),
        content_type=content_type,
        charset=None if content_type == "image/png" else "utf-8",
        headers={"Content-Security-Policy": CONSOLE_CSP},
    )


async def _console_redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("console/")  # relative: works behind a path prefix too


def console_routes() -> list[web.RouteDef]:
    """``/console`` -> ``/console/``, the page and its files (one name with an extension:
    no sub-folder, no ``..``; ``/console/events`` is the API's)."""
    return [
        web.get("/console", _console_redirect),
        web.get("/console/", _console_file),
        web.get(r"/console/{name:[A-Za-z0-9_-]+\.[a-z]+}", _console_file),
    ]


def create_app(
    broker: Broker,
    issuer: TokenIssuer,
    settings: HttpSettings,
    *,
    clock: Callable[[], float] = time.time,
    cors_origins: Iterable[str] = (),
    metrics_token: str | None = None,
) -> web.Application:
    """The aiohttp application; its :class:`Api` is reachable as ``app[API]``. ``clock``
    (epoch seconds) is the one the token issuer uses: token expiry is measured on it.
    ``cors_origins``: web origins allowed to call it from a browser; ``metrics_token``: the
    Bearer token ``/metrics`` then requires."""
    api = Api(
        broker,
        issuer,
        settings,
        clock=clock,
        cors_origins=cors_origins,
        metrics_token=metrics_token,
    )
    app = web.Application(
        middlewares=[_track, _cors_preflight, _errors], client_max_size=settings.max_body
    )
    app.add_routes(api.routes())
    app.add_routes(console_routes())
    app.on_response_prepare.append(_on_prepare)
    app.on_shutdown.append(api.on_shutdown)
    app.cleanup_ctx.append(api.keepalive)
    app[API] = api
    return app


def _event_stream() -> web.StreamResponse:
    """A text/event-stream response: never cached, never buffered by a proxy (nginx)."""
    return web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
