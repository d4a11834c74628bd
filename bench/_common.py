"""Shared parts of the load benchmarks: server subprocesses, Redis, and SSE client workers.

The clients live in separate worker processes (``ClientPool``), each an asyncio loop holding
many raw connections, so the load generator's CPU and memory are not the server's. Arrival
times are ``time.monotonic()`` (one system-wide clock on Linux), so a worker's timestamp can be
compared with the parent's publish time without any IPC delay in the figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.core.backoff import Backoff
from app.core.config import StreamSettings
from app.core.stream import STABLE_STREAM
from bench.server_connections import _raise_nofile as raise_nofile
from bench.server_connections import _rss_kib as rss_kib

__all__ = [
    "ClientPool",
    "Fleet",
    "ServerProc",
    "cpu_seconds",
    "fleet_tokens",
    "login",
    "percentile",
    "raise_nofile",
    "rss_kib",
    "seed_signing_key",
]

Fleet = tuple[str, str]  # a person of the fleet: (user id, access token)

_URL = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")
_ADMIN = re.compile(r"admin on http://127\.0\.0\.1:(\d+)")
_TICK = os.sysconf("SC_CLK_TCK")
CONNECT_TIMEOUT = StreamSettings().connect_timeout  # the engine's, 10 s
HEARTBEAT_TIMEOUT = StreamSettings().heartbeat_timeout  # the engine's read timeout, 45 s
_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class ServerProc:
    """``python -m app server`` as a subprocess (its memory and CPU are its own)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        redis_url: str | None = None,
        port: int = 0,
        demo_users: bool = True,
        ping_interval: float = 15.0,
        bare: bool = False,
        extra: tuple[str, ...] = (),
        profile: Path | None = None,
        wait: bool = True,
    ) -> None:
        """``bare``: the baseline server (``bench/bare_server.py``) instead, run the same way;
        ``profile``: run it under cProfile, its statistics written there when it stops;
        ``wait=False``: return at once, :meth:`ready` waits until it listens (to start several
        at the same time)."""
        python = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
        if bare:
            args = [*python, "-m", "bench.bare_server", "--port", str(port)]
            args += ["--ping-interval", str(ping_interval), *extra]
        else:
            args = [*python, "-m", "app", "--log-level", "WARNING", "server"]
            args += ["--port", str(port), "--data-dir", str(data_dir)]
            args += ["--ping-interval", str(ping_interval)]
            args += ["--demo-users"] if demo_users else []
            args += ["--redis", redis_url] if redis_url else []
            args += extra
        env = {**os.environ, "TRAY_NOTIFIER_HOME": str(data_dir / "home")}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
        self.port, self.url = port, ""
        self.admin_url = ""  # a bare server's own port, beside the shared one (``--reuse-port``)
        if wait:
            self.ready()

    def ready(self) -> ServerProc:
        """Wait until it listens; its port and URL are known then."""
        self.port = self._wait_port()
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_port(self) -> int:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if match := _ADMIN.search(line):
                self.admin_url = f"http://127.0.0.1:{match.group(1)}"
            elif match := _URL.search(line):
                return int(match.group(1))
        self.proc.wait(timeout=30)
        raise SystemExit(f"the server did not start (exit {self.proc.returncode})")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def redis_server(data_dir: Path, *, appendfsync: str = "always", nice: int = 0) -> Iterator[str]:
    """A throwaway ``redis-server`` (the test fixture's), yielding its URL. ``appendfsync``:
    the fixture's ``always``, or Redis's default ``everysec``, as a deployment runs it;
    ``nice``: the scheduling priority it gets (below 0 needs root: a Redis with a core of
    its own, when the benchmark's clients share the machine's cores)."""
    from tests.fixtures.redis import RedisServer

    binary = "/usr/bin/redis-server"
    if not Path(binary).exists():
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(binary, data_dir, appendfsync=appendfsync)
    server.start()
    if nice:
        try:
            os.setpriority(os.PRIO_PROCESS, server.pid, nice)
        except PermissionError:
            server.stop()
            raise SystemExit(f"cannot give redis-server priority {nice}: run as root") from None
    try:
        yield server.url
    finally:
        server.stop()


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def seed_signing_key(data_dir: Path) -> bytes:
    """Write the token signing key a server started on ``data_dir`` will use (as it would
    create it), so the benchmark can mint access tokens for as many users as it needs: the
    server holds at most a few streams per user, and a fleet is that many people."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path = data_dir / "signing.key"
    path.write_text(key + "\n", encoding="ascii")
    path.chmod(0o600)
    return key.encode("ascii")


def fleet_tokens(key: bytes, n: int, *, prefix: str = "u", ttl: float = 6 * 3600) -> list[Fleet]:
    """``n`` people (``u0``, ``u1``...), each with an access token signed by ``key``."""
    from app.server.auth import TokenIssuer
    from app.server.model import User

    issuer = TokenIssuer(key, ttl=ttl)
    people = []
    for i in range(n):
        name = f"{prefix}{i}"
        token, _ = issuer.issue(User(name, ""), session_id=f"s{i}")
        people.append((name, token))
    return people


def login(url: str, user: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/auth/login", json={"username": user, "password": "demo"})
        response.raise_for_status()
        return str(response.json()["access_token"])


def publish(url: str, token: str, title: str, *, timeout: float = 30) -> str:
    with httpx.Client(base_url=url, timeout=timeout) as client:
        response = client.post(
            "/announcements",
            json={"title": title, "body": "x", "audience": {"all": True}},
            headers={"Authorization": f"Bearer {token}"},
        )
        response.raise_for_status()
        return str(response.json()["id"])


# ---------------------------------------------------------------- client workers


def _source_socket(source: str) -> socket.socket:
    """A non-blocking TCP socket bound to ``source``, its port chosen at connect: bound with
    port 0 the kernel must find a port free for every destination, a search that grows with
    the ports in use (a client process of 17,000 connections spent its CPU there)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
    sock.setblocking(False)
    sock.bind((source, 0))
    return sock


