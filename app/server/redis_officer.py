"""The communications officer's tools on Redis (:class:`RedisOfficer`, a part of
:class:`~app.server.redis_broker.RedisBroker`), shared by every process. Keys, under the
backend's prefix:

======================  ===========  =========================================================
key                     type         holds
======================  ===========  =========================================================
``audit``               stream       one entry per audit line (the entry id is its id), field
                                     ``data``: JSON; never trimmed
``schedules``           hash         schedule id -> JSON (every state)
``schedules-due``       sorted set   pending schedule id -> when it may next be claimed
                                     (epoch seconds: its time, then a claim's end)
``schedules-claimed``   hash         schedule id -> the end of the claim being sent under
``schedules-failed``    set          the ids of schedules that failed (until dismissed)
``schedule-ids``        string       the last schedule id given (INCR)
``schedule-key:{a}``    string       author NUL Idempotency-Key -> the schedule id; expires
``forms:{kind}``        hash         draft or template id -> JSON
``form-ids``            string       the last form id given (INCR)
======================  ===========  =========================================================

A due schedule is claimed by one Lua script (:data:`_CLAIM`): it moves the schedule's score
to the claim's end, so no other process claims it until then; the sender marks it sent (or
failed) when done. A process that dies in between leaves the claim to run out: another one
claims it again and publishes with the same idempotency key, which returns the first
announcement (sent once).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from app.core.model import parse_time
from app.server import codec
from app.server.config import RedisSettings
from app.server.model import NOTHING_YET, InvalidCursor, Principal, Record
from app.server.officer_model import (
    CANCELLED,
    FAILED,
    PENDING,
    AuditEntry,
    SavedForm,
    Schedule,
)

_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")
_NUMBER = re.compile(r"[0-9]{1,18}")

# Claim due schedules. KEYS: due zset, claimed hash, schedules hash; ARGV: now, claim end,
# limit. Returns the id and the JSON of each schedule claimed, one after the other.
_CLAIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
  redis.call('HSET', KEYS[2], id, ARGV[2])
  local raw = redis.call('HGET', KEYS[3], id)
  if raw then
    table.insert(out, id)
    table.insert(out, raw)
  end
end
return out
"""

# Cancel a pending schedule that no process is sending, or dismiss a failed one. KEYS: due
# zset, claimed hash, schedules hash, failed set; ARGV: id, now, the cancelled JSON. Returns
# 'busy' (being sent), 'gone' (not pending nor failed) or 'ok'.
_CANCEL = """
local claim = redis.call('HGET', KEYS[2], ARGV[1])
if claim and tonumber(claim) > tonumber(ARGV[2]) then return 'busy' end
local pending = redis.call('ZREM', KEYS[1], ARGV[1])
local failed = redis.call('SREM', KEYS[4], ARGV[1])
if pending == 0 and failed == 0 then return 'gone' end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
return 'ok'
"""

# Finish a claimed schedule (sent or failed). KEYS: due zset, claimed hash, schedules hash,
# failed set; ARGV: id, the finished JSON, "1" when it failed. Only a pending one changes.
_FINISH = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('SADD', KEYS[4], ARGV[1]) end
return 1
"""

# Add a schedule, once per idempotency key. KEYS: id counter, schedules hash, due zset, the
# key's key (or a placeholder); ARGV: use the key ("1"/"0"), its ttl (s), send time (epoch
# s), the JSON with "id" left out. Returns {'new' or 'again', id}.
_ADD = """
if ARGV[1] == '1' then
  local first = redis.call('GET', KEYS[4])
  if first then return {'again', first} end
