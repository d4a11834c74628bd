"""The single-process backend: state in one SQLite file (WAL), fan-out in memory.

Every call runs on the server's event loop and touches a local file for well under a
millisecond, so the queries run inline rather than on a thread pool; the one connection is
therefore used from one thread only. Publishing commits, then fans out before returning with
no ``await`` in between, so a stream that subscribed first sees every announcement exactly
once: either in its replay query or in its queue (the stream drops queue items it replayed).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from app.core.model import parse_time
from app.server import codec
from app.server.broker import Broker
from app.server.config import SQLITE_BUSY_TIMEOUT_MS
from app.server.hub import Hub, Subscription
from app.server.model import (
    NOTHING_YET,
    Ack,
    Audience,
    BrokerStats,
    Draft,
    InvalidCursor,
    Principal,
    Record,
    RefreshGrant,
    Revocation,
    User,
)

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    groups TEXT NOT NULL,               -- JSON list
    publisher INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);
CREATE TABLE IF NOT EXISTS announcements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: ids only increase
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    priority TEXT NOT NULL,
    url TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    expires_ts REAL,
    audience TEXT NOT NULL,              -- JSON, as published
    author TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS audience (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    kind TEXT NOT NULL CHECK (kind IN ('all', 'group', 'user')),
    value TEXT NOT NULL,
    PRIMARY KEY (announcement_id, kind, value)
);
CREATE INDEX IF NOT EXISTS audience_lookup ON audience (kind, value, announcement_id);
CREATE TABLE IF NOT EXISTS acks (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    user_id TEXT NOT NULL,
    acked_at TEXT NOT NULL,
    PRIMARY KEY (announcement_id, user_id)
);
"""

_VISIBLE = """
SELECT * FROM announcements a
WHERE a.id > :after AND a.id <= :upto AND a.revoked_at IS NULL
  AND (a.expires_ts IS NULL OR a.expires_ts > :now)
  AND (:see_all OR EXISTS (
      SELECT 1 FROM audience t WHERE t.announcement_id = a.id AND (
          t.kind = 'all'
          OR (t.kind = 'user' AND t.value = :user)
          OR (t.kind = 'group' AND t.value IN (SELECT value FROM json_each(:groups))))))
ORDER BY a.id {order} LIMIT :limit
"""


