"""The communications officer's tools on SQLite (:class:`SqliteOfficer`, a part of
:class:`~app.server.sqlite_broker.SqliteBroker`): the sent list's search and keyset paging, the
audit log, scheduled announcements and saved compose forms, in tables of the same database.

One server process uses a SQLite file, so a claim on a due schedule needs no more than one
write transaction (``BEGIN IMMEDIATE``: the offline commands that share the file wait for it).
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.core.model import parse_time
from app.server import codec
from app.server.model import InvalidCursor, Principal, Record
from app.server.officer_model import (
    CANCELLED,
    FAILED,
    PENDING,
    AuditEntry,
    SavedForm,
    Schedule,
)

OFFICER_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (           -- who did what, when: appended, never changed
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    announcement_id TEXT,
    schedule_id TEXT,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (       -- announcements to publish at a time
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author TEXT NOT NULL,
    send_at TEXT NOT NULL,
    send_ts REAL NOT NULL,
    created_at TEXT NOT NULL,
    payload TEXT NOT NULL,                   -- JSON: the POST /announcements body
    status TEXT NOT NULL,                    -- pending, sent, cancelled, failed
    announcement_id TEXT,
    problem TEXT,
    finished_at TEXT,
    finished_by TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT,
    key_expires REAL,
    claimed_until REAL
);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (status, send_ts);
CREATE UNIQUE INDEX IF NOT EXISTS schedules_key ON schedules (author, idempotency_key);
CREATE TABLE IF NOT EXISTS saved_forms (     -- drafts (their owner's) and templates (shared)
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('draft', 'template')),
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    content TEXT NOT NULL,                   -- JSON: the compose form's fields
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS saved_forms_owner ON saved_forms (kind, owner);
"""

# the sent list: a page by id (keyset: the primary key's index, however many there are),
# searched with the casefolding function registered on the connection
_PAGE = """
SELECT * FROM announcements a
WHERE a.id > :after AND a.id < :before AND (:with_revoked OR a.revoked_at IS NULL)
  AND (a.expires_ts IS NULL OR a.expires_ts > :now)
  AND (:query IS NULL OR instr(tn_casefold(a.title), :query) > 0
       OR instr(tn_casefold(a.body), :query) > 0)
  AND (:see_all OR EXISTS (
      SELECT 1 FROM audience t WHERE t.announcement_id = a.id AND (
          t.kind = 'all'
          OR (t.kind = 'user' AND t.value = :user)
          OR (t.kind = 'group' AND t.value IN (SELECT value FROM json_each(:groups))))))
ORDER BY a.id {order} LIMIT :limit
"""
_MAX_ID = 2**63 - 1


