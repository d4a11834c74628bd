"""Private files and folders: the one place that decides who may read what the tray writes.

The history (announcements another user must not read), the log and the settings are created
readable by their owner only: folders 0700, files 0600. On Windows the modes are ignored (the
profile folders are already private there).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as a folder only its owner can enter.

    An existing folder is tightened too: a folder a previous version created 0755 would
    otherwise stay readable by everyone.
    """
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # a folder we do not own (e.g. a shared parent)
        path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make an existing file (or create an empty one) readable and writable by its owner only."""
    private_dir(path.parent)
    private_path(path)
    return path


def private_path(path: Path, *, create: bool = True) -> None:
    """Create ``path`` empty with mode 0600 when it is missing (and ``create``), else tighten
    it to 0600 by its name. An existing file is never opened: closing any descriptor of a file
    drops every POSIX lock this process holds on it, SQLite's own among them, and another
    program closing the database would then delete its write-ahead log under us (the SQLite
    documentation, "How To Corrupt An SQLite Database File", 2.2)."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    with contextlib.suppress(OSError):  # missing, or not ours to change
        if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            path.chmod(FILE_MODE)


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file, then rename), mode 0600."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    with contextlib.suppress(OSError):
        tmp.chmod(FILE_MODE)
    tmp.replace(path)
    return path
