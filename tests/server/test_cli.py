"""``python -m app server`` and ``python -m app publish`` as subprocesses."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.cli import EXIT_AUTH, EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL, EXIT_USAGE
from app.server.embedded import EmbeddedServer
from app.server.runtime import DEMO_PASSWORD
from tests.fixtures.server_process import ServerProcess, server_env
from tests.server.conftest import bearer, login


def _app(*args: str, tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=server_env(tmp_path),
    )


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path, "--demo-users", "--ping-interval", "0.5")
    yield proc
    proc.close()


def test_server_with_demo_users_stops_cleanly_on_sigterm(server_process: ServerProcess) -> None:
    assert server_process.url.startswith("http://127.0.0.1:")
    printed = "".join(server_process.lines)
    for name in ("alice", "bob", "publisher"):
        assert f"demo user {name}" in printed
    with httpx.Client(base_url=server_process.url, timeout=10) as client:
        token = login(client, "alice")["access_token"]
        with client.stream("GET", "/sse/connect/alice", headers=bearer(token)) as response:
            chunks = response.iter_raw()
            first = next(chunks)
            assert first.startswith(b"retry: 3000")
            assert server_process.terminate() == EXIT_OK
            rest = first + b"".join(chunks)
    assert rest.endswith(b'event: close\ndata: {"reason":"shutdown"}\n\n')


def test_add_user_then_login(tmp_path: Path) -> None:
    data = tmp_path / "srv"
    done = _app(
        "server",
        "--data-dir",
        str(data),
        "add-user",
        "dave",
        "--password-stdin",
        "--group",
        "ops",
        "--publisher",
        tmp_path=tmp_path,
        stdin="pa55word\n",
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert "saved user dave" in done.stdout and "pa55word" not in done.stdout + done.stderr
    with EmbeddedServer(data_dir=data) as server, httpx.Client(base_url=server.url) as client:
        assert login(client, "dave", "pa55word")["user_id"] == "dave"
    empty = _app(
        "server",
        "--data-dir",
        str(data),
        "add-user",
        "erin",
        "--password-stdin",
        tmp_path=tmp_path,
        stdin="",
    )
    assert empty.returncode == EXIT_USAGE and "password" in empty.stderr


def test_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    done = _app("server", "--redis", "redis://:hunter2@127.0.0.1:1/0", tmp_path=tmp_path)
    assert done.returncode == EXIT_FAILURE
    assert "Redis at 127.0.0.1:1" in done.stderr and "cannot be reached" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    bad = _app("server", "--redis", "http://127.0.0.1:1/0", tmp_path=tmp_path)
    assert bad.returncode == EXIT_USAGE and "redis://" in bad.stderr


def _publish(url: str, *extra: str, tmp_path: Path, password: str = DEMO_PASSWORD + "\n"):
    return _app(
        "publish",
        "--server",
        url,
        "--title",
        "CLI",
        "--body",
        "from the CLI",
        "--password-stdin",
        *extra,
        tmp_path=tmp_path,
        stdin=password,
    )


def test_publish_cli(companion_server: EmbeddedServer, tmp_path: Path) -> None:
    done = _publish(
        companion_server.url,
        "--group",
        "it",
        "--priority",
        "high",
        "--url",
        "https://example.org",
        tmp_path=tmp_path,
    )
    assert done.returncode == EXIT_OK, done.stderr
    ann_id = done.stdout.strip()
    with httpx.Client(base_url=companion_server.url) as client:
        seen = client.get("/announcements", headers=bearer(login(client, "alice"))).json()
        assert [(a["id"], a["priority"], a["url"]) for a in seen] == [
            (ann_id, "high", "https://example.org")
        ]
        assert client.get("/announcements", headers=bearer(login(client, "bob"))).json() == []


def test_publish_cli_errors(companion_server: EmbeddedServer, tmp_path: Path) -> None:
    url = companion_server.url
    wrong = _publish(url, "--all", tmp_path=tmp_path, password="nope\n")
    assert wrong.returncode == EXIT_AUTH and "login refused" in wrong.stderr
    staff = _publish(url, "--all", "--login", "alice", tmp_path=tmp_path)
    assert staff.returncode == EXIT_AUTH and "publisher" in staff.stderr
    bad = _publish(url, "--all", "--url", "ftp://x", tmp_path=tmp_path)
    assert bad.returncode == EXIT_PROTOCOL and "field url" in bad.stderr
    no_password = _app(
        "publish", "--server", url, "--all", "--title", "t", "--body", "b", tmp_path=tmp_path
    )
    assert no_password.returncode == EXIT_USAGE and "--password-stdin" in no_password.stderr
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    gone = _publish(f"http://127.0.0.1:{closed_port}", "--all", tmp_path=tmp_path)
    assert gone.returncode == EXIT_FAILURE and "cannot reach" in gone.stderr
