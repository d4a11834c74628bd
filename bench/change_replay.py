"""What changes cost a resuming tray (issue 25): the replay of ``--announcements`` announcements
(default 1,000) with their corrections, reminders and revokes, against the replay of the same
announcements alone, in the same run, on SQLite and on Redis Streams.

For each backend two companion servers run side by side, each an :class:`EmbeddedServer`
(demo users) in a process of its own (so the reader's CPU is not the server's), the garbage
collector tuned as ``python -m app server`` tunes it:

- ``alone``: ``--announcements`` announcements to everyone;
- ``changes``: the same announcements, then one correction of each (title and body), a
  reminder (``unread``) for every tenth and a revoke for another tenth: each a stream event with
  a position of its own. The replay then carries the announcements not revoked (a revoked one
  is not replayed), every update, and the reminders and revokes.

A client resumes as ``alice`` from position 0 (``Last-Event-ID: 0``): raw HTTP (httpx, the
events split on blank lines, each ``data`` parsed as JSON, as a client must), following the
replay's pages (1,000 events a connection: a ``sync`` with ``"more": true`` ends the response
and the client reconnects at once from its last id), timed from the first request to the
``sync`` with ``"more": false``. The servers are read alternately, ``--repetitions`` times,
each time the median of ``--inner`` replays back to back; the server's own CPU time over the
replay (all its threads, ``/proc/PID/task/*/schedstat``; with Redis, ``redis-server``'s too)
is given as well, less noisy than the clock on a shared machine, where the client's reading
(httpx, the JSON) is much of the wall-clock time.

    .venv/bin/python -m bench.change_replay                        # 1,000, SQLite and Redis
    .venv/bin/python -m bench.change_replay --announcements 5000 --backends sqlite
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench._common import login, redis_server

KINDS = ("alone", "changes")
USER = "alice"
BODY = (
    "The east stairwell is closed for repairs until Friday. Please use the west stairs or the"
    " lifts; the fire assembly point is unchanged."
)


# ---------------------------------------------------------------- the servers (children)


def _serve(
    pipe: multiprocessing.connection.Connection,
    data_dir: str,
    redis_url: str | None,
    announcements: int,
    changes: bool,
) -> None:
    """One embedded server, filled; says ``(url, {type: count expected in the replay})`` and
    runs until the parent says ``stop``."""
    from app.server.embedded import EmbeddedServer
    from app.server.main import _collect_less

    options: dict[str, Any] = {"redis_url": redis_url} if redis_url else {}
    with EmbeddedServer(
        data_dir=Path(data_dir), demo_users=True, ping_interval=300.0, **options
    ) as server:
        ids = [server.publish(f"Notice {i}", BODY) for i in range(announcements)]
        expected = Counter({"announcement": announcements})
        if changes:
            for i, ann in enumerate(ids):
                server.correct(ann, title=f"Notice {i} (corrected)", body=BODY + " Corrected.")
            expected["update"] = announcements
            for ann in ids[0::10]:
                if server.remind(ann, "unread"):
                    expected["remind"] += 1
            for ann in ids[5::10]:
                server.revoke(ann)
                expected["revoke"] += 1
                expected["announcement"] -= 1  # a revoked one is not replayed; its revoke is
        _collect_less()
        pipe.send((server.url, dict(expected)))
        pipe.recv()  # "stop"


class Server:
    """A filled server in its own process."""

    def __init__(self, data_dir: Path, redis_url: str | None, announcements: int, changes: bool):
        self.pids: list[
            int
        ] = []  # the processes whose CPU a replay costs: this server's (and Redis's)
        if redis_url:
            import redis

            with redis.Redis.from_url(redis_url) as client:
                self.pids.append(int(client.info("server")["process_id"]))
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve,
            args=(child, str(data_dir), redis_url, announcements, changes),
            daemon=True,
        )
        self._proc.start()
        child.close()
        self.url, expected = self._pipe.recv()
        self.pids.insert(0, self.pid)
        self.expected = Counter(expected)

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    def stop(self) -> None:
        with contextlib.suppress(OSError, BrokenPipeError):
            self._pipe.send("stop")
        self._proc.join(timeout=60)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=30)


# ---------------------------------------------------------------- the client


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of a process so far, in nanoseconds' resolution (the
    scheduler's ``schedstat``; ``/proc/PID/stat`` counts 10 ms ticks, as long as a replay)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def measure(server: Server, token: str, inner: int) -> dict[str, Any]:
    """``inner`` replays back to back: the one with the median time."""
    runs = sorted((replay(server, token) for _ in range(inner)), key=lambda r: r["total_s"])
    return runs[len(runs) // 2]


def replay(server: Server, token: str) -> dict[str, Any]:
    """Resume from position 0 until a ``sync`` without more: the time, the events by type,
    the connections (pages) it took, the bytes read and the server's CPU meanwhile."""
    kinds: Counter[str] = Counter()
    last, pages, received = "0", 0, 0
    synced = 0.0
    cpu_before = sum(cpu_seconds(pid) for pid in server.pids)
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        more = True
        while more:
            pages += 1
            more = False
            headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": last}
            with client.stream("GET", f"/sse/connect/{USER}", headers=headers) as response:
                response.raise_for_status()
                buffer = b""
                done = False
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    buffer += chunk
                    *blocks, buffer = buffer.split(b"\n\n")
                    for block in blocks:
                        event, data, ev_id = b"", b"", b""
                        for line in block.split(b"\n"):
                            if line.startswith(b"data: "):
                                data = line[6:]
                            elif line.startswith(b"id: "):
                                ev_id = line[4:]
                            elif line.startswith(b"event: "):
                                event = line[7:]
                        if event == b"sync":
                            synced = time.perf_counter()
                            sync = json.loads(data)
                            more, last, done = sync["more"], sync["last_id"], True
                            break
                        if not event and ev_id and data:
                            kinds[json.loads(data)["type"]] += 1
                            last = ev_id.decode()
                    if done:
                        break
    closed = time.perf_counter()
    elapsed = synced - started
    server_cpu = sum(cpu_seconds(pid) for pid in server.pids) - cpu_before
    events = sum(kinds.values())
    if kinds != server.expected:
        raise SystemExit(f"replayed {dict(kinds)}, expected {dict(server.expected)}")
    return {
        "total_s": elapsed,
        "events": events,
        "us_per_event": elapsed / events * 1e6,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_event": server_cpu / events * 1e6,
        "pages": pages,
        "close_ms": (closed - synced) * 1000,
        "kib": received / 1024,
        "load": os.getloadavg()[0],
    }


