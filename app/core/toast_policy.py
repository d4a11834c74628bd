"""Which toasts pop up, and when: a pure decision object with injected clocks (no Qt, no I/O).

Rules:
- Do not disturb and quiet hours hold toasts back, except urgent ones; what was held back is
  summed up in one toast when they end ("5 new announcements").
- Announcements below the minimum priority never pop up (they are still in the history).
- A burst gives one summary: at most ``burst_limit`` single toasts within ``burst_window``
  seconds; more than that and the rest are gathered into one summary toast.
- Disconnected for longer than ``offline_after`` seconds: one toast; and one when back.

The caller feeds events in (:meth:`announcement`, :meth:`connection`) and calls :meth:`due`
regularly (a timer) or at :meth:`next_deadline`: both return the toasts to show now.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import time as dtime

from app.config import QuietHours
from app.core.model import Announcement, ConnState, Priority

_DISCONNECTED = frozenset({ConnState.CONNECTING, ConnState.OFFLINE, ConnState.ERROR})


class ToastKind(enum.StrEnum):
    ANNOUNCEMENT = "announcement"  # one announcement: its title and body
    SUMMARY = "summary"  # ``count`` new announcements
    OFFLINE = "offline"  # not connected for a while
    BACK_ONLINE = "back_online"  # connected again after an OFFLINE toast


@dataclass(frozen=True, slots=True)
class Toast:
    """A toast to show. The UI words it (translated); server text stays plain text."""

    kind: ToastKind
    announcement: Announcement | None = None
    count: int = 1

    @property
    def urgent(self) -> bool:
        return self.announcement is not None and self.announcement.priority is Priority.URGENT


@dataclass(frozen=True, slots=True)
class ToastSettings:
    do_not_disturb: bool = False
    quiet_hours: QuietHours | None = None
    min_priority: Priority = Priority.LOW


class ToastPolicy:
    """Decides which toasts to show. Not thread-safe: use it from one thread (the GUI's)."""

    def __init__(
        self,
        settings: ToastSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        local_time: Callable[[], dtime] = lambda: datetime.now().time(),
        burst_limit: int = 3,
        burst_window: float = 2.0,
        settle: float = 0.3,
        offline_after: float = 180.0,
    ) -> None:
        self.settings = settings or ToastSettings()
        self.clock = clock
        self._local_time = local_time
        self._burst_limit = burst_limit
        self._burst_window = burst_window
        self._settle = settle
        self._offline_after = offline_after
        self._pending: list[Announcement] = []  # waiting to settle (a burst may be arriving)
        self._first_pending = 0.0
        self._last_arrival = 0.0
        self._shown: deque[float] = deque()  # times of recent announcement toasts
        self._held = 0  # held back by DND / quiet hours
        self._offline_since: float | None = None
        self._offline_toasted = False

    # ------------------------------------------------------------------ inputs

    def quiet(self) -> bool:
        """True while do not disturb is on or the local time is within quiet hours."""
        qh = self.settings.quiet_hours
        return self.settings.do_not_disturb or (qh is not None and qh.contains(self._local_time()))

    def announcement(self, ann: Announcement) -> list[Toast]:
        """A new announcement arrived. Urgent ones are returned at once; others may wait
        ``settle`` seconds to see whether a burst is arriving (then :meth:`due` returns them)."""
        if ann.priority is Priority.URGENT:
            self._mark_shown()
            return [Toast(ToastKind.ANNOUNCEMENT, ann)]
        if ann.priority.rank < self.settings.min_priority.rank:
            return []
        if self.quiet():
            self._held += 1
            return []
        now = self.clock()
        if not self._pending:
            self._first_pending = now
        self._pending.append(ann)
        self._last_arrival = now
        return self.due()

    def connection(self, state: ConnState) -> list[Toast]:
        """The connection state changed."""
        if state in _DISCONNECTED:
            if self._offline_since is None:
                self._offline_since = self.clock()
            return self.due()
        was_toasted = self._offline_toasted
        self._offline_since = None
        self._offline_toasted = False
        if state is ConnState.CONNECTED and was_toasted:
            return [Toast(ToastKind.BACK_ONLINE)]
        return []

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """Clock time at which :meth:`due` will have something new to say, if any."""
        times = []
        if self._pending:
            times.append(self._flush_at())
        if self._offline_since is not None and not self._offline_toasted:
            times.append(self._offline_since + self._offline_after)
        return min(times) if times else None

    def due(self) -> list[Toast]:
        """The toasts to show now."""
        now = self.clock()
        out: list[Toast] = []
        if self._held and not self.quiet():
            out.append(Toast(ToastKind.SUMMARY, count=self._held))
            self._held = 0
        if self._pending and now >= self._flush_at():
            out.extend(self._flush())
        if (
            self._offline_since is not None
            and not self._offline_toasted
            and now - self._offline_since >= self._offline_after
        ):
            self._offline_toasted = True
            out.append(Toast(ToastKind.OFFLINE))
        return out

    def _recent(self) -> int:
        """Announcement toasts shown within the burst window."""
        now = self.clock()
        while self._shown and now - self._shown[0] > self._burst_window:
            self._shown.popleft()
        return len(self._shown)

    def _over_limit(self) -> bool:
        return self._recent() + len(self._pending) > self._burst_limit

    def _flush_at(self) -> float:
        """When the pending announcements are shown: once they settle; in a burst (over the
        limit) only when the burst window of the first one is over, gathering the rest."""
        window_end = self._first_pending + self._burst_window
        if self._over_limit():
            return window_end
        return min(window_end, self._last_arrival + self._settle)

    def _flush(self) -> list[Toast]:
        summary = self._over_limit() and len(self._pending) > 1
        pending, self._pending = self._pending, []
        if summary:
            self._mark_shown()
            return [Toast(ToastKind.SUMMARY, count=len(pending))]
        for _ in pending:
            self._mark_shown()
        return [Toast(ToastKind.ANNOUNCEMENT, a) for a in pending]

    def _mark_shown(self) -> None:
        self._shown.append(self.clock())
