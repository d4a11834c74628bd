"""Launch to icon, launch to connected and idle memory: the tray against a bare tray icon, in
the same run.

On a private desktop (Xvfb, a StatusNotifierItem tray host, a notification daemon), each round
launches the bare tray (a PySide6 program showing only a ``QSystemTrayIcon`` with a menu) and
then the tray (``python -m app``: stored login in a real gnome-keyring, 1,000 announcements in
its history). Launch to icon: until the icon registers with the tray host (read on the bus);
launch to connected: until the companion server counts the tray's stream; idle RSS: after a
settling pause. Medians of ``--rounds``.

    .venv/bin/python bench/tray_startup.py [--rounds 3] [--settle 3]
"""

from __future__ import annotations

import argparse
import statistics
import threading

from bench.tray_harness import rss_mib, threads, tray_bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--history", type=int, default=1000)
    args = parser.parse_args()
    got: dict[str, list[float]] = {
        k: [] for k in ("bare icon", "bare rss", "tray icon", "tray connected", "tray rss")
    }
    tray_threads = bare_threads = 0
    with tray_bench(history=args.history) as bench:
        for _ in range(args.rounds):
            bare = bench.launch_bare()
            got["bare icon"].append(bare.icon_at - bare.started)
            threading.Event().wait(args.settle)
            got["bare rss"].append(rss_mib(bare.pid))
            bare_threads = threads(bare.pid)
            bare.stop()
            tray, connected = bench.launch_tray()
            got["tray icon"].append(tray.icon_at - tray.started)
            got["tray connected"].append(connected)
            threading.Event().wait(args.settle)
            got["tray rss"].append(rss_mib(tray.pid))
            tray_threads = threads(tray.pid)
            tray.stop()
    m = {k: statistics.median(v) for k, v in got.items()}
    print(f"median of {args.rounds} rounds; history {args.history} announcements")
    print(f"  launch to icon       tray {m['tray icon']:.3f} s   bare {m['bare icon']:.3f} s"
          f"   ratio {m['tray icon'] / m['bare icon']:.2f}")  # fmt: skip
    print(f"  launch to connected  tray {m['tray connected']:.3f} s"
          f"   ratio to bare icon {m['tray connected'] / m['bare icon']:.2f}")  # fmt: skip
    print(f"  idle RSS             tray {m['tray rss']:.1f} MiB   bare {m['bare rss']:.1f} MiB"
          f"   ratio {m['tray rss'] / m['bare rss']:.2f}")  # fmt: skip
    print(f"  threads              tray {tray_threads}   bare {bare_threads}")


if __name__ == "__main__":
    main()
