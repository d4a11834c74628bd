"""Idle SSE connections held by one companion-server process, and broadcast latency.

Starts ``python -m app server`` as a subprocess (its memory is its own), opens --connections
idle streams to it from this process (raw asyncio sockets, each a different person, whose
tokens are signed with the key the benchmark gives the server: a server holds only a few
streams per user), reads the server's RSS before and after, then publishes --rounds
announcements to everyone and times how long each takes to reach every connection. Prints a
small table. ``bench/stream_opens.py`` measures the same memory against a bare server.

    .venv/bin/python bench/server_connections.py --connections 1000 --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

_URL = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def _raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


class Conn:
    """One idle stream; ``seen`` is set when a given announcement id arrives."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter
        self.buffer = b""
        self.waiting_for = b""
        self.seen = asyncio.Event()

    async def open(self, port: int, user: str, token: str) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(
            f"GET /sse/connect/{user} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await self.writer.drain()
        while b"event: connected" not in self.buffer:
            self.buffer += await self.reader.read(4096)
        self.buffer = b""

    async def pump(self) -> None:
        while chunk := await self.reader.read(65536):
            self.buffer = (self.buffer + chunk)[-4096:]
            if self.waiting_for and self.waiting_for in self.buffer:
                self.seen.set()


async def _bench(
    port: int, pid: int, people: list[tuple[str, str]], rounds: int
) -> dict[str, float]:
    base = f"http://127.0.0.1:{port}"
    connections = len(people)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        boss = await client.post("/auth/login", json={"username": "publisher", "password": "demo"})
        publisher = boss.json()["access_token"]
        rss_before = _rss_kib(pid)
        conns = [Conn() for _ in range(connections)]
        t0 = time.perf_counter()
        for start in range(0, connections, 100):
            batch = zip(conns[start : start + 100], people[start : start + 100], strict=True)
            await asyncio.gather(*(c.open(port, *person) for c, person in batch))
        connect_s = time.perf_counter() - t0
        pumps = [asyncio.create_task(c.pump()) for c in conns]
        await asyncio.sleep(1.0)  # let the server settle before measuring
        rss_after = _rss_kib(pid)
        latencies = []
        for i in range(rounds):
            marker = f"bench-{i}-{time.time_ns()}"
            for c in conns:
                c.seen.clear()
                c.waiting_for = marker.encode()
            t = time.perf_counter()
            r = await client.post(
                "/announcements",
                json={"title": marker, "body": "x", "audience": {"all": True}},
                headers={"Authorization": f"Bearer {publisher}"},
            )
            r.raise_for_status()
            await asyncio.gather(*(c.seen.wait() for c in conns))
            latencies.append(time.perf_counter() - t)
        metrics = (await client.get("/metrics")).text
        for c in conns:
            c.writer.close()
        for p in pumps:
            p.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    latencies.sort()
    dropped = re.search(r"^tray_notifier_dropped_total (\d+)", metrics, re.M)
    return {
        "connections": connections,
        "connect_s": connect_s,
        "rss_before_mib": rss_before / 1024,
        "rss_after_mib": rss_after / 1024,
        "kib_per_conn": (rss_after - rss_before) / connections,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "dropped": float(dropped.group(1)) if dropped else -1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    _raise_nofile(args.connections * 2 + 256)
    from bench._common import fleet_tokens, seed_signing_key  # (it imports this module)

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "TRAY_NOTIFIER_HOME": home}
        data = Path(home) / "server"
        # one person per stream (a server holds only a few per user), tokens minted here
        people = fleet_tokens(seed_signing_key(data), args.connections)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app",
                "--log-level",
                "WARNING",
                "server",
                "--port",
                "0",
                "--data-dir",
                str(data),
                "--demo-users",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            assert proc.stdout is not None
            port = 0
            for line in proc.stdout:
                if match := _URL.search(line):
                    port = int(match.group(1))
                    break
            if not port:
                raise SystemExit("the server did not start")
            result = asyncio.run(_bench(port, proc.pid, people, args.rounds))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
    print(json.dumps({k: round(v, 2) for k, v in result.items()}))
    print(f"{'figure':<32}{'value':>12}")
    rows = [
        ("idle SSE connections", f"{result['connections']:.0f}"),
        ("time to open them (s)", f"{result['connect_s']:.2f}"),
        ("server RSS before (MiB)", f"{result['rss_before_mib']:.1f}"),
        ("server RSS after (MiB)", f"{result['rss_after_mib']:.1f}"),
        ("memory per connection (KiB)", f"{result['kib_per_conn']:.1f}"),
        (f"broadcast p50, {args.rounds} rounds (ms)", f"{result['p50_ms']:.1f}"),
        (f"broadcast p99, {args.rounds} rounds (ms)", f"{result['p99_ms']:.1f}"),
        ("streams dropped", f"{result['dropped']:.0f}"),
    ]
    for name, value in rows:
        print(f"{name:<32}{value:>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
