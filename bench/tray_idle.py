"""Wake-ups of an idle, connected tray against a bare tray icon, in the same run.

Both run on a private desktop (Xvfb, a StatusNotifierItem tray host, a notification daemon);
the tray is logged in to the companion server (keepalive pings off, so the stream is silent)
with 1,000 announcements in its history. After a settling pause, the context switches of all
of a process's threads are counted over ``--seconds`` (``/proc/<pid>/task/*/status``): each
one is a thread waking up (or being preempted). Then SIGTERM, whose exit code is printed.

    .venv/bin/python bench/tray_idle.py [--seconds 10] [--settle 3]

:func:`idle_round` (one round, every figure as numbers) is what ``bench/tray_footprint.py``
runs.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import dataclass

from bench.tray_harness import TrayBench, rss_mib, threads, tray_bench, wakeups_per_s


@dataclass(frozen=True, slots=True)
class Idle:
    """One contender in one round: launch times (s), idle wake-ups and memory."""

    icon_s: float  # launch to the icon registered with the tray host
    connected_s: float | None  # launch to the stream open (the bare tray has none)
    wakeups: float  # context switches/s of all threads, idle
    rss_mib: float  # after the settling pause
    threads: int
    exit_code: int  # on SIGTERM


def idle_round(bench: TrayBench, *, seconds: float, settle: float) -> tuple[Idle, Idle]:
    """The bare tray, then the tray, each launched, settled, measured and stopped; returns
    (tray, bare)."""
    bare = bench.launch_bare()
    try:
        threading.Event().wait(settle)
        bare_rss, bare_threads = rss_mib(bare.pid), threads(bare.pid)
        bare_rate = wakeups_per_s(bare.pid, seconds)
    finally:
        bare_code = bare.stop()
    tray, connected = bench.launch_tray()
    try:
        threading.Event().wait(settle)
        tray_rss, tray_threads = rss_mib(tray.pid), threads(tray.pid)
        tray_rate = wakeups_per_s(tray.pid, seconds)
    finally:
        tray_code = tray.stop()
    return (
        Idle(tray.icon_at - tray.started, connected, tray_rate, tray_rss, tray_threads, tray_code),
        Idle(bare.icon_at - bare.started, None, bare_rate, bare_rss, bare_threads, bare_code),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--history", type=int, default=1000)
    args = parser.parse_args()
    with tray_bench(history=args.history) as bench:
        tray, bare = idle_round(bench, seconds=args.seconds, settle=args.settle)
    print(f"idle wake-ups over {args.seconds:.0f} s (context switches/s, all threads)")
    print(f"  tray   {tray.wakeups:6.2f}/s  threads {tray.threads}  RSS {tray.rss_mib:.1f} MiB"
          f"  SIGTERM exit {tray.exit_code}")  # fmt: skip
    print(f"  bare   {bare.wakeups:6.2f}/s  threads {bare.threads}  RSS {bare.rss_mib:.1f} MiB"
          f"  SIGTERM exit {bare.exit_code}")  # fmt: skip
    print(f"  tray - bare  {tray.wakeups - bare.wakeups:+.2f}/s")


if __name__ == "__main__":
    main()
