"""WakeMonitor's sleep detection: a timerfd watched by a socket notifier on Linux (no timer, so
no wake-up while idle), the clock-comparison timer elsewhere. The clock is never set here: the
cancelled read is fed through the seams (``ClockChangeFd.read``, ``clock_was_set``)."""

from __future__ import annotations

import errno
import os
import socket
import sys
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QCoreApplication, QSocketNotifier, QTimer
from pytestqt.qtbot import QtBot

from app.core.routes import RouteSocket
from app.ui.wake import ClockChangeFd, WakeMonitor
from tests.fixtures.qt import Spy

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="timerfd is Linux")


def active_timers(monitor: WakeMonitor) -> list[QTimer]:
    return [t for t in monitor.findChildren(QTimer) if t.isActive()]


class Clocks:
    def __init__(self) -> None:
        self.wall, self.mono, self.boot = 1000.0, 50.0, 60.0

    def monitor(self, **options: object) -> WakeMonitor:
        return WakeMonitor(
            wall=lambda: self.wall,
            mono=lambda: self.mono,
            boot=lambda: self.boot,
            **options,  # type: ignore[arg-type]
        )

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds
        self.boot += seconds

    def sleep(self, seconds: float) -> None:  # the monotonic clock stops while asleep
        self.wall += seconds
        self.boot += seconds


@linux_only
def test_linux_uses_a_timerfd_and_no_timer_while_idle(qtbot: QtBot) -> None:
    monitor = WakeMonitor()
    assert monitor.mechanism == "timerfd"
    monitor.start()
    assert monitor.network == "routes"
    notifiers = monitor.findChildren(QSocketNotifier)  # the timerfd's and the route socket's
    assert len(notifiers) == 2 and all(n.isEnabled() for n in notifiers)
    assert not any(t.isActive() for t in monitor.findChildren(QTimer))  # all single-shot, idle
    QCoreApplication.processEvents()  # idle: nothing pending on the fd, no timer started
    assert active_timers(monitor) == []
    assert monitor._fd is not None and monitor._fd.read() is False  # nothing to read
    fd = monitor._fd.fd
    monitor.stop()
    assert monitor._fd is None
    with pytest.raises(OSError):
        os.fstat(fd)  # closed at stop
    monitor.start()  # a new one
    assert monitor._fd is not None and monitor._notifier is not None
    monitor.stop()


@linux_only
def test_the_real_timerfd_is_armed_cancel_on_set() -> None:
    fd = ClockChangeFd.open()
    assert fd is not None
    try:
        fd.arm()  # re-arming works any number of times
        assert fd.read() is False
    finally:
        fd.close()


