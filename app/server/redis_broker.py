"""The scale-out backend: all shared state in Redis, one ``XREAD BLOCK`` loop per process.

Several server processes share one Redis and serve the same users with no sticky sessions. Keys,
all under a prefix (default ``tray-notifier:``):

=====================  ===========  ==========================================================
key                    type         holds
=====================  ===========  ==========================================================
``announcements``      stream       one entry per announcement; the entry id IS the announcement
                                    id (and the SSE ``id:``), field ``data`` is its JSON; and
                                    one entry per change (correction, reminder, revoke), field
                                    ``change``: its entry id is its stream position, so changes
                                    and announcements share one order
``control``            stream       ``close`` and ``reach`` (receipts recorded) commands for
                                    every process (``revoke`` from servers before corrections)
``corrections``        hash         announcement id -> JSON: its corrected fields and revision
``reminded:{id}``      hash         user id -> when the last reminder was sent to them
``reminders:{id}``     hash         user id -> how many reminders were sent to them
``revoked``            hash         announcement id -> revoked_at (the announcement is kept)
``revoked-by``         hash         announcement id -> the publisher who revoked it
``acks:{id}``          hash         user id -> acked_at (first ack wins)
``reads:{id}``         hash         user id -> read_at (first read receipt wins)
``displays:{id}``      hash         user id -> displayed_at (first displayed receipt wins)
``deliveries:{id}``    hash         user id -> delivered_at (first delivered receipt wins)
``recipients``         hash         announcement id -> JSON list of the user ids its audience
                                    named when it was published
``seen-id-tokens:{fp}`` string      an ID token that signed in once; expires with the token
``refresh:{hash}``     hash         one refresh token (user, session, expiry, used); expires
``session:{sid}``      set          the token hashes of one login session; expires
``signing-key``        string       the token signing key every process uses (the first
                                    process to start puts its own; see
                                    :meth:`RedisBroker.shared_signing_key`)
=====================  ===========  ==========================================================

The users, the organisation's directory and their group index (``users``, ``identities``,
``directory``, ``directory-groups``, ``user-group:{g}``, ``local-accounts``, ``group-index``,
``directory-status``, ``connected``) are :mod:`app.server.redis_people`'s keys; the officer's
tools' (audit, schedules, saved forms) are :mod:`app.server.redis_officer`'s.

Fan-out: each process runs ONE loop, ``XREAD BLOCK`` on both streams from the last ids it has
seen, and hands each entry to its in-memory :class:`~app.server.hub.Hub`, which indexes the
streams of this process by user, group and "sees everything". There is never one Redis read per
connection.

The control channel is a second stream, not pub/sub: the same blocking read serves it (no second
connection, no second loop), and a stream keeps what was sent while a process was cut off from
Redis, so a logout or a revocation still reaches that process's streams when Redis comes back;
pub/sub would drop it silently. It is trimmed to about
:attr:`~app.server.config.RedisSettings.control_maxlen` entries.

Losing Redis: open streams stay connected (they need nothing from Redis until the next
delivery), the loop retries with backoff and reports the outage in :meth:`RedisBroker.stats`
(``/healthz``, ``/metrics``), then resumes from the last ids it saw, so the streams catch up on
what other processes published meanwhile. A call that needs Redis while it is down raises
:class:`~app.server.model.BrokerUnavailable` (HTTP 503): a publish is refused, never dropped.
Every command is bounded by :attr:`~app.server.config.RedisSettings.timeout`; commands are never
retried blindly (a retried ``XADD`` could publish twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, FieldT

from app.core.model import parse_time
from app.server import codec
from app.server.broker import REMEMBER, Broker
from app.server.config import RedisSettings
from app.server.hub import Hub, Subscription
from app.server.model import (
    ACKNOWLEDGED,
    DELIVERED,
    DISPLAYED,
    IMPLIED,
    NOTHING_YET,
    READ,
    REMIND,
    REVOKE,
    UPDATE,
    Ack,
    AlreadyRevoked,
    Audience,
    BrokerStats,
    BrokerUnavailable,
    Change,
    Correction,
    Delivery,
    Draft,
    InvalidCursor,
    Principal,
    Receipt,
    Record,
    RefreshGrant,
    Revocation,
)
from app.server.redis_officer import RedisOfficer
from app.server.redis_people import RedisPeople

log = logging.getLogger(__name__)

# Errors that mean "Redis cannot be reached right now" (refused, reset, timed out, still loading).
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")
# a publish's script must run this long before the command timeout, or it refuses: the reply
# then still arrives before this process gives up on it (seconds)
PUBLISH_MARGIN = 1.0
_CORRECT_ATTEMPTS = 5  # a correction read again when another came in between, at most
_REMINDED, _REMINDERS = "reminded", "reminders"  # receipt-like keys: the last reminder, count

# Consume a refresh token: single use; a used one presented again revokes its whole session.
# KEYS[1] token key; ARGV: token key prefix, session key prefix, now (epoch seconds).
_USE_REFRESH = """
local f = redis.call('HMGET', KEYS[1], 'user_id', 'session_id', 'expires_at', 'used')
if not f[1] then return false end
local session = ARGV[2] .. f[2]
if f[4] == '1' then
  for _, h in ipairs(redis.call('SMEMBERS', session)) do redis.call('DEL', ARGV[1] .. h) end
  redis.call('DEL', session, KEYS[1])
  return {'reused', f[1], f[2]}
