"""The server's files (SQLite backend): a private data folder and database whatever the umask,
a damaged database stopping the start with a clear message, and ``/healthz`` reporting a
database that fails later."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT, login, publish


@pytest.fixture
def server_backend() -> str:
    return "sqlite"


@pytest.fixture(params=[0o022, 0o000])
def open_umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_folder_and_the_database_are_private_whatever_the_umask(
    server_factory: ServerFactory, tmp_path: Path, open_umask: int
) -> None:
    data_dir = tmp_path / "new" / "server"
    server = server_factory(data_dir=data_dir, demo_users=True)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        publish(client, login(client, "publisher"))  # the WAL has content
    db = data_dir / "server.db"
    assert _mode(data_dir) == 0o700
    for path in (db, db.with_name("server.db-wal"), db.with_name("server.db-shm")):
        assert path.exists(), path
        assert _mode(path) == 0o600, (path, oct(_mode(path)))
    assert _mode(data_dir / "signing.key") == 0o600


def test_files_left_readable_by_an_older_version_are_tightened(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    first = server_factory(data_dir=tmp_path / "srv")
    first.stop()
    (tmp_path / "srv").chmod(0o755)
    (tmp_path / "srv" / "server.db").chmod(0o644)
    (tmp_path / "srv" / "signing.key").chmod(0o644)
    server_factory(data_dir=tmp_path / "srv")
    assert _mode(tmp_path / "srv") == 0o700
    assert _mode(tmp_path / "srv" / "server.db") == 0o600
    assert _mode(tmp_path / "srv" / "signing.key") == 0o600


def _serve(data_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRAY_NOTIFIER_HOME": str(tmp_path / "home")}
    return subprocess.run(
        [sys.executable, "-m", "app", "server", "--port", "0", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda db: db.write_bytes(b"this is not a database" * 100), id="garbage"),
        pytest.param(lambda db: db.write_bytes(db.read_bytes()[:100] + b"\xff" * 8092), id="pages"),
    ],
)
def test_a_damaged_database_stops_the_start_with_a_clear_error(
    server_factory: ServerFactory, tmp_path: Path, damage: object
) -> None:
    data_dir = tmp_path / "srv"
    server_factory(data_dir=data_dir, demo_users=True).stop()
    db = data_dir / "server.db"
    for extra in (db.with_name("server.db-wal"), db.with_name("server.db-shm")):
        extra.unlink(missing_ok=True)
    damage(db)  # type: ignore[operator]
    result = _serve(data_dir, tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"the database {db} is damaged" in result.stderr
    assert "restore it from a backup" in result.stderr
    assert "listening" not in result.stdout


def test_healthz_reports_a_database_that_fails_later(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(data_dir=tmp_path / "srv")
    db = tmp_path / "srv" / "server.db"
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert client.get("/healthz").status_code == 200
        # the pages are in the file, not only in the write-ahead log (through SQLite: a
        # descriptor of this process opened and closed beside the server's would drop its locks)
        with contextlib.closing(sqlite3.connect(db)) as other:
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        # the disk under it went bad (written by another process, as a failing disk would)
        zero = "import sys; f = open(sys.argv[1], 'r+b'); f.write(bytes(int(sys.argv[2])))"
        subprocess.run([sys.executable, "-c", zero, str(db), str(db.stat().st_size)], check=True)
        answer = client.get("/healthz")
        assert answer.status_code == 503
        assert answer.json()["status"] == "degraded"
        assert str(db) in answer.json()["problem"]
