"""The single-process backend: state in one SQLite file (WAL), fan-out in memory.

Every call runs on the server's event loop and touches a local file for well under a
millisecond, so the queries run inline rather than on a thread pool; the one connection is
therefore used from one thread only. Publishing commits, then fans out before returning with
no ``await`` in between, so a stream that subscribed first sees every announcement exactly
once: either in its replay query or in its queue (the stream drops queue items it replayed).

Users, the organisation's directory and their group index (the tables ``users``,
``directory_people``, ``user_groups``, ``person_groups``, ``directory_status``, ``connected``)
are :class:`~app.server.sqlite_people.SqlitePeople`'s, in app/server/sqlite_people.py; the sent
list's search, the audit log, schedules and saved forms are
:class:`~app.server.sqlite_officer.SqliteOfficer`'s, in app/server/sqlite_officer.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from app.core.files import private_path
from app.core.model import parse_time
from app.server import codec
from app.server.broker import REMEMBER, Broker
from app.server.config import SQLITE_BUSY_TIMEOUT_MS
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
    Change,
    Correction,
    Delivery,
    Draft,
    InvalidCursor,
    Principal,
    Receipt,
    Record,
    RefreshGrant,
    StorageDamaged,
)
from app.server.sqlite_officer import SqliteOfficer, audience_params
from app.server.sqlite_people import PEOPLE_SCHEMA, SUBJECT_INDEX, SqlitePeople, index_people

log = logging.getLogger(__name__)

_SCHEMA = (
    PEOPLE_SCHEMA  # users, the directory, their group index: app/server/sqlite_people.py
    + """
CREATE TABLE IF NOT EXISTS used_id_tokens (  -- each ID token signs in once
    key TEXT PRIMARY KEY,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS refresh_tokens_session ON refresh_tokens (session_id);
CREATE INDEX IF NOT EXISTS refresh_tokens_user ON refresh_tokens (user_id);
CREATE TABLE IF NOT EXISTS idempotency (    -- a publish's Idempotency-Key, per author
    author TEXT NOT NULL,
    key TEXT NOT NULL,
    announcement_id INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (author, key)
);
CREATE TABLE IF NOT EXISTS ended_sessions (  -- remembered until every token of it expired
    session_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    until REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ended_users (     -- every token issued up to "before" is refused
    user_id TEXT PRIMARY KEY,
    before REAL NOT NULL,
    until REAL NOT NULL
);
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
    revoked_at TEXT,                     -- revoked: kept, still readable by publishers
    revoked_by TEXT,                     -- the publisher who revoked it
    revision INTEGER NOT NULL DEFAULT 0, -- corrections made: the text above is the current one
    updated_at TEXT                      -- when the last correction was made
);
CREATE TABLE IF NOT EXISTS changes (     -- corrections, reminders, revokes: stream events
    position INTEGER PRIMARY KEY,        -- from the announcements' sequence (_next_position)
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    kind TEXT NOT NULL CHECK (kind IN ('update', 'remind', 'revoke')),
    data TEXT NOT NULL,                  -- JSON: the event's data, as sent
    users TEXT,                          -- a reminder: JSON list of exactly its users
    at TEXT NOT NULL,
    by TEXT NOT NULL                     -- the publisher
);
CREATE TABLE IF NOT EXISTS reminded (    -- reminders sent to each user (reach)
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    user_id TEXT NOT NULL,
    last_at TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (announcement_id, user_id)
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
CREATE TABLE IF NOT EXISTS recipients (      -- the users the audience named at publication
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    user_id TEXT NOT NULL,
    PRIMARY KEY (announcement_id, user_id)
);
CREATE TABLE IF NOT EXISTS receipts (        -- delivered, displayed, read; acknowledged: acks
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('delivered', 'displayed', 'read')),
    at TEXT NOT NULL,
    PRIMARY KEY (announcement_id, user_id, kind)
);
"""
)

# the schema's version (PRAGMA user_version) once _migrate has brought a database to _SCHEMA:
# 1 = the receipts table takes "displayed", announcements have revoked_by; 2 = users have a
# subject (people of the identity provider), unique; 3 = announcements have a revision and
# updated_at (corrections; the changes and reminded tables are new); 4 = the groups of users and
# of directory people indexed by group (user_groups, person_groups: filled here once, then kept
# by user_groups' triggers and by replace_directory)
_SCHEMA_VERSION = 4

# rebuilding a table is how SQLite changes a CHECK constraint (its "ALTER TABLE" procedure)
_RECEIPTS_REBUILD = """
CREATE TABLE receipts_new (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('delivered', 'displayed', 'read')),
    at TEXT NOT NULL,
    PRIMARY KEY (announcement_id, user_id, kind)
);
INSERT INTO receipts_new (announcement_id, user_id, kind, at)
    SELECT announcement_id, user_id, kind, at FROM receipts;