end
redis.call('HSET', KEYS[1], 'used', '1')
if tonumber(f[3]) <= tonumber(ARGV[3]) then return {'expired'} end
return {'ok', f[1], f[2]}
"""

# Logout: delete the token and every other token of its session; returns {user, session}.
# KEYS[1] token key.
_REVOKE_SESSION = """
local f = redis.call('HMGET', KEYS[1], 'user_id', 'session_id')
if not f[2] then return false end
local session = ARGV[2] .. f[2]
for _, h in ipairs(redis.call('SMEMBERS', session)) do redis.call('DEL', ARGV[1] .. h) end
redis.call('DEL', session, KEYS[1])
return {f[1], f[2]}
"""

# Publish: XADD unless too late or already done under the idempotency key. KEYS: the stream,
# the idempotency key (or a placeholder), the recipients hash; ARGV: deadline (Redis's own
# clock, ms), trim kind (MAXLEN or MINID), trim value, use the key ("1"/"0"), its ttl (s), the
# recipients (JSON), then the entry's fields.
# Past the deadline the caller has given up (answered 503): storing it then would be a
# phantom that a retry duplicates, so the script refuses instead.
_PUBLISH = """
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > tonumber(ARGV[1]) then
  return {'late'}
end
if ARGV[4] == '1' then
  local first = redis.call('GET', KEYS[2])
  if first then return {'again', first} end
end
local id = redis.call('XADD', KEYS[1], ARGV[2], '~', ARGV[3], '*', unpack(ARGV, 7))
if ARGV[4] == '1' then redis.call('SET', KEYS[2], id, 'EX', ARGV[5]) end
redis.call('HSET', KEYS[3], id, ARGV[6])
return {'new', id}
"""

# Revoke every session of a user: KEYS[1] the user's set of session ids.
_END_USER = """
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local session = ARGV[2] .. sid
  for _, h in ipairs(redis.call('SMEMBERS', session)) do redis.call('DEL', ARGV[1] .. h) end
  redis.call('DEL', session)
end
redis.call('DEL', KEYS[1])
return 1
"""

# Revoke once: mark (when and by whom), and only the first time add the revoke to the
# announcements stream (a change at its own position: every process fans it out, and streams
# resuming replay it). KEYS: revoked hash, announcements stream, revoked-by hash; ARGV: id,
# revoked_at, the change entry's JSON, trim kind, trim value, revoked by. Returns the entry id,
# or 0 when it was revoked before.
_REVOKE = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
return redis.call('XADD', KEYS[2], ARGV[4], '~', ARGV[5], '*', 'change', ARGV[3])
"""

# Correct: unless revoked or corrected meanwhile (revision not the one read), store the
# corrected fields and add the update to the announcements stream. KEYS: corrections hash,
# revoked hash, announcements stream; ARGV: id, the revision read, the correction JSON, the
# change entry's JSON, trim kind, trim value. Returns {'ok', entry id}, {'revoked'} or
# {'again'} (read it again and retry).
_CORRECT = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'revoked'} end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local revision = 0
if raw then revision = tonumber(cjson.decode(raw)['revision']) or 0 end
if revision ~= tonumber(ARGV[2]) then return {'again'} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return {'ok', redis.call('XADD', KEYS[3], ARGV[5], '~', ARGV[6], '*', 'change', ARGV[4])}
"""

# Remind: unless revoked, add the reminder to the announcements stream and record it for each
# user. KEYS: revoked hash, announcements stream, reminded:{id}, reminders:{id}; ARGV: id, the
# change entry's JSON, trim kind, trim value, the time, then the users. Returns {'ok', entry
# id} or {'revoked'}.
_REMIND = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'revoked'} end
local id = redis.call('XADD', KEYS[2], ARGV[3], '~', ARGV[4], '*', 'change', ARGV[2])
for i = 6, #ARGV do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[5])
  redis.call('HINCRBY', KEYS[4], ARGV[i], 1)
end
return {'ok', id}
"""

