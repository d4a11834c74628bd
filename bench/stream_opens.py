"""What a fleet costs one server process, against a bare aiohttp SSE server in the same run:
stream opens per second while many are held, memory per idle stream, keepalive CPU at rest.

For each repetition, the companion server and the bare baseline (``bench/bare_server.py``)
are measured one after the other (alternated, each in its own process, started the same way):

- ``--held`` idle streams are opened from ``--workers`` client processes (each stream a
  different person: the server holds only a few per user), and the server's RSS before and
  after gives the memory per idle stream;
- keepalive CPU: the server's CPU share over ``--idle-seconds`` with a ``: ping`` to every
  stream each ``--ping-interval`` seconds and nothing else happening;
- opens per second: ``--burst`` more streams open all at once (as a fleet does after a
  restart), timed from the first connect to the last ``event: connected`` read; the client
  processes share the machine's cores with the server, so this is noisy, and ``opens_per_cpu_s``
  (the burst's opens per second of the server's own CPU time) is what one core of the server
  sustains once the server is what limits them.

The access tokens are minted with the server's signing key (the benchmark writes it before
the server starts), so no login is measured: only the stream's own open.

    .venv/bin/python -m bench.stream_opens --held 1000 --burst 2000 --repetitions 3
    .venv/bin/python -m bench.stream_opens --held 10000 --burst 4000 --backend redis
    .venv/bin/python -m bench.stream_opens --profile opens.prof   # the server under cProfile
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench._common import (
    ClientPool,
    ServerProc,
    cpu_seconds,
    fleet_tokens,
    raise_nofile,
    redis_server,
    rss_kib,
    seed_signing_key,
)

KINDS = ("product", "bare")


def _measure(args: argparse.Namespace, kind: str, rep: int) -> dict[str, float]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        key = seed_signing_key(tmp)
        url = None
        if kind == "product" and args.backend == "redis":
            url = stack.enter_context(redis_server(tmp / "redis"))
        server = ServerProc(
            tmp,
            redis_url=url,
            demo_users=False,
            ping_interval=args.ping_interval,
            bare=kind == "bare",
            profile=Path(f"{args.profile}.{rep}") if args.profile and kind == "product" else None,
        )
        stack.callback(server.stop)
        people = fleet_tokens(key, args.held + args.burst)
        pool = ClientPool(args.workers)
        stack.callback(pool.close)
        time.sleep(1.0)  # the server settles after its start
        rss_before = rss_kib(server.pid)
        held = pool.open_timed(people[: args.held], [server.port] * args.held, batch=200)
        ramp = max(end for _, _, end in held) - min(start for _, start, _ in held)
        time.sleep(2.0)
        rss_after = rss_kib(server.pid)
        cpu0, wall0 = cpu_seconds(server.pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle = (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - wall0)
        cpu0 = cpu_seconds(server.pid)
        burst = pool.open_timed(people[args.held :], [server.port] * args.burst, batch=args.burst)
        burst_cpu = cpu_seconds(server.pid) - cpu0
        took = max(end for _, _, end in burst) - min(start for _, start, _ in burst)
        opened = sum(n for n, _, _ in burst)
    return {
        "held": args.held,
        "open": opened,
        "ramp_per_s": args.held / ramp,
        "opens_per_s": args.burst / took,
        "server_cpu_us_per_open": burst_cpu / args.burst * 1e6,
        # what one core of the server sustains: the figure once the server, not the clients
        # sharing its cores, is what limits the opens (a fleet against several processes)
        "opens_per_cpu_s": args.burst / burst_cpu if burst_cpu else float("nan"),
        "kib_per_stream": (rss_after - rss_before) / args.held,
        "rss_after_mib": rss_after / 1024,
        "keepalive_cpu_pct": idle * 100,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--held", type=int, default=1000, help="idle streams held")
    parser.add_argument("--burst", type=int, default=2000, help="streams opened at once")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--workers", type=int, default=4, help="client processes")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--ping-interval", type=float, default=5.0)
    parser.add_argument("--only", choices=KINDS, default=None, help="measure one server only")
    parser.add_argument(
        "--profile", default="", help="run the product server under cProfile, to FILE.N"
    )
    args = parser.parse_args()
    if args.held + args.burst > 19_000:
        parser.error("one process holds at most about 19,000 streams here (--held + --burst)")
    raise_nofile(20_000)
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {args.backend}, held"
        f" {args.held:,}, burst {args.burst:,}, ping every {args.ping_interval:g} s",
        flush=True,
    )
    figures = ["opens_per_s", "opens_per_cpu_s", "kib_per_stream", "keepalive_cpu_pct"]
    results: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    header = f"{'rep':<4}{'server':<9}" + "".join(f"{f:>18}" for f in figures)
    print(header + f"{'ramp/s':>10}{'cpu us/open':>13}{'load':>7}", flush=True)
    for rep in range(args.repetitions):
        order = KINDS if rep % 2 == 0 else KINDS[::-1]
        for kind in order:
            if args.only and kind != args.only:
                continue
            r = _measure(args, kind, rep)
            results[kind].append(r)
            print(
                f"{rep:<4}{kind:<9}"
                + "".join(f"{r[f]:>18.1f}" for f in figures)
                + f"{r['ramp_per_s']:>10.0f}{r['server_cpu_us_per_open']:>13.0f}"
                + f"{os.getloadavg()[0]:>7.2f}",
                flush=True,
            )
    summary: dict[str, Any] = {}
    if all(results[k] for k in KINDS):
        for f in figures:
            ratios = [p[f] / b[f] for p, b in zip(results["product"], results["bare"], strict=True)]
            summary[f] = {
                "product": statistics.median(r[f] for r in results["product"]),
                "bare": statistics.median(r[f] for r in results["bare"]),
                "ratios": [round(x, 2) for x in ratios],
            }
            print(
                f"{f:<20} product {summary[f]['product']:>9.1f}  bare {summary[f]['bare']:>9.1f}"
                f"  product/bare per repetition {' / '.join(f'{x:.2f}' for x in ratios)}"
            )
    print(json.dumps({"results": results, "summary": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
