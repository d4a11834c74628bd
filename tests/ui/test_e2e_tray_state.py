"""End to end through the composition root against the companion server: what the tray shows
is the truth. "Reconnect now" in the tray menu cuts the reconnect wait short; while no
announcement can arrive the icon and tooltip say so; while quiet hours hold toasts back the
tooltip says so."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.core.config import Config, QuietHours
from app.core.model import ConnState
from app.core.toast_policy import ToastPolicy
from app.ui.root import Root
from app.ui.widgets import format_moment
from tests.fixtures.qt import Spy, menu_action
from tests.fixtures.server import DEMO_PASSWORD

WAIT = 15_000
RETRY_MS = 30_000  # the server's retry: the tray waits at least this before reconnecting

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support", ".*systemTrayWindowChanged")


def state(root: Root) -> ConnState:
    return root.tray.state.status.state


def test_reconnect_now_in_the_tray_menu_reconnects_at_once(
    qtbot: QtBot, server_factory: Any, make_root: Callable[..., Root]
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=RETRY_MS)
    root = make_root()
    # "alerts stopped" after 1 s instead of a few minutes
    root.notifier.policy = ToastPolicy(lambda: root.settings.config, offline_after=1.0)
    root.start()
    root.login(server.url, "alice", DEMO_PASSWORD)
    qtbot.waitUntil(lambda: state(root) is ConnState.CONNECTED, timeout=WAIT)
    reconnect = menu_action(root.tray, "Reconnect now")
    assert not reconnect.isEnabled()  # connected: nothing to do
    plain_icon = root.tray.icon.icon().cacheKey()

    # the server goes away: the tray waits the server's retry: time (30 s) before trying again
    server.stop()
    qtbot.waitUntil(lambda: state(root) is ConnState.OFFLINE, timeout=WAIT)
    retry_in = root.tray.state.status.retry_in
    assert retry_in is not None and retry_in >= RETRY_MS / 1000
    assert menu_action(root.tray, "Reconnect now").isEnabled()
    # a while later: the icon and tooltip say that nothing can arrive, and since when
    qtbot.waitUntil(lambda: root.tray.state.alerts_stopped is not None, timeout=WAIT)
    since = root.tray.state.alerts_stopped
    assert since is not None and datetime.now() - since < timedelta(minutes=1)
    assert f"Not receiving announcements since {format_moment(since)}" in root.tray.icon.toolTip()
    assert root.tray.icon.icon().cacheKey() != plain_icon

    # it is back; "Reconnect now" connects at once instead of after the 30 s wait
    server = server_factory(
        data_dir=server.data_dir, port=server.port, ping_interval=0.5, retry_ms=RETRY_MS
    )
    chosen = time.monotonic()
    menu_action(root.tray, "Reconnect now").trigger()
    qtbot.waitUntil(lambda: state(root) is ConnState.CONNECTED, timeout=WAIT)
    assert time.monotonic() - chosen < 10.0
    assert "Not receiving" not in root.tray.icon.toolTip()
    assert root.tray.icon.icon().cacheKey() == plain_icon
    assert not menu_action(root.tray, "Reconnect now").isEnabled()
    # and the stream is live again
    delivered = Spy(root.notifier.delivered)
    server.publish("After reconnecting", "The stream is live.")
    qtbot.waitUntil(
        lambda: any(r.title == "After reconnecting" for r in delivered.values), timeout=WAIT
    )


def test_quiet_hours_holding_toasts_back_show_in_the_tooltip_from_the_start(
    qtbot: QtBot, make_root: Callable[..., Root]
) -> None:
    now = datetime.now()
    start, end = (now - timedelta(hours=1)).time(), (now + timedelta(hours=2)).time()
    root = make_root(config=Config(quiet_hours=QuietHours(start, end)))
    root.start()
    assert root.tray.icon.toolTip().splitlines()[-1] == (
        f"Quiet hours until {end:%H:%M}: announcements are held back (urgent ones still show)"
    )
    # switched off in the settings: the tray follows at once
    root.settings.save(root.settings.config.with_changes(quiet_hours=None))
    qtbot.waitUntil(lambda: "held back" not in root.tray.icon.toolTip(), timeout=WAIT)
