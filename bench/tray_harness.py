"""The shared part of the tray benchmarks: a private desktop, a keyring, the companion server,
a logged-in user with a history, and the two contenders started the way people start them:

- the tray: ``python -m app`` (stored login, the history of ``history`` announcements);
- the bare tray: a PySide6 program that shows only a ``QSystemTrayIcon`` with a menu (same
  Python, same Qt), the cost of an empty tray icon.

Measures read ``/proc`` (RSS, context switches of every thread) and the private bus (the icon
registering with the StatusNotifierWatcher), so they cost the contenders nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench._common import ServerProc
from tests.fixtures.desktop import Desktop, LineReader

ROOT = Path(__file__).resolve().parents[1]
USER = "alice"
PASSWORD = "demo"  # noqa: S105 (the demo users' password)

BARE_TRAY = """
import sys
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMenu, QSystemTrayIcon
app = QApplication(sys.argv[:1])
app.setQuitOnLastWindowClosed(False)
icon = QSystemTrayIcon(QIcon(sys.argv[1]))
menu = QMenu()
for text in ("Connected", "Announcements…", "Log out", "Do not disturb", "Settings…", "Quit"):
    menu.addAction(text)
icon.setContextMenu(menu)
icon.show()
sys.exit(app.exec())
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def threads(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of every thread of ``pid`` so far: each is a
    wake-up (a thread that slept and ran again) or a preemption."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
    return total


def wakeups_per_s(pid: int, seconds: float) -> float:
    before = context_switches(pid)
    threading.Event().wait(seconds)
    return (context_switches(pid) - before) / seconds


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout} s: {what}")
        threading.Event().wait(0.005)


@dataclass
class Launched:
    proc: subprocess.Popen[str]
    started: float  # time.monotonic() just before Popen
    icon_at: float  # the icon registered with the tray host
    output: LineReader | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)


class TrayBench:
    """Desktop + keyring + server + a logged-in user whose history holds ``history`` items."""

    def __init__(self, *, history: int = 1000) -> None:
        missing = [p for p in ("Xvfb", "dbus-daemon", "dunst", "gtk-sni-tray-standalone",
                               "gnome-keyring-daemon") if shutil.which(p) is None]  # fmt: skip
        if missing:
            raise SystemExit(f"needs {', '.join(missing)} (scripts/dev system-deps test)")
        self.folder = Path(tempfile.mkdtemp(prefix="tray-bench-"))
        self.home = self.folder / "home"
        for sub in ("data", "config", "runtime", "tray"):
            (self.home / sub).mkdir(parents=True, mode=0o700)
        self.desktop = Desktop(self.folder)
        self.desktop.start()
        self._keyring = subprocess.Popen(
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self.env(),
            text=True,
        )
        assert self._keyring.stdin is not None
        self._keyring.stdin.write("pw")
        self._keyring.stdin.close()
        self.desktop.wait_for_owner("org.freedesktop.secrets")
        # no keepalive pings during a measure: only the contenders' own wake-ups count
        self.server = ServerProc(self.folder / "server", ping_interval=600)
        done = subprocess.run(
            [sys.executable, "-m", "app", "login", "--server", self.server.url, "--user", USER,
             "--password-stdin"],
            input=f"{PASSWORD}\n", cwd=ROOT, env=self.env(), capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"login failed: {done.stdout}{done.stderr}")
        self._fill_history(history)
        self.bare_icon = str(ROOT / "resources" / "icons" / "connected-32.png")

    def env(self) -> dict[str, str]:
        env = self.desktop.env(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / "data"),
            XDG_CONFIG_HOME=str(self.home / "config"),
            XDG_RUNTIME_DIR=str(self.home / "runtime"),
            TRAY_NOTIFIER_HOME=str(self.home / "tray"),
            PYTHONPATH=str(ROOT),
        )
        env.pop("PYTHON_KEYRING_BACKEND", None)
        return env

    def _fill_history(self, count: int) -> None:
        """``count`` announcements already stored and told (the badge shows them unread)."""
        from app.core.config import Paths
        from app.core.model import Announcement
        from app.core.store import HistoryStore

        saved = os.environ.get("TRAY_NOTIFIER_HOME")
        os.environ["TRAY_NOTIFIER_HOME"] = str(self.home / "tray")
        try:
            paths = Paths.default()
        finally:
            if saved is None:
                os.environ.pop("TRAY_NOTIFIER_HOME")
            else:
                os.environ["TRAY_NOTIFIER_HOME"] = saved
        path = HistoryStore.path_for(paths.data_dir, self.server.url, USER)
        path.parent.mkdir(parents=True, exist_ok=True)
        start = datetime.now(UTC) - timedelta(days=1)
        with HistoryStore(path) as store:
            ids = []
            for i in range(count):
                ann = Announcement(
                    id=f"old-{i}",
                    title=f"Announcement {i}",
                    body="A body of a typical length, a sentence or two. " * 3,
                    created_at=start + timedelta(seconds=i),
                )
                store.add(ann)
                ids.append(ann.id)
            store.mark_shown(ids)

    def streams_opened(self) -> int:
        text = httpx.get(f"{self.server.url}/metrics", timeout=5).text
        match = re.search(r"^(?:\w+_)?connections_total (\d+)", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def _launch(self, argv: list[str], *, read_output: bool) -> Launched:
        monitor = self.desktop.monitor(
            "type='method_call',interface='org.kde.StatusNotifierWatcher',"
            "member='RegisterStatusNotifierItem'"
        )
        threading.Event().wait(0.3)  # dbus-monitor has subscribed
        started = time.monotonic()
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if read_output else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if read_output else subprocess.DEVNULL,
            text=True,
        )
        output = LineReader(proc.stdout) if read_output and proc.stdout is not None else None
        monitor.wait_for("RegisterStatusNotifierItem", 60)
        return Launched(proc, started, time.monotonic(), output)

    def launch_bare(self) -> Launched:
        return self._launch([sys.executable, "-c", BARE_TRAY, self.bare_icon], read_output=False)

    def launch_tray(self, argv: list[str] | None = None) -> tuple[Launched, float]:
        """The tray (``argv``: another command line for it, default ``python -m app``); returns
        it and the seconds from launch to its stream being open."""
        before = self.streams_opened()
        tray = self._launch(argv or [sys.executable, "-m", "app"], read_output=True)
        wait_until(lambda: self.streams_opened() > before, 60, "the tray's stream is open")
        return tray, time.monotonic() - tray.started

    def close(self) -> None:
        self.server.stop()
        self._keyring.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._keyring.wait(timeout=10)
        self.desktop.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def tray_bench(*, history: int = 1000) -> Iterator[TrayBench]:
    bench = TrayBench(history=history)
    try:
        yield bench
    finally:
        bench.close()
