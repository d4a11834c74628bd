"""The local history: every announcement received, its read state, and the last event id.

One SQLite file per server and user (``HistoryStore.path_for``), in WAL mode. The worker thread
writes and the GUI thread reads through ONE connection guarded by a lock, so every method is
safe to call from any thread. ``record()`` stores an announcement and the stream's last event id
in one transaction: after a crash or a restart the stream resumes exactly where the history
stops, without loss and without repeats.

Besides read and acknowledged, each announcement records whether it was ``shown`` (told by a
toast or a summary, see :mod:`app.core.toast_policy`): at the next start the tray tells what a
crash or a kill left untold (:meth:`HistoryStore.unshown`) and brings back the windows of urgent
announcements not acknowledged (:meth:`HistoryStore.unacknowledged_urgent`). A revoked one stays,
marked withdrawn with the time the tray learned it (:meth:`HistoryStore.withdraw`): listed, never
unread, never told or brought back again; its id is kept in ``revoked`` too, so that a replay
never brings it back as new, even one revoked before it arrived. The file is private
(0600, in a 0700 folder); a damaged one raises :class:`~app.core.errors.HistoryDamagedError`, and
:func:`~app.core.sqlite_files.move_aside` keeps it next to the new one. Its schema and the
migrations of older files are :mod:`app.core.history_schema`.
"""

from __future__ import annotations

import builtins
import enum
import hashlib
import json
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from app.core import history_schema
from app.core.errors import HistoryDamagedError as HistoryDamagedError  # re-exported
from app.core.errors import HistoryStoreError as HistoryStoreError  # re-exported
from app.core.files import private_dir, private_file
from app.core.model import ANONYMOUS_PREFIX, ROW_COLUMNS, Announcement, Update, from_epoch

Clock = Callable[[], datetime]
_T = TypeVar("_T")


# Whole statements as constants: no SQL is ever assembled from values. An announcement's own
# columns come first, as the model's row (model.ROW_COLUMNS, converted by Announcement.to_row
# and Announcement.from_row); tests/core/test_store.py checks that they match.
_SELECT = (
    "SELECT id, title, body, priority, url, created_at, expires_at, legacy, received_at, read, "
    "acked, shown, withdrawn_at, revision, updated_at, reminded_at FROM announcements "
)
_SELECT_BY_ID = _SELECT + "WHERE id = ?"
_LIST = (
    _SELECT + "WHERE (expires_at IS NULL OR expires_at > ?) "
    "ORDER BY COALESCE(created_at, received_at) DESC, seq DESC LIMIT ?"
)
_SEARCH = (
    _SELECT + "WHERE (expires_at IS NULL OR expires_at > ?) "
    "AND (casefold(title) LIKE ? ESCAPE '\\' OR casefold(body) LIKE ? ESCAPE '\\') "
    "ORDER BY COALESCE(created_at, received_at) DESC, seq DESC LIMIT ?"
)
# a withdrawn one is listed, but never unread, never waiting for acknowledgement or to be told
_UNREAD = (
    "SELECT COUNT(*) FROM announcements WHERE read = 0 AND withdrawn_at IS NULL "
    "AND (expires_at IS NULL OR expires_at > ?)"
)
_UNACKED_URGENT = (
    _SELECT + "WHERE priority = 'urgent' AND acked = 0 AND withdrawn_at IS NULL "
    "AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq"
)
_UNSHOWN = (
    _SELECT + "WHERE shown = 0 AND withdrawn_at IS NULL AND (expires_at IS NULL OR expires_at > ?) "
    "ORDER BY seq LIMIT ?"
)
_INSERT = (
    "INSERT OR IGNORE INTO announcements (id, title, body, priority, url, created_at, "
    "expires_at, legacy, received_at, read, acked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)"
)


class ReceiptKind(enum.StrEnum):
    """What a receipt says (the server's ``POST /receipts`` keys): queued here, sent by
    :mod:`app.core.receipts`."""

    DELIVERED = "delivered"  # stored on this machine
    DISPLAYED = "displayed"  # shown to the person: a toast, a summary counting it, its window
    READ = "read"  # opened, clicked or marked read
    ACKNOWLEDGED = "acknowledged"  # the person pressed Acknowledge


