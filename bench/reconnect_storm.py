"""A reconnect storm: the server restarts under N connected clients; are they all back, and did
each replay exactly what it missed?

N SSE clients (in --workers processes) connect and receive --before announcements. Then:

- one process (``--processes 1``, sqlite or redis): the server is stopped (every stream gets
  ``event: close``) and started again on the same port; --missed announcements are published
  the moment it is back, while the clients still wait out their ``retry:`` time;
- two processes (``--processes 2``, redis; clients split between them, no load balancer): a
  rolling restart: A stops, --missed are published on B, A starts; then the same for B.

Each client reconnects like the tray's engine (the server's ``retry:`` plus up to 25 % jitter,
``Last-Event-ID``) and the run waits until every client holds every id. It prints how long
that took after the (last) restart and how many (client, id) pairs are missing: must be 0.

    .venv/bin/python -m bench.reconnect_storm --clients 5000
    .venv/bin/python -m bench.reconnect_storm --clients 5000 --backend redis --processes 2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench._common import (
    ClientPool,
    ServerProc,
    fleet_tokens,
    login,
    publish,
    raise_nofile,
    redis_server,
    seed_signing_key,
)


def _restart(servers: list[ServerProc], i: int, tmp: Path, url: str | None) -> None:
    """Stop process ``i`` (its streams get ``event: close``) and start it on the same port."""
    old = servers[i]
    old.stop()
    servers[i] = ServerProc(tmp, redis_url=url, port=old.port, demo_users=i == 0)


def _stop_all(servers: list[ServerProc]) -> None:
    for server in servers:
        server.stop()


def _storm(args: argparse.Namespace) -> dict[str, float]:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        key = seed_signing_key(tmp)
        url = None
        if args.backend == "redis":
            url = stack.enter_context(redis_server(tmp / "redis"))
        servers = [ServerProc(tmp, redis_url=url, demo_users=i == 0) for i in range(args.processes)]
        stack.callback(_stop_all, servers)  # the list as it is at the end
        # one person per client: a server holds only a few streams per user
        people, boss = fleet_tokens(key, args.clients), login(servers[0].url, "publisher")
        pool = ClientPool(args.workers)
        stack.callback(pool.close)
        t0 = time.monotonic()
        opened = pool.open(people, [servers[i % args.processes].port for i in range(args.clients)])
        ramp_s = time.monotonic() - t0
        ids = [publish(servers[0].url, boss, f"before {i}") for i in range(args.before)]
        _check(pool.call_all("wait_ids", {"ids": ids, "timeout": 60.0}), "before the restart")

        stopped_at = time.monotonic()
        if args.processes == 1:
            _restart(servers, 0, tmp, url)
            back_at = time.monotonic()  # the clients are still waiting out their retry time
            ids += [publish(servers[0].url, boss, f"missed {k}") for k in range(args.missed)]
        else:
            for i in (0, 1):  # rolling: publish on the other process while one is down
                servers[i].stop()
                ids += [
                    publish(servers[1 - i].url, boss, f"missed {i}-{k}") for k in range(args.missed)
                ]
                servers[i] = ServerProc(tmp, redis_url=url, port=servers[i].port, demo_users=False)
            back_at = time.monotonic()
        replies = pool.call_all("wait_ids", {"ids": ids, "timeout": args.deadline})
    missing = sum(r["missing"] for r in replies)
    done = max(r["done_at"] for r in replies)
    return {
        "clients": opened,
        "ramp_s": ramp_s,
        "announcements": len(ids),
        "restart_s": back_at - stopped_at,
        "all_back_and_replayed_s": done - back_at,
        "since_first_stop_s": done - stopped_at,
        "connects": sum(r["connects"] for r in replies),
        "missing": missing,
        "clients_lacking": sum(r["clients_lacking"] for r in replies),
        "clients_connected": sum(r["clients_connected"] for r in replies),
    }


def _check(replies: list[dict[str, float]], when: str) -> None:
    missing = sum(r["missing"] for r in replies)
    if missing:
        raise SystemExit(f"{missing} announcements missing {when}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--backend", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--processes", type=int, choices=[1, 2], default=1)
    parser.add_argument("--before", type=int, default=5, help="announcements before the restart")
    parser.add_argument("--missed", type=int, default=10, help="published while clients are away")
    parser.add_argument("--workers", type=int, default=4, help="client processes")
    parser.add_argument("--deadline", type=float, default=60.0, help="give up after (s)")
    args = parser.parse_args()
    if args.processes == 2 and args.backend != "redis":
        parser.error("two processes need --backend redis (they share state through Redis)")
    raise_nofile(20_000)
    result = _storm(args)
    print(json.dumps({k: round(v, 2) for k, v in result.items()}))
    label = f"{args.backend}, {args.processes} process(es), {result['clients']:.0f} clients"
    verdict = "OK" if result["missing"] == 0 and result["all_back_and_replayed_s"] <= 30 else "FAIL"
    print(
        f"{label}: all back and replayed {result['all_back_and_replayed_s']:.1f} s after the"
        f" restart ({result['since_first_stop_s']:.1f} s after the first stop), "
        f"{result['announcements']:.0f} announcements, {result['missing']:.0f} lost: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
