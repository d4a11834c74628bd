"""Holding up under too many connections, against the real server on loopback: the cap (idle
sockets make room, busy ones get 503), the fd limit (a server process with a lowered limit),
slow and half-sent requests, the keepalive timeout, and logging that does not flood.

The backend plays no part here: these run on SQLite only."""

from __future__ import annotations

import logging
import os
import re
import resource
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.server.connections import RepeatLog, default_cap
from app.server.runtime import DEMO_PASSWORD
from tests.fixtures.server import ServerFactory
from tests.fixtures.wait import wait_until
from tests.server.conftest import TIMEOUT, login

FLOOD = 60  # idle sockets opened by a test (a bounded count)


@pytest.fixture
def server_backend() -> str:
    return "sqlite"


def _idle_sockets(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        socks.append(sock)
    return socks


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Read until the server closes the socket (True) or ``seconds`` pass (False); returns
    what was read too."""
    sock.settimeout(seconds)
    got = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                return True, got
            got += chunk
    except ConnectionResetError:
        return True, got
    except TimeoutError:
        return False, got
    return False, got


def _healthz_ms(url: str) -> float:
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        start = time.perf_counter()
        answer = client.get("/healthz")
        elapsed = (time.perf_counter() - start) * 1000
    assert answer.status_code == 200, answer.text
    return elapsed


def _open_stream(port: int, user: str, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"GET /sse/connect/{user} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    got = b""
    while b"event: connected" not in got:
        chunk = sock.recv(65536)
        assert chunk, "the stream ended before connected"
        got += chunk
    return sock


def test_idle_sockets_past_the_cap_leave_healthz_answering_fast(
    server_factory: ServerFactory,
) -> None:
    cap = 20
    server = server_factory(max_connections=cap, header_timeout=60)
    guard = server._running().guard
    socks = _idle_sockets(server.port, FLOOD)
    try:
        wait_until(lambda: guard.evicted + guard.refused >= FLOOD - cap)
        assert len(guard) <= cap
        latencies = [_healthz_ms(server.url) for _ in range(5)]
        assert max(latencies) < 1000, latencies
        print(f"\nheld at the cap: {len(guard)} of {FLOOD}; healthz {max(latencies):.1f} ms max")
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: len(guard) == 0)
    assert _healthz_ms(server.url) < 1000


def _slow_request(port: int) -> socket.socket:
    """A connection busy with a request whose body has not arrived (yet)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 40\r\n\r\n{"
    )
    return sock


def test_busy_connections_at_the_cap_get_503_with_retry_after(
    server_factory: ServerFactory,
) -> None:
    cap = 5
    server = server_factory(demo_users=True, max_connections=cap, ping_interval=0.5)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        token = login(client, "alice")["access_token"]
    guard = server._running().guard
    assert guard.stream_cap == 3  # two stay for other requests
    streams = [_open_stream(server.port, "alice", token) for _ in range(guard.stream_cap)]
    streams += [_slow_request(server.port) for _ in range(cap - guard.stream_cap)]
    wait_until(lambda: sum(guard._open.values()) == cap)  # every one busy
    try:
        extra = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        closed, answer = _closed_within(extra, 5)
        extra.close()
        assert closed
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"Retry-After: 5" in answer
        assert guard.refused == 1
    finally:
        for sock in streams:
            sock.close()
    wait_until(lambda: len(guard) == 0)
    assert _healthz_ms(server.url) < 1000  # serves again by itself


def _received(sock: socket.socket) -> bytes:
    """What has arrived on ``sock`` by now, without waiting."""
    got = b""
    sock.setblocking(False)
    try:
        while chunk := sock.recv(65536):
            got += chunk
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return got


REPLACED = b'"reason":"replaced"'


def test_streams_never_take_the_connections_logins_need(server_factory: ServerFactory) -> None:
    """Streams of many users up to the stream cap: a login still gets in, one more stream gets
    503 with Retry-After (the audit: at the cap, every other login answered 503)."""
    cap = 40
    server = server_factory(demo_users=True, max_connections=cap, ping_interval=0.5)
    guard = server._running().guard
    assert guard.stream_cap == cap - 2
    names = ["alice", "bob", *(f"staff{n}" for n in range(6))]
    for name in names[2:]:
        server.add_user(name, DEMO_PASSWORD)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        tokens = {name: [login(client, name)["access_token"] for _ in range(2)] for name in names}
    streams = [  # within every user's and session's bound: nobody's stream is replaced
        _open_stream(server.port, names[n % 8], tokens[names[n % 8]][n // 8 % 2])
        for n in range(guard.stream_cap)
    ]
    try:
        assert guard.streams == guard.stream_cap
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            assert login(client, "bob")["user_id"] == "bob"
            assert client.get("/healthz").status_code == 200
            more = client.get(
                "/sse/connect/bob", headers={"Authorization": f"Bearer {tokens['bob'][1]}"}
            )
        assert more.status_code == 503
        assert more.headers["Retry-After"] == "5"
        assert "as many streams as it may" in more.json()["error"]
        assert not any(REPLACED in _received(sock) for sock in streams)
    finally:
        for sock in streams:
            sock.close()


def test_one_account_cannot_take_every_connection(server_factory: ServerFactory) -> None:
    """The audit's case: one user's 40 streams with ``--max-connections 40``. Beyond the user's
    bound, its oldest streams end (reason ``replaced``); everyone else logs in."""
    cap = 40
    server = server_factory(demo_users=True, max_connections=cap, ping_interval=0.5)
    per_user = server.config.http.max_streams_per_user
    guard = server._running().guard
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        sessions = [login(client, "alice")["access_token"] for _ in range(cap // 4)]
        streams = [
            _open_stream(server.port, "alice", sessions[n % len(sessions)]) for n in range(cap)
        ]
        try:
            wait_until(lambda: guard.streams == per_user)
            seen = {sock: b"" for sock in streams}

            def replaced() -> int:
                for sock in streams:
                    seen[sock] += _received(sock)
                return sum(REPLACED in got for got in seen.values())

            wait_until(lambda: replaced() == cap - per_user)
            assert not any(REPLACED in seen[sock] for sock in streams[-per_user:])  # the newest
            for name in ("bob", "publisher"):
                assert login(client, name)["user_id"] == name
        finally:
            for sock in streams:
                sock.close()


def test_a_session_that_opens_too_many_streams_loses_its_oldest(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5)
    per_session = server.config.http.max_streams_per_session
    guard = server._running().guard
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        token = login(client, "alice")["access_token"]
        other = login(client, "alice")["access_token"]  # another device of the same person
    kept = _open_stream(server.port, "alice", other)
    first = _open_stream(server.port, "alice", token)
    rest = [_open_stream(server.port, "alice", token) for _ in range(per_session)]
    try:
        got = b""

        def ended() -> bool:
            nonlocal got
            got += _received(first)
            return REPLACED in got

        wait_until(ended)
        wait_until(lambda: guard.streams == 1 + per_session)
        assert not any(REPLACED in _received(sock) for sock in (kept, *rest))
    finally:
        for sock in (kept, first, *rest):
            sock.close()


def test_a_request_that_does_not_arrive_is_closed(server_factory: ServerFactory) -> None:
    server = server_factory(header_timeout=0.5)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    half = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    half.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line: headers unfinished
    start = time.monotonic()
    try:
        assert _closed_within(silent, 5)[0]
        assert _closed_within(half, 5)[0]
    finally:
        silent.close()
        half.close()
    assert time.monotonic() - start < 5


def test_each_connection_has_the_whole_time_for_its_first_request(
    server_factory: ServerFactory,
) -> None:
    """One timer serves every connection awaiting its first request, each at its own time:
    a connection opened later is given as long as the first, and one that was served (kept
    alive) or streams is never closed for it."""
    server = server_factory(header_timeout=3.0, demo_users=True, ping_interval=0.5)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        token = login(client, "alice")["access_token"]
    guard = server._running().guard
    early = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    served = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    served.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    stream = _open_stream(server.port, "alice", token)
    late = None
    try:
        assert not _closed_within(early, 1.5)[0]  # half its time
        late = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        opened_late = time.monotonic()
        assert _closed_within(early, 10)[0]
        assert not _closed_within(late, 0.5)[0]  # about 1.5 s of its time left
        assert _closed_within(late, 10)[0]
        assert 2.5 < time.monotonic() - opened_late < 10
        assert guard.timed_out == 2
        assert not _closed_within(served, 0.1)[0]
        assert not _closed_within(stream, 0.1)[0]  # (its pings arrive meanwhile)
    finally:
        for sock in (early, served, stream, late):
            if sock is not None:
                sock.close()


def test_a_body_that_does_not_arrive_is_a_408_and_closed(server_factory: ServerFactory) -> None:
    server = server_factory(body_timeout=0.5)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"username":'
        )
        closed, answer = _closed_within(sock, 5)
    assert closed
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_an_idle_kept_alive_connection_is_closed(server_factory: ServerFactory) -> None:
    server = server_factory(keepalive_timeout=0.5, header_timeout=60)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        closed, answer = _closed_within(sock, 5)
    assert closed
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_repeating_error_is_logged_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    repeat = RepeatLog(logging.getLogger("test.repeat"), interval=60, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="test.repeat"):
        for _ in range(1000):
            repeat(logging.ERROR, "accept", "accept failed")
            now[0] += 0.01  # 1000 in 10 s
        now[0] = 61
        repeat(logging.ERROR, "accept", "accept failed")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["accept failed", "accept failed (999 more times in the last 61 s)"]


def test_the_default_cap_leaves_room_below_the_fd_limit() -> None:
    assert default_cap(1024, 64) == 960
    assert default_cap(None, 64) > 0


# a server process with a lowered open-file limit --------------------------------------
SOFT, HARD = 64, 96  # the server raises the soft limit to the hard one; 32 fds are kept free


@pytest.fixture
def limited_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, HARD))

    env = {**os.environ, "TRAY_NOTIFIER_HOME": str(tmp_path / "home")}
    # fmt: off
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "server", "--port", "0",
         "--data-dir", str(tmp_path / "server")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=env, preexec_fn=limit,
    )
    # fmt: on
    try:
        url = _wait_for_url(proc)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_for_url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError(f"the server did not start: {proc.stderr.read() if proc.stderr else ''}")


def test_more_idle_sockets_than_the_fd_limit_do_not_take_the_server_down(
    limited_server: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = limited_server
    limits = Path(f"/proc/{proc.pid}/limits").read_text()
    assert re.search(rf"Max open files\s+{HARD}\s+{HARD}", limits), limits  # soft raised
    port = int(url.rsplit(":", 1)[1])
    count = HARD + 24  # more sockets than the server may hold file descriptors
    socks = _idle_sockets(port, count)
    try:
        latencies = [_healthz_ms(url) for _ in range(5)]
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
            assert client.get("/metrics").status_code == 200
        print(f"\n{count} idle sockets at fd limit {HARD}: healthz {max(latencies):.1f} ms max")
        assert max(latencies) < 1000, latencies
    finally:
        for sock in socks:
            sock.close()
    assert _healthz_ms(url) < 1000
    proc.terminate()
    _, err = proc.communicate(timeout=15)
    # eviction is logged once per interval, never once per connection; no accept errors
    assert err.count("closed the oldest idle connection") <= 2, err[-2000:]
    assert "out of system resource" not in err
    assert len(err.splitlines()) < 40, err[-2000:]
