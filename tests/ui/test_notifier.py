"""Toast delivery without a system tray (offscreen): our own toast window, plain text, clicks,
bursts, do not disturb and quiet hours. Time is the policy's injected clock, moved by the test
(``settle``): no test waits for a real timer."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, time
from typing import Any

import pytest
from PySide6.QtCore import QObject, QPoint, Qt, Signal
from PySide6.QtWidgets import QApplication, QSystemTrayIcon
from pytestqt.qtbot import QtBot

from app.core.config import Config, QuietHours
from app.core.model import Announcement, ConnState, Priority
from app.core.toast_policy import Hold, HoldReason, ToastPolicy, Urgency
from app.ui.notifier import DeliveryMethod, Notifier, ToastRecord
from tests.fixtures.qt import Spy

# offscreen cannot raise windows or pass size hints: platform noise, not our fault
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")

HOSTILE = "<img src=http://x/a.png><b>hi</b>"


def ann(n: int, priority: Priority = Priority.NORMAL, title: str = "") -> Announcement:
    return Announcement(id=str(n), title=title or f"Title {n}", body=f"Body {n}", priority=priority)


class Clock:
    """The policy's clock, moved by the test; also holds the settings the policy reads."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.settings = Config()

    def __call__(self) -> float:
        return self.now


def settle(notifier: Notifier, seconds: float | None = None) -> None:
    """Move the clock ``seconds`` on (default: to the policy's next deadline) and let the
    notifier show what is due then, as its timer would."""
    clock = notifier.policy.clock
    assert isinstance(clock, Clock)
    if seconds is None:
        deadline = notifier.policy.next_deadline()
        assert deadline is not None, "nothing is waiting"
        clock.now = max(clock.now, deadline)
    else:
        clock.now += seconds
    notifier.show_due()


def quiet_after(notifier: Notifier, delivered: Spy) -> None:
    """Nothing waits any more, and nothing more comes however long one waits."""
    assert notifier.policy.next_deadline() is None
    before = len(delivered.calls)
    settle(notifier, 3600.0)
    assert len(delivered.calls) == before


@pytest.fixture
def make_notifier(qapp: QApplication) -> Iterator[object]:
    made: list[Notifier] = []

    def make(settings: Config | None = None, **policy: Any) -> Notifier:
        clock = Clock()
        clock.settings = settings or Config()
        policy.setdefault("settle", 0.3)
        n = Notifier(None, policy=ToastPolicy(lambda: clock.settings, clock=clock, **policy))
        made.append(n)
        return n

    yield make
    for n in made:
        n.close()


def test_offscreen_has_no_tray_so_our_own_window_shows_the_toast(
    qtbot: QtBot, make_notifier: object
) -> None:
    assert not QSystemTrayIcon.isSystemTrayAvailable()
    notifier: Notifier = make_notifier()  # type: ignore[operator]
    assert notifier.method() is DeliveryMethod.WINDOW
    with qtbot.waitSignal(notifier.delivered, timeout=1000) as blocker:
        notifier.announcement(ann(1, title=HOSTILE))
        settle(notifier)
    record: ToastRecord = blocker.args[0]
    assert record == ToastRecord(HOSTILE, "Body 1", DeliveryMethod.WINDOW, "1")
    window = notifier.windows[-1]
    assert window.isVisible()
    # the hostile title is shown literally: plain text, never markup
    assert window.title_label.textFormat() == Qt.TextFormat.PlainText
    assert window.title_label.text() == HOSTILE
    assert window.body_label.text() == "Body 1"
    # bottom-right corner of the screen
    area = window.screen().availableGeometry()
    assert window.geometry().right() <= area.right()
    assert window.geometry().bottom() <= area.bottom()
    assert window.geometry().left() > area.center().x()