# ---------------------------------------------------------------- the run


def _backend(args: argparse.Namespace, backend: str, tmp: Path) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    with contextlib.ExitStack() as stack:
        urls: dict[str, str | None] = dict.fromkeys(KINDS)
        if backend == "redis":
            base = stack.enter_context(redis_server(tmp / "redis")).rsplit("/", 1)[0]
            urls = {"alone": f"{base}/1", "changes": f"{base}/2"}
        started = time.perf_counter()
        servers: dict[str, Server] = {}
        for kind in KINDS:
            servers[kind] = Server(
                tmp / f"{backend}-{kind}", urls[kind], args.announcements, kind == "changes"
            )
            stack.callback(servers[kind].stop)
        print(
            f"{backend}: both servers filled in {time.perf_counter() - started:.1f} s;"
            f" replay expected: alone {dict(servers['alone'].expected)},"
            f" changes {dict(servers['changes'].expected)}",
            flush=True,
        )
        tokens = {kind: login(servers[kind].url, USER) for kind in KINDS}
        for kind in KINDS:  # a first replay each, not counted: connections, caches, imports
            replay(servers[kind], tokens[kind])
        for rep in range(args.repetitions):
            order = KINDS if rep % 2 == 0 else KINDS[::-1]
            for kind in order:
                r = measure(servers[kind], tokens[kind], args.inner)
                results[kind].append(r)
                print(
                    f"{backend:<7}{rep:<4}{kind:<9}{r['events']:>7}{r['pages']:>6}"
                    f"{r['total_s'] * 1000:>10.0f}{r['us_per_event']:>10.0f}"
                    f"{r['server_cpu_s'] * 1000:>12.0f}{r['server_cpu_us_per_event']:>12.0f}"
                    f"{r['kib']:>9.0f}{r['load']:>7.2f}",
                    flush=True,
                )
    return results


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def _ratios(rows: list[dict[str, Any]], alone: list[dict[str, Any]], key: str) -> str:
    """`` (a / b / c)``: each repetition's figure over the announcements alone's."""
    pairs = zip(rows, alone, strict=True)
    return " (" + " / ".join(f"{r[key] / a[key]:.2f}" for r, a in pairs) + ")"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--announcements", type=int, default=1_000)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument(
        "--inner", type=int, default=5, help="replays per repetition, the median taken"
    )
    parser.add_argument("--backends", default="sqlite,redis", help="comma-separated")
    parser.add_argument("--json", action="store_true", help="also print every result as JSON")
    args = parser.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {args.announcements:,}"
        f" announcements, {args.repetitions} repetitions alternated, each the median of"
        f" {args.inner} replays",
        flush=True,
    )
    print(
        f"{'backend':<7}{'rep':<4}{'replay':<9}{'events':>7}{'pages':>6}{'total ms':>10}"
        f"{'µs/event':>10}{'server ms':>12}{'srv µs/ev':>12}{'KiB':>9}{'load':>7}",
        flush=True,
    )
    everything: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="change-replay-") as tmp:
        for backend in backends:
            everything[backend] = _backend(args, backend, Path(tmp))

    print()
    print(
        f"medians of {args.repetitions}; changes / alone per repetition in brackets"
        " (same run, alternated)"
    )
    print("| backend | replay | events | total | per event | server CPU | server CPU per event |")
    print("|---|---|---|---|---|---|---|")
    for backend, results in everything.items():
        for kind in KINDS:
            rows = results[kind]
            cells = [
                f"{_median(rows, key) * scale:.0f} {unit}"
                + ("" if kind == "alone" else _ratios(rows, results["alone"], key))
                for key, scale, unit in (
                    ("total_s", 1000, "ms"),
                    ("us_per_event", 1, "µs"),
                    ("server_cpu_s", 1000, "ms"),
                    ("server_cpu_us_per_event", 1, "µs"),
                )
            ]
            events = f"{rows[0]['events']:,} in {rows[0]['pages']} pages"
            print(f"| {backend} | {kind} | {events} | " + " | ".join(cells) + " |")
    print(f"load average now {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        print(json.dumps(everything))
    return 0


if __name__ == "__main__":
    sys.exit(main())
