"""On a real (private) desktop: ``python -m app demo`` registers its tray icon with the
StatusNotifierItem watcher, and a published announcement becomes an
``org.freedesktop.Notifications.Notify`` call carrying its title, and, whatever the tray host,
the actions and urgency of our own call (a StatusNotifierItem tray's messages carry none)."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pytestqt.qtbot import QtBot

from app.core.model import Announcement, Priority
from app.core.toast_policy import ToastPolicy
from app.ui.notifier import DeliveryMethod, FreedesktopNotifications, Notifier
from tests.fixtures.desktop import Desktop, LineReader, read_notify
from tests.fixtures.qt import Spy
from tests.fixtures.server import DEMO_PASSWORD
from tests.fixtures.wait import wait_until

pytestmark = [pytest.mark.desktop, pytest.mark.usefixtures("desktop")]

WAIT = 30.0  # seconds: a Qt start on a busy 2-core machine
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(desktop: Desktop, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], LineReader]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "demo", "--interval", "600", "--exit-after", "120"],
        cwd=ROOT,
        env=desktop.env(TRAY_NOTIFIER_HOME=str(tmp_path / "home")),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    yield proc, LineReader(proc.stdout)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    proc.stdout.close()


def publish(server_url: str, title: str, priority: str = "normal") -> None:
    with httpx.Client(base_url=server_url, timeout=10) as client:
        login = client.post(
            "/auth/login", json={"username": "publisher", "password": DEMO_PASSWORD}
        )
        token = login.json()["access_token"]
        answer = client.post(
            "/announcements",
            json={
                "title": title,
                "body": "Sent by the desktop test.",
                "priority": priority,
                "audience": {"all": True},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 201, answer.text


def test_demo_shows_the_tray_icon_and_a_native_notification(
    desktop: Desktop, demo: tuple[subprocess.Popen[str], LineReader]
) -> None:
    calls = desktop.monitor(
        "type='method_call',interface='org.kde.StatusNotifierWatcher',"
        "member='RegisterStatusNotifierItem'",
        "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
    )
    proc, output = demo
    url = output.wait_for("demo server: http://127.0.0.1:", WAIT).rsplit(" ", 1)[-1]
    # the tray icon: a StatusNotifierItem registered with the watcher
    calls.wait_for("member=RegisterStatusNotifierItem", WAIT)
    output.wait_for("connecting as alice", WAIT)
    title = f"Desktop test {uuid.uuid4().hex[:8]}"
    publish(url, title)
    calls.wait_for(f'string "{title}"', WAIT)
    # and it quits cleanly on SIGTERM
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_on_a_status_notifier_tray_toasts_carry_actions_and_urgency(
    desktop: Desktop, demo: tuple[subprocess.Popen[str], LineReader]
) -> None:
    """The tray icon is a StatusNotifierItem (Qt's own messages would be Notify calls with no
    actions, no urgency and an 8 s expiry): each toast is our own Notify call, "default"
    opens the announcement, an urgent one also offers "acknowledge"; urgency 0 for low, 1 for
    normal and high, 2 (critical, no expiry) for urgent."""
    calls = desktop.monitor(
        "type='method_call',interface='org.kde.StatusNotifierWatcher',"
        "member='RegisterStatusNotifierItem'",
        "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
    )
    calls.wait_for("member=NameLost", WAIT)  # dbus-monitor became a monitor: it is reading
    desktop.dunstctl("close-all")
    _proc, output = demo
    url = output.wait_for("demo server: http://127.0.0.1:", WAIT).rsplit(" ", 1)[-1]
    calls.wait_for("member=RegisterStatusNotifierItem", WAIT)  # an SNI tray: Qt's D-Bus tray
    output.wait_for("connecting as alice", WAIT)
    tag = uuid.uuid4().hex[:6]
    seen = {}
    for priority in ("low", "normal", "high", "urgent"):  # one at a time: no summary
        title = f"{priority.capitalize()} {tag}"
        publish(url, title, priority)
        seen[priority] = read_notify(calls, title, WAIT)
    assert {p: c.urgency for p, c in seen.items()} == {
        "low": 0,
        "normal": 1,
        "high": 1,
        "urgent": 2,
    }
    for priority in ("low", "normal", "high"):
        assert seen[priority].action_keys == ["default"]
        assert seen[priority].expire_timeout > 0
    assert seen["urgent"].action_keys == ["default", "acknowledge"]
    assert seen["urgent"].actions[3] == "Acknowledge"
    assert seen["urgent"].expire_timeout == 0  # critical: stays until acknowledged
    assert {c.app_name for c in seen.values()} == {"Tray Notifier"}
    output.wait_for("toast (dbus)", WAIT)  # the demo logs how it told them

    # a click on the high one (dunst's newest first; the urgent one is on top) opens it in
    # the history window
    desktop.dunstctl("close")
    assert desktop.windows_named("Announcements — Tray Notifier") == []
    desktop.dunstctl("action", "0")
    wait_until(
        lambda: bool(desktop.windows_named("Announcements — Tray Notifier")),
        WAIT,
        "the click opened the history window",
    )


@pytest.mark.qt_log_ignore("This plugin does not support")
def test_without_a_tray_our_own_notify_call_is_plain_text_and_clickable(
    desktop: Desktop, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Offscreen Qt has no tray: the notifier sends Notify itself over the private bus (the
    body escaped, as dunst renders markup), and a click in dunst opens the announcement."""
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address)
    calls = desktop.monitor(
        "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"
    )
    # earlier tests' notifications may still be on screen: ours must be the only one
    desktop.dunstctl("close-all")
    bus = FreedesktopNotifications.open()
    assert bus is not None
    notifier = Notifier(None, policy=ToastPolicy(settle=0.01), bus=bus)
    try:
        assert notifier.method() is DeliveryMethod.DBUS
        delivered = Spy(notifier.delivered)
        title = f"Plain {uuid.uuid4().hex[:6]}"
        notifier.announcement(Announcement(id="42", title=title, body="<b>bold?</b> & more"))
        qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=10_000)
        assert delivered.values[0].method is DeliveryMethod.DBUS
        calls.wait_for(f'string "{title}"', WAIT)
        calls.wait_for('string "&lt;b&gt;bold?&lt;/b&gt; &amp; more"', WAIT)
        clicked = Spy(notifier.clicked)
        desktop.dunstctl("action", "0")
        qtbot.waitUntil(lambda: clicked.values == ["42"], timeout=10_000)
    finally:
        notifier.close()
        bus.close()


