"""WakeMonitor's sleep detection: a timerfd watched by a socket notifier on Linux (no timer, so
no wake-up while idle), the clock-comparison timer elsewhere. The clock is never set here: the
cancelled read is fed through the seams (``ClockChangeFd.read``, ``clock_was_set``)."""

from __future__ import annotations

import errno
import os
import sys

import pytest
from PySide6.QtCore import QCoreApplication, QSocketNotifier, QTimer
from pytestqt.qtbot import QtBot

from app.ui import wake
from app.ui.wake import ClockChangeFd, WakeMonitor

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
    notifiers = monitor.findChildren(QSocketNotifier)
    assert len(notifiers) == 1 and notifiers[0].isEnabled()
    assert monitor.findChildren(QTimer) == []  # not even an inactive one
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

    monkeypatch.setattr(wake.os, "read", cancelled)
    assert fd.read() is True
    assert len(armed) == 1
    assert armed[0] > 2_000_000_000 or armed == [2**31 - 1]

    def expired(_fd: int, _n: int) -> bytes:
        return (1).to_bytes(8, sys.byteorder)

    monkeypatch.setattr(wake.os, "read", expired)
    assert fd.read() is False  # the far expiry came: re-armed, not a clock change
    assert len(armed) == 2

    def broken(_fd: int, _n: int) -> bytes:
        raise OSError(errno.EBADF, "bad")

    monkeypatch.setattr(wake.os, "read", broken)
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