# The shared signing key: the first process's own key, unless one is there already; returns
# the one in Redis. KEYS[1] the key; ARGV[1] this process's key.
_SIGNING_KEY = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
"""


class RedisBroker(RedisOfficer, RedisPeople, Broker):
    """:class:`Broker` on Redis Streams; create it on the event loop that will use it, then
    ``await start()`` before serving (it pins where the fan-out loop begins)."""

    def __init__(
        self,
        settings: RedisSettings,
        *,
        session_memory: float = REMEMBER,
        idempotency_ttl: float = REMEMBER,
    ) -> None:
        """``session_memory`` and ``idempotency_ttl``: see :class:`~app.server.broker.Broker`."""
        super().__init__(session_memory=session_memory, idempotency_ttl=idempotency_ttl)
        self._settings = settings
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.url,
            max_connections=settings.max_connections,
            timeout=settings.pool_timeout,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            decode_responses=True,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._use_refresh = self._redis.register_script(_USE_REFRESH)
        self._revoke_session = self._redis.register_script(_REVOKE_SESSION)
        self._revoke_once = self._redis.register_script(_REVOKE)
        self._end_user = self._redis.register_script(_END_USER)
        self._publish = self._redis.register_script(_PUBLISH)
        self._signing_key = self._redis.register_script(_SIGNING_KEY)
        self._open_people()  # users and the directory: app/server/redis_people.py
        self._open_officer()  # the officer's tools: app/server/redis_officer.py
        self._correct = self._redis.register_script(_CORRECT)
        self._remind = self._redis.register_script(_REMIND)
        prefix = settings.prefix
        self._k_ann = prefix + "announcements"
        self._k_ctl = prefix + "control"
        self._k_revoked = prefix + "revoked"
        self._k_revoked_by = prefix + "revoked-by"
        self._k_corrections = prefix + "corrections"  # announcement id -> corrected fields
        self._k_key = prefix + "signing-key"
        self._k_used_id = prefix + "seen-id-tokens:"  # + an ID token's fingerprint; expires
        self._k_recipients = prefix + "recipients"
        self._k_refresh = prefix + "refresh:"  # + token hash
        self._k_session = prefix + "session:"  # + session id
        self._k_user_sessions = prefix + "user-sessions:"  # + user id: its session ids
        self._k_idem = prefix + "idempotency:"  # + author NUL key -> the first id
        self._k_ended = prefix + "ended-sessions"  # session id -> JSON {user, until}
        self._k_ended_users = prefix + "ended-users"  # user id -> JSON {before, until}
        self._hub = Hub()
        self._last_ann = self._last_ctl = "0-0"
        self._delivered = asyncio.Condition()
        self._loop_task: asyncio.Task[None] | None = None
        self._up = False
        self._outages = 0
        self._closing = False

    # lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Check Redis is there and start the fan-out loop from the streams' current ends."""
        with self._unavailable():
            self._last_ann = await self._last_id(self._k_ann)
            self._last_ctl = await self._last_id(self._k_ctl)
            await self._load_ended()
            await self._index_groups_once()
        self._up = True
        log.info("Redis Streams backend on %s", self._settings.where)
        self._loop_task = asyncio.get_running_loop().create_task(self._fan_out(), name="xread")
        self._loop_task.add_done_callback(self._fan_out_ended)

    async def close(self) -> None:
        self._closing = True  # redis-py may turn the cancellation into a ConnectionError
        if self._loop_task is not None:
            self._loop_task.cancel()
            # a cancel that lands while redis-py reads a reply does not end its XREAD: closing
            # the connection does (without it, a stop waited out ``block_ms``)
            await self._redis.connection_pool.disconnect(inuse_connections=True)
            done, _ = await asyncio.wait([self._loop_task], timeout=self._settings.timeout)
            if not done:
                log.error(
                    "the Redis fan-out loop did not stop within %.0f s", self._settings.timeout
                )
        await self._redis.aclose(close_connection_pool=True)

    async def _load_ended(self) -> None:
        """Ended sessions from Redis (a process that starts later refuses them too); the
        control stream keeps it current from here on."""
        now = time.time()
        for key, end in (
            (self._k_ended, self._end_local),
            (self._k_ended_users, self._end_user_local),
        ):
            stale = []
            for name, raw in (await self._redis.hgetall(key)).items():
                row = json.loads(raw)
                if row["until"] < now:
                    stale.append(name)
                else:
                    end(str(name), row, now)
            if stale:
                await self._redis.hdel(key, *stale)

    def _end_local(self, sid: str, row: Mapping[str, Any], now: float) -> None:
        self._hub.end_session(str(row["user"]), sid, until=float(row["until"]), now=now)

    def _end_user_local(self, user: str, row: Mapping[str, Any], now: float) -> None:
        self._hub.end_user_sessions(
            user, before=float(row["before"]), until=float(row["until"]), now=now
        )

    async def shared_signing_key(self, local: bytes) -> bytes:
        """The key in Redis, put there from ``local`` by the first process that started (every
        process on this Redis, whatever its data folder, then signs and checks tokens with the
        same key). Raises ValueError when what Redis holds is not a key (never shown)."""
        with self._unavailable():
            shared = await self._signing_key(keys=[self._k_key], args=[local.decode("ascii")])
        text = str(shared or "")
        if len(text) < 64 or not text.isascii() or not text.isprintable() or " " in text:
            raise ValueError(
                f"the shared token signing key in Redis ({self._k_key} at"
                f" {self._settings.where}) is damaged: delete that key (redis-cli DEL"
                f" {self._k_key}) and start the servers again (every login then ends)"
            )
        return text.encode("ascii")

    async def _last_id(self, key: str) -> str:
        last = await self._redis.xrevrange(key, count=1)
        return str(last[0][0]) if last else "0-0"

    # ID tokens ------------------------------------------------------------------------
    async def use_once(self, key: str, *, until: float, now: float) -> bool:
        with self._unavailable():
            first = await self._redis.set(
                self._k_used_id + key, "1", nx=True, pxat=max(int(until * 1000), 1)
            )
        return bool(first)

    # refresh tokens ---------------------------------------------------------------------
    async def add_refresh_token(
        self, token_hash: str, *, user_id: str, session_id: str, expires_at: float
    ) -> None:
        key, session = self._k_refresh + token_hash, self._k_session + session_id
        expire_ms = int(expires_at * 1000)
        with self._unavailable():
            async with self._redis.pipeline(transaction=True) as pipe:
                fields: dict[FieldT, EncodableT] = {
                    "user_id": user_id,
                    "session_id": session_id,
                    "expires_at": repr(expires_at),
                    "used": "0",
                }
                pipe.hset(key, mapping=fields)
                pipe.pexpireat(key, expire_ms)
                pipe.sadd(session, token_hash)
                pipe.pexpireat(session, expire_ms)
                pipe.sadd(self._k_user_sessions + user_id, session_id)
                pipe.pexpireat(self._k_user_sessions + user_id, expire_ms, gt=True)
                await pipe.execute()

    async def use_refresh_token(self, token_hash: str, *, now: float) -> RefreshGrant | None:
        with self._unavailable():
            reply = await self._use_refresh(
                keys=[self._k_refresh + token_hash],
                args=[self._k_refresh, self._k_session, repr(now)],
            )
        if not reply:
            return None
        if reply[0] == "reused":
            log.warning("a used refresh token was presented again: session revoked")
            await self._end_session(reply[1], reply[2], now)
        if reply[0] != "ok":
            return None
        return RefreshGrant(user_id=reply[1], session_id=reply[2])

    async def revoke_refresh_token(self, token_hash: str, *, now: float) -> None:
        with self._unavailable():
            reply = await self._revoke_session(
                keys=[self._k_refresh + token_hash], args=[self._k_refresh, self._k_session]
            )
        if reply:
            await self._end_session(reply[0], reply[1], now)

    async def _end_session(self, user_id: str, session_id: str, now: float) -> None:
        """End here at once, remember it in Redis, and tell every process."""
        row = {"user": user_id, "until": now + self.session_memory}
        self._end_local(session_id, row, now)
        fields: dict[FieldT, EncodableT] = {
            "kind": "end-session",
            "session": session_id,
            "row": json.dumps(row),
        }
        with self._unavailable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._k_ended, session_id, json.dumps(row))
                pipe.xadd(
                    self._k_ctl, fields, maxlen=self._settings.control_maxlen, approximate=True
                )
                await pipe.execute()

    async def end_user_sessions(self, user_id: str, *, now: float) -> None:
        row = {"before": now, "until": now + self.session_memory}
        self._end_user_local(user_id, row, now)
        fields: dict[FieldT, EncodableT] = {
            "kind": "end-user",
            "user": user_id,
            "row": json.dumps(row),
        }
        with self._unavailable():
            await self._end_user(
                keys=[self._k_user_sessions + user_id], args=[self._k_refresh, self._k_session]
            )
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(self._k_ended_users, user_id, json.dumps(row))
                pipe.xadd(
                    self._k_ctl, fields, maxlen=self._settings.control_maxlen, approximate=True
                )
                await pipe.execute()

    # announcements ----------------------------------------------------------------------
    async def publish(
        self,
        draft: Draft,
        *,
        author: str,
        now: datetime,
        idempotency_key: str | None = None,
        recipients: Collection[str] = (),
    ) -> Record:
        """XADD (trimmed to the retention) in a script that refuses once the deadline on
        Redis's own clock has passed (this call has then raised BrokerUnavailable: nothing
        is stored behind a 503), then wait briefly until this process's loop has fanned it
        out, so a local subscriber has it queued when ``publish`` returns."""
        unnumbered = codec.new_record(draft, ann_id="", author=author, now=now)
        fields = [x for pair in codec.to_entry(unnumbered).items() for x in pair]
        trim_kind, trim_value = self._trim()
        key = self._k_idem + author + "\0" + (idempotency_key or "")
        with self._unavailable():
            seconds, micros = await self._redis.time()
            budget = self._settings.timeout - PUBLISH_MARGIN
            deadline_ms = int(seconds) * 1000 + int(micros) // 1000 + int(budget * 1000)
            reply = await self._publish(
                keys=[self._k_ann, key, self._k_recipients],
                args=[
                    deadline_ms,
                    trim_kind,
                    trim_value,
                    "1" if idempotency_key is not None else "0",
                    max(int(self.idempotency_ttl), 1),
                    json.dumps(sorted(recipients)),
                    *fields,
                ],
            )
        if reply[0] == "late":
            raise BrokerUnavailable(
                f"the announcement store (Redis at {self._settings.where}) answered too late:"
                " nothing was stored; try again in a few seconds"
            )
        ann_id = str(reply[1])
        if reply[0] == "again":
            first = await self.get(ann_id)
            if first is not None:
                return first
            # trimmed away since: the key still names it
            return dataclasses.replace(unnumbered, id=ann_id)
        await self._wait_delivered(ann_id)
        return dataclasses.replace(unnumbered, id=ann_id)

    def _trim(self) -> tuple[str, str]:
        if self._settings.max_age is None:
            return "MAXLEN", str(self._settings.maxlen)
        oldest_ms = int((time.time() - self._settings.max_age) * 1000)
        return "MINID", f"{max(oldest_ms, 0)}-0"

    async def _wait_delivered(self, ann_id: str) -> None:
        async with self._delivered:
            try:
                await asyncio.wait_for(
                    self._delivered.wait_for(lambda: _key(self._last_ann) >= _key(ann_id)),
                    timeout=self._settings.timeout,
                )
            except TimeoutError:
                log.warning("announcement %s is stored; local fan-out is late", ann_id)

    async def get(self, ann_id: str) -> Record | None:
        if not _ID.fullmatch(ann_id):
            return None
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:  # one round trip
                pipe.xrange(self._k_ann, min=ann_id, max=ann_id, count=1)
                pipe.hget(self._k_revoked, ann_id)
                pipe.hget(self._k_revoked_by, ann_id)
                pipe.hget(self._k_corrections, ann_id)
                entries, revoked_at, revoked_by, correction = await pipe.execute()
        if not entries:
            return None
        entry_id, fields = entries[0]
        # None: only for an entry deleted under a consumer group, never here; a change's
        # entry is no announcement
        if fields is None or codec.CHANGE_FIELD in fields:
            return None
        return codec.from_entry(
            str(entry_id),
            fields,
            revoked_at=_text(revoked_at),
            revoked_by=_text(revoked_by),
            correction=_text(correction),
        )

    async def list_visible(
        self,
        viewer: Principal,
        *,
        after: str | None,
        limit: int,
        now: datetime,
        include_revoked: bool = False,
    ) -> list[Record]:
        if after is None:
            newest = await self._scan(
                viewer, limit, now, forward=False, bound="+", with_revoked=include_revoked
            )
            return [r for r in newest[::-1] if isinstance(r, Record)]
        found = await self._scan(
            viewer,
            limit,
            now,
            forward=True,
            bound=_cursor(after),
            with_revoked=include_revoked,
        )
        return [r for r in found if isinstance(r, Record)]

    async def replay(
        self, viewer: Principal, *, after: str, limit: int, now: datetime
    ) -> list[Delivery]:
        return await self._scan(
            viewer, limit, now, forward=True, bound=_cursor(after), changes=True
        )

    async def newest_visible_id(self, viewer: Principal, *, upto: str, now: datetime) -> str | None:
        cursor = "0-0" if upto == NOTHING_YET else upto
        if not _ID.fullmatch(cursor):
            raise InvalidCursor(f"{upto!r} is not an announcement id of this server")
        ms, seq = _key(cursor)
        above = f"{ms}-{seq + 1}"  # the scan's bound is exclusive: start just above ``upto``
        page = self._settings.page_max
        # the newest announcement, as the contract says (DESIGN.md "Server API"); a change after
        # it is replayed on resume, and a client ignores a change of one it never had
        newest = await self._scan(viewer, 1, now, forward=False, bound=above, page=page)
        return newest[0].position if newest else None

    async def _scan(
        self,
        viewer: Principal,
        limit: int,
        now: datetime,
        *,
        forward: bool,
        bound: str,
        page: int | None = None,
        with_revoked: bool = False,
        changes: bool = False,
    ) -> list[Delivery]:
        """Up to ``limit`` visible records, paging from ``bound`` (exclusive, unless ``+``);
        revoked ones only ``with_revoked``; with ``changes`` also the changes that reach
        ``viewer``, in stream order."""
        page = page or min(max(limit, self._settings.page_min), self._settings.page_max)
        found: list[Delivery] = []
        with self._unavailable():
            while len(found) < limit:
                start = bound if bound == "+" else "(" + bound
                if forward:
                    entries = await self._redis.xrange(self._k_ann, min=start, count=page)
                else:
                    entries = await self._redis.xrevrange(self._k_ann, max=start, count=page)
                if not entries:
                    break
                found += await self._visible(entries, viewer, now, with_revoked, changes)
                if len(entries) < page:
                    break
                bound = str(entries[-1][0])
        return found[:limit]

    async def _visible(
        self,
        entries: Sequence[Any],
        viewer: Principal,
        now: datetime,
        with_revoked: bool,
        changes: bool = False,
    ) -> list[Delivery]:
        """The announcements of ``entries`` that ``viewer`` may see (corrected, not expired;
        revoked ones only ``with_revoked``), and with ``changes`` the changes that reach it,
        in stream order."""
        anns = [(str(i), f) for i, f in entries if codec.CHANGE_FIELD not in f]
        found: dict[str, Delivery] = {}
        if anns:
            ids = [i for i, _ in anns]
            async with self._redis.pipeline(transaction=False) as pipe:  # one round trip
                pipe.hmget(self._k_revoked, ids)
                pipe.hmget(self._k_revoked_by, ids)
                pipe.hmget(self._k_corrections, ids)
                revoked, by, corrections = await pipe.execute()
            for (i, f), at, who, fixed in zip(anns, revoked, by, corrections, strict=True):
                if at is not None and not with_revoked:
                    continue
                r = codec.from_entry(
                    i, f, revoked_at=_text(at), revoked_by=_text(who), correction=_text(fixed)
                )
                if r.audience.includes(viewer) and (r.expires_at is None or r.expires_at > now):
                    found[i] = r
        if changes:
            for i, f in entries:
                if codec.CHANGE_FIELD in f:
                    change = codec.from_change_entry(str(i), f)
                    if change.reaches(viewer):
                        found[change.position] = change
        return [found[str(i)] for i, _ in entries if str(i) in found]

    async def revoke(
        self, ann_id: str, *, by: str = "", now: datetime | None = None
    ) -> Record | None:
        """Marks it once (when and by whom: a second revoke keeps the first) and queues the
        revoke on the control stream, which every process's loop fans out to its streams and
        reports to its reach watchers."""
        record = await self.get(ann_id)
        if record is None or record.revoked:
            return record
        at = (now or datetime.now(UTC)).astimezone(UTC)
        change = Change("", REVOKE, record.id, record.audience, codec.revoke_json(record.id))
        trim_kind, trim_value = self._trim()
        with self._unavailable():
            entry_id = await self._revoke_once(
                keys=[self._k_revoked, self._k_ann, self._k_revoked_by],
                args=[
                    ann_id,
                    codec.iso(at),
                    codec.to_change_entry(change),
                    trim_kind,
                    trim_value,
                    by,
                ],
            )
        if entry_id:
            await self._wait_delivered(str(entry_id))
        return await self.get(ann_id)

    async def correct(
        self, ann_id: str, correction: Correction, *, by: str, now: datetime
    ) -> Record | None:
        """Reads the record, then stores the correction and adds the update to the stream in
        one script, unless another correction came in between (then again)."""
        at = now.astimezone(UTC)
        trim_kind, trim_value = self._trim()
        for _ in range(_CORRECT_ATTEMPTS):
            record = await self.get(ann_id)
            if record is None:
                return None
            if record.revoked:
                raise AlreadyRevoked(f"announcement {ann_id} was revoked")
            corrected = correction.apply(record, now=at)
            change = Change("", UPDATE, record.id, record.audience, codec.update_json(corrected))
            with self._unavailable():
                reply = await self._correct(
                    keys=[self._k_corrections, self._k_revoked, self._k_ann],
                    args=[
                        ann_id,
                        record.revision,
                        codec.to_correction(corrected),
                        codec.to_change_entry(change),
                        trim_kind,
                        trim_value,
                    ],
                )
            if reply[0] == "revoked":
                raise AlreadyRevoked(f"announcement {ann_id} was revoked")
            if reply[0] == "ok":
                await self._wait_delivered(str(reply[1]))
                return corrected
        raise BrokerUnavailable(
            f"announcement {ann_id} is being corrected by others at the same time: nothing was"
            " changed; try again"
        )

    async def remind(
        self, ann_id: str, users: Collection[str], *, by: str, now: datetime
    ) -> Change | None:
        record = await self.get(ann_id)
        if record is None:
            return None
        if record.revoked:
            raise AlreadyRevoked(f"announcement {ann_id} was revoked")
        targets = frozenset(users)
        change = Change(
            "", REMIND, record.id, record.audience, codec.remind_json(record.id), targets
        )
        trim_kind, trim_value = self._trim()
        with self._unavailable():
            reply = await self._remind(
                keys=[
                    self._k_revoked,
                    self._k_ann,
                    self._receipt_key(_REMINDED, ann_id),
                    self._receipt_key(_REMINDERS, ann_id),
                ],
                args=[
                    ann_id,
                    codec.to_change_entry(change),
                    trim_kind,
                    trim_value,
                    codec.iso(now),
                    *sorted(targets),
                ],
            )
        if reply[0] == "revoked":
            raise AlreadyRevoked(f"announcement {ann_id} was revoked")
        position = str(reply[1])
        await self._wait_delivered(position)
        return dataclasses.replace(change, position=position)

    async def ack(self, ann_id: str, user_id: str, *, now: datetime) -> datetime:
        await self.record_receipts(user_id, [(ann_id, ACKNOWLEDGED)], now=now)
        with self._unavailable():
            acked_at = await self._redis.hget(self._receipt_key(ACKNOWLEDGED, ann_id), user_id)
        return _time(str(acked_at) if acked_at is not None else None)

    def _receipt_key(self, kind: str, ann_id: str) -> str:
        name = {
            ACKNOWLEDGED: "acks",
            READ: "reads",
            DISPLAYED: "displays",
            DELIVERED: "deliveries",
            _REMINDED: "reminded",
            _REMINDERS: "reminders",
        }[kind]
        return f"{self._settings.prefix}{name}:{ann_id}"

    async def record_receipts(
        self, user_id: str, marks: Iterable[tuple[str, str]], *, now: datetime
    ) -> list[str]:
        """HSETNX per receipt (first time kept), then a ``reach`` command on the control
        stream for the ids that changed: every process's loop tells its reach watchers."""
        at = now.astimezone(UTC).isoformat()
        todo = [
            (ann_id, implied)
            for ann_id, kind in marks
            if _ID.fullmatch(ann_id)
            for implied in IMPLIED[kind]
        ]
        if not todo:
            return []
        with self._unavailable():
            async with self._redis.pipeline(transaction=True) as pipe:
                for ann_id, kind in todo:
                    pipe.hsetnx(self._receipt_key(kind, ann_id), user_id, at)
                done = await pipe.execute()
            changed = list(dict.fromkeys(a for (a, _), new in zip(todo, done, strict=True) if new))
            if changed:
                fields: dict[FieldT, EncodableT] = {"kind": "reach", "ids": json.dumps(changed)}
                await self._redis.xadd(
                    self._k_ctl, fields, maxlen=self._settings.control_maxlen, approximate=True
                )
        return changed

    async def receipts(self, ann_id: str) -> list[Receipt]:
        if not _ID.fullmatch(ann_id):
            return []
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                for kind in (DELIVERED, DISPLAYED, READ, ACKNOWLEDGED, _REMINDED, _REMINDERS):
                    pipe.hgetall(self._receipt_key(kind, ann_id))
                delivered, displayed, read, acked, reminded, counts = await pipe.execute()
        users = sorted({*delivered, *displayed, *read, *acked, *reminded})
        return [
            Receipt(
                str(u),
                delivered_at=parse_time(delivered.get(u)),
                read_at=parse_time(read.get(u)),
                acked_at=parse_time(acked.get(u)),
                displayed_at=parse_time(displayed.get(u)),
                reminded_at=parse_time(reminded.get(u)),
                reminders=int(counts.get(u) or 0),
            )
            for u in users
        ]

    async def recipients(self, ann_id: str) -> list[str]:
        if not _ID.fullmatch(ann_id):
            return []
        with self._unavailable():
            raw = await self._redis.hget(self._k_recipients, ann_id)
        return [str(u) for u in json.loads(raw)] if raw else []

    async def acks(self, ann_id: str) -> list[Ack]:
        with self._unavailable():
            rows = await self._redis.hgetall(f"{self._settings.prefix}acks:{ann_id}")
        acks = [Ack(str(user), _time(str(when))) for user, when in rows.items()]
        return sorted(acks, key=lambda a: (a.acked_at, a.user_id))

    # streams ----------------------------------------------------------------------------
    def subscribe(
        self, viewer: Principal, *, queue_size: int, on_overflow: Callable[[], None]
    ) -> Subscription:
        sub = self._hub.subscribe(viewer, queue_size=queue_size, on_overflow=on_overflow)
        # the fan-out loop hands entries to the hub in stream order: every entry after the last
        # one it handed over reaches this subscription
        sub.horizon = NOTHING_YET if self._last_ann == "0-0" else self._last_ann
        return sub

    async def close_streams(self, user_id: str, *, session_id: str | None) -> None:
        """Close here at once (works without Redis), then tell every process (503 if Redis is
        down: the streams on other processes stay open until their tokens expire)."""
        self._hub.close_user(user_id, session_id=session_id)
        fields: dict[FieldT, EncodableT] = {
            "kind": "close",
            "user": user_id,
            "session": session_id or "",
        }
        with self._unavailable():
            await self._redis.xadd(
                self._k_ctl, fields, maxlen=self._settings.control_maxlen, approximate=True
            )

    def stats(self) -> BrokerStats:
        return BrokerStats(
            subscriptions=len(self._hub),
            healthy=self._up,
            problem=None if self._up else f"Redis at {self._settings.where} is unreachable",
            extra={"redis_up": float(self._up), "redis_outages": float(self._outages)},
        )

    # the fan-out loop -------------------------------------------------------------------
    async def _fan_out(self) -> None:
        """XREAD BLOCK both streams until closed; on an outage, back off and resume where it
        was."""
        backoff = self._settings.backoff_min
        while not self._closing:
            try:
                reply = await self._redis.xread(
                    {self._k_ann: self._last_ann, self._k_ctl: self._last_ctl},
                    count=self._settings.batch,
                    block=self._settings.block_ms,
                )
            except (*_DOWN, RedisError) as exc:
                if self._closing:
                    return
                self._went_down(exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._settings.backoff_max)
                continue
            if not self._up:
                log.warning("Redis at %s is back: catching up", self._settings.where)
                # idle pooled connections still point at the old server: drop them first
                await self._redis.connection_pool.disconnect(inuse_connections=False)
                self._up = True
            backoff = self._settings.backoff_min
            await self._dispatch(_by_stream(reply))

    def _fan_out_ended(self, task: asyncio.Task[None]) -> None:
        """The loop only ends through :meth:`close`; an exception is a bug: say so loudly and
        report unhealthy, since no stream of this process would get anything any more."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._up = False
            log.critical("the Redis fan-out loop died: restart this server", exc_info=exc)

    def _went_down(self, exc: BaseException) -> None:
        if self._up:
            self._outages += 1
            log.error(
                "lost Redis at %s (%s: %s): streams stay open; publishing is refused until"
                " it is back",
                self._settings.where,
                type(exc).__name__,
                exc,
            )
        self._up = False

    async def _dispatch(self, streams: Mapping[str, Sequence[Any]]) -> None:
        # announcements first: a revoke is always written after its announcement
        for entry_id, fields in streams.get(self._k_ann, ()):
            with self._skip_bad_entry(entry_id):
                if codec.CHANGE_FIELD in fields:
                    change = codec.from_change_entry(entry_id, fields)
                    self._hub.deliver(change)
                    if change.kind != UPDATE:  # a console shows it withdrawn, or reminded
                        self._hub.reach_changed([change.id])
                else:
                    self._hub.deliver(codec.from_entry(entry_id, fields))
            self._last_ann = str(entry_id)
        for entry_id, fields in streams.get(self._k_ctl, ()):
            with self._skip_bad_entry(entry_id):
                self._control(fields)
            self._last_ctl = str(entry_id)
        async with self._delivered:
            self._delivered.notify_all()

    def _control(self, fields: Mapping[str, str]) -> None:
        if fields["kind"] == "revoke":
            audience = Audience.from_json(json.loads(fields["audience"]))
            self._hub.deliver(Revocation(fields["id"], audience))
            self._hub.reach_changed([fields["id"]])  # a console marks it withdrawn
        elif fields["kind"] == "close":
            self._hub.close_user(fields["user"], session_id=fields["session"] or None)
        elif fields["kind"] == "end-session":
            self._end_local(fields["session"], json.loads(fields["row"]), time.time())
        elif fields["kind"] == "end-user":
            self._end_user_local(fields["user"], json.loads(fields["row"]), time.time())
        elif fields["kind"] == "reach":
            self._hub.reach_changed(str(i) for i in json.loads(fields["ids"]))

    @contextlib.contextmanager
    def _skip_bad_entry(self, entry_id: str) -> Iterator[None]:
        try:
            yield
        except (ValueError, KeyError, TypeError):
            log.exception("skipped a malformed stream entry %s", entry_id)

    @contextlib.contextmanager
    def _unavailable(self) -> Iterator[None]:
        """Turn "Redis cannot be reached" into :class:`BrokerUnavailable` (HTTP 503)."""
        try:
            yield
        except _DOWN as exc:
            raise BrokerUnavailable(
                f"the announcement store (Redis at {self._settings.where}) cannot be reached:"
                " nothing was changed; try again in a few seconds"
            ) from exc


def _by_stream(reply: Any) -> dict[str, Sequence[Any]]:
    """XREAD's reply as {stream: entries}, whether RESP2 (a list) or RESP3 (a dict)."""
    if not reply:
        return {}
    if isinstance(reply, dict):
        return {str(k): v[0] if v and isinstance(v[0], list) else v for k, v in reply.items()}
    return {str(name): entries for name, entries in reply}


def _cursor(after: str) -> str:
    """A resume id or ``since`` as a stream entry id; InvalidCursor for one never issued."""
    cursor = "0-0" if after == NOTHING_YET else after
    if not _ID.fullmatch(cursor):
        raise InvalidCursor(f"{after!r} is not an announcement id of this server")
    return cursor


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _time(text: str | None) -> datetime:
    when = parse_time(text)
    if when is None:
        raise ValueError(f"a stored time is malformed: {text!r}")
    return when
