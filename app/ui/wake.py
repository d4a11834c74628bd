"""Reconnect at once after a sleep or when the network comes back.

On Linux, sleep is seen without polling: a ``timerfd`` on ``CLOCK_REALTIME``, armed far in the
future with ``TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET``, is cancelled by the kernel when the
wall clock is set discontinuously, which includes its step on resume from suspend; its read then
fails with ``ECANCELED``. A :class:`QSocketNotifier` watches it, so the event loop wakes only when
that happens (no wake-up while idle). The clocks then tell a resume (``CLOCK_BOOTTIME`` moved
ahead of the monotonic clock, or the wall clock jumped) from a small clock correction.

Elsewhere (Windows, macOS, a Linux without ``timerfd``), a 10 s timer compares the wall clock
with the monotonic clock, which stops while the machine sleeps: a jump means a resume.

Network changes: on Linux, the kernel's routing messages (:mod:`app.core.routes`, a netlink
socket watched by a :class:`QSocketNotifier`): once they settle, the default routes are read
again, and a way out that appears (or replaces the one there was) means reconnect now.
Elsewhere, ``QNetworkInformation`` when one of its backends loads on this system (on Linux its
GLib backend would load GIO and start a GLib thread, for the same news).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal

from app.core.routes import RouteSocket, came_back, default_routes

if TYPE_CHECKING:
    from PySide6.QtNetwork import QNetworkInformation

log = logging.getLogger(__name__)

_CLOCK_REALTIME = 0
_TFD_NONBLOCK = 0o4000  # = O_NONBLOCK
_TFD_CLOEXEC = 0o2000000  # = O_CLOEXEC
_TFD_TIMER_ABSTIME = 1
_TFD_TIMER_CANCEL_ON_SET = 2
_SLEPT = 1.0  # CLOCK_BOOTTIME ahead of the monotonic clock by more than this: a suspend
ROUTES_SETTLE_MS = 500  # a network change is a burst of route messages: read the routes after


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class ClockChangeFd:
    """A Linux ``timerfd`` that becomes readable when the wall clock is set (or resumes).

    Uses ``os.timerfd_*`` when Python has them (3.13+), else libc through ctypes.
    :meth:`open` returns None where neither works.
    """

    def __init__(self, fd: int, settime: Callable[[int, int], None]) -> None:
        self.fd = fd
        self._settime = settime  # (fd, absolute expiry in seconds since the epoch)

    @classmethod
    def open(cls, platform: str = sys.platform) -> ClockChangeFd | None:
        if not platform.startswith("linux"):
            return None
        try:
            if hasattr(os, "timerfd_create"):
                return cls._open_os()
            return cls._open_libc()
        except (OSError, AttributeError) as e:  # no timerfd here (old kernel, seccomp, no libc)
            log.info("no timerfd for clock changes (%s)", e)
            return None

    @classmethod
    def _open_os(cls) -> ClockChangeFd:
        tfd = os  # Python 3.13+: os.timerfd_create, os.timerfd_settime
        fd: int = tfd.timerfd_create(  # type: ignore[attr-defined,unused-ignore]
            _CLOCK_REALTIME, flags=_TFD_NONBLOCK | _TFD_CLOEXEC
        )

        def settime(fd: int, at: int) -> None:
            tfd.timerfd_settime(  # type: ignore[attr-defined,unused-ignore]
                fd, flags=_TFD_TIMER_ABSTIME | _TFD_TIMER_CANCEL_ON_SET, initial=float(at)
            )

        return cls._armed(fd, settime)

    @classmethod
    def _open_libc(cls) -> ClockChangeFd:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        create, set_ = libc.timerfd_create, libc.timerfd_settime
        create.argtypes, create.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
        set_.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.POINTER(_Itimerspec),
        ]
        set_.restype = ctypes.c_int
        fd = create(_CLOCK_REALTIME, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

        def settime(fd: int, at: int) -> None:
            spec = _Itimerspec(it_value=_Timespec(tv_sec=at, tv_nsec=0))
            if set_(fd, _TFD_TIMER_ABSTIME | _TFD_TIMER_CANCEL_ON_SET, spec, None) < 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))

        return cls._armed(fd, settime)

    @classmethod
    def _armed(cls, fd: int, settime: Callable[[int, int], None]) -> ClockChangeFd:
        made = cls(fd, settime)
        try:
            made.arm()
        except OSError:
            os.close(fd)
            raise
        return made

    def arm(self) -> None:
        """(Re-)arm far in the future; needed again after each cancellation."""
        # 100 years on (a 64-bit time_t), else the last second a 32-bit time_t holds
        wide = ctypes.sizeof(ctypes.c_long) >= 8
        far = int(time.time()) + 100 * 365 * 86400 if wide else 2**31 - 1
        self._settime(self.fd, far)

    def read(self) -> bool:
        """Drain the fd: True when the clock was set (the read failed with ECANCELED), False
        when nothing was pending or the far expiry passed. Re-arms in both of those cases."""
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            return False
        except OSError as e:
            if e.errno != errno.ECANCELED:
                raise
            self.arm()
            return True
        self.arm()  # the far-future expiry itself came (or the clock was set past it)
        return False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class WakeMonitor(QObject):
    """Watches for resume from sleep and for the network coming back.

    Signals (GUI thread):
        wokeUp(): the machine resumed from sleep, or the network is reachable again.

    ``mechanism`` says how sleep is seen: ``"timerfd"`` (no wake-up while idle) or ``"timer"``
    (a clock comparison every ``interval_ms``). ``boot`` is a clock that runs during a suspend
    (``CLOCK_BOOTTIME`` by default, with the real monotonic clock). ``clock_change_fd`` opens
    the timerfd (a seam for tests; return None to get the timer). ``route_socket`` opens the
    kernel's route messages and ``routes`` reads the default routes (Linux; seams for tests:
    ``route_socket`` returning None means ``QNetworkInformation``), watched from ``start()``
    to ``stop()``.
    """

    wokeUp = Signal()

    def __init__(
        self,
        *,
        interval_ms: int = 10_000,
        jump: float = 30.0,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        boot: Callable[[], float] | None = None,
        clock_change_fd: Callable[[], ClockChangeFd | None] = ClockChangeFd.open,
        route_socket: Callable[[], RouteSocket | None] = RouteSocket.open,
        routes: Callable[[], frozenset[str]] = default_routes,
        routes_settle_ms: int = ROUTES_SETTLE_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if boot is None and mono is time.monotonic and hasattr(time, "CLOCK_BOOTTIME"):
            boot = _boottime  # Linux: counts the time asleep, the monotonic clock does not
        self._wall, self._mono, self._boot, self._jump = wall, mono, boot, jump
        self._interval_ms = interval_ms
        self._offset, self._slept = self._offsets()
        self._open_fd = clock_change_fd
        self._fd: ClockChangeFd | None = None
        self._notifier: QSocketNotifier | None = None
        self._timer: QTimer | None = None
        self.mechanism = "timerfd" if self._open_notifier() else "timer"
        if self.mechanism == "timer":
            self._timer = QTimer(self, interval=interval_ms)
            self._timer.timeout.connect(self.check)
        log.info("sleep detection: %s", self.mechanism)
        self._open_routes, self._read_routes = route_socket, routes
        self._routes: frozenset[str] = frozenset()
        self._route_socket: RouteSocket | None = None
        self._route_notifier: QSocketNotifier | None = None
        self._routes_settle_ms = routes_settle_ms
        self._routes_settled: QTimer | None = None  # made when the routes are watched
        self._reachable: QNetworkInformation.Reachability | None = None
        self._network: QNetworkInformation | None = None
        self.network = ""  # how network changes are seen: "routes", "qt", or "" (they are not)

    def start(self) -> None:
        self._offset, self._slept = self._offsets()
        if self._notifier is None and self.mechanism == "timerfd":
            self._open_notifier()
        if self._notifier is not None:
            self._notifier.setEnabled(True)
        elif self._timer is not None:
            self._timer.start()
        if not self.network:
            self._watch_network()

    def stop(self) -> None:
        """Stop watching; the timerfd and the route socket are closed (``start`` opens new
        ones)."""
        if self._timer is not None:
            self._timer.stop()
        self._close_notifier()
        if self._routes_settled is not None:
            self._routes_settled.stop()
        if self._route_notifier is not None:
            self._route_notifier.setEnabled(False)
            self._route_notifier.deleteLater()
            self._route_notifier = None
        if self._route_socket is not None:
            self._route_socket.close()
            self._route_socket = None
        if self.network == "routes":
            self.network = ""

    def check(self) -> bool:
        """Compare the clocks; emit wokeUp (and return True) after a jump or a suspend."""
        offset, slept = self._offsets()
        jumped = abs(offset - self._offset) > self._jump or slept - self._slept > _SLEPT
        self._offset, self._slept = offset, slept
        if jumped:
            log.info("clock jumped (resume from sleep?): reconnecting now")
            self.wokeUp.emit()
        return jumped

    def clock_was_set(self) -> bool:
        """The timerfd was cancelled (the wall clock was set, or the machine resumed): it is
        re-armed already; reconnect when the clocks show a suspend or a big jump."""
        if not self.check():
            log.info("wall clock set, no sleep seen: staying connected")
            return False
        return True

    def _offsets(self) -> tuple[float, float]:
        mono = self._mono()
        return self._wall() - mono, (self._boot() - mono) if self._boot is not None else 0.0

    def _open_notifier(self) -> bool:
        fd = self._open_fd()
        if fd is None:
            return False
        self._fd = fd
        self._notifier = QSocketNotifier(fd.fd, QSocketNotifier.Type.Read, self)
        self._notifier.setEnabled(False)  # until start()
        self._notifier.activated.connect(self._readable)
        return True

    def _close_notifier(self) -> None:
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._fd is not None:
            self._fd.close()
            self._fd = None

    def _readable(self) -> None:
        if self._fd is None:
            return
        try:
            cancelled = self._fd.read()
        except OSError as e:  # not expected: fall back to the clock comparison timer
            log.warning("timerfd read failed (%s): checking the clock every %d ms instead", e,
                        self._interval_ms)  # fmt: skip
            self._close_notifier()
            self.mechanism = "timer"
            self._timer = QTimer(self, interval=self._interval_ms)
            self._timer.timeout.connect(self.check)
            self._timer.start()
            return
        if cancelled:
            self.clock_was_set()

    def _watch_network(self) -> None:
        sock = self._open_routes()
        if sock is not None:
            self._route_socket = sock
            self._routes = self._read_routes()
            self._route_notifier = QSocketNotifier(sock.fileno(), QSocketNotifier.Type.Read, self)
            self._route_notifier.activated.connect(self._route_messages)
            if self._routes_settled is None:
                self._routes_settled = QTimer(
                    self, singleShot=True, interval=self._routes_settle_ms
                )
                self._routes_settled.timeout.connect(self._routes_changed)
            self.network = "routes"
            log.info("network changes: the kernel's route messages (default routes %s)",
                     ", ".join(sorted(self._routes)) or "none")  # fmt: skip
            return
        if self._network is None:
            self._network = self._load_network_information()
        self.network = "qt" if self._network is not None else ""

    def _route_messages(self) -> None:
        if self._route_socket is not None and self._routes_settled is not None:
            self._route_socket.drain()
            self._routes_settled.start()  # again: read the routes once the burst is over

    def _routes_changed(self) -> None:
        before, self._routes = self._routes, self._read_routes()
        if came_back(before, self._routes):
            now = ", ".join(sorted(self._routes))
            log.info("network changed (default routes %s, were %s): reconnecting now",
                     now, ", ".join(sorted(before)) or "none")  # fmt: skip
            self.wokeUp.emit()

    def _load_network_information(self) -> QNetworkInformation | None:
        from PySide6.QtNetwork import QNetworkInformation

        if not QNetworkInformation.loadBackendByFeatures(QNetworkInformation.Feature.Reachability):
            log.info("no network information backend here: reconnect on wake only")
            return None
        info = QNetworkInformation.instance()
        if info is None:
            return None
        self._reachable = info.reachability()
        info.reachabilityChanged.connect(self._reachability_changed)
        log.info("network information backend: %s", info.backendName())
        return info

    def _reachability_changed(self, reachability: QNetworkInformation.Reachability) -> None:
        from PySide6.QtNetwork import QNetworkInformation

        was = self._reachable
        self._reachable = reachability
        online = reachability in (
            QNetworkInformation.Reachability.Online,
            QNetworkInformation.Reachability.Site,
        )
        if online and was != reachability:
            log.info("network reachable again (%s): reconnecting now", reachability.name)
            self.wokeUp.emit()
