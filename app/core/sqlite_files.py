"""Moving a closed SQLite file with its write-ahead log and index: a log left by a crash holds
committed rows, so the three move together (the log first, the file last)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def move_aside(path: Path, *, now: datetime | None = None) -> Path:
    """Rename a damaged history file (and its ``-wal`` and ``-shm`` files) to
    ``NAME.damaged-YYYYMMDDTHHMMSS.sqlite3`` next to it; returns the new path of the file."""
    stamp = (now or datetime.now()).strftime("%Y%m%dT%H%M%S")  # the user's local time
    stem = path.name.removesuffix(".sqlite3")
    target = path.with_name(f"{stem}.damaged-{stamp}.sqlite3")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{stem}.damaged-{stamp}-{n}.sqlite3")
    move_database(path, target)
    return target


def move_database(path: Path, target: Path) -> None:
    """Rename a closed SQLite file and its ``-wal`` and ``-shm`` files (a log left by a crash
    holds committed rows) to ``target``: the log first, the file last."""
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.replace(target.with_name(target.name + suffix))
    path.replace(target)
