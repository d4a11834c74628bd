"""Private files: made 0600 whatever the umask, and an existing file never opened to do it.

On POSIX, closing any descriptor of a file drops every lock the process holds on it (SQLite's
own among them): making a database private must not open it (issue 18)."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.files import private_file, private_path

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX modes and locks")

# another process asks for the lock without waiting: exit 0 when it got it
_TRY_LOCK = """
import fcntl, sys
with open(sys.argv[1], "r+b") as fh:
    try:
        fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        sys.exit(1)
"""


def _others_can_lock(path: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", _TRY_LOCK, str(path)], timeout=60, check=False)
    return done.returncode == 0


def test_making_a_locked_file_private_keeps_this_process_s_locks(tmp_path: Path) -> None:
    path = tmp_path / "server.db"
    path.write_bytes(b"data")
    path.chmod(0o644)
    with path.open("r+b") as held:
        fcntl.lockf(held, fcntl.LOCK_SH)
        assert not _others_can_lock(path)
        private_path(path)
        private_file(path)
        assert not _others_can_lock(path), "the lock was dropped: the file was opened and closed"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"data"


def test_a_missing_file_is_created_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        private_path(tmp_path / "new")
        private_path(tmp_path / "not made", create=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o600
    assert not (tmp_path / "not made").exists()
