"""The history file's schema: each version's migration, and bringing a file up to date.

The schema carries its version in ``PRAGMA user_version``; ``MIGRATIONS[n]`` takes a file from
version n to n + 1, in one transaction. A file written by a newer version is refused: it is
never changed under a program that cannot read it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.core.errors import HistoryStoreError

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first schema
    """
    CREATE TABLE announcements (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        id          TEXT NOT NULL UNIQUE,
        title       TEXT NOT NULL,
        body        TEXT NOT NULL,
        priority    TEXT NOT NULL,
        url         TEXT,
        created_at  REAL,
        expires_at  REAL,
        legacy      INTEGER NOT NULL DEFAULT 0,
        received_at REAL NOT NULL,
        read        INTEGER NOT NULL DEFAULT 0,
        acked       INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX announcements_received ON announcements (received_at);
    CREATE TABLE revoked (id TEXT PRIMARY KEY, revoked_at REAL NOT NULL);
    CREATE TABLE pending_acks (id TEXT PRIMARY KEY, queued_at REAL NOT NULL);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 1 -> 2: whether the person was told about it (a toast, a summary toast, or on purpose
    # not at all); what a crash left untold is told at the next start. Rows written by
    # version 1 were told by then: they count as shown.
    """
    ALTER TABLE announcements ADD COLUMN shown INTEGER NOT NULL DEFAULT 0;
    UPDATE announcements SET shown = 1;
    CREATE INDEX announcements_unshown ON announcements (shown) WHERE shown = 0;
    """,
    # 2 -> 3: receipts of every kind wait to be sent (delivered, read, acknowledged), not only
    # acknowledgements; those pending are kept
    """
    CREATE TABLE pending_receipts (
        id        TEXT NOT NULL,
        kind      TEXT NOT NULL,
        queued_at REAL NOT NULL,
        PRIMARY KEY (id, kind)
    );
    INSERT INTO pending_receipts (id, kind, queued_at)
        SELECT id, 'acknowledged', queued_at FROM pending_acks;
    DROP TABLE pending_acks;
    """,
    # 3 -> 4: a revoked announcement is kept, marked withdrawn (when the tray learned it); those
    # revoked before were deleted by then (their ids stay in ``revoked``)
    """
    ALTER TABLE announcements ADD COLUMN withdrawn_at REAL;
    """,
    # 4 -> 5: corrections and reminders (issue 25): the revision stored (an update is applied
    # and told once per revision), when it was corrected (shown "Updated"), and the last
    # reminder (when, and its event id: told once per reminder event)
    """
    ALTER TABLE announcements ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE announcements ADD COLUMN updated_at REAL;
    ALTER TABLE announcements ADD COLUMN reminded_at REAL;
    ALTER TABLE announcements ADD COLUMN reminder TEXT;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def statements(step: int) -> list[str]:
    """The statements of migration ``step`` (no statement holds a ``;`` inside a literal)."""
    return [s.strip() for s in MIGRATIONS[step].split(";") if s.strip()]


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file open on ``conn`` (autocommit) to :data:`SCHEMA_VERSION`, one migration
    a transaction; HistoryStoreError for a file of a newer version (named by ``path``)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise HistoryStoreError(
            f"the history file {path} was written by a newer version of this "
            "program. Update the program, or move the file aside to start a new history."
        )
    for step in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        for statement in statements(step):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {step + 1}")
        conn.execute("COMMIT")