end
local id = tostring(redis.call('INCR', KEYS[1]))
redis.call('HSET', KEYS[2], id, ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[3], id)
if ARGV[1] == '1' then redis.call('SET', KEYS[4], id, 'EX', ARGV[2]) end
return {'new', id}
"""

# Replace a saved form only if it exists. KEYS: the forms hash; ARGV: id, JSON.
_REPLACE_FORM = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class RedisOfficer:
    """The officer's tools of :class:`~app.server.redis_broker.RedisBroker`, which provides
    the connection, the settings and the announcements' visibility."""

    _redis: aioredis.Redis
    _settings: RedisSettings
    _k_ann: str
    idempotency_ttl: float

    if TYPE_CHECKING:

        def _unavailable(self) -> contextlib.AbstractContextManager[None]: ...

        async def _visible(
            self,
            entries: Sequence[Any],
            viewer: Principal,
            now: datetime,
            with_revoked: bool,
            changes: bool = False,
        ) -> list[Any]: ...

    def _open_officer(self) -> None:
        prefix = self._settings.prefix
        self._k_audit = prefix + "audit"
        self._k_schedules = prefix + "schedules"
        self._k_due = prefix + "schedules-due"
        self._k_claimed = prefix + "schedules-claimed"
        self._k_failed = prefix + "schedules-failed"
        self._k_schedule_ids = prefix + "schedule-ids"
        self._k_schedule_key = prefix + "schedule-key:"  # + author NUL key
        self._k_forms = prefix + "forms:"  # + kind
        self._k_form_ids = prefix + "form-ids"
        self._claim = self._redis.register_script(_CLAIM)
        self._cancel = self._redis.register_script(_CANCEL)
        self._finish = self._redis.register_script(_FINISH)
        self._add_schedule = self._redis.register_script(_ADD)
        self._replace_form = self._redis.register_script(_REPLACE_FORM)

    # the sent list ------------------------------------------------------------------------
    async def page_visible(
        self,
        viewer: Principal,
        *,
        after: str | None,
        before: str | None,
        query: str | None,
        limit: int,
        now: datetime,
        include_revoked: bool = False,
    ) -> list[Record]:
        """XRANGE (or XREVRANGE) pages of the stream between the cursors, kept when visible
        and, with ``query``, when the casefolded title or body holds it."""
        low = _cursor(after)
        high = _cursor(before)
        forward = after is not None
        page = self._settings.page_max
        found: list[Record] = []
        bound = low if forward else high
        with self._unavailable():
            while len(found) < limit:
                if forward:
                    top = "+" if high is None else "(" + high
                    entries = await self._redis.xrange(
                        self._k_ann, min="(" + str(bound), max=top, count=page
                    )
                else:
                    start = "+" if bound is None else "(" + bound
                    bottom = "-" if low is None else "(" + low
                    entries = await self._redis.xrevrange(
                        self._k_ann, max=start, min=bottom, count=page
                    )
                if not entries:
                    break
                records = await self._visible(entries, viewer, now, include_revoked)
                found += [r for r in records if isinstance(r, Record) and _holds(r, query)]
                if len(entries) < page:
                    break
                bound = str(entries[-1][0])
        found = found[:limit]
        return found if forward else found[::-1]

    # the audit log ------------------------------------------------------------------------
    async def record_audit(self, entry: AuditEntry) -> AuditEntry:
        fields: dict[FieldT, EncodableT] = {"data": json.dumps(_audit_row(entry))}
        with self._unavailable():
            entry_id = await self._redis.xadd(self._k_audit, fields)
        return dataclasses.replace(entry, id=str(entry_id))

    async def audit(self, *, before: str | None, limit: int) -> list[AuditEntry]:
        if before is not None and not _ID.fullmatch(before):
            raise InvalidCursor(f"{before!r} is not an audit entry id of this server")
        with self._unavailable():
            entries = await self._redis.xrevrange(
                self._k_audit, max="+" if before is None else "(" + before, count=limit
            )
        out = []
        for entry_id, fields in entries or ():
            with _skip_bad():
                out.append(_audit_entry(str(entry_id), json.loads((fields or {})["data"])))
        return out

    # scheduled announcements --------------------------------------------------------------
    async def add_schedule(self, schedule: Schedule) -> tuple[Schedule, bool]:
        key = schedule.idempotency_key
        with self._unavailable():
            reply = await self._add_schedule(
                keys=[
                    self._k_schedule_ids,
                    self._k_schedules,
                    self._k_due,
                    self._k_schedule_key + schedule.author + "\0" + (key or ""),
                ],
                args=[
                    "1" if key is not None else "0",
                    max(int(self.idempotency_ttl), 1),
                    repr(schedule.send_at.timestamp()),
                    json.dumps(_schedule_row(schedule)),
                ],
            )
        found = await self.get_schedule(str(reply[1]))
        assert found is not None, reply
        return found, reply[0] == "new"

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        if not _NUMBER.fullmatch(schedule_id):
            return None
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hget(self._k_schedules, schedule_id)
                pipe.hget(self._k_claimed, schedule_id)
                raw, claim = await pipe.execute()
        if raw is None:
            return None
        return _schedule(schedule_id, raw, claim)

    async def open_schedules(self) -> list[Schedule]:
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.zrange(self._k_due, 0, -1)
                pipe.smembers(self._k_failed)
                pipe.hgetall(self._k_claimed)
                pending, failed, claims = await pipe.execute()
            ids = sorted({str(i) for i in (*pending, *failed)}, key=int)
            rows = await self._redis.hmget(self._k_schedules, ids) if ids else []
        found = [
            _schedule(i, raw, claims.get(i))
            for i, raw in zip(ids, rows, strict=True)
            if raw is not None
        ]
        return sorted(found, key=lambda s: (s.send_at, int(s.id)))

    async def claim_due(self, *, now: float, lease: float, limit: int) -> list[Schedule]:
        with self._unavailable():
            rows = await self._claim(
                keys=[self._k_due, self._k_claimed, self._k_schedules],
                args=[repr(now), repr(now + lease), limit],
            )
        out = []
        for schedule_id, raw in zip(rows[::2], rows[1::2], strict=True):
            with _skip_bad():
                out.append(_schedule(str(schedule_id), raw, repr(now + lease)))
        return out

    async def finish_schedule(
        self,
        schedule_id: str,
        *,
        status: str,
        now: datetime,
        announcement_id: str | None = None,
        problem: str | None = None,
    ) -> None:
        current = await self.get_schedule(schedule_id)
        if current is None:
            return
        done = dataclasses.replace(
            current,
            status=status,
            announcement_id=announcement_id,
            problem=problem,
            finished_at=now,
            claimed_until=None,
        )
        failed = "1" if status == FAILED else "0"
        with self._unavailable():
            await self._finish(
                keys=[self._k_due, self._k_claimed, self._k_schedules, self._k_failed],
                args=[schedule_id, json.dumps(_schedule_row(done)), failed],
            )

    async def cancel_schedule(self, schedule_id: str, *, by: str, now: datetime) -> Schedule | None:
        current = await self.get_schedule(schedule_id)
        if current is None:
            return None
        cancelled = dataclasses.replace(
            current, status=CANCELLED, finished_at=now, finished_by=by, claimed_until=None
        )
        with self._unavailable():
            await self._cancel(
                keys=[self._k_due, self._k_claimed, self._k_schedules, self._k_failed],
                args=[schedule_id, repr(now.timestamp()), json.dumps(_schedule_row(cancelled))],
            )
        return await self.get_schedule(schedule_id)

    # drafts and templates -----------------------------------------------------------------
    async def save_form(self, form: SavedForm) -> SavedForm | None:
        key = self._k_forms + form.kind
        with self._unavailable():
            if not form.id:
                form = dataclasses.replace(form, id=str(await self._redis.incr(self._k_form_ids)))
                await self._redis.hset(key, form.id, json.dumps(_form_row(form)))
                return form
            if not _NUMBER.fullmatch(form.id):
                return None
            old = await self._redis.hget(key, form.id)
            if old is None:
                return None
            kept = _form(form.id, form.kind, old)
            form = dataclasses.replace(form, owner=kept.owner, created_at=kept.created_at)
            done = await self._replace_form(keys=[key], args=[form.id, json.dumps(_form_row(form))])
        return form if done else None

    async def get_form(self, kind: str, form_id: str) -> SavedForm | None:
        if not _NUMBER.fullmatch(form_id):
            return None
        with self._unavailable():
            raw = await self._redis.hget(self._k_forms + kind, form_id)
        return None if raw is None else _form(form_id, kind, raw)

    async def list_forms(self, kind: str, *, owner: str | None = None) -> list[SavedForm]:
        with self._unavailable():
            rows = await self._redis.hgetall(self._k_forms + kind)
        forms = [_form(str(i), kind, raw) for i, raw in rows.items()]
        mine = [f for f in forms if owner is None or f.owner == owner]
        return sorted(mine, key=lambda f: (f.updated_at, int(f.id)), reverse=True)

    async def delete_form(self, kind: str, form_id: str) -> bool:
        if not _NUMBER.fullmatch(form_id):
            return False
        with self._unavailable():
            return bool(await self._redis.hdel(self._k_forms + kind, form_id))


