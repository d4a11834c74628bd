"""``python -m app listen`` as a subprocess: output, exit codes, signals, and the end-to-end run
across two restarts of the companion server."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.core import config as app_config
from app.core.backoff import MIN_WAIT
from app.server.embedded import EmbeddedServer
from tests.fixtures.keyring import KeyringRunner
from tests.fixtures.scripted import ScriptedServer, sse, status
from tests.fixtures.server import DEMO_PASSWORD, ServerFactory
from tests.fixtures.spring import GREETING, PROFILE, SpringBackend

ROOT = Path(__file__).resolve().parents[1]
Scripted = Callable[..., ScriptedServer]
TOKEN = "tok-3c1f-secret"


def env_for(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "TRAY_NOTIFIER_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # no real keyring here
    env.pop("SSE_HEARTBEAT_TIMEOUT", None)
    return env


def listen(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "listen", *args],
        cwd=ROOT,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )


def listen_bg(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "app", "listen", *args],
        cwd=ROOT,
        env=env_for(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_json_lines_and_max_events(scripted: Scripted, tmp_path: Path) -> None:
    body = 'retry: 10\nid: 1\ndata: {"type":"announcement","id":"1","title":"Hi","body":"x"}\n\n'
    body += "event: sync\ndata: done\n\nid: 2\ndata: line1\ndata: line2\n\n"
    server = scripted(sse(body, then="stall"))
    result = listen(tmp_path, "--url", server.url, "--token", TOKEN, "--json", "--max-events", "3")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {
            "id": "1",
            "event": "message",
            "data": '{"type":"announcement","id":"1","title":"Hi","body":"x"}',
        },
        {"id": "1", "event": "sync", "data": "done"},
        {"id": "2", "event": "message", "data": "line1\nline2"},
    ]
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in result.stderr and TOKEN not in result.stdout


def test_text_lines(scripted: Scripted, tmp_path: Path) -> None:
    body = (
        'id: 7\ndata: {"type":"announcement","id":"7","title":"Drill","body":"3 pm",'
        '"priority":"high"}\n\nevent: connected\ndata: {}\n\ndata: {"type":"revoke","id":"7"}\n\n'
    )
    server = scripted(sse(body, then="stall"))
    result = listen(tmp_path, "--url", server.url, "--token", TOKEN, "--max-events", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["7 [high] Drill: 3 pm", "(connected) {}", "revoked 7"]


def test_204_exits_0(scripted: Scripted, tmp_path: Path) -> None:
    server = scripted(sse("retry: 10\ndata: last\n\n"), status(204))
    result = listen(tmp_path, "--url", server.url, "--token", TOKEN, "--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert len(server.requests) == 2


def test_401_exits_3_without_showing_the_token(scripted: Scripted, tmp_path: Path) -> None:
    server = scripted(status(401))
    result = listen(tmp_path, "--url", server.url, "--token", TOKEN)
    assert result.returncode == 3
    assert "get a new token" in result.stderr
    assert TOKEN not in result.stderr
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("script", "words"),
    [
        (sse("<html>login</html>", content_type="text/html"), "not an event stream"),
        (status(403), "HTTP 403"),
        (status(404), "HTTP 404"),
    ],
)
def test_protocol_errors_exit_4_at_once(
    scripted: Scripted, tmp_path: Path, script: object, words: str
) -> None:
    server = scripted(script)
    result = listen(tmp_path, "--url", server.url, "--token", TOKEN)
    assert result.returncode == 4
    assert words in result.stderr
    assert len(server.requests) == 1


def test_unreadable_ca_bundle_exits_4(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    result = listen(
        tmp_path, "--url", "https://127.0.0.1:9/x", "--token", TOKEN, "--ca-bundle", str(missing)
    )
    assert result.returncode == 4
    assert "CA bundle" in result.stderr


def test_broken_config_exits_4(tmp_path: Path) -> None:
    config = tmp_path / "home" / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text("[stream\n")
    result = listen(tmp_path, "--url", "http://127.0.0.1:9/x", "--token", TOKEN)
    assert result.returncode == 4
    assert "config file" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--url", "http://127.0.0.1:9/x"],
        ["--token", TOKEN],
        ["--server", "http://127.0.0.1:9"],
        ["--url", "http://127.0.0.1:9/x", "--token", TOKEN, "--user", "alice"],
        [],
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = listen(tmp_path, *args)
    assert result.returncode == 2
    assert "listen:" in result.stderr
    assert TOKEN not in result.stderr


def test_stored_login_without_a_keyring_exits_3(tmp_path: Path) -> None:
    result = listen(tmp_path, "--server", "http://127.0.0.1:9", "--user", "alice")
    assert result.returncode == 3
    assert "no system keyring is available" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_a_stalled_listener_cleanly(
    scripted: Scripted, tmp_path: Path, sig: signal.Signals
) -> None:
    server = scripted(sse(": quiet\n", then="stall"))
    proc = listen_bg(tmp_path, "--url", server.url, "--token", TOKEN)
    try:
        assert server.wait_requests(1, timeout=30)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert server.client_gone.wait(5)


# ------------------------------------------------------------------ end to end


def _read_lines(stream: object, out: queue.Queue[str | None]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)
    out.put(None)


def _end(proc: subprocess.Popen[str], reader: threading.Thread) -> str:
    """Make sure a background listener has ended; close its pipes; return its stderr."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=15)
    assert proc.stderr is not None
    err = proc.stderr.read()
    proc.stderr.close()
    reader.join(10)
    assert proc.stdout is not None
    proc.stdout.close()
    return err


