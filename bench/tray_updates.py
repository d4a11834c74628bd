"""GUI-thread time per tray update (the unread badge changing, as during a catch-up): the tray
against a bare ``QSystemTrayIcon`` that only sets a tooltip and a fixed icon, in the same run.

``--changes`` updates, each a new unread count (then a few connection-state changes), timed on
the offscreen platform (no tray host: what is measured is our work, not the host's).

    .venv/bin/python bench/tray_updates.py [--changes 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from app import resources
from app.core.model import ConnState, Status
from app.ui.tray import Tray


def per_update_ms(update: object, changes: int) -> float:
    assert callable(update)
    started = time.perf_counter()
    for i in range(1, changes + 1):
        update(i)
    return (time.perf_counter() - started) / changes * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=300)
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    tray = Tray()
    tray.set_user("alice")
    tray.set_status(Status(ConnState.CONNECTED))
    states = [ConnState.OFFLINE, ConnState.CONNECTING, ConnState.CONNECTED]
    tray_ms = per_update_ms(tray.set_unread, args.changes)
    tray.set_unread(0)
    again_ms = per_update_ms(tray.set_unread, args.changes)  # the same counts once more
    status_ms = per_update_ms(
        lambda i: tray.set_status(Status(states[i % 3], retry_in=float(i))), args.changes
    )
    bare = QSystemTrayIcon()
    icon = QIcon(str(resources.path("icons", "connected-32.png")))

    def bare_update(i: int) -> None:
        bare.setIcon(icon)
        bare.setToolTip(f"Tray Notifier\n{i} unread")

    bare_ms = per_update_ms(bare_update, args.changes)
    print(f"GUI time per tray update, {args.changes} changes (ms)")
    print(f"  tray, unread count changes  {tray_ms:8.3f}  (first time each count is shown)")
    print(f"  tray, the same counts again {again_ms:8.3f}")
    print(f"  tray, status changes        {status_ms:8.3f}")
    print(f"  bare setIcon + setToolTip   {bare_ms:8.3f}")
    tray.close()
    del app


if __name__ == "__main__":
    main()