def _cursor(cursor: str | None) -> str | None:
    """A stream id cursor (``0``: the beginning), checked; InvalidCursor otherwise."""
    if cursor is None:
        return None
    if cursor == NOTHING_YET:
        return "0-0"
    if not _ID.fullmatch(cursor):
        raise InvalidCursor(f"{cursor!r} is not an announcement id of this server")
    return cursor


def _holds(record: Record, query: str | None) -> bool:
    return not query or query in record.title.casefold() or query in record.body.casefold()


@contextlib.contextmanager
def _skip_bad() -> Iterator[None]:
    """A malformed stored value (written by hand, or damaged) is left out of an answer."""
    with contextlib.suppress(ValueError, KeyError, TypeError):
        yield


def _audit_row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": codec.iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "announcement_id": entry.announcement_id,
        "schedule_id": entry.schedule_id,
        "detail": entry.detail,
    }


def _audit_entry(entry_id: str, row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        actor=str(row["actor"]),
        action=str(row["action"]),
        at=_time(row["at"]),
        announcement_id=row.get("announcement_id"),
        schedule_id=row.get("schedule_id"),
        detail=str(row.get("detail") or ""),
        id=entry_id,
    )


def _schedule_row(schedule: Schedule) -> dict[str, Any]:
    return {
        "author": schedule.author,
        "send_at": codec.iso(schedule.send_at),
        "created_at": codec.iso(schedule.created_at),
        # as JSON text: Lua's cjson would turn an empty list into an object
        "payload": json.dumps(dict(schedule.payload)),
        "status": schedule.status,
        "announcement_id": schedule.announcement_id,
        "problem": schedule.problem,
        "finished_at": codec.iso(schedule.finished_at) if schedule.finished_at else None,
        "finished_by": schedule.finished_by,
        "idempotency_key": schedule.idempotency_key,
    }


