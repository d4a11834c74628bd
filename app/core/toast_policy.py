"""Which toasts pop up, and when: a pure decision object with injected clocks (no Qt, no I/O).

Rules:
- Do not disturb and quiet hours hold toasts back, except urgent ones; what was held back is
  summed up in one toast when they end ("5 new announcements").
- Announcements below the minimum priority never pop up (they are still in the history).
- A burst gives one summary: at most ``burst_limit`` single toasts within ``burst_window``
  seconds; more than that and the rest are gathered into one summary toast.
- A catch-up (the replay after a long absence, in pages, or what a crash left untold) gives
  one summary for the whole of it: between :meth:`catch_up_started` and
  :meth:`catch_up_finished` announcements are gathered, then shown as one summary (more than
  ``burst_limit``) or as single toasts (a few). A catch-up that never says it finished ends
  ``catch_up_idle`` seconds after its last announcement (a backend without ``sync``).
- Disconnected for longer than ``offline_after`` seconds: one toast ("alerts stopped",
  critical: it stays until the connection is back, :meth:`alerts_stopped_since` says since
  when); and one when back.
- Urgency (the freedesktop byte, :attr:`Toast.urgency`): low announcements 0, normal and high
  ones 1, urgent ones and the "alerts stopped" warning 2 (critical: no expiry).

The caller feeds events in (:meth:`announcement`, :meth:`connection`) and calls :meth:`due`
regularly (a timer) or at :meth:`next_deadline`: both return the toasts to show now. The
quiet hours' start and end are deadlines too (what they held is summed up when they end, and
:meth:`hold` changes then).

What counts as told ("shown" in the history): each toast carries the ids it covers
(``Toast.ids``: its announcement, or every announcement a summary counts); announcements below
the minimum priority are settled without a toast, on purpose (:meth:`take_skipped`). Held back
by do not disturb or quiet hours is NOT told yet: the summary at their end tells it.
"""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import time as dtime

from app.core.config import Config
from app.core.model import Announcement, ConnState, Priority

_DISCONNECTED = frozenset({ConnState.CONNECTING, ConnState.OFFLINE, ConnState.ERROR})
_DAY = 24 * 3600.0


class Urgency(enum.IntEnum):
    """The freedesktop notification urgency byte."""

    LOW = 0
    NORMAL = 1
    CRITICAL = 2  # stays on screen until dismissed (no expiry)


class HoldReason(enum.StrEnum):
    DO_NOT_DISTURB = "do_not_disturb"
    QUIET_HOURS = "quiet_hours"


@dataclass(frozen=True, slots=True)
class Hold:
    """Toasts are being held back (all but urgent ones): why, and until when (quiet hours:
    their end, local time; do not disturb: None, until it is switched off)."""

    reason: HoldReason
    until: dtime | None = None


class ToastKind(enum.StrEnum):
    ANNOUNCEMENT = "announcement"  # one announcement: its title and body
    UPDATE = "update"  # one announcement corrected by its publisher ("Updated: title")
    REMINDER = "reminder"  # one announcement its publisher reminds of ("Reminder: title")
    SUMMARY = "summary"  # ``count`` new announcements
    OFFLINE = "offline"  # not connected for a while
    BACK_ONLINE = "back_online"  # connected again after an OFFLINE toast


@dataclass(frozen=True, slots=True)
class Toast:
    """A toast to show. The UI words it (translated); server text stays plain text."""

    kind: ToastKind
    announcement: Announcement | None = None
    count: int = 1
    # the announcements this toast tells (a summary: all it counts); not part of equality
    ids: tuple[str, ...] = field(default=(), compare=False)

    @property
    def urgent(self) -> bool:
        return self.announcement is not None and self.announcement.priority is Priority.URGENT

    @property
    def urgency(self) -> Urgency:
        """How urgent the notification is: critical ones (urgent announcements, "alerts
        stopped") stay until dismissed or no longer true."""
        if self.kind is ToastKind.OFFLINE:
            return Urgency.CRITICAL
        if self.announcement is None:
            return Urgency.NORMAL
        priority = self.announcement.priority
        if priority is Priority.URGENT:
            return Urgency.CRITICAL
        return Urgency.LOW if priority is Priority.LOW else Urgency.NORMAL

    @property
    def critical(self) -> bool:
        return self.urgency is Urgency.CRITICAL