def test_clicking_our_toast_opens_the_announcement(qtbot: QtBot, make_notifier: object) -> None:
    notifier: Notifier = make_notifier()  # type: ignore[operator]
    with qtbot.waitSignal(notifier.delivered, timeout=1000):
        notifier.announcement(ann(7))
        settle(notifier)
    window = notifier.windows[-1]
    with qtbot.waitSignal(notifier.clicked, timeout=1000) as blocker:
        qtbot.mouseClick(window, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    assert blocker.args == ["7"]
    qtbot.waitUntil(lambda: notifier.windows == ())


def test_toasts_stack_instead_of_replacing(qtbot: QtBot, make_notifier: object) -> None:
    notifier: Notifier = make_notifier()  # type: ignore[operator]
    delivered = Spy(notifier.delivered)
    notifier.announcement(ann(1))
    settle(notifier)
    assert len(delivered.calls) == 1
    notifier.announcement(ann(2))
    settle(notifier)
    assert len(delivered.calls) == 2
    first, second = notifier.windows
    assert second.geometry().bottom() < first.geometry().top()


def test_burst_gives_one_summary(qtbot: QtBot, make_notifier: object) -> None:
    notifier: Notifier = make_notifier()  # type: ignore[operator]
    delivered = Spy(notifier.delivered)
    for n in range(12):
        notifier.announcement(ann(n))
        settle(notifier, 0.01)
    assert delivered.calls == []  # a burst is gathered until its window ends
    settle(notifier)
    assert [r.title for r in delivered.values] == ["12 new announcements"]
    assert delivered.values[0].announcement_id is None
    quiet_after(notifier, delivered)  # nothing else follows the summary


def test_summary_click_opens_the_history(qtbot: QtBot, make_notifier: object) -> None:
    notifier: Notifier = make_notifier()  # type: ignore[operator]
    for n in range(5):
        notifier.announcement(ann(n))
    settle(notifier)
    assert len(notifier.windows) == 1
    window = notifier.windows[0]
    assert window.title_label.text() == "5 new announcements"
    with qtbot.waitSignal(notifier.clicked, timeout=1000) as blocker:
        qtbot.mouseClick(window, Qt.MouseButton.LeftButton, pos=QPoint(10, 10))
    assert blocker.args == [""]


def test_do_not_disturb_holds_back_all_but_urgent(qtbot: QtBot, make_notifier: object) -> None:
    notifier: Notifier = make_notifier(Config(do_not_disturb=True))  # type: ignore[operator]
    delivered = Spy(notifier.delivered)
    notifier.announcement(ann(1))
    notifier.announcement(ann(2, Priority.HIGH))
    notifier.announcement(ann(3, Priority.URGENT))
    assert len(delivered.calls) == 1  # urgent: at once
    assert delivered.values[0].announcement_id == "3"
    assert delivered.values[0].urgent
    settle(notifier, 3600.0)
    assert len(delivered.calls) == 1  # held back for as long as it is on
    clock = notifier.policy.clock
    assert isinstance(clock, Clock)
    clock.settings = Config(do_not_disturb=False)
    notifier.settings_changed(clock.settings)
    assert len(delivered.calls) == 2
    assert delivered.values[1].title == "2 new announcements"
    quiet_after(notifier, delivered)


def test_quiet_hours_hold_back_all_but_urgent_and_sum_up_when_they_end(
    qtbot: QtBot, make_notifier: object
) -> None:
    quiet = QuietHours(time(22, 0), time(7, 0))
    local = [time(23, 15)]
    notifier: Notifier = make_notifier(  # type: ignore[operator]
        Config(quiet_hours=quiet), local_time=lambda: local[0]
    )
    delivered, holds = Spy(notifier.delivered), Spy(notifier.holdChanged)
    notifier.announcement(ann(1, Priority.HIGH))
    notifier.announcement(ann(2, Priority.URGENT))
    assert [r.announcement_id for r in delivered.values] == ["2"]
    assert holds.values == [Hold(HoldReason.QUIET_HOURS, time(7, 0))]
    # the notifier's own timer is set for the end of the quiet hours (7 h 45 min from now):
    # what they held is summed up then, with no other event needed
    assert notifier.policy.next_deadline() == notifier.policy.clock() + 7 * 3600 + 45 * 60
    local[0] = time(7, 0)
    settle(notifier)
    assert [r.title for r in delivered.values] == ["Title 2", "1 new announcement"]
    assert holds.values == [Hold(HoldReason.QUIET_HOURS, time(7, 0)), None]


def test_offline_and_back_toasts(qtbot: QtBot, make_notifier: object) -> None:
    notifier: Notifier = make_notifier(offline_after=180.0)  # type: ignore[operator]
    delivered = Spy(notifier.delivered)
    notifier.connection(ConnState.OFFLINE)
    settle(notifier, 179.0)
    assert delivered.calls == []  # a short drop says nothing
    settle(notifier)
    assert [r.title for r in delivered.values] == ["Not connected"]
    notifier.connection(ConnState.CONNECTED)
    assert [r.title for r in delivered.values] == ["Not connected", "Connected again"]
    quiet_after(notifier, delivered)


class FakeBus(QObject):
    """Stands in for FreedesktopNotifications: records Notify calls, emits what a daemon
    would. (The real bus, with a real daemon, is in test_desktop.py.)"""

    actionInvoked = Signal(int, str)
    notificationClosed = Signal(int)
    ownerChanged = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[int, str, Urgency, list[tuple[str, str]]]] = []
        self.closed: list[int] = []

    def has_service(self) -> bool:
        return True

    def has_tray_host(self) -> bool:
        return False

    def notify(
        self, title: str, body: str, *, urgency: Urgency, timeout_ms: int, actions: Any = ()
    ) -> int:
        nid = 100 + len(self.sent)
        self.sent.append((nid, title, urgency, list(actions)))
        return nid

    def close_notification(self, nid: int) -> None:
        self.closed.append(nid)