_QUEUE_RECEIPT = "INSERT OR IGNORE INTO pending_receipts (id, kind, queued_at) VALUES (?, ?, ?)"
_QUEUE_RECEIPT_IF_LIVE = (
    "INSERT OR IGNORE INTO pending_receipts (id, kind, queued_at) SELECT ?, ?, ? WHERE EXISTS "
    "(SELECT 1 FROM announcements WHERE id = ? AND withdrawn_at IS NULL)"
)

GREETINGS_KEPT = 16  # connect greetings remembered (different texts a backend may greet with)


@dataclass(frozen=True, slots=True)
class StoredAnnouncement:
    announcement: Announcement
    received_at: datetime
    read: bool
    acked: bool
    shown: bool = True  # told to the person (toast, summary, or on purpose not at all)
    withdrawn_at: datetime | None = None  # revoked by its publisher (when the tray learned it)
    revision: int = 0  # corrections applied (the text above is the corrected one)
    updated_at: datetime | None = None  # when it was last corrected (shown "Updated")
    reminded_at: datetime | None = None  # when the last reminder of it arrived

    @property
    def updated(self) -> bool:
        """Corrected by its publisher since it was first sent."""
        return self.revision > 0

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    @property
    def unread(self) -> bool:
        """Counts as unread: not read, not withdrawn."""
        return not self.read and self.withdrawn_at is None