class SqliteOfficer:
    """The officer's tools of :class:`~app.server.sqlite_broker.SqliteBroker`, which provides
    the connection and its transactions."""

    _db: sqlite3.Connection
    idempotency_ttl: float

    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def _open_officer(self) -> None:
        """The tables (created when missing) and the search's casefolding function."""
        self._db.executescript(OFFICER_SCHEMA)
        self._db.create_function("tn_casefold", 1, _casefold, deterministic=True)

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
        for cursor in (after, before):
            if cursor is not None and not _is_id(cursor):
                raise InvalidCursor(f"{cursor!r} is not an announcement id of this server")
        params = {
            "after": int(after) if after is not None else 0,
            "before": int(before) if before is not None else _MAX_ID,
            "now": now.timestamp(),
            "query": query or None,
            "with_revoked": include_revoked,
            **audience_params(viewer),
            "limit": limit,
        }
        order = "ASC" if after is not None else "DESC"
        rows = self._db.execute(_PAGE.format(order=order), params).fetchall()
        records = [codec.from_row(row) for row in rows]
        return records if after is not None else records[::-1]

    # the audit log ------------------------------------------------------------------------
    async def record_audit(self, entry: AuditEntry) -> AuditEntry:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO audit (at, actor, action, announcement_id, schedule_id, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    codec.iso(entry.at),
                    entry.actor,
                    entry.action,
                    entry.announcement_id,
                    entry.schedule_id,
                    entry.detail,
                ),
            )
        return dataclasses.replace(entry, id=str(cur.lastrowid))

    async def audit(self, *, before: str | None, limit: int) -> list[AuditEntry]:
        if before is not None and not _is_id(before):
            raise InvalidCursor(f"{before!r} is not an audit entry id of this server")
        rows = self._db.execute(
            "SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?",
            (int(before) if before is not None else _MAX_ID, limit),
        ).fetchall()
        return [
            AuditEntry(
                actor=row["actor"],
                action=row["action"],
                at=_time(row["at"]),
                announcement_id=row["announcement_id"],
                schedule_id=row["schedule_id"],
                detail=row["detail"],
                id=str(row["id"]),
            )
            for row in rows
        ]

    # scheduled announcements --------------------------------------------------------------
    async def add_schedule(self, schedule: Schedule) -> tuple[Schedule, bool]:
        now = schedule.created_at.timestamp()
        key = schedule.idempotency_key
        with self._tx() as db:
            if key is not None:
                db.execute(
                    "UPDATE schedules SET idempotency_key = NULL WHERE key_expires < ?", (now,)
                )
                row = db.execute(
                    "SELECT * FROM schedules WHERE author = ? AND idempotency_key = ?",
                    (schedule.author, key),
                ).fetchone()
                if row is not None:
                    return _schedule(row), False
            cur = db.execute(
                "INSERT INTO schedules (author, send_at, send_ts, created_at, payload, status,"
                " idempotency_key, key_expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    schedule.author,
                    codec.iso(schedule.send_at),
                    schedule.send_at.timestamp(),
                    codec.iso(schedule.created_at),
                    json.dumps(dict(schedule.payload)),
                    PENDING,
                    key,
                    now + self.idempotency_ttl if key is not None else None,
                ),
            )
            row = db.execute("SELECT * FROM schedules WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _schedule(row), True

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        if not _is_id(schedule_id):
            return None
        row = self._db.execute(
            "SELECT * FROM schedules WHERE id = ?", (int(schedule_id),)
        ).fetchone()
        return _schedule(row) if row is not None else None

    async def open_schedules(self) -> list[Schedule]:
        rows = self._db.execute(
            "SELECT * FROM schedules WHERE status IN (?, ?) ORDER BY send_ts, id", (PENDING, FAILED)
        ).fetchall()
        return [_schedule(row) for row in rows]

    async def claim_due(self, *, now: float, lease: float, limit: int) -> list[Schedule]:
        due = (
            "SELECT * FROM schedules WHERE status = ? AND send_ts <= ?"
            " AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY send_ts, id LIMIT ?"
        )
        if self._db.execute(due, (PENDING, now, now, 1)).fetchone() is None:
            return []  # nothing due: no write transaction (this runs every second)
        with self._tx() as db:
            rows = db.execute(due, (PENDING, now, now, limit)).fetchall()
            db.executemany(
                "UPDATE schedules SET claimed_until = ? WHERE id = ?",
                [(now + lease, row["id"]) for row in rows],
            )
        return [dataclasses.replace(_schedule(row), claimed_until=now + lease) for row in rows]

    async def finish_schedule(
        self,
        schedule_id: str,
        *,
        status: str,
        now: datetime,
        announcement_id: str | None = None,
        problem: str | None = None,
    ) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE schedules SET status = ?, announcement_id = ?, problem = ?,"
                " finished_at = ?, claimed_until = NULL WHERE id = ? AND status = ?",
                (status, announcement_id, problem, codec.iso(now), int(schedule_id), PENDING),
            )

    async def cancel_schedule(self, schedule_id: str, *, by: str, now: datetime) -> Schedule | None:
        if not _is_id(schedule_id):
            return None
        with self._tx() as db:
            db.execute(
                "UPDATE schedules SET status = ?, finished_at = ?, finished_by = ?,"
                " claimed_until = NULL WHERE id = ? AND (status = ? OR (status = ?"
                " AND (claimed_until IS NULL OR claimed_until <= ?)))",
                (CANCELLED, codec.iso(now), by, int(schedule_id), FAILED, PENDING, now.timestamp()),
            )
            row = db.execute("SELECT * FROM schedules WHERE id = ?", (int(schedule_id),)).fetchone()
        return _schedule(row) if row is not None else None

    # drafts and templates -----------------------------------------------------------------
    async def save_form(self, form: SavedForm) -> SavedForm | None:
        values = (
            form.name,
            json.dumps(dict(form.content)),
            codec.iso(form.updated_at),
            form.updated_by,
        )
        with self._tx() as db:
            if not form.id:
                cur = db.execute(
                    "INSERT INTO saved_forms (kind, owner, created_at, name, content,"
                    " updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (form.kind, form.owner, codec.iso(form.created_at), *values),
                )
                form_id = int(cur.lastrowid or 0)
            elif _is_id(form.id):
                form_id = int(form.id)
                cur = db.execute(
                    "UPDATE saved_forms SET name = ?, content = ?, updated_at = ?,"
                    " updated_by = ? WHERE id = ? AND kind = ?",
                    (*values, form_id, form.kind),
                )
                if cur.rowcount == 0:
                    return None
            else:
                return None
            row = db.execute("SELECT * FROM saved_forms WHERE id = ?", (form_id,)).fetchone()
        return _form(row)

    async def get_form(self, kind: str, form_id: str) -> SavedForm | None:
        if not _is_id(form_id):
            return None
        row = self._db.execute(
            "SELECT * FROM saved_forms WHERE id = ? AND kind = ?", (int(form_id), kind)
        ).fetchone()
        return _form(row) if row is not None else None

    async def list_forms(self, kind: str, *, owner: str | None = None) -> list[SavedForm]:
        rows = self._db.execute(
            "SELECT * FROM saved_forms WHERE kind = ? AND (? IS NULL OR owner = ?)"
            " ORDER BY updated_at DESC, id DESC",
            (kind, owner, owner),
        ).fetchall()
        return [_form(row) for row in rows]

    async def delete_form(self, kind: str, form_id: str) -> bool:
        if not _is_id(form_id):
            return False
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM saved_forms WHERE id = ? AND kind = ?", (int(form_id), kind)
            )
        return cur.rowcount > 0


