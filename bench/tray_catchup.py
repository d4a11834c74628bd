"""A catch-up after an absence: ``--missed`` announcements published while the tray was closed,
then the tray started again. Measures, in the same run:

- the tray (``Root``, in this process, offscreen, the history window closed): time from
  ``start()`` until every missed announcement is stored (the worker's catchUpFinished, emitted
  after the last one is stored), the worst GUI-thread stall meanwhile (a 10 ms ``QTimer``:
  the longest gap between two ticks, until the summary toast is shown and the unread count is
  updated), and the toasts shown (``--open-history``: with the history window open);
- the bare loop: httpx streaming the same replay (same server, same pages, resuming after the
  same id), ``json.loads`` of each event and an SQLite insert, one transaction per 200.

The companion server runs as a subprocess (its CPU is not this process's GIL).

    .venv/bin/python bench/tray_catchup.py [--missed 10000] [--rounds 2] [--open-history]
        [--session-bus] [--json]

``--session-bus`` gives ``Root`` the session bus for its toasts, as ``python -m app`` has
(run it on a desktop: ``QT_QPA_PLATFORM=xcb`` with ``DISPLAY`` and ``DBUS_SESSION_BUS_ADDRESS``
set; ``bench/tray_footprint.py`` does); ``--json`` prints the rounds as one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import httpx
from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.core import config as config_mod
from app.core.config import Config, Paths
from app.core.model import ConnState
from app.core.secrets import MemorySecretStore
from bench._common import ServerProc, login

USER, PASSWORD = "alice", "demo"
BATCH = 200
_HOME = Path(tempfile.mkdtemp(prefix="tray-catchup-"))


def publish_many(url: str, token: str, n: int, prefix: str) -> list[str]:
    with httpx.Client(base_url=url, timeout=30) as client:
        ids = []
        for i in range(n):
            response = client.post(
                "/announcements",
                json={"title": f"{prefix} {i}", "body": "while away", "audience": {"all": True}},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            ids.append(str(response.json()["id"]))
        return ids


def spin(app: QApplication, until: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 10)
        time.sleep(0.001)


class StallMeter:
    """A 10 ms timer on the GUI thread: the longest gap between two ticks."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer(interval=10, timerType=Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._tick)
        self.last = 0
        self.worst = 0
        self.worst_at = 0  # ms after start() when the worst gap ended

    def start(self) -> None:
        self.clock.start()
        self.last = 0
        self.timer.start()

    def _tick(self) -> None:
        now = self.clock.elapsed()
        if now - self.last > self.worst:
            self.worst, self.worst_at = now - self.last, now
        self.last = now

    def stop(self) -> int:
        self.timer.stop()
        return self.worst


def run_tray(
    app: QApplication,
    server: ServerProc,
    boss: str,
    missed: int,
    round_: int,
    *,
    history: bool,
    session_bus: bool = False,
) -> dict[str, Any]:
    from app.ui.notifier import FreedesktopNotifications
    from app.ui.root import Root

    home = _HOME / f"tray-{round_}"
    os.environ["TRAY_NOTIFIER_HOME"] = str(home)
    paths = Paths.default()
    secrets = MemorySecretStore()
    # session_bus: toasts by the path the app takes on this desktop (needs a session bus)
    first_bus = FreedesktopNotifications.open() if session_bus else None
    first = Root(config=Config(), paths=paths, secrets=secrets, bus=first_bus)
    first.start()
    first.login(server.url, USER, PASSWORD)
    spin(app, lambda: first.tray.state.status.state is ConnState.CONNECTED, 30)
    (resume,) = publish_many(server.url, boss, 1, f"before {round_}")
    spin(app, lambda: first.store is not None and first.store.last_event_id() == resume, 30)
    spin(app, lambda: first.store is not None and first.store.unshown() == [], 30)  # toasted
    assert first.shutdown(5000)
    first.deleteLater()
    if first_bus is not None:
        first_bus.close()
    ids = publish_many(server.url, boss, missed, f"missed {round_}")

    bus = FreedesktopNotifications.open() if session_bus else None
    again = Root(config=config_mod.load(paths), paths=paths, secrets=secrets, bus=bus)
    toasts: list[Any] = []
    again.notifier.delivered.connect(toasts.append)
    done: list[float] = []
    direct = Qt.ConnectionType.DirectConnection  # on the worker thread, as it emits
    again.worker.catchUpFinished.connect(lambda: done.append(time.monotonic()), direct)
    meter = StallMeter()
    gc.freeze()  # as app.ui.main.run_tray does before Root.start
    started = time.monotonic()
    again.start()
    if history:
        again.show_history()  # open: its rows are inserted as they arrive
    meter.start()
    spin(app, lambda: bool(done), 120)
    stored_s = done[0] - started
    spin(app, lambda: again.notifier.policy.next_deadline() is None and bool(toasts), 30)
    spin(app, lambda: again.tray.state.unread >= missed, 30)
    settle = time.monotonic() + 0.5
    spin(app, lambda: time.monotonic() > settle, 5)
    stall_ms = meter.stop()
    stall_at = meter.worst_at / 1000
    store = again.store
    assert store is not None and store.last_event_id() == ids[-1]
    assert len(store.list(limit=missed + 10)) == missed + 1
    titles = [getattr(t, "title", str(t)) for t in toasts]
    assert again.shutdown(5000)
    again.deleteLater()
    if bus is not None:
        bus.close()
    return {
        "stored_s": stored_s,
        "stall_ms": stall_ms,
        "stall_at": stall_at,
        "toasts": titles,
        "resume": resume,
    }