class _Attempt(asyncio.Protocol):
    """One connection attempt of a :class:`_Conn`: an attempt given up (its connect timed out
    just as it was made) is stale and never reaches the client, which has at most one stream."""

    def __init__(self, conn: _Conn) -> None:
        self.conn, self.stale = conn, False
        self.transport: asyncio.Transport | None = None

    def __call__(self) -> _Attempt:  # its own protocol factory, for ``create_connection``
        return self

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self.stale:
            transport.abort()
        else:
            self.conn.made(transport)

    def data_received(self, data: bytes) -> None:
        if not self.stale:
            self.conn.received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.stale:
            self.conn.lost()

    def give_up(self) -> None:
        self.stale = True
        if self.transport is not None:
            self.transport.abort()


class _Conn:
    """One SSE client that reconnects exactly as the tray's engine does: the real
    :class:`~app.core.backoff.Backoff` (the server's ``retry:``, jitter, exponential waits after
    failures, ``Retry-After``), the engine's connect timeout, a stream that ended at once having
    delivered nothing counted as a failure (``STABLE_STREAM``), ``Last-Event-ID`` on every
    reconnect. It keeps every id it saw and how many it saw twice."""

    def __init__(self, worker: _Worker, port: int, user: str, token: str) -> None:
        self.worker, self.port = worker, port
        self.user, self.token = user, token
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.head = True  # reading the response head
        self.retry_after: str | None = None
        self.failed = False  # this response was refused (not 200)
        self.delivered = False  # an announcement on this response
        self.named = False  # the event being read has an ``event:`` name (a control event)
        self.opened_at = self.heard_at = 0.0  # when the stream opened, when a byte last came
        self.last_id = ""
        self.ids: set[str] = set()
        self.repeats = 0
        self.backoff = Backoff()
        self.connects = 0
        self.seen_round = -1
        self.connected = asyncio.Event()

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.worker.closing:
            attempt = _Attempt(self)
            sock = _source_socket(self.worker.source)
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await loop.sock_connect(sock, ("127.0.0.1", self.port))
                    await loop.create_connection(attempt, sock=sock)
                return
            except (OSError, TimeoutError):
                attempt.give_up()
                sock.close()
                self.worker.refused += 1
                await asyncio.sleep(self.backoff.after_failure())

    def made(self, transport: asyncio.Transport) -> None:
        self.transport, self.buffer, self.head = transport, b"", True
        self.failed = self.delivered = self.named = False
        self.retry_after = None
        self.opened_at = self.heard_at = time.monotonic()
        self.connects += 1
        resume = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id else ""
        transport.write(
            f"GET /sse/connect/{self.user} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.token}\r\n{resume}"
            "Accept: text/event-stream\r\n\r\n".encode()
        )

    def received(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        self.buffer += data
        if self.head:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            self.head, self.buffer = False, rest
            status, *fields = head.split(b"\r\n")
            if status.split(b" ", 2)[1] != b"200":
                self.failed = True
                self.worker.rejected += 1
                for field in fields:
                    name, _, value = field.partition(b":")
                    if name.strip().lower() == b"retry-after":
                        self.retry_after = value.strip().decode()
                assert self.transport is not None
                self.transport.abort()
                return
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.startswith(b"id: "):
                self.last_id = line[4:].decode()
                if not self.named:  # an announcement's (a control event's id is a position)
                    self.repeats += self.last_id in self.ids
                    self.ids.add(self.last_id)
            elif line.startswith(b"data: "):
                self.delivered |= not self.named  # an announcement, not a control event
                if self.worker.marker and self.worker.marker in line:
                    self.worker.saw_marker(self)
            elif not line:
                self.named = False  # the end of an event
            elif line.startswith(b"retry: "):
                self.backoff.set_retry_ms(int(line[7:]))
            elif line.startswith(b"event: connected"):
                self.named = True
                self.connected.set()
                self.worker.served.append(time.monotonic())
            elif line.startswith(b"event: ") and line != b"event: close":
                self.named = True
            elif line.startswith(b"event: close") or line == b"0\r":  # the end of the stream
                assert self.transport is not None
                self.transport.abort()  # then reconnect, as after EOF
                return

    def lost(self) -> None:
        self.transport = None
        self.connected.clear()
        if self.worker.closing:
            return
        if self.failed:
            delay = self.backoff.after_failure(self.retry_after)
        elif self.delivered or time.monotonic() - self.opened_at >= STABLE_STREAM:
            delay = self.backoff.after_success()
        else:  # ended at once with nothing delivered
            delay = self.backoff.after_failure()
        asyncio.get_running_loop().call_later(delay, lambda: self.worker.spawn(self.connect()))


class _Worker:
    """One worker process's loop: opens connections and answers the parent's commands."""

    def __init__(self, pipe: multiprocessing.connection.Connection, source: str) -> None:
        self.pipe = pipe
        # the address its connections come from: one of its own in 127.0.0.0/8, since the
        # connections to one port from one address are bounded by the ephemeral port range
        # (28,232 here), which a fleet on one shared port would exhaust
        self.source = source
        self.conns: list[_Conn] = []
        self.marker = b""
        self.round = 0
        self.pending = 0
        self.last_arrival = 0.0
        self.closing = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.served: list[float] = []  # when each stream's ``event: connected`` arrived
        self.refused = 0  # connects refused or timed out
        self.rejected = 0  # responses that were not 200 (503 at the cap...)

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def saw_marker(self, conn: _Conn) -> None:
        if conn.seen_round != self.round:
            conn.seen_round = self.round
            self.pending -= 1
            if self.pending == 0:
                self.last_arrival = time.monotonic()

    async def _read_timeouts(self) -> None:
        """The engine's read timeout: a stream silent for HEARTBEAT_TIMEOUT (no response head
        from a server that accepted but never answered, or no ping) is dropped, then the
        client reconnects by its rule."""
        while not self.closing:
            await asyncio.sleep(1.0)
            silent = time.monotonic() - HEARTBEAT_TIMEOUT
            for conn in self.conns:
                if conn.transport is not None and conn.heard_at < silent:
                    conn.transport.abort()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self.spawn(self._read_timeouts())
        while True:
            cmd, arg = await loop.run_in_executor(None, self.pipe.recv)
            if cmd == "close":
                self.closing = True
                for conn in self.conns:
                    if conn.transport is not None:
                        conn.transport.abort()
                self.pipe.send(("closed", None))
                return
            reply = await getattr(self, f"_cmd_{cmd}")(arg)
            self.pipe.send(reply)

    async def _cmd_open(self, arg: dict[str, Any]) -> tuple[str, Any]:
        people = arg["people"]
        new = [
            _Conn(self, port, *person) for port, person in zip(arg["ports"], people, strict=True)
        ]
        self.conns += new
        started = time.monotonic()
        for start in range(0, len(new), arg["batch"]):
            batch = new[start : start + arg["batch"]]
            await asyncio.gather(*(c.connect() for c in batch))
            await asyncio.gather(*(c.connected.wait() for c in batch))
        return ("opened", (len(self.conns), started, time.monotonic()))

    async def _cmd_expect(self, marker: str) -> tuple[str, Any]:
        self.round += 1
        self.marker, self.pending, self.last_arrival = marker.encode(), len(self.conns), 0.0
        return ("armed", None)

    async def _cmd_wait_marker(self, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while self.pending > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return ("seen", self.last_arrival if self.pending == 0 else None)

    async def _cmd_wait_ids(self, arg: dict[str, Any]) -> tuple[str, Any]:
        """Wait until every connection holds every expected id (or the deadline)."""
        expected, deadline = set(arg["ids"]), time.monotonic() + arg["timeout"]
        connected = arg.get("connected", False)  # and every connection's stream open again
        while time.monotonic() < deadline:
            if all(expected <= c.ids for c in self.conns) and (
                not connected or all(c.connected.is_set() for c in self.conns)
            ):
                break
            await asyncio.sleep(0.05)
        done_at = time.monotonic()
        lacking = [c for c in self.conns if not expected <= c.ids]
        return (
            "ids",
            {
                "missing": sum(len(expected - c.ids) for c in lacking),
                "clients_lacking": len(lacking),
                "clients_connected": sum(c.connected.is_set() for c in self.conns),
                "done_at": done_at,
                "connects": sum(c.connects for c in self.conns),
            },
        )

    async def _cmd_stats(self, since: float) -> tuple[str, Any]:
        """What the server saw of this worker's clients since ``since`` (monotonic): when each
        stream was served (``event: connected``), connects refused or timed out, responses
        refused (503...), and announcements a client received twice (ever)."""
        return (
            "stats",
            {
                "served": [t for t in self.served if t >= since],
                "refused": self.refused,
                "rejected": self.rejected,
                "repeats": sum(c.repeats for c in self.conns),
                "connected": sum(c.connected.is_set() for c in self.conns),
            },
        )


def _worker_main(pipe: multiprocessing.connection.Connection, nofile: int, source: str) -> None:
    raise_nofile(nofile)
    asyncio.run(_Worker(pipe, source).run())


@dataclass
class ClientPool:
    """``workers`` processes sharing the connections; every call returns each worker's reply."""

    workers: int

    def __post_init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipes: list[multiprocessing.connection.Connection] = []
        self._procs: list[Any] = []
        for i in range(self.workers):
            parent, child = ctx.Pipe()
            source = f"127.0.1.{i + 1}"
            proc = ctx.Process(target=_worker_main, args=(child, 20_000, source), daemon=True)
            proc.start()
            child.close()  # a dead worker then reads as EOFError here, not a hang
            self._pipes.append(parent)
            self._procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self._procs]

    def call(self, cmd: str, args: list[Any]) -> list[Any]:
        for pipe, arg in zip(self._pipes, args, strict=True):
            pipe.send((cmd, arg))
        return [pipe.recv()[1] for pipe in self._pipes]

    def call_all(self, cmd: str, arg: Any) -> list[Any]:
        return self.call(cmd, [arg] * self.workers)

    def open(self, people: list[Fleet] | Fleet, ports: list[int], *, batch: int = 200) -> int:
        """Spread ``ports`` (one entry per connection) over the workers, the connection to
        ``ports[i]`` as ``people[i]`` (or all as one person); returns the total open."""
        return sum(n for n, _, _ in self.open_timed(people, ports, batch=batch))

    def open_timed(
        self, people: list[Fleet] | Fleet, ports: list[int], *, batch: int = 200
    ) -> list[tuple[int, float, float]]:
        """:meth:`open`, with each worker's (connections open, first connect started, last
        ``event: connected`` read) on the shared monotonic clock."""
        everyone = [people] * len(ports) if isinstance(people, tuple) else people
        args = [
            {"ports": ports[i :: self.workers], "people": everyone[i :: self.workers]}
            | {"batch": batch}
            for i in range(self.workers)
        ]
        return [tuple(reply) for reply in self.call("open", args)]

    def close(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.call_all("close", None)
        for proc in self._procs:
            proc.join(timeout=30)
