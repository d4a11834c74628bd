"""Every publish answered 201 survives a crash, whatever else opens the database meanwhile.

On POSIX, closing any descriptor of a file drops every lock the process holds on it, SQLite's
own included. A server that opened its database file outside SQLite (a health check reading the
header did) let the next other program to close the database (``server add-user``, the
``sqlite3`` shell, a backup) believe it was the last one: that program checkpointed and deleted
the write-ahead log under the running server, which went on writing to the deleted file, and
every later publish was gone after ``kill -9``. These tests do what IT does beside a running
server, then kill it, and find every answered publish again.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.server.runtime import DEMO_PASSWORD
from tests.fixtures.server import ServerFactory
from tests.fixtures.server_process import ServerProcess, server_env
from tests.server.conftest import TIMEOUT, bearer, login, publish

SQLITE3 = shutil.which("sqlite3")
needs_sqlite3 = pytest.mark.skipif(SQLITE3 is None, reason="the sqlite3 shell is not installed")


@pytest.fixture
def server_backend() -> str:
    return "sqlite"


def _sqlite3(db: Path, *commands: str) -> str:
    """The ``sqlite3`` shell, another process, as an administrator runs it."""
    assert SQLITE3 is not None
    done = subprocess.run(
        [SQLITE3, str(db), *commands], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _add_user(data_dir: Path, tmp_path: Path, name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "server", "--data-dir", str(data_dir), "add-user", name,
         "--password-stdin", "--group", "ops"],
        input=f"{DEMO_PASSWORD}\n", capture_output=True, text=True, timeout=60,
        env=server_env(tmp_path), check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def _side_files(db: Path) -> list[Path]:
    return [db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def _what_others_do(db: Path, tmp_path: Path, data_dir: Path) -> list[str]:
    """Read, write and back up the database from other processes, as the docs and IT do; the
    names of the users added."""
    assert _sqlite3(db, "SELECT count(*) FROM announcements") == "3"
    added = []
    for name in ("carol", "dave", "erin"):
        _add_user(data_dir, tmp_path, name)
        added.append(name)
    _sqlite3(
        db,
        "CREATE TABLE IF NOT EXISTS ops_notes (at TEXT)",
        "INSERT INTO ops_notes VALUES (datetime('now'))",
    )
    _sqlite3(db, f".backup {tmp_path / 'backup.db'}")
    assert all(path.exists() for path in _side_files(db)), "the server's log was deleted"
    return added


@needs_sqlite3
def test_the_server_command_keeps_every_201_across_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "srv"
    db = data_dir / "server.db"
    server = ServerProcess(tmp_path, "--demo-users", "--data-dir", str(data_dir))
    try:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            assert client.get("/healthz").status_code == 200
            boss = login(client, "publisher")
            answered = [publish(client, boss, title=f"before {n}") for n in range(3)]
            added = _what_others_do(db, tmp_path, data_dir)
            for name in added:  # known to the running server at once, not after a restart
                assert login(client, name)["user_id"] == name
            assert client.get("/healthz").status_code == 200
            answered += [publish(client, boss, title=f"after {n}") for n in range(5)]
            assert client.get("/healthz").status_code == 200
    finally:
        server.close()  # SIGKILL: no checkpoint, no clean close
    assert server.proc.returncode == -9

    again = ServerProcess(tmp_path, "--data-dir", str(data_dir))
    try:
        with httpx.Client(base_url=again.url, timeout=TIMEOUT) as client:
            boss = login(client, "publisher")
            listed = client.get("/announcements", params={"since": "0"}, headers=bearer(boss))
            assert [a["id"] for a in listed.json()] == answered
            assert login(client, "carol")["user_id"] == "carol"
    finally:
        again.close()


@needs_sqlite3
def test_an_in_process_server_keeps_its_log_while_others_use_the_database(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """The same with the server in this process (as the demo and the embedded default run
    it); the crash is a copy of the files taken by another process while the server runs."""
    data_dir = tmp_path / "srv"
    db = data_dir / "server.db"
    server = server_factory(data_dir=data_dir, demo_users=True)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert client.get("/healthz").status_code == 200
        boss = login(client, "publisher")
        answered = [publish(client, boss, title=f"before {n}") for n in range(3)]
        for name in _what_others_do(db, tmp_path, data_dir):
            assert login(client, name)["user_id"] == name
        answered += [publish(client, boss, title=f"after {n}") for n in range(5)]
        assert client.get("/healthz").status_code == 200
        crashed = tmp_path / "crashed"
        crashed.mkdir()
        for path in (db, *_side_files(db)):  # what the disk holds now
            subprocess.run(["cp", str(path), str(crashed)], check=True, timeout=60)
    copy = crashed / "server.db"
    ids = _sqlite3(copy, "SELECT group_concat(id, ' ') FROM announcements").split()
    assert ids == answered


def test_healthz_says_when_the_log_was_deleted_under_the_server(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """Whatever deleted it (an old version's health check, a careless clean-up), a server
    writing to a deleted log is not healthy: publishes since then would be lost at a crash."""
    data_dir = tmp_path / "srv"
    server = server_factory(data_dir=data_dir)
    wal = data_dir / "server.db-wal"
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert client.get("/healthz").status_code == 200
        wal.unlink()
        answer = client.get("/healthz")
    assert answer.status_code == 503
    problem = answer.json()["problem"]
    assert str(wal) in problem and "Restart the server now" in problem