@pytest.fixture
def bus_notifier(qapp: QApplication) -> Iterator[tuple[Notifier, FakeBus]]:
    bus = FakeBus()
    clock = Clock()
    policy = ToastPolicy(lambda: clock.settings, clock=clock)
    notifier = Notifier(None, policy=policy, bus=bus)  # type: ignore[arg-type]
    yield notifier, bus
    notifier.close()


@pytest.mark.skipif(sys.platform != "linux", reason="the freedesktop path is Linux only")
def test_notification_actions_open_acknowledge_and_forget(
    qtbot: QtBot, bus_notifier: tuple[Notifier, FakeBus]
) -> None:
    notifier, bus = bus_notifier
    delivered = Spy(notifier.delivered)
    notifier.announcement(ann(1))
    notifier.announcement(ann(2, Priority.URGENT))
    settle(notifier)
    assert len(delivered.calls) == 2
    by_title = {title: (nid, urgency, actions) for nid, title, urgency, actions in bus.sent}
    normal, urgent = by_title["Title 1"], by_title["Title 2"]
    assert [key for key, _ in normal[2]] == ["default"]
    assert [key for key, _ in urgent[2]] == ["default", "acknowledge"]
    assert dict(urgent[2])["acknowledge"] == "Acknowledge"
    assert notifier.bus_ids() == {normal[0]: "1", urgent[0]: "2"}

    clicked, acks = Spy(notifier.clicked), Spy(notifier.acknowledgeRequested)
    bus.actionInvoked.emit(normal[0], "default")
    bus.actionInvoked.emit(urgent[0], "acknowledge")
    bus.actionInvoked.emit(999, "default")  # another program's notification
    bus.actionInvoked.emit(normal[0], "unknown-key")
    assert clicked.values == ["1"]
    assert acks.values == ["2"]
    bus.notificationClosed.emit(normal[0])
    assert notifier.bus_ids() == {urgent[0]: "2"}
    notifier.dismiss("2")  # the root, acknowledging: off the screen
    assert bus.closed == [urgent[0]]
    assert notifier.bus_ids() == {}
    bus.actionInvoked.emit(normal[0], "default")  # closed: forgotten
    assert clicked.values == ["1"]


@pytest.mark.skipif(sys.platform != "linux", reason="the freedesktop path is Linux only")
def test_acknowledged_elsewhere_closes_its_notification(
    qtbot: QtBot, bus_notifier: tuple[Notifier, FakeBus]
) -> None:
    notifier, bus = bus_notifier
    delivered = Spy(notifier.delivered)
    notifier.announcement(ann(5, Priority.URGENT))
    assert len(delivered.calls) == 1  # urgent: at once
    nid = bus.sent[0][0]
    notifier.dismiss("5")
    assert bus.closed == [nid]
    assert notifier.bus_ids() == {}