def run_bare(url: str, token: str, resume: str, missed: int, path: Path) -> float:
    """httpx stream + json + SQLite (one transaction per BATCH), following the replay pages."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS a (id TEXT PRIMARY KEY, title TEXT, body TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    started = time.monotonic()
    last, count = resume, 0
    batch: list[tuple[str, str, str]] = []

    def flush() -> None:
        nonlocal batch
        if batch:
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO a VALUES (?, ?, ?)", batch)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last', ?)", (last,))
            db.execute("COMMIT")
            batch = []

    with httpx.Client(base_url=url, timeout=30) as client:
        more = True
        while more:
            more = False
            headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": last}
            with client.stream("GET", f"/sse/connect/{USER}", headers=headers) as response:
                response.raise_for_status()
                ev_id, name, data = "", "", []
                for line in response.iter_lines():
                    if line.startswith("id:"):
                        ev_id = line[3:].strip()
                    elif line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].lstrip())
                    elif line == "" and data:
                        obj = json.loads("\n".join(data))
                        if name == "sync":
                            more = obj.get("more") is True
                            flush()
                            break
                        if name in ("", "message") and ev_id:
                            last = ev_id
                            batch.append((obj["id"], obj["title"], obj["body"]))
                            count += 1
                            if len(batch) >= BATCH:
                                flush()
                        ev_id, name, data = "", "", []
    flush()
    elapsed = time.monotonic() - started
    db.close()
    if count != missed:
        raise SystemExit(f"the bare loop received {count}, expected {missed}")
    return elapsed


def measure(
    app: QApplication, missed: int, rounds: int, *, history: bool, session_bus: bool = False
) -> tuple[list[dict[str, Any]], list[float]]:
    """``rounds`` of the tray then the bare loop on one server: (tray results, bare seconds)."""
    server = ServerProc(_HOME / "server", ping_interval=60.0)
    try:
        token, boss = login(server.url, USER), login(server.url, "publisher")
        tray, bare = [], []
        for r in range(rounds):
            result = run_tray(
                app, server, boss, missed, r, history=history, session_bus=session_bus
            )
            tray.append(result)
            db = _HOME / f"bare-{r}.db"
            bare.append(run_bare(server.url, token, result["resume"], missed, db))
    finally:
        server.stop()
    return tray, bare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missed", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--open-history", action="store_true", help="the history window open")
    parser.add_argument(
        "--session-bus",
        action="store_true",
        help="notifications over the session bus, as the app (default: none, own windows)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = parser.parse_args()
    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    try:
        tray, bare = measure(
            app, args.missed, args.rounds, history=args.open_history, session_bus=args.session_bus
        )
    finally:
        shutil.rmtree(_HOME, ignore_errors=True)
    if args.json:
        keys = ("stored_s", "stall_ms", "stall_at", "toasts")
        print(json.dumps({"tray": [{k: t[k] for k in keys} for t in tray], "bare_s": bare}))
        return
    stored = statistics.median(t["stored_s"] for t in tray)
    stall = max(t["stall_ms"] for t in tray)
    bare_s = statistics.median(bare)
    window = "open" if args.open_history else "closed"
    print(f"catch-up of {args.missed:,} missed, {args.rounds} rounds, history window {window}")
    for t, b in zip(tray, bare, strict=True):
        print(
            f"  tray: all stored {t['stored_s']:.2f} s, worst GUI stall {t['stall_ms']} ms"
            f" (at {t['stall_at']:.2f} s),"
            f" toasts {t['toasts']}; bare loop {b:.2f} s"
        )
    print(f"  median: tray {stored:.2f} s, bare {bare_s:.2f} s, ratio {stored / bare_s:.2f}")
    print(f"  worst GUI-thread stall: {stall} ms")


if __name__ == "__main__":
    main()