def test_a_cancelled_read_rearms_and_reports_a_clock_change(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    armed: list[int] = []
    fd = ClockChangeFd(-1, lambda _fd, at: armed.append(at))

    def cancelled(_fd: int, _n: int) -> bytes:
        raise OSError(errno.ECANCELED, os.strerror(errno.ECANCELED))

    monkeypatch.setattr(os, "read", cancelled)
    assert fd.read() is True
    assert len(armed) == 1
    assert armed[0] > 2_000_000_000 or armed == [2**31 - 1]

    def expired(_fd: int, _n: int) -> bytes:
        return (1).to_bytes(8, sys.byteorder)

    monkeypatch.setattr(os, "read", expired)
    assert fd.read() is False  # the far expiry came: re-armed, not a clock change
    assert len(armed) == 2

    def broken(_fd: int, _n: int) -> bytes:
        raise OSError(errno.EBADF, "bad")

    monkeypatch.setattr(os, "read", broken)
    with pytest.raises(OSError):
        fd.read()


def test_clock_set_after_a_suspend_wakes_up(qtbot: QtBot) -> None:
    clocks = Clocks()
    monitor = clocks.monitor(clock_change_fd=lambda: None)
    clocks.sleep(5)  # a short suspend: the old 30 s wall-clock threshold missed it
    with qtbot.waitSignal(monitor.wokeUp, timeout=1000):
        assert monitor.clock_was_set()
    clocks.run(10)
    assert not monitor.check()


def test_small_clock_correction_without_sleep_stays_connected(qtbot: QtBot) -> None:
    clocks = Clocks()
    monitor = clocks.monitor(clock_change_fd=lambda: None)
    clocks.wall += 2  # NTP stepped the clock by 2 s
    with qtbot.assertNotEmitted(monitor.wokeUp):
        assert not monitor.clock_was_set()
    clocks.wall += 3600  # someone set the clock an hour on: reconnect, as before
    with qtbot.waitSignal(monitor.wokeUp, timeout=1000):
        assert monitor.clock_was_set()


def test_cancelled_timerfd_through_the_notifier_slot(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    clocks = Clocks()
    reader, writer = os.pipe()
    armed: list[int] = []
    fake = ClockChangeFd(reader, lambda _fd, at: armed.append(at))
    monitor = clocks.monitor(clock_change_fd=lambda: fake)
    assert monitor.mechanism == "timerfd"
    monitor.start()
    monkeypatch.setattr(fake, "read", lambda: True)  # as a timerfd read failing with ECANCELED
    clocks.sleep(120)
    with qtbot.waitSignal(monitor.wokeUp, timeout=1000):
        os.write(writer, b"x")  # readable: the notifier's slot reads it
    monitor.stop()
    os.close(writer)


def test_unexpected_read_error_falls_back_to_the_timer(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader, writer = os.pipe()
    fake = ClockChangeFd(reader, lambda _fd, _at: None)
    monitor = Clocks().monitor(clock_change_fd=lambda: fake)
    monitor.start()

    def broken() -> bool:
        raise OSError(errno.EIO, "io")

    monkeypatch.setattr(fake, "read", broken)
    os.write(writer, b"x")
    qtbot.waitUntil(lambda: monitor.mechanism == "timer", timeout=1000)
    assert len(active_timers(monitor)) == 1
    monitor.stop()
    assert active_timers(monitor) == []
    os.close(writer)


def test_no_timerfd_falls_back_to_the_clock_timer(qtbot: QtBot) -> None:
    clocks = Clocks()
    monitor = clocks.monitor(clock_change_fd=lambda: None, interval_ms=10_000)
    assert monitor.mechanism == "timer"
    assert monitor.findChildren(QSocketNotifier) == []
    monitor.start()
    timers = active_timers(monitor)
    assert len(timers) == 1 and timers[0].interval() == 10_000
    clocks.sleep(3600)
    with qtbot.waitSignal(monitor.wokeUp, timeout=1000):
        assert monitor.check()
    monitor.stop()
    assert active_timers(monitor) == []


@pytest.mark.parametrize("platform", ["win32", "darwin", "cygwin"])
def test_other_platforms_have_no_timerfd(platform: str) -> None:
    assert ClockChangeFd.open(platform) is None


def test_linux_without_timerfd_gets_none(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*_a: object, **_k: object) -> ClockChangeFd:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(ClockChangeFd, "_open_os", classmethod(missing))
    monkeypatch.setattr(ClockChangeFd, "_open_libc", classmethod(missing))
    assert ClockChangeFd.open("linux") is None


# ---------------------------------------------------------------------- network changes


class Routes:
    """The default routes the monitor reads, set by the test; the kernel's messages come on a
    socket pair (what a netlink socket gives is only read and dropped)."""

    def __init__(self) -> None:
        self.now: frozenset[str] = frozenset({"wlan0"})
        self.reads = 0
        self.opened: list[tuple[socket.socket, RouteSocket]] = []

    def open(self) -> RouteSocket:
        kernel, theirs = socket.socketpair()
        theirs.setblocking(False)
        self.opened.append((kernel, RouteSocket(theirs)))
        return self.opened[-1][1]

    def read(self) -> frozenset[str]:
        self.reads += 1
        return self.now

    def change(self, *interfaces: str, messages: int = 3) -> None:
        self.now = frozenset(interfaces)
        kernel = self.opened[-1][0]
        for _ in range(messages):  # a change is a burst of messages
            kernel.send(b"RTM_NEWROUTE")

    def close(self) -> None:
        for kernel, ours in self.opened:
            kernel.close()
            ours.close()


@pytest.fixture
def routes() -> Iterator[Routes]:
    r = Routes()
    yield r
    r.close()


def route_monitor(routes: Routes) -> WakeMonitor:
    return WakeMonitor(
        clock_change_fd=lambda: None, route_socket=routes.open, routes=routes.read,
        routes_settle_ms=20,
    )  # fmt: skip


def test_back_online_or_on_another_network_reconnects_once_per_burst(
    qtbot: QtBot, routes: Routes
) -> None:
    monitor = route_monitor(routes)
    monitor.start()
    assert monitor.network == "routes" and routes.reads == 1
    woke = Spy(monitor.wokeUp)
    routes.change()  # offline: nothing to reconnect to
    qtbot.waitUntil(lambda: routes.reads == 2, timeout=5000)
    routes.change("eth0")  # back, by cable
    qtbot.waitUntil(lambda: len(woke.calls) == 1, timeout=5000)
    assert routes.reads == 3  # the burst read the routes once
    routes.change("eth0", "wlan0")  # Wi-Fi joins beside: the stream stays
    qtbot.waitUntil(lambda: routes.reads == 4, timeout=5000)
    routes.change("wlan0")  # the cable is pulled: the stream moves to Wi-Fi
    qtbot.waitUntil(lambda: len(woke.calls) == 2, timeout=5000)
    monitor.stop()


def test_stop_closes_the_route_socket_and_start_opens_one(qtbot: QtBot, routes: Routes) -> None:
    monitor = route_monitor(routes)
    monitor.start()
    ours = routes.opened[0][1]
    monitor.stop()
    assert monitor.network == ""
    with pytest.raises(OSError):
        os.fstat(ours.fileno())  # closed (-1)
    monitor.start()
    assert monitor.network == "routes" and len(routes.opened) == 2
    woke = Spy(monitor.wokeUp)
    routes.change("eth0")  # on the new socket
    qtbot.waitUntil(lambda: len(woke.calls) == 1, timeout=5000)
    monitor.stop()


def test_without_a_route_socket_qt_network_information_is_asked(qtbot: QtBot) -> None:
    monitor = WakeMonitor(clock_change_fd=lambda: None, route_socket=lambda: None)
    monitor.start()
    assert monitor.network in ("qt", "")  # "" where no backend loads
    monitor.stop()