def _login(server: EmbeddedServer) -> str:
    answer = httpx.post(
        server.url + "/auth/login",
        json={"username": "alice", "password": DEMO_PASSWORD},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def test_each_announcement_once_in_order_across_two_server_restarts(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    options = {"demo_users": True, "retry_ms": 100, "ping_interval": 1.0}
    server = server_factory(**options)
    token = _login(server)
    proc = listen_bg(
        tmp_path, "--url", server.url + "/sse/connect/alice", "--token", token, "--json"
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    published: list[str] = []
    received: list[dict[str, str]] = []

    def read_until(condition: Callable[[], bool]) -> None:
        while not condition():
            line = lines.get(timeout=30)
            assert line is not None, "listen ended early"
            received.append(json.loads(line))

    def announcements() -> list[str]:
        return [e["id"] for e in received if e["event"] == "message"]

    def connects() -> int:
        return sum(e["event"] == "connected" for e in received)

    def connected_more_than(times: int) -> Callable[[], bool]:
        return lambda: connects() > times

    try:
        read_until(lambda: any(e["event"] == "connected" for e in received))
        for batch in range(3):
            for i in range(batch * 70, min(200, batch * 70 + 70)):
                published.append(server.publish(f"n{i}", f"announcement {i}"))
            if batch > 0:  # (published while it was away: it waits at least a second)
                read_until(connected_more_than(batch))
            if batch < 2:  # restart on the same data folder and port while it streams
                port, data_dir = server.port, server.data_dir
                server.stop()
                server = server_factory(data_dir=data_dir, port=port, **options)
        read_until(lambda: len(announcements()) >= 200)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        err = _end(proc, reader)
    assert proc.returncode == 0, err
    assert announcements() == published  # each exactly once, in order
    titles = [json.loads(e["data"])["title"] for e in received if e["event"] == "message"]
    assert titles == [f"n{i}" for i in range(200)]
    assert connects() >= 3  # it did reconnect twice


def test_a_fresh_listener_resumes_from_the_connected_position(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    """listen keeps its position in the engine: the first ``connected`` gives it one, so what
    is published while it is away (here: between a close and its reconnect) still arrives."""
    # the server asks for the shortest wait a client takes (MIN_WAIT): what is published right
    # after the close is published while the listener is away, and nothing waits longer
    server = server_factory(demo_users=True, retry_ms=int(MIN_WAIT * 1000), ping_interval=1.0)
    old = server.publish("before", "x")
    proc = listen_bg(
        tmp_path,
        "--url",
        server.url + "/sse/connect/alice",
        "--token",
        _login(server),
        "--json",
        "--max-events",
        "14",  # connected, close, connected, 10 announcements, sync
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    received: list[dict[str, str]] = []
    try:
        first = lines.get(timeout=30)
        assert first is not None
        received.append(json.loads(first))
        assert received[0]["event"] == "connected" and received[0]["id"] == old
        server.close_streams("alice")  # away for at least MIN_WAIT
        published = [server.publish(f"n{i}", "x") for i in range(10)]
        while (line := lines.get(timeout=30)) is not None:
            received.append(json.loads(line))
        proc.wait(timeout=15)
    finally:
        err = _end(proc, reader)
    assert proc.returncode == 0, err
    connected = [e["id"] for e in received if e["event"] == "connected"]
    assert connected == [old, old]  # it came back with the position it was given
    assert [e["id"] for e in received if e["event"] == "message"] == published


def test_stored_login_on_a_real_keyring(
    companion_server: EmbeddedServer, gnome_keyring: KeyringRunner, tmp_path: Path
) -> None:
    """Log in through AuthSession into gnome-keyring, then ``listen --server --user`` uses it."""
    (tmp_path / "login.py").write_text(
        "import asyncio, sys\n"
        "from app.core.config import Endpoints, StreamSettings\n"
        "from app.core.auth import AuthSession\n"
        "from app.core.secrets import KeyringSecretStore\n"
        "async def main():\n"
        "    s = AuthSession(server_url=sys.argv[1], username='alice', endpoints=Endpoints(),\n"
        "                    secrets=KeyringSecretStore(), settings=StreamSettings())\n"
        "    await s.login('demo')\n"
        "    await s.aclose()\n"
        "asyncio.run(main())\n"
    )
    py = sys.executable
    then_listen = f'"{py}" login.py "$0" && exec "{py}" -m app listen --server "$0" --user alice'
    result = gnome_keyring(
        ["sh", "-c", f"{then_listen} --json --max-events 1", companion_server.url]
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["event"] == "connected"


def test_login_then_listen_against_a_ruoyi_backend(
    spring: Callable[..., SpringBackend], gnome_keyring: KeyringRunner, tmp_path: Path
) -> None:
    """``login`` with the configured token profile into gnome-keyring, then ``listen --server
    --user``: the greeting, then each notice once with its title and readable text."""
    backend = spring()
    profile = tmp_path / "system.toml"
    profile.write_text(app_config.dumps({"server_url": backend.url, **PROFILE}), encoding="utf-8")

    def publish() -> None:
        if backend.wait_for(lambda: backend.open_streams() == 1, timeout=40):
            backend.notice(
                {"noticeId": 7, "noticeTitle": "停电", "noticeContent": "<p>今晚&amp;明早</p>"}
            )
            backend.notice("plain words")

    publisher = threading.Thread(target=publish)
    publisher.start()
    py = sys.executable
    script = (
        f'printf admin123 | "{py}" -m app login --user admin --password-stdin && '
        f'exec "{py}" -m app listen --server "$0" --user admin --max-events 3'
    )
    result = gnome_keyring(
        ["env", f"TRAY_NOTIFIER_SYSTEM_CONFIG={profile}", "sh", "-c", script, backend.url]
    )
    publisher.join()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Logged in as admin")
    assert lines[1:] == [
        "- [normal] 连接成功",
        "- [normal] 停电: 今晚&明早",
        "- [normal] plain words",
    ]
    assert backend.connects[0].path == "/sse/connect/1"


@pytest.mark.parametrize("way", ["stdin", "file", "environment"])
def test_the_token_can_stay_out_of_the_process_list(
    scripted: Scripted, tmp_path: Path, way: str
) -> None:
    server = scripted(sse('id: 7\ndata: {"type":"announcement","id":"7","title":"Hi"}\n\n'))
    argv = ["listen", "--url", server.url, "--json", "--max-events", "1"]
    env = env_for(tmp_path)
    stdin = None
    if way == "stdin":
        argv.append("--token-stdin")
        stdin = TOKEN + "\n"
    elif way == "file":
        secret = tmp_path / "token"
        secret.write_text(TOKEN + "\n")
        argv += ["--token-file", str(secret)]
    else:
        env["TRAY_NOTIFIER_TOKEN"] = TOKEN
    result = subprocess.run(
        [sys.executable, "-m", "app", *argv],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == "7"
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in " ".join(argv)
    assert "--token puts the token on the command line" not in result.stderr


def test_a_token_on_the_command_line_is_warned_about_at_run_time(
    scripted: Scripted, tmp_path: Path
) -> None:
    server = scripted(sse('id: 7\ndata: {"type":"announcement","id":"7","title":"Hi"}\n\n'))
    result = listen(tmp_path, "--url", server.url, "--token", TOKEN, "--max-events", "1")
    assert result.returncode == 0, result.stderr
    (warning,) = [line for line in result.stderr.splitlines() if "--token" in line]
    assert "WARNING" in warning and "every user of this computer" in warning
    assert "TRAY_NOTIFIER_TOKEN" in warning and "--server URL --user U" in warning
    assert TOKEN not in result.stderr


# a title that would set the terminal's title, clear the screen (ESC and the one-byte CSI), ring
# the bell, and reverse what follows it
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b2J\u202egnp.exe\u2066x\x7f\x85"


@pytest.mark.parametrize("as_json", [False, True])
def test_no_terminal_control_from_the_server_reaches_stdout(
    scripted: Scripted, tmp_path: Path, as_json: bool
) -> None:
    announcement = {"type": "announcement", "id": "1", "title": HOSTILE, "body": HOSTILE}
    data = json.dumps(announcement, ensure_ascii=False)
    body = f"id: 1\ndata: {data}\n\nevent: {HOSTILE}\ndata: {HOSTILE}\n\n"
    server = scripted(sse(body.encode(), then="stall"))
    extra = ["--json"] if as_json else []
    result = listen(tmp_path, "--url", server.url, "--max-events", "2", *extra, "--token", TOKEN)
    assert result.returncode == 0, result.stderr
    for bad in ("\x1b", "\x07", "\x9b", "\x7f", "\x85", "\u202e", "\u2066"):
        assert bad not in result.stdout, f"raw {bad!r} on stdout"
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    if as_json:  # the same data, only escaped
        assert [json.loads(line)["data"] for line in lines] == [data, HOSTILE]
        assert json.loads(lines[1])["event"] == HOSTILE
    else:
        assert lines[0].startswith("1 [normal] \\x1b]0;pwned\\x07\\x1b[2J\\x9b2J\\u202egnp")
        assert "\\x7f\\x85" in lines[1]


def test_two_ways_of_giving_the_token_is_a_usage_error(tmp_path: Path) -> None:
    result = listen(tmp_path, "--url", "http://127.0.0.1:9/s", "--token", "x", "--token-stdin")
    assert result.returncode == 2
    assert "one way only" in result.stderr


def test_as_shown_prints_what_the_tray_would_show_under_the_profile(
    scripted: Scripted, tmp_path: Path
) -> None:
    """An administrator checks a backend profile without a desktop (issue 21): the notices read
    with ``[payload]``, titled, their HTML as text, with the id that de-duplicates them."""
    config_dir = tmp_path / "home" / "config"
    config_dir.mkdir(parents=True, mode=0o700)
    payload = {"payload": {**PROFILE["payload"], "priority": "/level"}}
    (config_dir / "config.toml").write_text(app_config.dumps(payload), encoding="utf-8")
    notice = {"noticeId": 7, "noticeTitle": "停电", "noticeContent": "<p>今晚&amp;明早</p>"}
    body = (
        f"data:{GREETING}\n\n"
        f"data:{json.dumps({**notice, 'level': 'urgent'}, ensure_ascii=False)}\n\n"
        "event: sync\ndata: {}\n\n"
    )
    server = scripted(sse(body.encode(), then="stall"))
    common = ("--url", server.url, "--token", TOKEN, "--as-shown", "--max-events", "2")
    text = listen(tmp_path, *common)
    shown = listen(tmp_path, *common, "--json")
    assert text.returncode == 0 and shown.returncode == 0, text.stderr + shown.stderr
    assert text.stdout.splitlines() == [
        f"- [normal] Tray Notifier: {GREETING}",
        "7 [urgent] 停电: 今晚&明早",
    ]
    first, second = (json.loads(line) for line in shown.stdout.splitlines())
    assert first == {
        "id": "", "event": "message", "announcement_id": "", "title": "Tray Notifier",
        "body": GREETING, "priority": "normal", "url": None,
    }  # fmt: skip
    assert second == {
        "id": "", "event": "message", "announcement_id": "7", "title": "停电",
        "body": "今晚&明早", "priority": "urgent", "url": None,
    }  # fmt: skip
