"""Start-up helpers of the tray application."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QTimer, Signal, qInstallMessageHandler, qWarning
from pytestqt.qtbot import QtBot

from app.cli import EXIT_FAILURE, EXIT_PROTOCOL
from app.core.store import HistoryStore
from app.ui.main import (
    can_show_dialogs,
    install_excepthook,
    quit_on_signals,
    route_qt_messages,
    use_offscreen_without_display,
)

ROOT = Path(__file__).resolve().parents[2]


def run_tray_offscreen(home: Path) -> subprocess.CompletedProcess[str]:
    """``python -m app`` as started with no display, with ``home`` as TRAY_NOTIFIER_HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="offscreen", TRAY_NOTIFIER_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_qt_messages_go_to_the_log_and_platform_chatter_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    previous = route_qt_messages()
    try:
        with caplog.at_level(logging.DEBUG, logger="qt"):
            qWarning("a real Qt warning")
            qWarning("This plugin does not support raise()")
    finally:
        qInstallMessageHandler(previous)  # type: ignore[arg-type]
    levels = {r.getMessage(): r.levelno for r in caplog.records if r.name == "qt"}
    assert levels == {
        "a real Qt warning": logging.WARNING,
        "This plugin does not support raise()": logging.DEBUG,
    }


@pytest.mark.parametrize(
    ("env", "chosen"),
    [
        ({}, True),
        ({"DISPLAY": ":0"}, False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, False),
        ({"QT_QPA_PLATFORM": "xcb"}, False),
    ],
)
def test_offscreen_only_without_any_display(env: dict[str, str], chosen: bool) -> None:
    environ = dict(env)
    assert use_offscreen_without_display(environ) is chosen
    assert (environ.get("QT_QPA_PLATFORM") == "offscreen") is chosen


@pytest.mark.parametrize(
    ("platform", "visible"),
    [("offscreen", False), ("minimal", False), ("xcb", True), ("wayland", True), ("", True)],
)
def test_dialogs_only_where_a_person_can_see_them(platform: str, visible: bool) -> None:
    assert can_show_dialogs({"QT_QPA_PLATFORM": platform}) is visible


def test_a_bad_config_offscreen_is_a_clear_message_and_exit_4_not_a_hang(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    bad = home / "config" / "config.toml"
    bad.write_text('server_url = "https://example.org"\nretention_days = "often"\n')
    done = run_tray_offscreen(home)
    assert done.returncode == EXIT_PROTOCOL, done.stderr
    assert "retention_days" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_exception_in_a_slot_is_logged_once_with_its_traceback_and_the_app_goes_on(
    qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    class Emitter(QObject):
        fired = Signal()

    def broken() -> None:
        raise RuntimeError("a bug in a slot")

    emitter = Emitter()
    emitter.fired.connect(broken)
    previous = install_excepthook()
    try:
        with caplog.at_level(logging.CRITICAL):
            emitter.fired.emit()
            emitter.fired.emit()
    finally:
        sys.excepthook = previous  # type: ignore[assignment]
    records = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(records) == 2
    assert records[0].exc_info is not None
    assert "a bug in a slot" in str(records[0].exc_info[1])


def test_a_history_from_a_newer_version_is_a_clear_message_not_a_traceback(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    server = "https://announcements.example.org"
    (home / "config" / "config.toml").write_text(f'server_url = "{server}"\nusername = "alice"\n')
    history = HistoryStore.path_for(home / "data", server, "alice")
    history.parent.mkdir(parents=True)
    with sqlite3.connect(history) as conn:
        conn.execute("PRAGMA user_version = 99")
    done = run_tray_offscreen(home)
    assert done.returncode == EXIT_FAILURE, done.stderr
    assert "newer version" in done.stderr
    assert str(history) in done.stderr
    assert "Traceback" not in done.stderr
    assert history.exists()  # never moved aside: it is not damaged


def test_a_signal_wakes_the_event_loop_through_its_socket_and_quits_no_timer(
    qtbot: QtBot,
) -> None:
    parent = QObject()
    calls: list[str] = []
    restore = quit_on_signals(
        lambda: calls.append("quit"), parent=parent, signals=(signal.SIGUSR1,)
    )
    try:
        assert parent.findChildren(QTimer) == []  # nothing polls while idle
        os.kill(os.getpid(), signal.SIGUSR1)
        qtbot.waitUntil(lambda: calls == ["quit"], timeout=5000)
    finally:
        restore()
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL
    assert signal.set_wakeup_fd(-1) == -1  # the wake-up socket is given back