DROP TABLE receipts;
ALTER TABLE receipts_new RENAME TO receipts;
"""

_VISIBLE = """
SELECT * FROM announcements a
WHERE a.id > :after AND a.id <= :upto AND (:with_revoked OR a.revoked_at IS NULL)
  AND (a.expires_ts IS NULL OR a.expires_ts > :now)
  AND (:see_all OR EXISTS (
      SELECT 1 FROM audience t WHERE t.announcement_id = a.id AND (
          t.kind = 'all'
          OR (t.kind = 'user' AND t.value = :user)
          OR (t.kind = 'group' AND t.value IN (SELECT value FROM json_each(:groups))))))
ORDER BY a.id {order} LIMIT :limit
"""


# the changes after a position that reach a viewer (Change.reaches): a reminder only its
# users; the rest the announcement's audience (publishers see every announcement)
_CHANGES = """
SELECT c.*, a.audience AS audience FROM changes c JOIN announcements a ON a.id = c.announcement_id
WHERE c.position > :after AND c.position <= :upto AND (
    CASE WHEN c.users IS NOT NULL
    THEN EXISTS (SELECT 1 FROM json_each(c.users) WHERE value = :user)
    ELSE :see_all OR EXISTS (
      SELECT 1 FROM audience t WHERE t.announcement_id = a.id AND (
          t.kind = 'all'
          OR (t.kind = 'user' AND t.value = :user)
          OR (t.kind = 'group' AND t.value IN (SELECT value FROM json_each(:groups)))))
    END)