@pytest.mark.skipif(sys.platform != "linux", reason="the freedesktop path is Linux only")
def test_urgency_byte_follows_the_priority(
    qtbot: QtBot, bus_notifier: tuple[Notifier, FakeBus]
) -> None:
    notifier, bus = bus_notifier
    for n, priority in enumerate(Priority):
        notifier.announcement(ann(n, priority))
        if priority is not Priority.URGENT:
            settle(notifier, 5.0)  # one at a time: no summary
    by_title = {title: urgency for _, title, urgency, _ in bus.sent}
    assert by_title == {
        "Title 0": Urgency.LOW,
        "Title 1": Urgency.NORMAL,
        "Title 2": Urgency.NORMAL,
        "Title 3": Urgency.CRITICAL,
    }


@pytest.mark.skipif(sys.platform != "linux", reason="the freedesktop path is Linux only")
def test_alerts_stopped_is_critical_until_connected_again(
    qtbot: QtBot, bus_notifier: tuple[Notifier, FakeBus]
) -> None:
    notifier, bus = bus_notifier
    stopped = Spy(notifier.alertsStopped)
    notifier.connection(ConnState.OFFLINE)
    settle(notifier)  # three minutes later
    assert [(title, urgency) for _, title, urgency, _ in bus.sent] == [
        ("Not connected", Urgency.CRITICAL)
    ]
    nid = bus.sent[0][0]
    (since,) = stopped.values
    assert isinstance(since, datetime)
    notifier.connection(ConnState.CONNECTING)  # still not connected: it stays
    assert bus.closed == [] and stopped.values == [since]
    notifier.connection(ConnState.CONNECTED)
    assert bus.closed == [nid]  # taken off the screen before "Connected again" shows
    assert [title for _, title, _, _ in bus.sent] == ["Not connected", "Connected again"]
    assert stopped.values == [since, None]
    assert nid not in notifier.bus_ids()


@pytest.mark.skipif(sys.platform != "linux", reason="the freedesktop path is Linux only")
def test_quitting_takes_the_alerts_stopped_warning_off_the_screen(
    qtbot: QtBot, bus_notifier: tuple[Notifier, FakeBus]
) -> None:
    notifier, bus = bus_notifier
    notifier.connection(ConnState.OFFLINE)
    settle(notifier)
    nid = bus.sent[0][0]
    notifier.close()  # it would say "keeps trying"
    assert bus.closed == [nid]


def test_our_own_alerts_stopped_toast_stays_until_connected_again(
    qtbot: QtBot, qapp: QApplication
) -> None:
    clock = Clock()
    policy = ToastPolicy(lambda: clock.settings, clock=clock)
    notifier = Notifier(None, policy=policy, timeout_ms=50)
    try:
        notifier.announcement(ann(1))
        settle(notifier)
        notifier.connection(ConnState.OFFLINE)
        settle(notifier)
        assert [w.title_label.text() for w in notifier.windows] == ["Title 1", "Not connected"]
        # the announcement's toast went after its 50 ms; the warning, shown with it, stays
        qtbot.waitUntil(lambda: len(notifier.windows) == 1)
        (warning,) = notifier.windows
        assert warning.isVisible() and warning.title_label.text() == "Not connected"
        notifier.connection(ConnState.CONNECTED)
        assert warning not in notifier.windows
        assert [w.title_label.text() for w in notifier.windows] == ["Connected again"]
    finally:
        notifier.close()


def test_a_summary_tells_every_announcement_it_counts(qtbot: QtBot, make_notifier: object) -> None:
    notifier: Notifier = make_notifier()  # type: ignore[operator]
    shown = Spy(notifier.shown)
    for n in range(6):
        notifier.announcement(ann(n))
    settle(notifier)
    assert shown.values == [tuple(str(n) for n in range(6))]


def test_a_catch_up_gives_one_summary(qtbot: QtBot, make_notifier: object) -> None:
    notifier: Notifier = make_notifier(settle=0.05, burst_window=0.1)  # type: ignore[operator]
    delivered = Spy(notifier.delivered)
    notifier.catch_up_started()
    for n in range(2500):
        notifier.announcement(ann(n))
        if n in (1000, 2000):  # pages: longer than the burst window apart
            settle(notifier, 0.15)
    assert delivered.calls == []
    notifier.catch_up_finished()
    assert [r.title for r in delivered.values] == ["2500 new announcements"]
    quiet_after(notifier, delivered)