@pytest.mark.qt_log_ignore("This plugin does not support")
def test_notification_actions_on_a_real_bus(
    desktop: Desktop, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An urgent notification offers Open (default) and Acknowledge; a click in dunst opens
    it, an ActionInvoked "acknowledge" on the bus acknowledges it, and NotificationClosed
    from dunst forgets the id."""
    from jeepney import DBusAddress, new_signal
    from jeepney.io.blocking import open_dbus_connection

    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.bus_address)
    calls = desktop.monitor(
        "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"
    )

    desktop.dunstctl("close-all")
    bus = FreedesktopNotifications.open()
    assert bus is not None
    notifier = Notifier(None, policy=ToastPolicy(settle=0.01), bus=bus)
    try:
        delivered = Spy(notifier.delivered)
        title = f"Urgent {uuid.uuid4().hex[:6]}"
        notifier.announcement(
            Announcement(id="u7", title=title, body="Leave now.", priority=Priority.URGENT)
        )
        qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=10_000)
        calls.wait_for(f'string "{title}"', WAIT)
        calls.wait_for('string "acknowledge"', WAIT)
        (nid,) = notifier.bus_ids()
        assert notifier.bus_ids() == {nid: "u7"}

        # Acknowledge chosen (sent on the bus as the daemon sends it): acknowledge, and the
        # notification is taken off the screen by CloseNotification
        acks = Spy(notifier.acknowledgeRequested)
        with open_dbus_connection(bus=desktop.bus_address) as conn:
            emitter = DBusAddress(
                "/org/freedesktop/Notifications", interface="org.freedesktop.Notifications"
            )
            conn.send_message(new_signal(emitter, "ActionInvoked", "us", (nid, "acknowledge")))
            qtbot.waitUntil(lambda: acks.values == ["u7"], timeout=10_000)
        notifier.dismiss("u7")
        assert notifier.bus_ids() == {}
        qtbot.waitUntil(lambda: int(desktop.dunstctl("count", "displayed")) == 0, timeout=10_000)

        # a click in dunst opens the announcement; NotificationClosed forgets the id
        second = f"Urgent {uuid.uuid4().hex[:6]}"
        notifier.announcement(
            Announcement(id="u8", title=second, body="Again.", priority=Priority.URGENT)
        )
        qtbot.waitUntil(lambda: list(notifier.bus_ids().values()) == ["u8"], timeout=10_000)
        qtbot.waitUntil(lambda: int(desktop.dunstctl("count", "displayed")) == 1, timeout=10_000)
        clicked = Spy(notifier.clicked)
        desktop.dunstctl("action", "0")
        qtbot.waitUntil(lambda: clicked.values == ["u8"], timeout=10_000)
        desktop.dunstctl("close-all")
        qtbot.waitUntil(lambda: notifier.bus_ids() == {}, timeout=10_000)
    finally:
        notifier.close()
        bus.close()