ORDER BY c.position {order} LIMIT :limit
"""


class SqliteBroker(SqliteOfficer, SqlitePeople, Broker):
    """:class:`Broker` on one SQLite file; create it on the event loop that will use it."""

    def __init__(
        self, db_path: Path, *, session_memory: float = REMEMBER, idempotency_ttl: float = REMEMBER
    ) -> None:
        """Open (or create) the database, private to this user (0600, and its WAL and SHM);
        a damaged file raises :class:`StorageDamaged` naming it. ``session_memory`` and
        ``idempotency_ttl``: see :class:`~app.server.broker.Broker`."""
        super().__init__(session_memory=session_memory, idempotency_ttl=idempotency_ttl)
        if not db_path.parent.exists():
            db_path.parent.mkdir(parents=True, mode=0o700)
        self._path = db_path
        private_path(db_path)
        try:
            self._db = sqlite3.connect(db_path, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_MS)}")
            self._db.executescript(_SCHEMA)
            self._open_officer()  # the officer's tools: app/server/sqlite_officer.py
            self._migrate()
            verdict = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._damaged(str(exc)) from None
        if verdict != "ok":
            raise self._damaged(verdict)
        for suffix in _SIDE_FILES:
            private_path(db_path.with_name(db_path.name + suffix), create=False)
        # what the connection opened: a file found replaced or gone later means another program
        # broke SQLite's locks (see check)
        self._identity = _identity(db_path)
        self._hub = Hub()
        self._last_error_log = -math.inf
        self._watch_task: asyncio.Task[None] | None = None
        self._load_ended()

    def _migrate(self) -> None:
        """Bring a database written by an older version to :data:`_SCHEMA` (the tables it
        lacked were just created): in one transaction, so a failure changes nothing."""
        if self._db.execute("PRAGMA user_version").fetchone()[0] >= _SCHEMA_VERSION:
            return
        with self._tx() as db:
            columns = {row["name"] for row in db.execute("PRAGMA table_info(announcements)")}
            if "revoked_by" not in columns:
                db.execute("ALTER TABLE announcements ADD COLUMN revoked_by TEXT")
            if "revision" not in columns:
                db.execute(
                    "ALTER TABLE announcements ADD COLUMN revision INTEGER NOT NULL DEFAULT 0"
                )
            if "updated_at" not in columns:
                db.execute("ALTER TABLE announcements ADD COLUMN updated_at TEXT")
            (receipts_sql,) = db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'receipts'"
            ).fetchone()
            if "'displayed'" not in receipts_sql:
                for statement in _RECEIPTS_REBUILD.split(";"):
                    if statement.strip():
                        db.execute(statement)
                log.info("the database %s now records displayed receipts", self._path)
            if "subject" not in {row["name"] for row in db.execute("PRAGMA table_info(users)")}:
                db.execute("ALTER TABLE users ADD COLUMN subject TEXT")
            db.execute(SUBJECT_INDEX)
            db.execute("DELETE FROM user_groups")
            db.execute(
                "INSERT OR IGNORE INTO user_groups (grp, name)"
                " SELECT j.value, u.name FROM users u, json_each(u.groups) j"
            )
            index_people(db)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    async def start(self) -> None:
        self._watch_task = asyncio.get_running_loop().create_task(
            self._watch_others(), name="sqlite watch"
        )

    async def _watch_others(self) -> None:
        """Sessions ended by another program on this database (``server end-sessions``,
        ``server add-user`` changing a password) end here too, within a second: SQLite's
        ``data_version`` changes when another connection commits (never for our own)."""
        version = None
        while True:
            try:
                seen = self._db.execute("PRAGMA data_version").fetchone()[0]
                if version is not None and seen != version:
                    self._load_ended()
                version = seen
            except sqlite3.Error as exc:
                self._repeat_error(exc)
            await asyncio.sleep(_WATCH_INTERVAL)

    def _load_ended(self) -> None:
        """The ended sessions survive a restart (their tokens stay refused), and those ended
        by another program apply (the hub ignores what it knows already)."""
        now = time.time()
        for row in self._db.execute("SELECT * FROM ended_sessions WHERE until >= ?", (now,)):
            self._hub.end_session(row["user_id"], row["session_id"], until=row["until"], now=now)
        for row in self._db.execute("SELECT * FROM ended_users WHERE until >= ?", (now,)):
            self._hub.end_user_sessions(
                row["user_id"], before=row["before"], until=row["until"], now=now
            )

    def _damaged(self, detail: str) -> StorageDamaged:
        path = self._path
        return StorageDamaged(
            f"the database {path} is damaged ({detail}). Stop every server using it, then"
            f" either restore it from a backup, or try `sqlite3 {path} .recover | sqlite3"
            f" {path}.recovered` and put the recovered file in its place, or move it aside to"
            " start empty (users and announcements are then lost)"
        )

    async def check(self) -> str | None:
        """The database, its write-ahead log and its shared-memory file are still the files the
        connection opened, and a query through that connection answers from the disk (its page
        cache released first: a cached page would hide a damaged file).

        Only SQLite ever opens these files in this process: closing a descriptor of our own
        would drop SQLite's locks, and the next other program to close the database (``server
        add-user``, the ``sqlite3`` shell, a backup) would delete the log under the server, with
        every publish since then lost at a crash. The files are looked at by name only."""
        try:
            moved = [
                name
                for name, now in _identity(self._path).items()
                if now != self._identity.get(name)
            ]
            if moved:
                raise sqlite3.DatabaseError(
                    f"{', '.join(moved)} deleted or replaced under the running server, which"
                    " still writes to the file it opened: announcements published since may be"
                    " lost at a crash. Restart the server now, and open the database only"
                    " through SQLite (the sqlite3 shell, its .backup), never by copying or"
                    " editing the files"
                )
            self._db.execute("PRAGMA shrink_memory")
            self._db.execute("SELECT MAX(id) FROM announcements").fetchone()
        except (OSError, sqlite3.Error) as exc:
            self._repeat_error(exc)
            return f"the database {self._path} fails ({exc}): see the server's log"
        return None

    def _repeat_error(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= _ERROR_LOG_INTERVAL:
            self._last_error_log = now
            log.error("the database %s fails: %s", self._path, exc)

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

    # ID tokens ------------------------------------------------------------------------
    async def use_once(self, key: str, *, until: float, now: float) -> bool:
        with self._tx() as db:
            db.execute("DELETE FROM used_id_tokens WHERE until < ?", (now,))
            cursor = db.execute(
                "INSERT OR IGNORE INTO used_id_tokens (key, until) VALUES (?, ?)", (key, until)
            )
            return cursor.rowcount == 1

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
                self._end_session(db, row["user_id"], row["session_id"], now)
                return None
            db.execute("UPDATE refresh_tokens SET used = 1 WHERE token_hash = ?", (token_hash,))
            db.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?", (now,))
            if row["expires_at"] <= now:
                return None
            return RefreshGrant(user_id=row["user_id"], session_id=row["session_id"])

    async def revoke_refresh_token(self, token_hash: str, *, now: float) -> None:
        with self._tx() as db:
            row = db.execute(
                "SELECT user_id, session_id FROM refresh_tokens WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
            if row is None:
                return
            db.execute("DELETE FROM refresh_tokens WHERE session_id = ?", (row["session_id"],))
            self._end_session(db, row["user_id"], row["session_id"], now)

    def _end_session(self, db: sqlite3.Connection, user_id: str, sid: str, now: float) -> None:
        until = now + self.session_memory
        db.execute("DELETE FROM ended_sessions WHERE until < ?", (now,))
        db.execute(
            "INSERT OR REPLACE INTO ended_sessions (session_id, user_id, until) VALUES (?, ?, ?)",
            (sid, user_id, until),
        )
        self._hub.end_session(user_id, sid, until=until, now=now)

    async def end_user_sessions(self, user_id: str, *, now: float) -> None:
        until = now + self.session_memory
        with self._tx() as db:
            db.execute("DELETE FROM refresh_tokens WHERE user_id = ?", (user_id,))
            db.execute("DELETE FROM ended_users WHERE until < ?", (now,))
            db.execute(
                "INSERT OR REPLACE INTO ended_users (user_id, before, until) VALUES (?, ?, ?)",
                (user_id, now, until),
            )
        self._hub.end_user_sessions(user_id, before=now, until=until, now=now)

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
        unnumbered = codec.new_record(draft, ann_id="", author=author, now=now)
        ts = now.timestamp()
        with self._tx() as db:
            if idempotency_key is not None:
                db.execute("DELETE FROM idempotency WHERE expires_at < ?", (ts,))
                row = db.execute(
                    "SELECT announcement_id FROM idempotency WHERE author = ? AND key = ?",
                    (author, idempotency_key),
                ).fetchone()
                if row is not None:
                    first = db.execute(
                        "SELECT * FROM announcements WHERE id = ?", (row[0],)
                    ).fetchone()
                    return codec.from_row(first)
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
            db.executemany(
                "INSERT OR IGNORE INTO recipients (announcement_id, user_id) VALUES (?, ?)",
                [(ann_id, user) for user in sorted(recipients)],
            )
            if idempotency_key is not None:
                db.execute(
                    "INSERT INTO idempotency (author, key, announcement_id, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    (author, idempotency_key, ann_id, ts + self.idempotency_ttl),
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
        self,
        viewer: Principal,
        *,
        after: str | None,
        limit: int,
        now: datetime,
        include_revoked: bool = False,
    ) -> list[Record]:
        if after is not None and not _is_id(after):
            raise InvalidCursor(f"{after!r} is not an announcement id of this server")
        records = self._select(
            viewer, after=after, upto=None, limit=limit, now=now, with_revoked=include_revoked
        )
        return records if after is not None else records[::-1]

    async def newest_visible_id(self, viewer: Principal, *, upto: str, now: datetime) -> str | None:
        # every announcement and change stored here went through the hub, in order, right
        # after its commit: what the hub keeps of the last ones is the database's answer
        known = self._hub.fanned.newest_visible(viewer, upto=upto, now=now)
        if known is not None:
            return known if known != NOTHING_YET else None
        if not _is_id(upto):
            raise InvalidCursor(f"{upto!r} is not an announcement id of this server")
        # the newest announcement, as the contract says (DESIGN.md "Server API"); a change after
        # it is replayed on resume, and a client ignores a change of one it never had
        newest = self._select(viewer, after=None, upto=upto, limit=1, now=now)
        return newest[0].id if newest else None

    def _select(
        self,
        viewer: Principal,
        *,
        after: str | None,
        upto: str | None,
        limit: int,
        now: datetime,
        with_revoked: bool = False,
    ) -> list[Record]:
        """Visible records after ``after`` (oldest first), or without it the newest (newest
        first), none above ``upto``; revoked ones only ``with_revoked``."""
        params = {
            "after": int(after) if after is not None else 0,
            "upto": int(upto) if upto is not None else _MAX_ID,
            "now": now.timestamp(),
            "with_revoked": with_revoked,
            **audience_params(viewer),
            "limit": limit,
        }
        order = "ASC" if after is not None else "DESC"
        rows = self._db.execute(_VISIBLE.format(order=order), params).fetchall()
        return [codec.from_row(row) for row in rows]

    async def revoke(
        self, ann_id: str, *, by: str = "", now: datetime | None = None
    ) -> Record | None:
        record = await self.get(ann_id)
        if record is None or record.revoked:
            return record
        at = (now or datetime.now(UTC)).astimezone(UTC)
        with self._tx() as db:
            db.execute(
                "UPDATE announcements SET revoked_at = ?, revoked_by = ? WHERE id = ?",
                (codec.iso(at), by, int(ann_id)),
            )
            change = self._add_change(db, record, REVOKE, codec.revoke_json(record.id), by, at)
        self._hub.deliver(change)
        self._hub.reach_changed([record.id])
        return dataclasses.replace(record, revoked=True, revoked_at=at, revoked_by=by)

    async def correct(
        self, ann_id: str, correction: Correction, *, by: str, now: datetime
    ) -> Record | None:
        at = now.astimezone(UTC)
        with self._tx() as db:
            record = _unrevoked(db, ann_id)
            if record is None:
                return None
            corrected = correction.apply(record, now=at)
            db.execute(
                "UPDATE announcements SET title = :title, body = :body, priority = :priority,"
                " url = :url, expires_at = :expires_at, expires_ts = :expires_ts,"
                " revision = :revision, updated_at = :updated_at WHERE id = :id",
                {
                    **codec.to_row(corrected),
                    "revision": corrected.revision,
                    "updated_at": codec.iso(at),
                    "id": int(ann_id),
                },
            )
            change = self._add_change(db, corrected, UPDATE, codec.update_json(corrected), by, at)
        self._hub.deliver(change)
        return corrected

    async def remind(
        self, ann_id: str, users: Collection[str], *, by: str, now: datetime
    ) -> Change | None:
        at = now.astimezone(UTC)
        targets = frozenset(users)
        with self._tx() as db:
            record = _unrevoked(db, ann_id)
            if record is None:
                return None
            change = self._add_change(
                db, record, REMIND, codec.remind_json(record.id), by, at, users=targets
            )
            db.executemany(
                "INSERT INTO reminded (announcement_id, user_id, last_at, count)"
                " VALUES (?, ?, ?, 1) ON CONFLICT DO UPDATE SET last_at = excluded.last_at,"
                " count = count + 1",
                [(int(ann_id), user, codec.iso(at)) for user in sorted(targets)],
            )
        self._hub.deliver(change)
        self._hub.reach_changed([record.id])
        return change

    def _add_change(
        self,
        db: sqlite3.Connection,
        record: Record,
        kind: str,
        data: dict[str, object],
        by: str,
        at: datetime,
        *,
        users: frozenset[str] | None = None,
    ) -> Change:
        """Store a change of ``record`` at the next stream position (in the caller's
        transaction); the caller fans it out after the commit, with no await in between."""
        position = _next_position(db)
        db.execute(
            "INSERT INTO changes (position, announcement_id, kind, data, users, at, by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                position,
                int(record.id),
                kind,
                json.dumps(data, ensure_ascii=False),
                json.dumps(sorted(users)) if users is not None else None,
                codec.iso(at),
                by,
            ),
        )
        return Change(str(position), kind, record.id, record.audience, data, users)

    async def replay(
        self, viewer: Principal, *, after: str, limit: int, now: datetime
    ) -> list[Delivery]:
        records = await self.list_visible(viewer, after=after, limit=limit, now=now)
        changes = self._changes(viewer, after=int(after), upto=_MAX_ID, limit=limit, desc=False)
        merged: list[Delivery] = [*records, *changes]
        merged.sort(key=lambda item: int(item.position))
        return merged[:limit]

    def _changes(
        self, viewer: Principal, *, after: int, upto: int, limit: int, desc: bool
    ) -> list[Change]:
        params = {
            "after": after,
            "upto": upto,
            **audience_params(viewer),
            "limit": limit,
        }
        rows = self._db.execute(_CHANGES.format(order="DESC" if desc else "ASC"), params).fetchall()
        return [
            Change(
                str(row["position"]),
                row["kind"],
                str(row["announcement_id"]),
                Audience.from_json(json.loads(row["audience"])),
                json.loads(row["data"]),
                frozenset(json.loads(row["users"])) if row["users"] is not None else None,
            )
            for row in rows
        ]

    async def ack(self, ann_id: str, user_id: str, *, now: datetime) -> datetime:
        with self._tx() as db:
            changed = self._record(db, user_id, [(ann_id, ACKNOWLEDGED)], now)
            row = db.execute(
                "SELECT acked_at FROM acks WHERE announcement_id = ? AND user_id = ?",
                (int(ann_id), user_id),
            ).fetchone()
        self._hub.reach_changed(changed)
        return _time(row["acked_at"])

    async def acks(self, ann_id: str) -> list[Ack]:
        rows = self._db.execute(
            "SELECT user_id, acked_at FROM acks WHERE announcement_id = ?"
            " ORDER BY acked_at, user_id",
            (int(ann_id),),
        ).fetchall()
        return [Ack(row["user_id"], _time(row["acked_at"])) for row in rows]

    async def record_receipts(
        self, user_id: str, marks: Iterable[tuple[str, str]], *, now: datetime
    ) -> list[str]:
        with self._tx() as db:
            changed = self._record(db, user_id, marks, now)
        self._hub.reach_changed(changed)
        return changed

    def _record(
        self,
        db: sqlite3.Connection,
        user_id: str,
        marks: Iterable[tuple[str, str]],
        now: datetime,
    ) -> list[str]:
        """Insert the receipts (and those they imply), first time kept; the ids changed."""
        at = now.astimezone(UTC).isoformat()
        changed: dict[str, None] = {}
        for ann_id, kind in marks:
            if not _is_id(ann_id):
                continue
            for implied in IMPLIED[kind]:
                if implied == ACKNOWLEDGED:
                    cur = db.execute(
                        "INSERT INTO acks (announcement_id, user_id, acked_at) VALUES (?, ?, ?)"
                        " ON CONFLICT DO NOTHING",
                        (int(ann_id), user_id, at),
                    )
                else:
                    cur = db.execute(
                        "INSERT INTO receipts (announcement_id, user_id, kind, at)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (int(ann_id), user_id, implied, at),
                    )
                if cur.rowcount > 0:
                    changed[ann_id] = None
        return list(changed)

    async def receipts(self, ann_id: str) -> list[Receipt]:
        if not _is_id(ann_id):
            return []
        times: dict[str, dict[str, datetime]] = {}
        for row in self._db.execute(
            "SELECT user_id, kind, at FROM receipts WHERE announcement_id = ?", (int(ann_id),)
        ):
            times.setdefault(row["user_id"], {})[row["kind"]] = _time(row["at"])
        for ack in await self.acks(ann_id):
            times.setdefault(ack.user_id, {})[ACKNOWLEDGED] = ack.acked_at
        counts: dict[str, int] = {}
        for row in self._db.execute(
            "SELECT user_id, last_at, count FROM reminded WHERE announcement_id = ?",
            (int(ann_id),),
        ):
            times.setdefault(row["user_id"], {})[_REMINDED] = _time(row["last_at"])
            counts[row["user_id"]] = row["count"]
        return [
            Receipt(
                user,
                delivered_at=t.get(DELIVERED),
                read_at=t.get(READ),
                acked_at=t.get(ACKNOWLEDGED),
                displayed_at=t.get(DISPLAYED),
                reminded_at=t.get(_REMINDED),
                reminders=counts.get(user, 0),
            )
            for user, t in times.items()
        ]

    async def recipients(self, ann_id: str) -> list[str]:
        if not _is_id(ann_id):
            return []
        rows = self._db.execute(
            "SELECT user_id FROM recipients WHERE announcement_id = ? ORDER BY user_id",
            (int(ann_id),),
        ).fetchall()
        return [row["user_id"] for row in rows]

    # streams ----------------------------------------------------------------------------
    def subscribe(
        self, viewer: Principal, *, queue_size: int, on_overflow: Callable[[], None]
    ) -> Subscription:
        sub = self._hub.subscribe(viewer, queue_size=queue_size, on_overflow=on_overflow)
        # publish (and every change) commits and fans out with no await in between: all
        # committed was fanned out, so the newest position fanned out is the database's, once
        # the hub knows what the database held before (read once)
        fanned = self._hub.fanned
        if fanned.head is None:
            row = self._db.execute(
                "SELECT NULLIF(MAX(COALESCE((SELECT MAX(id) FROM announcements), 0),"
                " COALESCE((SELECT MAX(position) FROM changes), 0)), 0)"
            ).fetchone()
            fanned.begin(str(row[0]) if row[0] is not None else NOTHING_YET)
        sub.horizon = fanned.head or NOTHING_YET
        return sub

    async def close_streams(self, user_id: str, *, session_id: str | None) -> None:
        self._hub.close_user(user_id, session_id=session_id)

    def stats(self) -> BrokerStats:
        return BrokerStats(subscriptions=len(self._hub))

    async def close(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        self._db.close()


_MAX_ID = 2**63 - 1
_REMINDED = "reminded"  # (a key of receipts(): when the last reminder was sent)
_ERROR_LOG_INTERVAL = 60.0  # seconds: a failing database is logged once per interval
_WATCH_INTERVAL = 1.0  # seconds between two looks for sessions ended by another program
_SIDE_FILES = ("-wal", "-shm")  # SQLite's write-ahead log and its index, beside the database


def _identity(db_path: Path) -> dict[str, tuple[int, int] | None]:
    """Device and inode of the database and its side files, by name (None: missing); read
    with ``stat``, which opens nothing."""
    found: dict[str, tuple[int, int] | None] = {}
    for path in (db_path, *(db_path.with_name(db_path.name + s) for s in _SIDE_FILES)):
        try:
            info = path.stat()
        except FileNotFoundError:
            found[str(path)] = None
        else:
            found[str(path)] = (info.st_dev, info.st_ino)
    return found


def _next_position(db: sqlite3.Connection) -> int:
    """The next stream position for a change: the announcements' AUTOINCREMENT sequence moved
    on by one, so the next announcement's id comes after it too (SQLite lets a program write
    ``sqlite_sequence``). A database of an older version continues from its newest id."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'announcements'").fetchone()
    (top,) = db.execute(
        "SELECT MAX(COALESCE((SELECT MAX(id) FROM announcements), 0),"
        " COALESCE((SELECT MAX(position) FROM changes), 0))"
    ).fetchone()
    position = int(max(row[0] if row is not None else 0, top)) + 1
    if row is None:
        db.execute(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('announcements', ?)", (position,)
        )
    else:
        db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'announcements'", (position,))
    return position


def _unrevoked(db: sqlite3.Connection, ann_id: str) -> Record | None:
    """The announcement ``ann_id`` as read in ``db``'s transaction, to be changed in it; None
    when the id is unknown. Raises AlreadyRevoked when it was revoked."""
    row = (
        db.execute("SELECT * FROM announcements WHERE id = ?", (int(ann_id),)).fetchone()
        if _is_id(ann_id)
        else None
    )
    if row is None:
        return None
    record = codec.from_row(row)
    if record.revoked:
        raise AlreadyRevoked(f"announcement {ann_id} was revoked")
    return record


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
