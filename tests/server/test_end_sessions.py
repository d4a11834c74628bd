"""An administrator logs a user out everywhere while the server runs: ``server end-sessions``,
and ``server add-user`` with a new password, through the database or Redis (another process
than the server's), on both backends."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from app.exit_codes import EXIT_OK, EXIT_USAGE
from app.server.embedded import EmbeddedServer
from app.server.runtime import DEMO_PASSWORD
from tests.fixtures.server import ServerFactory
from tests.fixtures.server_process import server_env
from tests.fixtures.wait import wait_until
from tests.server.conftest import TIMEOUT, Stream, bearer, login, metric


def _server_command(
    server: EmbeddedServer, tmp_path: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``python -m app server [--redis URL | --data-dir D] ARGS`` on the server's own state."""
    redis_url = server.config.redis_url
    where = ["--redis", redis_url] if redis_url else ["--data-dir", str(server.data_dir)]
    return subprocess.run(
        [sys.executable, "-m", "app", "server", *where, *args],
        input=stdin, capture_output=True, text=True, timeout=60, env=server_env(tmp_path),
        check=False,
    )  # fmt: skip


def _refused(client: httpx.Client, tokens: dict[str, str]) -> bool:
    refreshed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    listed = client.get("/announcements", headers=bearer(tokens))
    return refreshed.status_code == 401 and listed.status_code == 401


def test_end_sessions_logs_a_user_out_everywhere_while_the_server_runs(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        laptop, phone = login(client, "alice"), login(client, "alice")
        bob = login(client, "bob")
        stream = Stream(client, "alice", laptop["access_token"])
        bobs = Stream(client, "bob", bob["access_token"])
        try:
            stream.until(lambda e: e.event == "connected")
            bobs.until(lambda e: e.event == "connected")
            done = _server_command(server, tmp_path, "end-sessions", "alice")
            assert done.returncode == EXIT_OK, done.stderr
            assert "every login session of alice ended" in done.stdout
            closing = stream.until(lambda e: e.event == "close")[-1]
            assert closing.data == '{"reason":"session_ended"}'
            assert _refused(client, laptop) and _refused(client, phone)
            assert login(client, "bob")["user_id"] == "bob"  # nobody else is touched
            # alice logs in again; ending bob's sessions (another change by another process)
            # leaves her new login alone
            again = login(client, "alice")
            fresh = Stream(client, "alice", again["access_token"])
            fresh.until(lambda e: e.event == "connected")
            assert _server_command(server, tmp_path, "end-sessions", "bob").returncode == 0
            bobs.until(lambda e: e.event == "close")
            wait_until(lambda: metric(client, "connections") == 1)
            assert client.get("/announcements", headers=bearer(again)).status_code == 200
            fresh.close()
        finally:
            stream.close()
            bobs.close()


def test_a_new_password_ends_the_old_sessions_and_the_same_one_does_not(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(demo_users=True)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        before = login(client, "alice")
        same = _server_command(
            server, tmp_path, "add-user", "alice", "--password-stdin", "--group", "it",
            stdin=f"{DEMO_PASSWORD}\n",
        )  # fmt: skip
        assert same.returncode == EXIT_OK, same.stderr
        assert "ended" not in same.stdout
        assert client.get("/announcements", headers=bearer(before)).status_code == 200
        changed = _server_command(
            server, tmp_path, "add-user", "alice", "--password-stdin", "--group", "it",
            stdin="a new secret\n",
        )  # fmt: skip
        assert changed.returncode == EXIT_OK, changed.stderr
        assert "the password changed: every login session of alice ended" in changed.stdout
        wait_until(lambda: _refused(client, before))
        assert login(client, "alice", "a new secret")["user_id"] == "alice"


def test_end_sessions_of_nobody_says_so(server_factory: ServerFactory, tmp_path: Path) -> None:
    server = server_factory(demo_users=True)
    done = _server_command(server, tmp_path, "end-sessions", "mallory")
    assert done.returncode == EXIT_USAGE
    assert "there is no user mallory" in done.stderr