class SqliteBroker(Broker):
    """:class:`Broker` on one SQLite file; create it on the event loop that will use it."""

    def __init__(self, db_path: Path) -> None:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(db_path, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_MS)}")
        self._db.executescript(_SCHEMA)
        self._hub = Hub()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it or nothing."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # users ------------------------------------------------------------------------------
    async def save_user(self, user: User) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO users (name, password_hash, groups, publisher) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,"
                " groups = excluded.groups, publisher = excluded.publisher",
                (user.name, user.password_hash, json.dumps(sorted(user.groups)), user.publisher),
            )

    async def get_user(self, name: str) -> User | None:
        row = self._db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return User(
            name=row["name"],
            password_hash=row["password_hash"],
            groups=frozenset(json.loads(row["groups"])),
            publisher=bool(row["publisher"]),
        )

    # refresh tokens ---------------------------------------------------------------------
    async def add_refresh_token(
        self, token_hash: str, *, user_id: str, session_id: str, expires_at: float
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO refresh_tokens (token_hash, user_id, session_id, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (token_hash, user_id, session_id, expires_at),
            )

    async def use_refresh_token(self, token_hash: str, *, now: float) -> RefreshGrant | None:
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if row is None:
                return None
            if row["used"]:
                log.warning("a used refresh token was presented again: session revoked")
                db.execute("DELETE FROM refresh_tokens WHERE session_id = ?", (row["session_id"],))
                return None
            db.execute("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?", (token_hash,))
            db.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?", (now,))
            if row["expires_at"] <= now:
                return None
            return RefreshGrant(user_id=row["user_id"], session_id=row["session_id"])

    async def revoke_refresh_token(self, token_hash: str) -> None:
        with self._tx() as db:
            db.execute(
                "DELETE FROM refresh_tokens WHERE session_id IN"
                " (SELECT session_id FROM refresh_tokens WHERE token_hash = ?)",
                (token_hash,),
            )

    # announcements ----------------------------------------------------------------------
    async def publish(self, draft: Draft, *, author: str, now: datetime) -> Record:
        unnumbered = codec.new_record(draft, ann_id="", author=author, now=now)
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO announcements (title, body, priority, url, created_at, expires_at,"
                " expires_ts, audience, author) VALUES (:title, :body, :priority, :url,"
                " :created_at, :expires_at, :expires_ts, :audience, :author)",
                codec.to_row(unnumbered),
            )
            ann_id = cur.lastrowid
            db.executemany(
                "INSERT INTO audience (announcement_id, kind, value) VALUES (?, ?, ?)",
                [(ann_id, kind, value) for kind, value in _audience_rows(draft.audience)],
            )
        record = dataclasses.replace(unnumbered, id=str(ann_id))
        self._hub.deliver(record)
        return record

    async def get(self, ann_id: str) -> Record | None:
        if not _is_id(ann_id):
            return None
        row = self._db.execute(
            "SELECT * FROM announcements WHERE id = ?", (int(ann_id),)
        ).fetchone()
        return codec.from_row(row) if row is not None else None

    async def list_visible(
        self, viewer: Principal, *, after: str | None, limit: int, now: datetime
    ) -> list[Record]:
        if after is not None and not _is_id(after):
            raise InvalidCursor(f"{after!r} is not an announcement id of this server")
        records = self._select(viewer, after=after, upto=None, limit=limit, now=now)
        return records if after is not None else records[::-1]

    async def newest_visible_id(self, viewer: Principal, *, upto: str, now: datetime) -> str | None:
        if not _is_id(upto):
            raise InvalidCursor(f"{upto!r} is not an announcement id of this server")
        newest = self._select(viewer, after=None, upto=upto, limit=1, now=now)
        return newest[0].id if newest else None

    def _select(
        self, viewer: Principal, *, after: str | None, upto: str | None, limit: int, now: datetime
    ) -> list[Record]:
        """Visible records after ``after`` (oldest first), or without it the newest (newest
        first), none above ``upto``."""
        params = {
            "after": int(after) if after is not None else 0,
            "upto": int(upto) if upto is not None else _MAX_ID,
            "now": now.timestamp(),
            "see_all": viewer.publisher,
            "user": viewer.user_id,
            "groups": json.dumps(sorted(viewer.groups)),
            "limit": limit,
        }
        order = "ASC" if after is not None else "DESC"
        rows = self._db.execute(_VISIBLE.format(order=order), params).fetchall()
        return [codec.from_row(row) for row in rows]

    async def revoke(self, ann_id: str) -> Record | None:
        record = await self.get(ann_id)
        if record is None or record.revoked:
            return record
        with self._tx() as db:
            db.execute(
                "UPDATE announcements SET revoked_at = ? WHERE id = ?",
                (datetime.now(UTC).isoformat(), int(ann_id)),
            )
        self._hub.deliver(Revocation(record.id, record.audience))
        return dataclasses.replace(record, revoked=True)

    async def ack(self, ann_id: str, user_id: str, *, now: datetime) -> datetime:
        with self._tx() as db:
            db.execute(
                "INSERT INTO acks (announcement_id, user_id, acked_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (int(ann_id), user_id, now.astimezone(UTC).isoformat()),
            )
            row = db.execute(
                "SELECT acked_at FROM acks WHERE announcement_id = ? AND user_id = ?",
                (int(ann_id), user_id),
            ).fetchone()
        return _time(row["acked_at"])

    async def acks(self, ann_id: str) -> list[Ack]:
        rows = self._db.execute(
            "SELECT user_id, acked_at FROM acks WHERE announcement_id = ?"
            " ORDER BY acked_at, user_id",
            (int(ann_id),),
        ).fetchall()
        return [Ack(row["user_id"], _time(row["acked_at"])) for row in rows]

    # streams ----------------------------------------------------------------------------
    def subscribe(
        self, viewer: Principal, *, queue_size: int, on_overflow: Callable[[], None]
    ) -> Subscription:
        sub = self._hub.subscribe(viewer, queue_size=queue_size, on_overflow=on_overflow)
        # publish commits and fans out with no await in between: all committed was fanned out
        row = self._db.execute("SELECT MAX(id) FROM announcements").fetchone()
        sub.horizon = str(row[0]) if row[0] is not None else NOTHING_YET
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._hub.unsubscribe(sub)

    async def close_streams(self, user_id: str, *, session_id: str | None) -> None:
        self._hub.close_user(user_id, session_id=session_id)

    def close_local_streams(self, reason: str) -> None:
        self._hub.close_all(reason)

    def stats(self) -> BrokerStats:
        return BrokerStats(subscriptions=len(self._hub))

    async def close(self) -> None:
        self._db.close()


_MAX_ID = 2**63 - 1


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) < 19


def _audience_rows(audience: Audience) -> list[tuple[str, str]]:
    if audience.everyone:
        return [("all", "")]
    return [("group", g) for g in sorted(audience.groups)] + [
        ("user", u) for u in sorted(audience.users)
    ]


def _time(text: str) -> datetime:
    when = parse_time(text)
    assert when is not None, text
    return when