def _now() -> datetime:
    return datetime.now(UTC)


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards taken literally."""
    escaped = text.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _casefold(value: str | None) -> str | None:
    return value.casefold() if value is not None else None


class HistoryStore:
    """The history of one server and user in one SQLite file; thread-safe.

    ``clock`` (keyword) gives "now" as an aware datetime; tests inject one to check expiry and
    retention.
    """

    def __init__(self, path: Path, *, clock: Clock = _now) -> None:
        self._path = path
        self._clock = clock
        self._lock = threading.RLock()
        # called (from the thread that queued) after receipts were queued: the sender wakes
        self._receipt_listeners: builtins.list[Callable[[], None]] = []
        try:
            private_dir(path.parent)
            private_file(path)  # SQLite gives the -wal and -shm files the same mode
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryStoreError(
                f"cannot open the history file {path}: {exc}. "
                "Check that the folder exists and is writable."
            ) from exc
        try:
            self._conn.create_function("casefold", 1, _casefold, deterministic=True)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            check = self._conn.execute("PRAGMA quick_check(1)").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else '?'}")
            self._migrate()
        except HistoryStoreError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise HistoryDamagedError(
                f"the history file {path} is damaged or not a history file ({exc}). "
                "Move it aside and restart: a new history will be created."
            ) from exc

    # ------------------------------------------------------------------ set-up

    @staticmethod
    def path_for(data_dir: Path, server_url: str, username: str) -> Path:
        """The history file of one user on one server: ``history/<host>-<user>-<hash>.sqlite3``.

        The server address is normalised (scheme and host lower case, default port and trailing
        slash dropped) so that spelling variants share one history.
        """
        parts = urlsplit(server_url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        default_port = {"http": 80, "https": 443}.get(scheme)
        port = f":{parts.port}" if parts.port and parts.port != default_port else ""
        key = f"{scheme}://{host}{port}{parts.path.rstrip('/')}\n{username}"
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
        readable = re.sub(r"[^A-Za-z0-9.-]+", "_", f"{host}-{username}")[:60]
        return data_dir / "history" / f"{readable}-{digest}.sqlite3"

    @property
    def path(self) -> Path:
        return self._path

    def _migrate(self) -> None:
        with self._lock:
            history_schema.migrate(self._conn, self._path)

    def close(self) -> None:
        """Close the file; safe to call twice. Any later call raises HistoryStoreError."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.ProgrammingError as exc:  # closed
                raise HistoryStoreError(f"the history {self._path} is closed") from exc

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.ProgrammingError as exc:
                raise HistoryStoreError(f"the history {self._path} is closed") from exc
            try:
                result = work(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

    def _now_ts(self) -> float:
        return self._clock().timestamp()

    def _insert(self, conn: sqlite3.Connection, ann: Announcement) -> bool:
        """Insert a new one and queue its delivered receipt (not for an event that carried
        no id: the server cannot know it)."""
        if conn.execute("SELECT 1 FROM revoked WHERE id = ?", (ann.id,)).fetchone():
            return False
        now = self._now_ts()
        cur = conn.execute(_INSERT, (*ann.to_row(), now))
        if cur.rowcount != 1:
            return False
        if not ann.anonymous and not ann.id.startswith(ANONYMOUS_PREFIX):
            conn.execute(_QUEUE_RECEIPT, (ann.id, ReceiptKind.DELIVERED, now))
        return True

    @staticmethod
    def _row(row: tuple[object, ...]) -> StoredAnnouncement:
        n = len(ROW_COLUMNS)
        received, read, acked, shown, withdrawn, revision, updated, reminded = row[n:]
        received_at = from_epoch(received)
        assert received_at is not None
        return StoredAnnouncement(
            Announcement.from_row(row),
            received_at,
            bool(read),
            bool(acked),
            bool(shown),
            from_epoch(withdrawn),
            int(revision) if isinstance(revision, int) else 0,
            from_epoch(updated),
            from_epoch(reminded),
        )

    # ------------------------------------------------------------------ announcements

    def record(self, ann: Announcement | None, last_event_id: str) -> bool:
        """Store ``ann`` (when given) and the stream's last event id in one transaction.

        True when ``ann`` is new; False for a known id or one revoked before (a replay never
        brings a revoked announcement back).
        """

        def work(conn: sqlite3.Connection) -> bool:
            new = self._insert(conn, ann) if ann is not None else False
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_event_id', ?)",
                (last_event_id,),
            )
            return new

        return self._notify_if(self._transaction(work))

    def record_many(
        self, received: Iterable[tuple[Announcement, str]], *, notify: bool = True
    ) -> builtins.list[Announcement]:
        """Store several announcements, each with the stream's event id after it, in ONE
        transaction (a catch-up); the last event id ends as the last one's. Returns the new
        ones, in order (known and revoked ids are left out, as :meth:`record` does).
        ``notify=False``: their delivered receipts are queued without waking the receipt
        listeners (the caller wakes the sender later, after the catch-up)."""
        items = builtins.list(received)
        if not items:
            return []

        def work(conn: sqlite3.Connection) -> builtins.list[Announcement]:
            taken = self._known_or_revoked(conn, [ann.id for ann, _ in items])
            new: builtins.list[Announcement] = []
            for ann, _ in items:
                if ann.id not in taken:
                    taken.add(ann.id)  # twice in the batch: the first one
                    new.append(ann)
            now = self._now_ts()
            conn.executemany(_INSERT, [(*ann.to_row(), now) for ann in new])
            conn.executemany(
                _QUEUE_RECEIPT,
                [
                    (ann.id, ReceiptKind.DELIVERED, now)
                    for ann in new
                    if not ann.anonymous and not ann.id.startswith(ANONYMOUS_PREFIX)
                ],
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_event_id', ?)",
                (items[-1][1],),
            )
            return new

        new = self._transaction(work)
        self._notify_if(notify and bool(new))
        return new

    @staticmethod
    def _known_or_revoked(conn: sqlite3.Connection, ids: builtins.list[str]) -> set[str]:
        """Those of ``ids`` already stored or revoked (a few queries, not one per id)."""
        taken: set[str] = set()
        for i in range(0, len(ids), 400):  # well under SQLite's limit of bound parameters
            chunk = ids[i : i + 400]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT id FROM announcements WHERE id IN ({marks}) "  # noqa: S608 (marks only)
                f"UNION SELECT id FROM revoked WHERE id IN ({marks})",
                (*chunk, *chunk),
            ).fetchall()
            taken.update(str(r[0]) for r in rows)
        return taken

    def add(self, ann: Announcement) -> bool:
        """Store ``ann``; True when it is new (not known, not revoked)."""
        return self._notify_if(self._transaction(lambda conn: self._insert(conn, ann)))

    def withdraw(self, ann_id: str, last_event_id: str = "") -> bool:
        """Revoked by its publisher: keep it, marked withdrawn now (the first time only: a
        replayed revoke keeps the time), its receipts not yet sent dropped, and remember the id
        so that it is never added again (also when it was never here). ``last_event_id``: the
        revoke's stream position, stored in the same transaction. True when this call
        withdrew it; False when it was withdrawn before or is not here."""

        def work(conn: sqlite3.Connection) -> bool:
            if last_event_id:
                self._set_last_id(conn, last_event_id)
            now = self._now_ts()
            cur = conn.execute(
                "UPDATE announcements SET withdrawn_at = ? WHERE id = ? AND withdrawn_at IS NULL",
                (now, ann_id),
            )
            conn.execute("DELETE FROM pending_receipts WHERE id = ?", (ann_id,))
            conn.execute(
                "INSERT OR REPLACE INTO revoked (id, revoked_at) VALUES (?, ?)", (ann_id, now)
            )
            return cur.rowcount > 0

        return self._transaction(work)

    def apply_update(self, update: Update, last_event_id: str) -> StoredAnnouncement | None:
        """A correction, with the stream's last event id, in one transaction: the stored
        text, priority, link and expiry replaced and marked updated (the server's time of the
        correction, else now), when the announcement is here, not withdrawn, and the revision
        is newer than the one stored. Returns it as now stored; None when nothing changed (a
        replayed or older revision, an announcement not here or withdrawn): not told again."""
        ann = update.announcement

        def work(conn: sqlite3.Connection) -> bool:
            if last_event_id:
                self._set_last_id(conn, last_event_id)
            at = update.updated_at.timestamp() if update.updated_at else self._now_ts()
            _, title, body, priority, url, _, expires, _ = ann.to_row()
            cur = conn.execute(
                "UPDATE announcements SET title = ?, body = ?, priority = ?, url = ?, "
                "expires_at = ?, revision = ?, updated_at = ? "
                "WHERE id = ? AND withdrawn_at IS NULL AND revision < ?",
                (title, body, priority, url, expires, update.revision, at, ann.id, update.revision),
            )
            return cur.rowcount > 0

        return self.get(ann.id) if self._transaction(work) else None

    def record_remind(
        self, ann_id: str, event_id: str, last_event_id: str
    ) -> StoredAnnouncement | None:
        """A reminder (its own stream ``event_id``), with the stream's last event id, in one
        transaction: when the announcement is here and not withdrawn, and this reminder was
        not recorded before, its time is stored and it is returned (tell it again); None
        otherwise (a replayed reminder is told once)."""

        def work(conn: sqlite3.Connection) -> bool:
            if last_event_id:
                self._set_last_id(conn, last_event_id)
            cur = conn.execute(
                "UPDATE announcements SET reminded_at = ?, reminder = ? WHERE id = ? "
                "AND withdrawn_at IS NULL AND (? = '' OR reminder IS NULL OR reminder != ?)",
                (self._now_ts(), event_id, ann_id, event_id, event_id),
            )
            return cur.rowcount > 0

        return self.get(ann_id) if self._transaction(work) else None

    @staticmethod
    def _set_last_id(conn: sqlite3.Connection, last_event_id: str) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_event_id', ?)",
            (last_event_id,),
        )

    def get(self, ann_id: str) -> StoredAnnouncement | None:
        rows = self._query(_SELECT_BY_ID, (ann_id,))
        return self._row(rows[0]) if rows else None

    def get_many(self, ann_ids: Iterable[str]) -> builtins.list[StoredAnnouncement]:
        """Those of ``ann_ids`` still stored, in the order given, in one query per 400 (a
        catch-up's arrivals: one query instead of one each)."""
        ids = builtins.list(ann_ids)
        found: dict[str, StoredAnnouncement] = {}
        for i in range(0, len(ids), 400):
            chunk = ids[i : i + 400]
            marks = ",".join("?" * len(chunk))
            sql = _SELECT + f"WHERE id IN ({marks})"
            for row in self._query(sql, tuple(chunk)):
                stored = self._row(row)
                found[stored.announcement.id] = stored
        return [found[i] for i in ids if i in found]

    def list(self, *, search: str = "", limit: int = 1000) -> list[StoredAnnouncement]:
        """Announcements not yet expired, newest first; ``search`` matches title or body,
        ignoring case, anywhere in the text (``%`` and ``_`` are taken literally)."""
        now, text, limit = self._now_ts(), search.strip(), max(0, limit)
        if not text:
            rows = self._query(_LIST, (now, limit))
        else:
            pattern = _like_pattern(text)
            rows = self._query(_SEARCH, (now, pattern, pattern, limit))
        return [self._row(r) for r in rows]

    # ------------------------------------------------------------------ read state

    def mark_read(self, ann_id: str) -> None:
        """Read (opened, clicked, marked read): a read receipt is queued the first time (not
        for a withdrawn one: it never counts as unread)."""
        self.mark_many_read([ann_id])

    def mark_many_read(self, ann_ids: Iterable[str]) -> None:
        """:meth:`mark_read` for each of ``ann_ids``, in one transaction (those shown by a
        search, marked read together)."""
        ids = builtins.list(dict.fromkeys(ann_ids))

        def select(conn: sqlite3.Connection) -> builtins.list[str]:
            found: builtins.list[str] = []
            for i in range(0, len(ids), 400):  # well under SQLite's limit of bound parameters
                chunk = ids[i : i + 400]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT id FROM announcements WHERE id IN ({marks}) "  # noqa: S608 (marks)
                    "AND read = 0 AND withdrawn_at IS NULL",
                    tuple(chunk),
                ).fetchall()
                found.extend(str(r[0]) for r in rows)
            return found

        if ids:
            self._read_ids(select)

    def mark_all_read(self) -> None:
        """Every unread one read, listed or not (withdrawn ones are not unread)."""
        self._read_ids(
            lambda conn: [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM announcements WHERE read = 0 AND withdrawn_at IS NULL"
                ).fetchall()
            ]
        )

    def _read_ids(self, select: Callable[[sqlite3.Connection], builtins.list[str]]) -> None:
        def work(conn: sqlite3.Connection) -> bool:
            ids = select(conn)
            now = self._now_ts()
            conn.executemany("UPDATE announcements SET read = 1 WHERE id = ?", [(i,) for i in ids])
            conn.executemany(
                _QUEUE_RECEIPT,
                [(i, ReceiptKind.READ, now) for i in ids if not i.startswith(ANONYMOUS_PREFIX)],
            )
            return bool(ids)

        self._notify_if(self._transaction(work))

    def unread_count(self) -> int:
        rows = self._query(
            _UNREAD,
            (self._now_ts(),),
        )
        count = rows[0][0]
        assert isinstance(count, int)
        return count

    # ------------------------------------------------------------------ shown

    def mark_shown(self, ann_ids: Iterable[str]) -> None:
        """The person was told about these (a toast, a summary toast, or on purpose nothing)."""
        ids = [(i,) for i in ann_ids]
        if ids:
            self._transaction(
                lambda conn: (
                    conn.executemany(
                        "UPDATE announcements SET shown = 1 WHERE id = ? AND shown = 0", ids
                    ).rowcount
                )
            )

    def mark_displayed(self, ann_ids: Iterable[str]) -> None:
        """The person was shown these (a toast, a summary toast that counts them, the urgent
        window): the ``displayed`` receipt is queued (the server keeps the first time)."""
        now = self._now_ts()
        rows = [
            (i, ReceiptKind.DISPLAYED, now, i)
            for i in ann_ids
            if not i.startswith(ANONYMOUS_PREFIX)
        ]
        if rows:  # (a withdrawn one gets no receipt: a summary may still count it)
            queue = _QUEUE_RECEIPT_IF_LIVE
            self._notify_if(self._transaction(lambda conn: conn.executemany(queue, rows).rowcount))

    def unshown(self, *, limit: int = 10_000) -> builtins.list[StoredAnnouncement]:
        """Stored but never told (the program stopped before the toast), oldest first; expired
        and withdrawn ones are left out."""
        return [self._row(r) for r in self._query(_UNSHOWN, (self._now_ts(), max(0, limit)))]

    # ------------------------------------------------------------------ stream position

    def last_event_id(self) -> str:
        rows = self._query("SELECT value FROM meta WHERE key = 'last_event_id'")
        return str(rows[0][0]) if rows else ""

    def set_last_event_id(self, event_id: str) -> None:
        self.record(None, event_id)

    # ------------------------------------------------------------------ connect greetings

    def is_known_greeting(self, fingerprint: str) -> bool:
        """True when a connect greeting with this fingerprint was stored before."""
        return fingerprint in self._greetings()

    def remember_greeting(self, fingerprint: str) -> None:
        """Keep ``fingerprint`` among the last :data:`GREETINGS_KEPT` greetings."""
        kept = [f for f in self._greetings() if f != fingerprint][-(GREETINGS_KEPT - 1) :]
        kept.append(fingerprint)

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('greetings', ?)",
                (json.dumps(kept),),
            )

        self._transaction(work)

    def _greetings(self) -> builtins.list[str]:
        rows = self._query("SELECT value FROM meta WHERE key = 'greetings'")
        try:
            kept = json.loads(str(rows[0][0])) if rows else []
        except ValueError:
            return []
        return [str(f) for f in kept] if isinstance(kept, list) else []

    # ------------------------------------------------------------------ acknowledgements

    def queue_ack(self, ann_id: str) -> bool:
        """Acknowledge pressed: mark it acknowledged (and so read and shown) and keep the
        receipt until it is sent. True when this call acknowledged it; False when it was
        acknowledged before (a second press, from the window and a notification) or withdrawn
        (revoked: nothing left to acknowledge): then no second receipt is queued. Called by
        :class:`app.core.attention.Attention` only."""

        def work(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT acked, withdrawn_at FROM announcements WHERE id = ?", (ann_id,)
            ).fetchone()
            if row is not None and (row[0] or row[1] is not None):  # withdrawn: nothing to ack
                return False
            conn.execute(
                "UPDATE announcements SET acked = 1, read = 1, shown = 1 WHERE id = ?", (ann_id,)
            )
            conn.execute(_QUEUE_RECEIPT, (ann_id, ReceiptKind.ACKNOWLEDGED, self._now_ts()))
            return True

        return self._notify_if(self._transaction(work))

    def unacknowledged_urgent(self) -> builtins.list[StoredAnnouncement]:
        """Urgent announcements not acknowledged, not expired, not withdrawn, oldest first:
        their windows come back after a restart until they are acknowledged."""
        return [self._row(r) for r in self._query(_UNACKED_URGENT, (self._now_ts(),))]

    def pending_acks(self) -> builtins.list[str]:
        """Acknowledgements not yet sent, oldest first."""
        rows = self._query(
            "SELECT id FROM pending_receipts WHERE kind = 'acknowledged' ORDER BY queued_at, rowid"
        )
        return [str(r[0]) for r in rows]

    def ack_sent(self, ann_id: str) -> None:
        self.receipts_sent([(ann_id, ReceiptKind.ACKNOWLEDGED)])

    # ------------------------------------------------------------------ receipts

    def pending_receipts(self, *, limit: int = 10_000) -> builtins.list[tuple[str, str]]:
        """``(announcement id, kind)`` of the receipts not yet sent, oldest first."""
        rows = self._query(
            "SELECT id, kind FROM pending_receipts ORDER BY queued_at, rowid LIMIT ?",
            (max(0, limit),),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def receipts_sent(self, receipts: Iterable[tuple[str, str]]) -> None:
        """The server has these (or they cannot be sent): forget them."""
        pairs = builtins.list(receipts)
        if pairs:
            self._transaction(
                lambda conn: (
                    conn.executemany(
                        "DELETE FROM pending_receipts WHERE id = ? AND kind = ?", pairs
                    ).rowcount
                )
            )

    def add_receipt_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` whenever receipts are queued (on the queueing thread: it must
        only hand over, e.g. ``loop.call_soon_threadsafe``); returns the call that stops it."""
        with self._lock:
            self._receipt_listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._receipt_listeners:
                    self._receipt_listeners.remove(listener)

        return remove

    def _notify_if(self, queued: _T) -> _T:
        """Tell the receipt listeners when ``queued`` is true; returns it."""
        if queued:
            with self._lock:
                listeners = builtins.list(self._receipt_listeners)
            for listener in listeners:
                listener()
        return queued

    # ------------------------------------------------------------------ retention

    def purge(self, retention_days: int) -> int:
        """Delete announcements received more than ``retention_days`` ago, and expired ones.

        Revoked ids are forgotten after the same time (the server no longer replays them).
        Returns how many announcements were deleted.
        """
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        now = self._clock()
        cutoff = (now - timedelta(days=retention_days)).timestamp()

        def work(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "DELETE FROM announcements WHERE received_at < ? "
                "OR (expires_at IS NOT NULL AND expires_at <= ?)",
                (cutoff, now.timestamp()),
            )
            conn.execute("DELETE FROM revoked WHERE revoked_at < ?", (cutoff,))
            return cur.rowcount

        return self._transaction(work)
