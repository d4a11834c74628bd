"""The HTTP API of the companion server (DESIGN.md "Server API"): its route handlers,
:class:`Api`, reachable in the application as ``app[API]``.

It talks only to the :class:`~app.server.broker.Broker` interface and the token issuer, so a
different backend slots in without a change here. Errors are JSON ``{"error": ..., "field": ...}``
(400), ``{"error": ...}`` otherwise; no response or log line carries a token or a password.
The application around it (middleware, the console's files) is
:func:`app.server.application.create_app`; the announcement stream, once a caller may open
one, is ``app/server/streams.py``; request bodies are read by ``app/server/bodies.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from aiohttp import web

from app import __version__
from app.server import audit, codec, reach, schedule, wire
from app.server.auth import (
    AccessClaims,
    InvalidToken,
    TokenIssuer,
    hash_refresh_token,
    new_refresh_token,
    new_session_id,
    verify_password,
)
from app.server.bodies import RECEIPTS_MAX, idempotency_key, int_query, json_body
from app.server.broker import Broker
from app.server.config import HttpSettings
from app.server.connections import ConnectionGuard
from app.server.directory import DirectorySync, DirectoryUnreachable
from app.server.errors import http_error
from app.server.hub import REPLACED, SESSION_ENDED, SHUTDOWN, TOKEN_EXPIRED
from app.server.metrics import Metrics
from app.server.middleware import error_answer
from app.server.model import (
    RECEIPT_KINDS,
    AlreadyRevoked,
    BrokerUnavailable,
    InvalidCursor,
    NameTaken,
    Principal,
    Record,
    User,
)
from app.server.officer_model import CORRECTED, PUBLISHED, REMINDED, REVOKED
from app.server.oidc import IdTokenRefused, IdTokenVerifier, ProviderUnreachable
from app.server.streams import StreamContext, event_stream, serve_stream
from app.server.throttle import LoginThrottle
from app.server.validation import (
    MAX_TITLE,
    BadInput,
    parse_correction,
    parse_draft,
    require_object,
    string_field,
)

log = logging.getLogger(__name__)

_CLOSE_OK = {"code": 200, "msg": "ok", "data": None}
CONSOLE_QUEUE = 1000  # reach signals a console stream may fall behind (more are dropped)


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
        guard: ConnectionGuard | None = None,
        oidc: IdTokenVerifier | None = None,
        directory: DirectorySync | None = None,
    ) -> None:
        """``guard``: the listening socket's, which counts the streams (none: no limit);
        ``oidc``: the organisation's provider, whose ID tokens sign people in (none: only
        passwords); ``directory``: the organisation's directory (none: accounts only)."""
        self.broker = broker
        self.oidc = oidc
        self.directory = directory
        self._connected: set[str] = set()  # users this process recorded as signed in
        self.issuer = issuer
        self.settings = settings
        self.metrics = Metrics()
        self.cors_origins = frozenset(cors_origins)
        self._metrics_token = metrics_token
        # False until start-up work (demo users...) is done: /healthz answers 503 "starting"
        self.ready = False
        self.guard = guard
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
        self.stream_context = StreamContext.create(broker, settings, self.metrics, clock)
        # the open GET /console/events streams: None in one ends it (shutdown)
        self._console_queues: set[asyncio.Queue[str | None]] = set()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/auth/config", self.auth_config),
            web.post("/auth/login", self.login),
            web.post("/auth/oidc", self.oidc_login),
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
            web.patch("/announcements/{id}", self.correct),
            web.post("/announcements/{id}/remind", self.remind),
            # receipts and reach (DESIGN.md "Server API"; docs/api.md "Receipts and reach")
            web.post("/receipts", self.receipts),
            web.get("/announcements/{id}/reach", self.reach),
            web.get("/announcements/{id}/reach.csv", self.reach_csv),
            web.get("/directory", self.directory_list),
            web.post("/directory/sync", self.directory_sync),
            web.get("/console/events", self.console_events, allow_head=False),
            web.get("/healthz", self.healthz),
            web.get("/metrics", self.prometheus),
        ]

    def _now(self) -> datetime:
        return self.stream_context.now()

    # auth -------------------------------------------------------------------------------
    async def auth_config(self, request: web.Request) -> web.Response:
        """How to sign in here (no login needed): passwords, the provider, or both."""
        oidc = self.oidc.settings if self.oidc is not None else None
        return web.json_response(
            {
                "password": oidc is None or oidc.password_login,
                "oidc": None
                if oidc is None
                else {
                    "issuer": oidc.issuer,
                    "client_id": oidc.client_id,
                    "console_client_id": oidc.console_client_id or None,
                    "scopes": list(oidc.scopes),
                },
            }
        )

    async def login(self, request: web.Request) -> web.Response:
        obj = require_object(await json_body(request, self.settings))
        username = string_field(obj, "username")
        password = string_field(obj, "password")
        assert username is not None and password is not None
        if self.oidc is not None and not self.oidc.settings.password_login:
            raise http_error(
                web.HTTPForbidden,
                "this server takes no passwords: sign in with your organisation account",
            )
        address = request.remote or "unknown"
        self._throttle(username, address)
        user = await self.broker.get_user(username)
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(
            None, verify_password, password, user.password_hash if user else None
        )
        if user is None or not ok:
            self.metrics.login_failures += 1
            self.throttle.failed(username, address)
            log.info("refused login for %r from %s", username, address)
            raise http_error(web.HTTPUnauthorized, "wrong user name or password")
        self.throttle.succeeded(username, address)
        self.metrics.logins += 1
        return web.json_response(await self._grant(user, new_session_id()))

    async def oidc_login(self, request: web.Request) -> web.Response:
        """Sign in with an ID token of the organisation's provider (``app/server/oidc.py``
        checks it): the answer, and the session, are a password login's."""
        obj = require_object(await json_body(request, self.settings))
        token = string_field(obj, "id_token")
        assert token is not None
        if self.oidc is None:
            raise http_error(
                web.HTTPNotFound,
                "this server has no identity provider (--oidc-issuer): log in with a password",
            )
        address = request.remote or "unknown"
        account = f"(an ID token from {address})"  # the person is not known before the check
        self._throttle(account, address)
        try:
            person = await self.oidc.verify(token)
            if not await self.broker.use_once(
                person.fingerprint, until=person.expires_at, now=self._clock()
            ):
                raise IdTokenRefused("this ID token was used already: sign in again")
        except IdTokenRefused as exc:
            self.metrics.login_failures += 1
            self.throttle.failed(account, address)
            log.info("refused an ID token from %s: %s", address, exc)
            raise http_error(web.HTTPUnauthorized, str(exc)) from None
        except ProviderUnreachable as exc:
            log.warning("an ID token could not be checked (%s)", exc)
            raise http_error(
                web.HTTPServiceUnavailable,
                f"the server cannot check your sign-in now ({exc}): try again shortly",
                headers={"Retry-After": str(self.settings.retry_after)},
            ) from None
        try:
            user = await self.broker.sign_in_person(
                person.subject, person.username, groups=person.groups, publisher=person.publisher
            )
        except NameTaken as exc:
            log.warning("refused sign-in of provider person %r: the name is local", person.username)
            raise http_error(web.HTTPConflict, str(exc)) from None
        self.throttle.succeeded(account, address)
        self.metrics.logins += 1
        log.info("signed in %r with the identity provider", user.name)
        return web.json_response(await self._grant(user, new_session_id()))

    def _throttle(self, account: str, address: str) -> None:
        """429 with Retry-After while ``address`` must wait before trying ``account`` again."""
        wait = self.throttle.retry_after(account, address)
        if wait:
            self.metrics.login_throttled += 1
            raise http_error(
                web.HTTPTooManyRequests,
                f"too many failed logins: try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )

    async def refresh(self, request: web.Request) -> web.Response:
        obj = require_object(await json_body(request, self.settings))
        token = string_field(obj, "refresh_token")
        assert token is not None
        grant = await self.broker.use_refresh_token(hash_refresh_token(token), now=self._clock())
        user = await self.broker.get_user(grant.user_id) if grant else None
        if grant is None or user is None:
            raise http_error(
                web.HTTPUnauthorized,
                "the refresh token is not valid (used, expired or logged out): log in again",
            )
        return web.json_response(await self._grant(user, grant.session_id))

    async def logout(self, request: web.Request) -> web.Response:
        obj = require_object(await json_body(request, self.settings))
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
        if user.name not in self._connected:  # for the reach's "never connected"
            await self.broker.mark_connected(user.name, now=self._clock())
            self._connected.add(user.name)
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
            raise http_error(web.HTTPUnauthorized, "a Bearer access token is required: log in")
        try:
            claims = self.issuer.verify(token.strip())
        except InvalidToken as exc:
            raise http_error(web.HTTPUnauthorized, str(exc)) from None
        if self.broker.session_ended(claims.principal, issued_at=claims.issued_at):
            raise http_error(
                web.HTTPUnauthorized,
                "this login session has ended (logged out or revoked): log in again",
            )
        return claims

    def _caller(self, request: web.Request, *, publisher: bool = False) -> Principal:
        principal = self._claims(request).principal
        if publisher and not principal.publisher:
            raise http_error(web.HTTPForbidden, "this needs a publisher account")
        return principal

    def _same_user(self, request: web.Request) -> AccessClaims:
        claims = self._claims(request)
        if claims.principal.user_id != request.match_info["userId"]:
            raise http_error(web.HTTPForbidden, "the access token belongs to another user")
        return claims

    # streams ----------------------------------------------------------------------------
    async def connect(self, request: web.Request) -> web.StreamResponse:
        """The stream. It does itself what the error middleware does for the other handlers
        (which passes it by, see ``answers_itself``): the same error answers, and the
        connection guard told that its connection is busy meanwhile."""
        guard, protocol = self.guard, request.protocol
        if guard is not None:
            guard.request_started(protocol)
        try:  # (no context managers: an idle stream would hold their frames for its life)
            claims = self._same_user(request)
            self._take_stream_slot()
            try:
                self._make_room(claims.principal)
                return await serve_stream(self.stream_context, request, claims)
            finally:
                self._give_stream_slot()
        except (BadInput, BrokerUnavailable) as exc:
            return error_answer(request, exc, retry_after=self.settings.retry_after)
        finally:
            if guard is not None:
                guard.request_ended(protocol)

    def _take_stream_slot(self) -> None:
        """Counts a long-lived response (a stream) in the connection guard, until
        :meth:`_give_stream_slot`; 503 with Retry-After when streams already hold all the
        connections they may."""
        if self.guard is not None and not self.guard.open_stream():
            raise http_error(
                web.HTTPServiceUnavailable,
                "the server holds as many streams as it may: try again shortly",
                headers={"Retry-After": str(self.settings.retry_after)},
            )

    def _give_stream_slot(self) -> None:
        if self.guard is not None:
            self.guard.close_stream()

    def _make_room(self, viewer: Principal) -> None:
        """End the oldest streams of this login session, then of this user, beyond what one
        may hold with the new one (``max_streams_per_session``, ``max_streams_per_user``): a
        stolen token or a runaway client cannot take the server's connections from others."""
        settings = self.settings
        mine = self.broker.streams_of(viewer.user_id)
        if len(mine) < min(settings.max_streams_per_session, settings.max_streams_per_user):
            return  # room for one more either way (the usual case: its first stream)
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
        key = idempotency_key(request)
        payload = await json_body(request, self.settings)
        if isinstance(payload, dict) and payload.get(schedule.SEND_AT) is not None:
            # a time to send it: kept as a scheduled announcement (app/server/schedule.py)
            scheduled, _ = await schedule.schedule_payload(
                self.broker,
                payload,
                author=author.user_id,
                now=self._now(),
                settings=self.settings,
                idempotency_key=key,
            )
            return web.json_response(schedule.accepted_json(scheduled), status=202)
        record = await self.publish_payload(payload, author=author.user_id, idempotency_key=key)
        return web.json_response({"id": record.id}, status=201)

    async def publish_payload(
        self,
        payload: Any,
        *,
        author: str,
        idempotency_key: str | None = None,
        schedule_id: str | None = None,
    ) -> Record:
        """Validate the API's JSON body, store and fan out: the one publish path, of ``POST
        /announcements``, of a scheduled announcement at its time (``schedule_id``) and of the
        embedded server; recorded in the audit log. Bad input raises BadInput. A key already
        used by ``author`` returns the first announcement instead."""
        now = self._now()
        draft = parse_draft(payload, now=now)
        members = await self.broker.audience_members(draft.audience)
        if members.unknown:
            raise BadInput(
                f"the audience names what does not exist: {', '.join(members.unknown)}",
                "audience",
            )
        record = await self.broker.publish(
            draft,
            author=author,
            now=now,
            idempotency_key=idempotency_key,
            recipients=members.recipients,
        )
        if record.created_at != now:
            log.info("publish by %r repeated with its idempotency key: %s", author, record.id)
            return record
        self.metrics.published += 1
        log.info("announcement %s published by %r", record.id, author)
        await audit.record(
            self.broker,
            actor=author,
            action=PUBLISHED,
            now=now,
            announcement_id=record.id,
            schedule_id=schedule_id,
            detail=record.title,
        )
        return record

    async def list(self, request: web.Request) -> web.Response:
        viewer = self._caller(request)
        since = request.query.get("since") or None
        limit = int_query(
            request, "limit", default=self.settings.list_limit, low=1, high=self.settings.list_max
        )
        before = request.query.get("before") or None
        query = request.query.get("q", "").strip().casefold()
        if before is not None or query:
            # a sent list past thousands: searched, paged by id both ways (docs/api.md)
            if len(query) > MAX_TITLE:
                raise BadInput(f"q is longer than {MAX_TITLE} characters", "q")
            try:
                page = await self.broker.page_visible(
                    viewer,
                    after=since,
                    before=before,
                    query=query or None,
                    limit=limit,
                    now=self._now(),
                    include_revoked=viewer.publisher,
                )
            except InvalidCursor as exc:
                raise BadInput(str(exc), "before" if before else "since") from None
            return web.json_response(
                [codec.listed_json(r, publisher=viewer.publisher) for r in page]
            )
        # publishers also get the revoked ones, marked (DESIGN.md: DELETE keeps the record)
        try:
            records = await self.broker.list_visible(
                viewer,
                after=since,
                limit=limit,
                now=self._now(),
                include_revoked=viewer.publisher,
            )
        except InvalidCursor as exc:
            raise BadInput(str(exc), "since") from None
        return web.json_response(
            [codec.listed_json(r, publisher=viewer.publisher) for r in records]
        )

    async def _visible(
        self, request: web.Request, viewer: Principal, *, revoked: bool = False
    ) -> Record:
        """The announcement in the path, if it exists, ``viewer`` may see it and it is not
        revoked (with ``revoked``: revoked or not, for a publisher reading its record)."""
        record = await self.broker.get(request.match_info["id"])
        if (
            record is None
            or (record.revoked and not revoked)
            or not record.audience.includes(viewer)
        ):
            raise http_error(web.HTTPNotFound, "no such announcement")
        return record

    async def ack(self, request: web.Request) -> web.Response:
        viewer = self._caller(request)
        record = await self._visible(request, viewer)
        acked_at = await self.broker.ack(record.id, viewer.user_id, now=self._now())
        self.metrics.acks += 1
        return web.json_response({"id": record.id, "acked_at": codec.iso(acked_at)})

    async def acks(self, request: web.Request) -> web.Response:
        viewer = self._caller(request, publisher=True)
        record = await self._visible(request, viewer, revoked=True)  # the record is kept
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
            raise http_error(web.HTTPNotFound, "no such announcement")
        return web.json_response({"id": ann_id, "revoked": True})

    async def revoke_id(self, ann_id: str, *, by: str) -> bool:
        """Revoke (once; again is a no-op), recording when and by whom; the announcement and
        its receipts are kept. False when the id is unknown."""
        record = await self.broker.get(ann_id)
        if record is None:
            return False
        if not record.revoked:
            now = self._now()
            await self.broker.revoke(record.id, by=by, now=now)
            self.metrics.revoked += 1
            log.info("announcement %s revoked by %r", record.id, by)
            await audit.record(
                self.broker,
                actor=by,
                action=REVOKED,
                now=now,
                announcement_id=record.id,
                detail=record.title,
            )
        return True

    async def correct(self, request: web.Request) -> web.Response:
        """``PATCH /announcements/{id}`` (publishers) ``{title?, body?, url?, priority?,
        expires_at?}``: the corrected announcement as ``GET /announcements`` lists it (its
        ``revision`` one more); its audience's trays get an ``update`` event. 404 unknown,
        409 revoked; its reach is kept."""
        author = self._caller(request, publisher=True)
        payload = await json_body(request, self.settings)
        try:
            record = await self.correct_payload(
                request.match_info["id"], payload, by=author.user_id
            )
        except AlreadyRevoked:
            raise http_error(
                web.HTTPConflict, "this announcement was revoked: it cannot be corrected"
            ) from None
        if record is None:
            raise http_error(web.HTTPNotFound, "no such announcement")
        return web.json_response(codec.listed_json(record, publisher=True))

    async def correct_payload(self, ann_id: str, payload: Any, *, by: str) -> Record | None:
        """Validate a correction (the API's JSON body), store it and fan out its ``update``:
        the one correction path, of ``PATCH`` and of the embedded server. None when the id is
        unknown; BadInput, or AlreadyRevoked when it was revoked."""
        now = self._now()
        correction = parse_correction(payload, now=now)
        record = await self.broker.correct(ann_id, correction, by=by, now=now)
        if record is not None:
            log.info("announcement %s corrected by %r (revision %d)", ann_id, by, record.revision)
            await audit.record(
                self.broker,
                actor=by,
                action=CORRECTED,
                now=now,
                announcement_id=record.id,
                detail=record.title,
            )
        return record

    async def remind(self, request: web.Request) -> web.Response:
        """``POST /announcements/{id}/remind`` (publishers) ``{"who": "unread"}`` or ``{"who":
        "unacknowledged"}`` (urgent ones only: the others ask nobody to acknowledge): a
        ``remind`` event to exactly those recipients, recorded in the reach; answers
        ``{"reminded": n}``. 404 unknown, 409 revoked."""
        author = self._caller(request, publisher=True)
        obj = require_object(await json_body(request, self.settings))
        try:
            count = await self.remind_who(
                request.match_info["id"], obj.get("who"), by=author.user_id
            )
        except AlreadyRevoked:
            raise http_error(
                web.HTTPConflict, "this announcement was revoked: there is nothing to remind of"
            ) from None
        if count is None:
            raise http_error(web.HTTPNotFound, "no such announcement")
        return web.json_response({"reminded": count})

    async def remind_who(self, ann_id: str, who: Any, *, by: str) -> int | None:
        """Remind those of the announcement's recipients ``who`` says (``unread``, or for an
        urgent one ``unacknowledged``), as its reach counts them now: the one reminder path.
        Returns how many; None when the id is unknown; BadInput, or AlreadyRevoked."""
        if who not in reach.REMIND_WHO:
            raise BadInput('who must be "unread" or "unacknowledged"', "who")
        record = await self.broker.get(ann_id)
        if record is None:
            return None
        if record.revoked:
            raise AlreadyRevoked(f"announcement {ann_id} was revoked")
        if who == reach.UNACKNOWLEDGED and not reach.requires_ack(record):
            raise BadInput(
                "only urgent announcements ask to be acknowledged: remind those who have not"
                ' read it ("who": "unread")',
                "who",
            )
        targets = reach.remind_targets(await self._reach_of(record), who)
        now = self._now()
        if targets and await self.broker.remind(record.id, targets, by=by, now=now) is None:
            return None
        log.info("announcement %s: %d reminded (%s) by %r", record.id, len(targets), who, by)
        await audit.record(
            self.broker,
            actor=by,
            action=REMINDED,
            now=now,
            announcement_id=record.id,
            detail=f"{who}: {len(targets)}",
        )
        return len(targets)

    # receipts and reach -----------------------------------------------------------------
    async def receipts(self, request: web.Request) -> web.Response:
        """``{"delivered": [ids], "displayed": [ids], "read": [ids], "acknowledged": [ids]}``
        of the caller's own user (each kind also records those it implies:
        :data:`~app.server.model.IMPLIED`): ids it may not see (unknown, revoked, not
        addressed to it) are ignored and counted. Answers ``{"recorded": n, "ignored": m}``
        (receipts, not ids)."""
        viewer = self._caller(request)
        obj = require_object(await json_body(request, self.settings))
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
            raise http_error(web.HTTPNotFound, "no such announcement")
        return await self._reach_of(record)

    async def _reach_of(self, record: Record) -> dict[str, Any]:
        named = await self.broker.recipients(record.id)
        receipts = await self.broker.receipts(record.id)
        # its rows are its recipients and those who sent receipts (someone who joined one of
        # its groups since): only their users are read, by name, not every user
        everyone = set(named) | {r.user_id for r in receipts}
        users = await self.broker.users_named(everyone)
        never = await self.broker.never_connected(everyone)
        return reach.reach_json(record, named, receipts, users, self.broker.online(everyone), never)

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

    async def directory_list(self, request: web.Request) -> web.Response:
        """``GET /directory``: the groups and users an audience can name; with a directory
        (``--ldap-url``), ``"sync"`` says when it was last read and whether that failed."""
        self._caller(request, publisher=True)
        body = reach.directory_json(await self.broker.list_users())
        if self.directory is not None:
            status = await self.broker.directory_status()
            body["sync"] = status.to_json() if status is not None else None
        return web.json_response(body)

    async def directory_sync(self, request: web.Request) -> web.Response:
        """``POST /directory/sync`` (publishers): read the directory now; answers the counts,
        or 503 with the reason when it cannot be read (the last good sync stays)."""
        self._caller(request, publisher=True)
        if self.directory is None:
            raise http_error(
                web.HTTPNotFound, "this server reads no directory (--ldap-url is not set)"
            )
        try:
            status = await self.directory.sync()
        except DirectoryUnreachable as exc:
            raise http_error(
                web.HTTPServiceUnavailable,
                f"{exc}; the directory as last read is still used",
                headers={"Retry-After": str(self.settings.retry_after)},
            ) from None
        return web.json_response(status.to_json())

    async def console_events(self, request: web.Request) -> web.StreamResponse:
        """Publishers' live signal: ``event: reach`` ``{"id"}`` whenever receipts of that
        announcement are recorded or it is revoked (on any process), ``: ping`` comments, and
        ``event: close`` when the token expires or the server stops."""
        claims = self._claims(request)
        if not claims.principal.publisher:
            raise http_error(web.HTTPForbidden, "this needs a publisher account")
        self._take_stream_slot()
        try:
            return await self._console_events(request, claims)
        finally:
            self._give_stream_slot()

    async def _console_events(
        self, request: web.Request, claims: AccessClaims
    ) -> web.StreamResponse:
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=CONSOLE_QUEUE)

        def changed(ann_id: str) -> None:
            if not queue.full():
                queue.put_nowait(ann_id)

        unwatch = self.broker.watch_reach(changed)
        self._console_queues.add(queue)
        response = event_stream()
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
        directory = await self._directory_health() if not problem else None
        return web.json_response(
            {
                "status": status,
                "version": __version__,
                "connections": self.metrics.connections,
                "uptime_s": round(self._clock() - self._started, 3),
                **({"problem": problem} if problem else {}),
                **({"directory": directory} if directory else {}),
            },
            status=200 if status == "ok" else 503,
        )

    async def _directory_health(self) -> dict[str, Any] | None:
        """The directory's line of /healthz: ``warn`` (not down: the last good sync is used)
        while the last attempt failed; None without a directory."""
        if self.directory is None:
            return None
        status = await self.broker.directory_status()
        if status is None:
            return {"status": "warn", "problem": "the directory was not read yet"}
        return {
            "status": "warn" if status.problem else "ok",
            "synced_at": status.synced_at,
            "people": status.people,
            **({"problem": status.problem} if status.problem else {}),
        }

    async def prometheus(self, request: web.Request) -> web.Response:
        if self._metrics_token is not None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            given = token.strip().encode()
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given, self._metrics_token.encode()
            ):
                raise http_error(web.HTTPUnauthorized, "/metrics needs the metrics token")
        stats = self.broker.stats()
        text = self.metrics.prometheus(subscriptions=stats.subscriptions, extra=stats.extra)
        return web.Response(
            text=text,
            content_type="text/plain",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    async def on_shutdown(self, app: web.Application) -> None:
        # the streams' clients are asked to come back spread over a window that grows with
        # how many there are (app/server/returns.py)
        self.stream_context.returns.begin(self.metrics.connections)
        self.broker.close_local_streams(SHUTDOWN)
        for queue in list(self._console_queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)


API = web.AppKey("api", Api)
