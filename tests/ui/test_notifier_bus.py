"""The notifier on a real session bus (a private desktop with dunst): it asks who serves
notifications once, not for each toast, and follows the daemon going away and coming back
(``NameOwnerChanged``)."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.core.toast_policy import ToastPolicy
from app.ui.notifier import DeliveryMethod, FreedesktopNotifications, Notifier
from tests.fixtures.desktop import Desktop, LineReader
from tests.fixtures.qt import Spy

pytestmark = [pytest.mark.desktop, pytest.mark.usefixtures("desktop")]

WAIT = 30.0
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
