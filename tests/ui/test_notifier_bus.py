"""The notifier on a real session bus (a private desktop with dunst and a StatusNotifierItem
tray host): it asks who serves notifications once, not for each toast, and follows the daemon
going away and coming back (``NameOwnerChanged``); the "alerts stopped" warning is a critical
notification that stays until the connection is back, then is closed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.core.model import ConnState
from app.core.toast_policy import ToastPolicy
from app.ui.notifier import DeliveryMethod, FreedesktopNotifications, Notifier
from app.ui.root import Root
from tests.fixtures.desktop import Desktop, LineReader, read_notify
from tests.fixtures.qt import Spy
from tests.fixtures.server import DEMO_PASSWORD

pytestmark = [pytest.mark.desktop, pytest.mark.usefixtures("desktop")]

WAIT = 30.0
WAIT_MS = 30_000
ASKED = 'string "org.freedesktop.Notifications"'


def mark(desktop: Desktop, questions: LineReader, name: str) -> None:
    """A NameHasOwner of our own, waited for: every question before it has been read."""
    desktop.has_owner(name)
    questions.wait_for(f'string "{name}"', WAIT)


@pytest.mark.qt_log_ignore("This plugin does not support")
def test_the_notifier_asks_once_and_follows_the_daemon(
    desktop: Desktop, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address)
    questions = desktop.monitor(
        "type='method_call',interface='org.freedesktop.DBus',member='NameHasOwner'"
    )
    questions.wait_for("member=NameLost", WAIT)  # dbus-monitor became a monitor: it is reading
    bus = FreedesktopNotifications.open()
    assert bus is not None
    notifier = Notifier(None, policy=ToastPolicy(settle=0.01), bus=bus)
    try:
        # offscreen Qt has no tray: each toast would go by our own Notify call
        assert [notifier.method() for _ in range(5)] == [DeliveryMethod.DBUS] * 5
        mark(desktop, questions, "org.example.Asked")
        assert sum(ASKED in line for line in questions.seen) == 1

        changed = Spy(bus.ownerChanged)
        desktop.stop_notifications()
        qtbot.waitUntil(lambda: notifier.method() is DeliveryMethod.WINDOW, timeout=10_000)
        assert changed.values == ["org.freedesktop.Notifications"]
        desktop.start_notifications()
        qtbot.waitUntil(lambda: notifier.method() is DeliveryMethod.DBUS, timeout=10_000)
    finally:
        notifier.close()
        bus.close()


@pytest.mark.qt_log_ignore("This plugin does not support", ".*systemTrayWindowChanged")
def test_alerts_stopped_is_critical_stays_and_is_closed_when_connected_again(
    desktop: Desktop,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
    server_factory: Any,
    make_root: Callable[..., Root],
) -> None:
    """The tray against the real server, on the real bus: the server goes away; the warning is
    Notify(urgency 2, expire_timeout 0) and stays; the tray's icon and tooltip say it; "Reconnect
    now" once the server is back connects, and the warning is closed (CloseNotification)."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address)
    assert desktop.has_owner("org.kde.StatusNotifierWatcher")  # an SNI tray host is there
    calls = desktop.monitor(
        "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
        "type='method_call',interface='org.freedesktop.Notifications',member='CloseNotification'",
    )
    calls.wait_for("member=NameLost", WAIT)  # dbus-monitor became a monitor: it is reading
    desktop.dunstctl("close-all")
    bus = FreedesktopNotifications.open()
    assert bus is not None
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=30_000)
    root = make_root(bus=bus)
    # "alerts stopped" after 1 s instead of a few minutes
    root.notifier.policy = ToastPolicy(lambda: root.settings.config, offline_after=1.0)
    try:
        root.start()
        root.login(server.url, "alice", DEMO_PASSWORD)
        qtbot.waitUntil(
            lambda: root.tray.state.status.state is ConnState.CONNECTED, timeout=WAIT_MS
        )

        delivered = Spy(root.notifier.delivered)
        server.stop()
        # the Qt event loop runs while waiting (the notifier's timer sends the warning), then
        # the monitor's lines are read
        qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT_MS)
        warning = read_notify(calls, "Not connected", WAIT)
        assert (warning.urgency, warning.expire_timeout) == (2, 0)  # critical, no expiry
        assert warning.action_keys == ["default"]
        (nid,) = root.notifier.bus_ids()  # the warning's id (it opens the history)
        qtbot.waitUntil(lambda: "Not receiving announcements since" in root.tray.icon.toolTip())
        # on screen (expiry 0: dunst keeps it)
        assert int(desktop.dunstctl("count", "displayed")) == 1

        server = server_factory(
            data_dir=server.data_dir, port=server.port, ping_interval=0.5, retry_ms=30_000
        )
        root.tray.menu.aboutToShow.emit()
        (reconnect,) = [a for a in root.tray.menu.actions() if a.text() == "Reconnect now"]
        reconnect.trigger()
        qtbot.waitUntil(lambda: len(delivered.calls) == 2, timeout=10_000)  # not after 30 s
        assert root.tray.state.status.state is ConnState.CONNECTED
        calls.wait_for("member=CloseNotification", WAIT)
        assert calls.wait_for("uint32", WAIT).split() == ["uint32", str(nid)]
        read_notify(calls, "Connected again", WAIT)  # after the warning was closed
        assert "Not receiving" not in root.tray.icon.toolTip()
    finally:
        assert root.shutdown(5000)
        bus.close()
