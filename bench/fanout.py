"""Fan-out to many SSE clients, per backend: memory per connection, broadcast p50/p99, idle CPU.

For each backend (sqlite, redis) and each N, it starts the server as a subprocess, ramps N idle
streams up from --workers client processes, then measures:

- memory per connection: (server RSS after - before) / N;
- idle CPU: the server's CPU share over --idle-seconds with keepalive pings every
  --ping-interval seconds and nothing published;
- broadcast p50/p99: --rounds announcements to everyone, each timed from the POST until the
  last of the N clients has it.

``--two-processes`` adds a run with two Redis-backed processes (the clients split between
them, no load balancer) at the largest N, and prints its ratios against one process.

    .venv/bin/python -m bench.fanout --counts 1000 5000 10000 --two-processes
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench._common import (
    ClientPool,
    ServerProc,
    cpu_seconds,
    fleet_tokens,
    login,
    publish,
    raise_nofile,
    redis_server,
    rss_kib,
    seed_signing_key,
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _run(args: argparse.Namespace, backend: str, n: int, processes: int) -> dict[str, float]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        key = seed_signing_key(tmp)
        url = stack.enter_context(redis_server(tmp / "redis")) if backend == "redis" else None
        servers = [
            ServerProc(tmp, redis_url=url, demo_users=i == 0, ping_interval=args.ping_interval)
            for i in range(processes)
        ]
        for server in servers:
            stack.callback(server.stop)
        # n people: a server holds only a few streams per user
        people, boss = fleet_tokens(key, n), login(servers[0].url, "publisher")
        rss_before = sum(rss_kib(s.pid) for s in servers)
        pool = ClientPool(args.workers)
        stack.callback(pool.close)
        ports = [servers[i % processes].port for i in range(n)]
        t0 = time.monotonic()
        opened = pool.open(people, ports)
        ramp_s = time.monotonic() - t0
        time.sleep(2.0)  # let the servers settle before measuring
        rss_after = sum(rss_kib(s.pid) for s in servers)
        cpu0, w0 = sum(cpu_seconds(s.pid) for s in servers), time.monotonic()
        time.sleep(args.idle_seconds)
        idle_cpu = (sum(cpu_seconds(s.pid) for s in servers) - cpu0) / (time.monotonic() - w0)
        latencies = []
        cpu0 = sum(cpu_seconds(s.pid) for s in servers)
        for i in range(args.rounds):
            marker = f"bench-{i}-{time.time_ns()}"
            pool.call_all("expect", marker)
            start = time.monotonic()
            publish(servers[i % processes].url, boss, marker)
            arrivals = pool.call_all("wait_marker", 30.0)
            if None in arrivals:
                raise SystemExit(f"round {i}: some clients never got the announcement")
            latencies.append(max(arrivals) - start)
        cpu_per_round = (sum(cpu_seconds(s.pid) for s in servers) - cpu0) / args.rounds
    return {
        "connections": opened,
        "ramp_s": ramp_s,
        "rss_after_mib": rss_after / 1024,
        "kib_per_conn": (rss_after - rss_before) / opened,
        "conns_per_mib": opened / (rss_after / 1024),
        "idle_cpu_pct": idle_cpu * 100,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "server_cpu_ms_per_broadcast": cpu_per_round * 1000,
    }


def _row(label: str, r: dict[str, float]) -> str:
    return (
        f"{label:<16}{r['connections']:>7.0f}{r['ramp_s']:>8.1f}{r['rss_after_mib']:>9.1f}"
        f"{r['kib_per_conn']:>9.1f}{r['idle_cpu_pct']:>9.1f}{r['p50_ms']:>9.0f}{r['p99_ms']:>9.0f}"
        f"{r['server_cpu_ms_per_broadcast']:>10.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "redis"])
    parser.add_argument("--counts", nargs="+", type=int, default=[1000, 5000, 10000])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=4, help="client processes")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--ping-interval", type=float, default=5.0)
    parser.add_argument("--two-processes", action="store_true")
    args = parser.parse_args()
    raise_nofile(20_000)
    print(
        f"{'backend':<16}{'conns':>7}{'ramp s':>8}{'RSS MiB':>9}{'KiB/conn':>9}"
        f"{'idle %':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/b':>10}",
        flush=True,
    )
    results: dict[str, dict[str, float]] = {}
    for backend in args.backends:
        for n in args.counts:
            results[f"{backend}/{n}"] = r = _run(args, backend, n, 1)
            print(_row(backend, r), flush=True)
    if args.two_processes:
        n = max(args.counts)
        one = results.get(f"redis/{n}") or _run(args, "redis", n, 1)
        two = results[f"redis-x2/{n}"] = _run(args, "redis", n, 2)
        print(_row("redis, 2 procs", two), flush=True)
        print(
            f"two processes vs one at {n}: connections per MiB of server memory x"
            f"{two['conns_per_mib'] / one['conns_per_mib']:.2f}, broadcast p99 x"
            f"{two['p99_ms'] / one['p99_ms']:.2f}"
        )
    print(json.dumps({k: {f: round(v, 2) for f, v in r.items()} for k, r in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