def _schedule(schedule_id: str, raw: str | bytes, claim: Any) -> Schedule:
    row = json.loads(raw)
    claimed = float(claim) if claim is not None else None
    return Schedule(
        id=schedule_id,
        author=str(row["author"]),
        send_at=_time(row["send_at"]),
        created_at=_time(row["created_at"]),
        payload=json.loads(row["payload"]),
        status=str(row["status"]),
        announcement_id=row.get("announcement_id"),
        problem=row.get("problem"),
        finished_at=parse_time(row.get("finished_at")),
        finished_by=str(row.get("finished_by") or ""),
        idempotency_key=row.get("idempotency_key"),
        claimed_until=claimed if row["status"] == PENDING else None,
    )


def _form_row(form: SavedForm) -> dict[str, Any]:
    return {
        "owner": form.owner,
        "name": form.name,
        "content": dict(form.content),
        "created_at": codec.iso(form.created_at),
        "updated_at": codec.iso(form.updated_at),
        "updated_by": form.updated_by,
    }


def _form(form_id: str, kind: str, raw: str | bytes) -> SavedForm:
    row = json.loads(raw)
    return SavedForm(
        id=form_id,
        kind=kind,
        owner=str(row["owner"]),
        name=str(row["name"]),
        content=row["content"],
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        updated_by=str(row.get("updated_by") or ""),
    )


def _time(text: Any) -> datetime:
    when = parse_time(text)
    if when is None:
        raise ValueError(f"a stored time is malformed: {text!r}")
    return when
