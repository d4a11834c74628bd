"""A fleet of 100,000 (issue 24): several server processes on one port, against the same
number of bare aiohttp SSE servers (``bench/bare_server.py``) run the same way in the same run,
then a restart of the whole service under the fleet.

For each kind (the companion server on Redis, then the bare server; alternated over
``--repetitions``), ``--processes`` processes share one port (``SO_REUSEPORT``: the kernel
spreads the connections, no load balancer) and the clients come from client processes (each
stream a different person, each client holding at most ``CLIENTS_PER_WORKER`` sockets: this
machine's hard limit is 20,000 open files per process):

- held: ``--streams`` idle streams are opened (200 at a time per client process); the servers'
  summed RSS before and after gives the memory per idle stream;
- keepalive CPU: the servers' summed CPU share over ``--idle-seconds`` with a ``: ping`` every
  ``--ping-interval`` seconds and nothing else happening (Redis's own CPU is given apart);
- broadcast: ``--rounds`` announcements, each timed from the publish until the last of all the
  streams has it (the companion server: one ``POST`` to the shared port, fanned out through
  Redis; the bare server: one ``POST`` to each process at once, on its own port);
- opens: ``--burst`` more streams open at once while the others are held, timed from the first
  connect to the last ``event: connected``, and per second of the servers' summed CPU;
- restart (the companion server, ``--restart``): one announcement every client has, then every
  process is stopped (each stream gets ``event: close``) and the same number started again on
  the same port at the same time; ``--missed`` announcements are published the moment the first
  process listens, before any client is back. The clients reconnect exactly as the tray does
  (``bench._common._Conn``: the real ``Backoff``, its connect timeout, ``Last-Event-ID``). The
  run waits until every client is connected again and holds every announcement, and prints how
  long after the servers' return that took, how many announcements were lost (must be 0) or
  received twice, and the reconnects the servers served per second (peak, p99, median).
  ``--replace``: the new processes are started on the shared port first and the old ones
  stopped then (the port never closes), timed from the old ones' signal.

Redis persists as a deployment runs it (``appendonly yes``, Redis's default ``appendfsync
everysec``; the tests' ``always`` with ``--appendfsync always``); ``--redis-nice -15`` (root)
gives it the priority a core of its own would, since the simulated trays share these cores.

    .venv/bin/python -m bench.fleet --streams 100000 --processes 6 --restart
    .venv/bin/python -m bench.fleet --streams 10000 --processes 2 --burst 2000 --restart
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    ClientPool,
    ServerProc,
    cpu_seconds,
    fleet_tokens,
    login,
    percentile,
    publish,
    raise_nofile,
    redis_server,
    rss_kib,
    seed_signing_key,
)

KINDS = ("product", "bare")
CLIENTS_PER_WORKER = 18_000  # sockets per client process, under its 20,000 open files
SETTLE_S = 2.0  # after the streams are open, before the memory is read


class Service:
    """``n`` processes of one kind sharing one port; the companion server's on one Redis."""

    def __init__(self, kind: str, tmp: Path, redis_url: str | None, args: argparse.Namespace):
        self.kind, self.tmp, self.redis_url, self.args = kind, tmp, redis_url, args
        first = self._spawn(port=0, demo_users=True).ready()
        self.port = first.port
        rest = [self._spawn(port=self.port, demo_users=False) for _ in range(args.processes - 1)]
        self.procs = [first, *(p.ready() for p in rest)]

    def _spawn(self, *, port: int, demo_users: bool, profile: Path | None = None) -> ServerProc:
        return ServerProc(
            self.tmp,
            redis_url=self.redis_url,
            port=port,
            demo_users=demo_users,
            ping_interval=self.args.ping_interval,
            bare=self.kind == "bare",
            extra=("--reuse-port",),
            wait=False,
            profile=profile,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> float:
        return sum(rss_kib(p.pid) for p in self.procs)

    def cpu_s(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        _stop(self.procs)

    def restart(self) -> tuple[float, float, float]:
        """Stop every process, start as many on the same port at once; returns when the last
        one had exited, and when the first and the last new one listened (monotonic)."""
        self.stop()
        exited_at = time.monotonic()
        self.procs, first_at, all_at = self._start_new()
        return exited_at, first_at, all_at

    def replace(self) -> tuple[float, float, float, float]:
        """Start as many new processes on the shared port, then stop the old ones (a
        replacement with ``SO_REUSEPORT``: the port is never closed); returns when the first
        and the last new one listened, when the old ones were signalled and when the last of
        them had exited (monotonic)."""
        old = self.procs
        new, first_at, all_at = self._start_new()
        self.procs = [*old, *new]  # the CPU sampler sees both while the old ones stop
        signalled_at = time.monotonic()
        _stop(old)
        exited_at = time.monotonic()
        self.procs = new
        return first_at, all_at, signalled_at, exited_at

    def _start_new(self) -> tuple[list[ServerProc], float, float]:
        profiles = self.args.profile
        new = [
            self._spawn(
                port=self.port,
                demo_users=False,
                profile=Path(f"{profiles}.{i}") if profiles else None,
            )
            for i in range(len(self.procs))
        ]
        first = new[0].ready()
        first_at = time.monotonic()
        ready = [first, *(p.ready() for p in new[1:])]
        return ready, first_at, time.monotonic()


def _stop(procs: list[ServerProc]) -> None:
    for proc in procs:
        proc.proc.terminate()
    for proc in procs:
        proc.stop()


def _broadcast(service: Service, boss: str, title: str) -> str | None:
    """One announcement to every stream; its id (the companion server's)."""
    if service.kind == "product":
        return publish(service.url, boss, title)

    def one(proc: ServerProc) -> None:
        response = httpx.post(
            f"{proc.admin_url}/announcements",
            json={"title": title, "body": "x", "audience": {"all": True}},
            headers={"Authorization": "Bearer bare"},
            timeout=60,
        )
        response.raise_for_status()

    with concurrent.futures.ThreadPoolExecutor(len(service.procs)) as threads:
        list(threads.map(one, service.procs))
    return None


def _measure(args: argparse.Namespace, kind: str) -> dict[str, Any]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        key = seed_signing_key(tmp)
        redis = None
        if kind == "product":
            redis = stack.enter_context(
                redis_server(tmp / "redis", appendfsync=args.appendfsync, nice=args.redis_nice)
            )
        service = Service(kind, tmp, redis, args)
        stack.callback(lambda: service.stop())
        people = fleet_tokens(key, args.streams + args.burst)
        boss = login(service.url, "publisher") if kind == "product" else ""
        workers = max(4, math.ceil((args.streams + args.burst) / CLIENTS_PER_WORKER))
        pool = ClientPool(workers)
        stack.callback(pool.close)
        time.sleep(1.0)  # the servers settle after their start
        rss_before = service.rss_kib()
        held = pool.open_timed(people[: args.streams], [service.port] * args.streams)
        ramp_s = max(end for _, _, end in held) - min(start for _, start, _ in held)
        time.sleep(SETTLE_S)
        rss_after = service.rss_kib()
        cpu0, wall0 = service.cpu_s(), time.monotonic()
        time.sleep(args.idle_seconds)
        keepalive = (service.cpu_s() - cpu0) / (time.monotonic() - wall0)
        latencies = []
        cpu0 = service.cpu_s()
        for i in range(args.rounds):
            marker = f"fleet-{i}-{time.time_ns()}"
            pool.call_all("expect", marker)
            start = time.monotonic()
            _broadcast(service, boss, marker)
            arrivals = pool.call_all("wait_marker", 60.0)
            if None in arrivals:
                raise SystemExit(f"{kind}, round {i}: some streams never got the announcement")
            latencies.append(max(arrivals) - start)
        broadcast_cpu = (service.cpu_s() - cpu0) / max(args.rounds, 1)
        cpu0 = service.cpu_s()
        burst = pool.open_timed(
            people[args.streams :], [service.port] * args.burst, batch=args.burst
        )
        burst_cpu = service.cpu_s() - cpu0
        took = max(end for _, _, end in burst) - min(start for _, start, _ in burst)
        result: dict[str, Any] = {
            "kind": kind,
            "processes": args.processes,
            "streams": sum(n for n, _, _ in burst),
            "ramp_per_s": args.streams / ramp_s,
            "kib_per_stream": (rss_after - rss_before) / args.streams,
            "rss_after_mib": rss_after / 1024,
            "keepalive_cpu_pct": keepalive * 100,
            "broadcast_p50_ms": statistics.median(latencies) * 1000 if latencies else math.nan,
            "broadcast_p99_ms": percentile(latencies, 99) * 1000 if latencies else math.nan,
            "broadcast_cpu_ms": broadcast_cpu * 1000,
            "opens_per_s": args.burst / took,
            "opens_per_cpu_s": args.burst / burst_cpu if burst_cpu else math.nan,
        }
        if kind == "product" and args.restart:
            result |= _restart(args, service, pool, boss)
    return result


def _restart(
    args: argparse.Namespace, service: Service, pool: ClientPool, boss: str
) -> dict[str, Any]:
    """The whole service restarts under the fleet; every client must come back and replay."""
    last = publish(service.url, boss, "before the restart")
    replies = pool.call_all("wait_ids", {"ids": [last], "timeout": 60.0})
    if sum(r["missing"] for r in replies):
        raise SystemExit("some streams lack the announcement sent before the restart")
    total = sum(r["clients_connected"] for r in replies)
    stopped_at = time.monotonic()
    sampler = CpuSampler(service, pool)
    if args.replace:  # the clients' wait starts when the old processes are signalled
        first_at, all_at, back_from, exited_at = service.replace()
    else:  # ... when the first new process listens
        exited_at, first_at, all_at = service.restart()
        back_from = first_at
    # published while the fleet is coming back: the publish waits its turn in the listen
    # queue behind the streams' opens (a publisher's client would wait as long)
    missed = [publish(service.url, boss, f"missed {k}", timeout=120) for k in range(args.missed)]
    replies = pool.call_all(
        "wait_ids", {"ids": missed, "timeout": args.deadline, "connected": True}
    )
    done_at = max(r["done_at"] for r in replies)
    busy = sampler.stop()
    stats = pool.call_all("stats", stopped_at)
    served = sorted(t for s in stats for t in s["served"])
    per_second = [0] * (int(max(served, default=back_from) - back_from) + 1)
    for t in served:
        if t >= back_from:
            per_second[int(t - back_from)] += 1
    lost = sum(r["missing"] for r in replies)
    back = sum(r["clients_connected"] for r in replies)
    return {
        "restart_clients": total,
        "restart_replaced": bool(args.replace),
        "restart_stop_to_first_listening_s": None if args.replace else first_at - stopped_at,
        "restart_stopping_s": exited_at - (back_from if args.replace else stopped_at),
        "restart_all_listening_after_s": all_at - first_at,
        # after the first new process listened; with --replace, after the old were signalled
        "restart_back_and_resumed_s": done_at - back_from,
        "restart_clients_back": back,
        "restart_clients_lacking": sum(r["clients_lacking"] for r in replies),
        "restart_lost": lost,
        "restart_repeated": sum(s["repeats"] for s in stats),
        "restart_refused_connects": sum(s["refused"] for s in stats),
        "restart_rejected_503": sum(s["rejected"] for s in stats),
        "restart_served": len(served),
        "restart_rate_peak_per_s": max(per_second, default=0),
        "restart_rate_p99_per_s": percentile([float(n) for n in per_second], 99),
        "restart_rate_p50_per_s": percentile([float(n) for n in per_second], 50),
        "restart_rate_per_s": per_second,
        # the CPU (share of one core) of the servers and of the clients, each second from
        # the stop: a second in which they stay idle while clients wait is time lost
        "restart_server_cpu_per_s": busy["servers"],
        "restart_client_cpu_per_s": busy["clients"],
    }


class CpuSampler:
    """The servers' and the clients' CPU each second, on a thread, until :meth:`stop`."""

    def __init__(self, service: Service, pool: ClientPool) -> None:
        self.service, self.pool = service, pool
        self.samples: dict[str, list[float]] = {"servers": [], "clients": []}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _cpu(self) -> tuple[float, float]:
        servers = 0.0
        for proc in list(self.service.procs):
            with contextlib.suppress(OSError, IndexError):
                servers += cpu_seconds(proc.pid)
        clients = 0.0
        for pid in self.pool.pids:
            with contextlib.suppress(OSError, IndexError):  # (a client process gone at the end)
                clients += cpu_seconds(pid)
        return servers, clients

    def _run(self) -> None:
        last = self._cpu()
        while not self._stop.wait(1.0):
            now = self._cpu()
            # a restarted process starts again from 0: its share of that second is lost
            self.samples["servers"].append(round(max(now[0] - last[0], 0.0), 2))
            self.samples["clients"].append(round(now[1] - last[1], 2))
            last = now

    def stop(self) -> dict[str, list[float]]:
        self._stop.set()
        self._thread.join()
        return self.samples


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--streams", type=int, default=100_000, help="idle streams held")
    parser.add_argument("--processes", type=int, default=6, help="server processes, one port")
    parser.add_argument("--burst", type=int, default=4000, help="streams opened at once")
    parser.add_argument("--rounds", type=int, default=10, help="broadcasts timed")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--ping-interval", type=float, default=15.0)
    parser.add_argument("--repetitions", type=int, default=1)
    parser.add_argument("--only", choices=KINDS, default=None, help="measure one kind only")
    parser.add_argument("--restart", action="store_true", help="then restart the service")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="with --restart: start the new processes on the shared port before stopping the old",
    )
    parser.add_argument(
        "--appendfsync",
        choices=("always", "everysec"),
        default="everysec",
        help="Redis's fsync policy (everysec: its default, as docs/scale-out.md deploys it)",
    )
    parser.add_argument(
        "--redis-nice",
        type=int,
        default=0,
        help="Redis's scheduling priority, e.g. -15 (root): a core of its own in effect",
    )
    parser.add_argument("--missed", type=int, default=3, help="published during the restart")
    parser.add_argument("--deadline", type=float, default=180.0, help="give up after (s)")
    parser.add_argument(
        "--profile", default=None, help="run the restarted processes under cProfile: PROFILE.N"
    )
    args = parser.parse_args()
    raise_nofile(20_000)
    rows = []
    for rep in range(args.repetitions):
        for kind in KINDS if args.only is None else (args.only,):
            row = _measure(args, kind) | {"repetition": rep}
            print(json.dumps({k: _rounded(v) for k, v in row.items()}), flush=True)
            rows.append(row)
    _summary(rows)
    return 0


def _rounded(value: Any) -> Any:
    return round(value, 2) if isinstance(value, float) else value


def _summary(rows: list[dict[str, Any]]) -> None:
    pairs = [
        (p, b)
        for p in rows
        if p["kind"] == "product"
        for b in rows
        if b["kind"] == "bare" and b["repetition"] == p["repetition"]
    ]
    for product, bare in pairs:
        print(
            f"repetition {product['repetition']}, {product['streams']} streams on"
            f" {product['processes']} processes, product / bare:"
        )
        for name, goal in (
            ("opens_per_s", ">= 0.7"),
            ("opens_per_cpu_s", ">= 0.7"),
            ("kib_per_stream", "<= 1.2"),
            ("keepalive_cpu_pct", "<= 1.2"),
            ("broadcast_p99_ms", "<= 1.0"),
        ):
            ratio = product[name] / bare[name] if bare[name] else math.nan
            print(
                f"  {name:<20} {product[name]:>10.1f} {bare[name]:>10.1f}"
                f"  ratio {ratio:.2f} (goal {goal})"
            )
    for row in rows:
        if "restart_back_and_resumed_s" in row:
            verdict = (
                "OK"
                if row["restart_lost"] == 0
                and row["restart_clients_lacking"] == 0
                and row["restart_clients_back"] == row["restart_clients"]
                and row["restart_back_and_resumed_s"] <= 60
                else "FAIL"
            )
            listening = f"{row['restart_all_listening_after_s']:.1f} s until all did"
            since = (
                f"the old processes were signalled (the new listened first, {listening}),"
                if row["restart_replaced"]
                else f"the first process listened again ({listening}),"
            )
            print(
                f"restart: {row['restart_clients_back']} of {row['restart_clients']} clients back"
                f" and resumed {row['restart_back_and_resumed_s']:.1f} s after {since}"
                f" {row['restart_lost']} lost, {row['restart_repeated']} received twice;"
                f" reconnects served per second: peak {row['restart_rate_peak_per_s']},"
                f" p99 {row['restart_rate_p99_per_s']:.0f}, median"
                f" {row['restart_rate_p50_per_s']:.0f}: {verdict}"
            )


if __name__ == "__main__":
    sys.exit(main())
