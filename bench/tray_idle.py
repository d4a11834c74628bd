"""Wake-ups of an idle, connected tray against a bare tray icon, in the same run.

Both run on a private desktop (Xvfb, a StatusNotifierItem tray host, a notification daemon);
the tray is logged in to the companion server (keepalive pings off, so the stream is silent)
with 1,000 announcements in its history. After a settling pause, the context switches of all
of a process's threads are counted over ``--seconds`` (``/proc/<pid>/task/*/status``): each
one is a thread waking up (or being preempted). Then SIGTERM, whose exit code is printed.

    .venv/bin/python bench/tray_idle.py [--seconds 10] [--settle 3]
"""

from __future__ import annotations

import argparse
import threading

from bench.tray_harness import rss_mib, threads, tray_bench, wakeups_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--history", type=int, default=1000)
    args = parser.parse_args()
    with tray_bench(history=args.history) as bench:
        bare = bench.launch_bare()
        threading.Event().wait(args.settle)
        bare_rate = wakeups_per_s(bare.pid, args.seconds)
        bare_threads = threads(bare.pid)
        bare_code = bare.stop()
        tray, _ = bench.launch_tray()
        threading.Event().wait(args.settle)
        tray_rate = wakeups_per_s(tray.pid, args.seconds)
        tray_threads, tray_rss = threads(tray.pid), rss_mib(tray.pid)
        tray_code = tray.stop()
    print(f"idle wake-ups over {args.seconds:.0f} s (context switches/s, all threads)")
    print(f"  tray   {tray_rate:6.2f}/s  threads {tray_threads}  RSS {tray_rss:.1f} MiB"
          f"  SIGTERM exit {tray_code}")  # fmt: skip
    print(f"  bare   {bare_rate:6.2f}/s  threads {bare_threads}  SIGTERM exit {bare_code}")
    print(f"  tray - bare  {tray_rate - bare_rate:+.2f}/s")


if __name__ == "__main__":
    main()