class ToastPolicy:
    """Decides which toasts to show. Not thread-safe: use it from one thread (the GUI's).

    ``settings`` gives the current settings each time a rule needs them (do not disturb, quiet
    hours, the minimum priority): the policy keeps no copy. After they change, call :meth:`due`
    (what was held back may go now).

    ``settle`` is how long a non-urgent announcement waits for more arrivals (a burst gives one
    summary); None (the default) reads the ``toast_settle_ms`` setting each time. Urgent
    announcements never wait.
    """

    def __init__(
        self,
        settings: Callable[[], Config] = Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        local_time: Callable[[], dtime] = lambda: datetime.now().time(),
        wall: Callable[[], datetime] = datetime.now,
        burst_limit: int = 3,
        burst_window: float = 2.0,
        settle: float | None = None,
        offline_after: float = 180.0,
        catch_up_idle: float = 5.0,
    ) -> None:
        self._settings = settings
        self.clock = clock
        self._local_time = local_time
        self._wall = wall
        self._burst_limit = burst_limit
        self._burst_window = burst_window
        self._settle = settle
        self._offline_after = offline_after
        self._catch_up_idle = catch_up_idle
        # waiting to settle (a burst may be arriving), each with what its toast says
        self._pending: list[tuple[Announcement, ToastKind]] = []
        self._first_pending = 0.0
        self._last_arrival = 0.0
        self._shown: deque[float] = deque()  # times of recent announcement toasts
        self._held: list[str] = []  # ids held back by DND / quiet hours
        self._skipped: list[str] = []  # ids below the minimum priority: settled, no toast
        self._catch_ups = 0  # open catch-ups (they may nest: a restart's and the stream's)
        self._gathered: list[tuple[Announcement, ToastKind]] = []  # arrived during the catch-up
        self._gather_until = 0.0  # a catch-up that does not finish ends then
        self._offline_since: float | None = None
        self._offline_since_wall: datetime | None = None  # the same moment, local time
        self._offline_toasted = False

    # ------------------------------------------------------------------ inputs

    def quiet(self) -> bool:
        """True while do not disturb is on or the local time is within quiet hours."""
        return self.hold() is not None

    def hold(self) -> Hold | None:
        """Why toasts are held back now (all but urgent ones), or None when they are not."""
        settings = self._settings()
        if settings.do_not_disturb:
            return Hold(HoldReason.DO_NOT_DISTURB)
        qh = settings.quiet_hours
        if qh is not None and qh.contains(self._local_time()):
            return Hold(HoldReason.QUIET_HOURS, qh.end)
        return None

    def alerts_stopped_since(self) -> datetime | None:
        """While the "alerts stopped" warning holds (disconnected for longer than
        ``offline_after``, until connected again): when the disconnection began (local
        time). None otherwise."""
        return self._offline_since_wall if self._offline_toasted else None

    def settle_seconds(self) -> float:
        """The burst-settle delay now: the one given, else the ``toast_settle_ms`` setting."""
        if self._settle is not None:
            return self._settle
        return self._settings().toast_settle_ms / 1000

    def announcement(
        self, ann: Announcement, kind: ToastKind = ToastKind.ANNOUNCEMENT
    ) -> list[Toast]:
        """A new announcement arrived (``kind``: or one was corrected, ``UPDATE``, or is
        reminded of, ``REMINDER``: the same rules). Urgent ones are returned at once; others
        may wait the settle delay (``toast_settle_ms``) to see whether a burst is arriving
        (then :meth:`due` returns them). A correction or a reminder of one still waiting (a
        burst, a catch-up) joins it: one toast for it, with its newest text."""
        if ann.priority is Priority.URGENT:
            self._mark_shown()
            return [Toast(kind, ann, ids=(ann.id,))]
        if ann.priority.rank < self._settings().toast_min_priority.rank:
            self._skipped.append(ann.id)
            return []
        if self.quiet():
            if ann.id not in self._held:  # corrected or reminded while held: counted once
                self._held.append(ann.id)
            return []
        now = self.clock()
        if self._catch_ups:
            if not _join(self._gathered, ann, kind):
                self._gathered.append((ann, kind))
            self._gather_until = now + self._catch_up_idle
            return self.due()
        if _join(self._pending, ann, kind):
            return self.due()
        if not self._pending:
            self._first_pending = now
        self._pending.append((ann, kind))
        self._last_arrival = now
        return self.due()

    def catch_up_started(self) -> list[Toast]:
        """A catch-up begins: gather what arrives until :meth:`catch_up_finished`."""
        if not self._catch_ups:
            self._gather_until = self.clock() + self._catch_up_idle
        self._catch_ups += 1
        return []

    def catch_up_finished(self) -> list[Toast]:
        """The catch-up is over (the last page arrived): one summary, or a few single toasts."""
        if self._catch_ups == 0:
            return []
        self._catch_ups -= 1
        if self._catch_ups:
            return []
        return self._end_catch_up()

    def _end_catch_up(self) -> list[Toast]:
        self._catch_ups = 0
        gathered, self._gathered = self._gathered, []
        if len(gathered) > self._burst_limit:
            self._mark_shown()
            return [self._summary(gathered), *self.due()]
        now = self.clock()
        for item in gathered:  # a few: as if they had just arrived
            if _join(self._pending, *item):
                continue
            if not self._pending:
                self._first_pending = now
            self._pending.append(item)
            self._last_arrival = now
        return self.due()

    def take_skipped(self) -> list[str]:
        """Ids settled without a toast on purpose (below the minimum priority) since the last
        call: told, as far as the history is concerned."""
        skipped, self._skipped = self._skipped, []
        return skipped

    def connection(self, state: ConnState) -> list[Toast]:
        """The connection state changed."""
        if state in _DISCONNECTED:
            if self._offline_since is None:
                self._offline_since = self.clock()
                self._offline_since_wall = self._wall()
            return self.due()
        was_toasted = self._offline_toasted
        self._offline_since = self._offline_since_wall = None
        self._offline_toasted = False
        if state is ConnState.CONNECTED and was_toasted:
            return [Toast(ToastKind.BACK_ONLINE)]
        return []

    # ------------------------------------------------------------------ time

    def next_deadline(self) -> float | None:
        """Clock time at which :meth:`due` will have something new to say, if any."""
        times = []
        if self._catch_ups:
            times.append(self._gather_until)
        if self._pending:
            times.append(self._flush_at())
        if self._offline_since is not None and not self._offline_toasted:
            times.append(self._offline_since + self._offline_after)
        boundary = self._quiet_boundary()
        if boundary is not None:
            times.append(boundary)
        return min(times) if times else None

    def _quiet_boundary(self) -> float | None:
        """Clock time of the next start or end of the quiet hours (None without them)."""
        qh = self._settings().quiet_hours
        if qh is None or qh.start == qh.end:
            return None
        now = self._local_time()
        return self.clock() + min(_seconds_until(now, qh.start), _seconds_until(now, qh.end))

    def due(self) -> list[Toast]:
        """The toasts to show now."""
        now = self.clock()
        out: list[Toast] = []
        if self._catch_ups and now >= self._gather_until:
            return self._end_catch_up()  # it never said it finished: end it now
        if self._held and not self.quiet():
            held, self._held = self._held, []
            out.append(Toast(ToastKind.SUMMARY, count=len(held), ids=tuple(held)))
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
        return min(window_end, self._last_arrival + self.settle_seconds())

    def _flush(self) -> list[Toast]:
        summary = self._over_limit() and len(self._pending) > 1
        pending, self._pending = self._pending, []
        if summary:
            self._mark_shown()
            return [self._summary(pending)]
        for _ in pending:
            self._mark_shown()
        return [Toast(kind, a, ids=(a.id,)) for a, kind in pending]

    @staticmethod
    def _summary(items: list[tuple[Announcement, ToastKind]]) -> Toast:
        return Toast(ToastKind.SUMMARY, count=len(items), ids=tuple(a.id for a, _ in items))

    def _mark_shown(self) -> None:
        self._shown.append(self.clock())


# when one announcement waits twice (it arrived, then was corrected or reminded of), its one
# toast says the first of these that applies: new beats corrected beats reminded
_STRONGER = {ToastKind.ANNOUNCEMENT: 0, ToastKind.UPDATE: 1, ToastKind.REMINDER: 2}


def _join(
    waiting: list[tuple[Announcement, ToastKind]], ann: Announcement, kind: ToastKind
) -> bool:
    """Fold ``ann`` into the toast already waiting for its id, if any (its newest text, the
    stronger kind); False when none waits."""
    for n, (other, other_kind) in enumerate(waiting):
        if other.id == ann.id and not ann.anonymous:
            stronger = min(other_kind, kind, key=_STRONGER.__getitem__)
            waiting[n] = (ann, stronger)
            return True
    return False


def _seconds_until(now: dtime, then: dtime) -> float:
    """Seconds from the local time ``now`` to the next ``then`` (a day when they are equal)."""
    today = datetime(2000, 1, 1)
    delta = datetime.combine(today, then) - datetime.combine(today, now)
    return (delta.total_seconds() % _DAY) or _DAY