def audience_params(viewer: Principal) -> dict[str, object]:
    """The parameters of the audience test the announcement queries share (``:see_all``,
    ``:user``, ``:groups``): what ``viewer`` may see (a publisher, every announcement)."""
    return {
        "see_all": viewer.publisher,
        "user": viewer.user_id,
        "groups": json.dumps(sorted(viewer.groups)),
    }


def _casefold(text: Any) -> str | None:
    return text.casefold() if isinstance(text, str) else None


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 19


def _time(text: str) -> datetime:
    when = parse_time(text)
    if when is None:
        raise ValueError(f"a stored time is malformed: {text!r}")
    return when


def _schedule(row: sqlite3.Row) -> Schedule:
    return Schedule(
        id=str(row["id"]),
        author=row["author"],
        send_at=_time(row["send_at"]),
        created_at=_time(row["created_at"]),
        payload=json.loads(row["payload"]),
        status=row["status"],
        announcement_id=row["announcement_id"],
        problem=row["problem"],
        finished_at=parse_time(row["finished_at"]),
        finished_by=row["finished_by"] or "",
        idempotency_key=row["idempotency_key"],
        claimed_until=row["claimed_until"],
    )


def _form(row: sqlite3.Row) -> SavedForm:
    return SavedForm(
        id=str(row["id"]),
        kind=row["kind"],
        owner=row["owner"],
        name=row["name"],
        content=json.loads(row["content"]),
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
        updated_by=row["updated_by"],
    )
