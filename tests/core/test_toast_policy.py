"""The toast policy, with injected clocks: DND, quiet hours, threshold, bursts, offline toasts."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from app.core.config import Config, QuietHours
from app.core.model import Announcement, ConnState, Priority
from app.core.toast_policy import Hold, HoldReason, Toast, ToastKind, ToastPolicy, Urgency


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.local = time(12, 0)
        self.wall = datetime(2025, 3, 4, 12, 0)
        self.settings = Config()

    def __call__(self) -> float:
        return self.now


def ann(n: int, priority: Priority = Priority.NORMAL) -> Announcement:
    return Announcement(id=str(n), title=f"Title {n}", body=f"Body {n}", priority=priority)


def make(clock: FakeClock, **settings: object) -> ToastPolicy:
    """A policy reading ``clock.settings``: change them there, as the Settings object does."""
    clock.settings = Config().with_changes(**settings)
    return ToastPolicy(
        lambda: clock.settings,
        clock=clock,
        local_time=lambda: clock.local,
        wall=lambda: clock.wall,
    )


def settle(policy: ToastPolicy, clock: FakeClock) -> list[Toast]:
    deadline = policy.next_deadline()
    assert deadline is not None
    clock.now = deadline
    return policy.due()


def test_single_announcement_pops_up_after_settling() -> None:
    clock = FakeClock()
    policy = make(clock)
    assert policy.announcement(ann(1)) == []
    assert settle(policy, clock) == [Toast(ToastKind.ANNOUNCEMENT, ann(1))]
    assert policy.next_deadline() is None


def test_burst_of_twelve_gives_one_summary() -> None:
    clock = FakeClock()
    policy = make(clock)
    out: list[Toast] = []
    for n in range(12):
        out += policy.announcement(ann(n))
        clock.now += 0.01
    out += settle(policy, clock)
    assert out == [Toast(ToastKind.SUMMARY, count=12)]


def test_three_within_the_window_are_shown_singly() -> None:
    clock = FakeClock()
    policy = make(clock)
    for n in range(3):
        policy.announcement(ann(n))
    assert [t.announcement for t in settle(policy, clock)] == [ann(0), ann(1), ann(2)]


def test_more_than_three_within_two_seconds_are_summed_up() -> None:
    clock = FakeClock()
    policy = make(clock)
    shown: list[Toast] = []
    for n in range(7):  # one every 0.35 s: each would settle alone, but 7 within 2.1 s
        shown += policy.announcement(ann(n))
        for _ in range(7):
            clock.now += 0.05
            shown += policy.due()
    shown += settle(policy, clock)
    assert [t.kind for t in shown] == [ToastKind.ANNOUNCEMENT] * 3 + [ToastKind.SUMMARY]
    assert shown[-1].count == 4
    assert policy.next_deadline() is None


def test_a_single_late_one_after_a_burst_is_shown_as_itself() -> None:
    clock = FakeClock()
    policy = make(clock)
    for n in range(3):
        policy.announcement(ann(n))
    assert len(settle(policy, clock)) == 3
    clock.now += 0.5
    assert policy.announcement(ann(9)) == []
    assert settle(policy, clock) == [Toast(ToastKind.ANNOUNCEMENT, ann(9))]


def test_urgent_is_immediate_even_in_do_not_disturb() -> None:
    clock = FakeClock()
    policy = make(clock, do_not_disturb=True)
    urgent = ann(1, Priority.URGENT)
    assert policy.announcement(urgent) == [Toast(ToastKind.ANNOUNCEMENT, urgent)]
    assert policy.announcement(ann(2)) == []
    assert policy.due() == []


def test_do_not_disturb_holds_back_then_sums_up() -> None:
    clock = FakeClock()
    policy = make(clock, do_not_disturb=True)
    for n in range(5):
        assert policy.announcement(ann(n)) == []
    assert policy.due() == []
    clock.settings = clock.settings.with_changes(do_not_disturb=False)
    assert policy.due() == [Toast(ToastKind.SUMMARY, count=5)]
    assert policy.due() == []


def test_quiet_hours_spanning_midnight() -> None:
    clock = FakeClock()
    policy = make(clock, quiet_hours=QuietHours(time(22, 0), time(7, 0)))
    clock.local = time(23, 30)
    assert policy.quiet()
    assert policy.announcement(ann(1, Priority.HIGH)) == []
    assert policy.due() == []
    clock.local = time(7, 0)
    assert not policy.quiet()
    assert policy.due() == [Toast(ToastKind.SUMMARY, count=1)]


def test_min_priority_threshold() -> None:
    clock = FakeClock()
    policy = make(clock, toast_min_priority=Priority.HIGH)
    assert policy.announcement(ann(1, Priority.NORMAL)) == []
    assert policy.next_deadline() is None
    policy.announcement(ann(2, Priority.HIGH))
    assert settle(policy, clock) == [Toast(ToastKind.ANNOUNCEMENT, ann(2, Priority.HIGH))]


def test_offline_for_three_minutes_gives_one_toast_and_one_when_back() -> None:
    clock = FakeClock()
    policy = make(clock)
    assert policy.connection(ConnState.CONNECTED) == []
    assert policy.connection(ConnState.OFFLINE) == []
    clock.now += 60
    assert policy.connection(ConnState.CONNECTING) == []
    assert policy.due() == []
    clock.now += 120
    assert policy.due() == [Toast(ToastKind.OFFLINE)]
    clock.now += 600
    assert policy.due() == []
    assert policy.connection(ConnState.CONNECTED) == [Toast(ToastKind.BACK_ONLINE)]


def test_short_drop_gives_no_toast() -> None:
    clock = FakeClock()
    policy = make(clock)
    policy.connection(ConnState.OFFLINE)
    clock.now += 30
    assert policy.connection(ConnState.CONNECTED) == []
    clock.now += 600
    assert policy.due() == []


def test_logout_resets_the_offline_timer() -> None:
    clock = FakeClock()
    policy = make(clock)
    policy.connection(ConnState.OFFLINE)
    assert policy.connection(ConnState.STOPPED) == []
    clock.now += 600
    assert policy.due() == []


def test_a_catch_up_in_pages_gives_one_summary_for_all_of_it() -> None:
    """2,500 replayed in three pages over several burst windows: one summary, every id told."""
    clock = FakeClock()
    policy = make(clock)
    out = policy.catch_up_started()
    for n in range(2500):
        out += policy.announcement(ann(n))
        clock.now += 0.002 if n % 1000 else 0.8  # a reconnect between pages
        out += policy.due()
    assert out == []
    out += policy.catch_up_finished()
    assert out == [Toast(ToastKind.SUMMARY, count=2500)]
    assert out[0].ids == tuple(str(n) for n in range(2500))
    assert policy.next_deadline() is None
    clock.now += 10
    assert policy.due() == []


def test_a_small_catch_up_gives_single_toasts() -> None:
    clock = FakeClock()
    policy = make(clock)
    policy.catch_up_started()
    for n in range(2):
        assert policy.announcement(ann(n)) == []
    assert policy.catch_up_finished() == []
    toasts = settle(policy, clock)
    assert [t.announcement for t in toasts] == [ann(0), ann(1)]
    assert [t.ids for t in toasts] == [("0",), ("1",)]


def test_urgent_is_not_held_by_a_catch_up() -> None:
    clock = FakeClock()
    policy = make(clock)
    policy.catch_up_started()
    urgent = ann(1, Priority.URGENT)
    assert policy.announcement(urgent) == [Toast(ToastKind.ANNOUNCEMENT, urgent)]


def test_a_catch_up_that_never_finishes_ends_when_idle() -> None:
    """A backend that never sends sync: the catch-up ends catch_up_idle after its last one."""
    clock = FakeClock()
    policy = ToastPolicy(clock=clock, catch_up_idle=5.0)
    policy.catch_up_started()
    for n in range(10):
        policy.announcement(ann(n))
        clock.now += 1.0
    assert policy.due() == []
    deadline = policy.next_deadline()
    assert deadline == 1009.0 + 5.0
    clock.now = deadline
    assert policy.due() == [Toast(ToastKind.SUMMARY, count=10)]
    assert policy.catch_up_finished() == []  # late: nothing more
    policy.announcement(ann(99))
    assert settle(policy, clock) == [Toast(ToastKind.ANNOUNCEMENT, ann(99))]


def test_nested_catch_ups_end_with_the_outer_one() -> None:
    clock = FakeClock()
    policy = make(clock)
    policy.catch_up_started()  # the stream's
    policy.catch_up_started()  # a restart's untold ones
    for n in range(3):
        policy.announcement(ann(n))
    assert policy.catch_up_finished() == []
    for n in range(3, 6):
        policy.announcement(ann(n))
    assert policy.catch_up_finished() == [Toast(ToastKind.SUMMARY, count=6)]


def test_what_is_told_held_back_or_skipped() -> None:
    """Held back by do not disturb is told by the summary at its end; below the minimum
    priority is settled at once without a toast."""
    clock = FakeClock()
    policy = make(clock, do_not_disturb=True, toast_min_priority=Priority.NORMAL)
    policy.announcement(ann(1, Priority.LOW))
    policy.announcement(ann(2))
    policy.announcement(ann(3, Priority.HIGH))
    assert policy.take_skipped() == ["1"]
    assert policy.take_skipped() == []
    assert policy.due() == []
    clock.settings = clock.settings.with_changes(do_not_disturb=False)
    (summary,) = policy.due()
    assert (summary.kind, summary.count, summary.ids) == (ToastKind.SUMMARY, 2, ("2", "3"))


def test_the_settle_delay_is_the_toast_settle_ms_setting() -> None:
    clock = FakeClock()
    policy = make(clock)
    assert Config().toast_settle_ms == 300
    policy.announcement(ann(1))
    assert policy.next_deadline() == clock.now + 0.3
    clock.settings = clock.settings.with_changes(toast_settle_ms=50)
    assert policy.next_deadline() == clock.now + 0.05
    clock.now += 0.049
    assert policy.due() == []
    clock.now = 1000.0 + 0.05
    assert policy.due() == [Toast(ToastKind.ANNOUNCEMENT, ann(1))]


def test_urgent_skips_the_settle_delay_however_long() -> None:
    clock = FakeClock()
    policy = make(clock, toast_settle_ms=5000)
    urgent = ann(1, Priority.URGENT)
    assert policy.announcement(urgent) == [Toast(ToastKind.ANNOUNCEMENT, urgent)]
    assert policy.next_deadline() is None


@pytest.mark.parametrize(
    ("toast", "urgency"),
    [
        (Toast(ToastKind.ANNOUNCEMENT, ann(1, Priority.LOW)), Urgency.LOW),
        (Toast(ToastKind.ANNOUNCEMENT, ann(1, Priority.NORMAL)), Urgency.NORMAL),
        (Toast(ToastKind.ANNOUNCEMENT, ann(1, Priority.HIGH)), Urgency.NORMAL),
        (Toast(ToastKind.ANNOUNCEMENT, ann(1, Priority.URGENT)), Urgency.CRITICAL),
        (Toast(ToastKind.SUMMARY, count=5), Urgency.NORMAL),
        (Toast(ToastKind.OFFLINE), Urgency.CRITICAL),  # "alerts stopped": impossible to miss
        (Toast(ToastKind.BACK_ONLINE), Urgency.NORMAL),
    ],
)
def test_urgency_of_each_toast(toast: Toast, urgency: Urgency) -> None:
    assert toast.urgency is urgency
    assert int(toast.urgency) == {Urgency.LOW: 0, Urgency.NORMAL: 1, Urgency.CRITICAL: 2}[urgency]
    assert toast.critical is (urgency is Urgency.CRITICAL)


def test_alerts_stopped_from_the_toast_until_connected_again_since_the_drop() -> None:
    clock = FakeClock()
    policy = make(clock)
    policy.connection(ConnState.CONNECTED)
    clock.wall = datetime(2025, 3, 4, 14, 5)
    policy.connection(ConnState.OFFLINE)
    clock.now += 60
    clock.wall = datetime(2025, 3, 4, 14, 6)
    policy.connection(ConnState.CONNECTING)
    assert policy.alerts_stopped_since() is None  # a short drop is not "alerts stopped"
    clock.now += 120
    assert policy.due() == [Toast(ToastKind.OFFLINE)]
    assert policy.alerts_stopped_since() == datetime(2025, 3, 4, 14, 5)  # since the drop
    policy.connection(ConnState.ERROR)
    assert policy.alerts_stopped_since() == datetime(2025, 3, 4, 14, 5)
    assert policy.connection(ConnState.CONNECTED) == [Toast(ToastKind.BACK_ONLINE)]
    assert policy.alerts_stopped_since() is None


def test_logging_out_ends_alerts_stopped() -> None:
    clock = FakeClock()
    policy = make(clock)
    policy.connection(ConnState.OFFLINE)
    clock.now += 180
    assert policy.due() == [Toast(ToastKind.OFFLINE)]
    assert policy.alerts_stopped_since() is not None
    assert policy.connection(ConnState.STOPPED) == []
    assert policy.alerts_stopped_since() is None


def test_hold_says_why_toasts_are_held_back_and_until_when() -> None:
    clock = FakeClock()
    policy = make(clock, quiet_hours=QuietHours(time(22, 0), time(7, 0)))
    clock.local = time(21, 59)
    assert policy.hold() is None
    clock.local = time(22, 0)
    assert policy.hold() == Hold(HoldReason.QUIET_HOURS, time(7, 0))
    clock.settings = clock.settings.with_changes(do_not_disturb=True)
    assert policy.hold() == Hold(HoldReason.DO_NOT_DISTURB)  # no end: until switched off
    clock.settings = clock.settings.with_changes(do_not_disturb=False)
    clock.local = time(7, 0)
    assert policy.hold() is None


def test_the_quiet_hours_start_and_end_are_deadlines() -> None:
    """What quiet hours held is summed up when they end, with no other event needed; their
    start is a deadline too (the tray shows that toasts are held back)."""
    clock = FakeClock()
    policy = make(clock, quiet_hours=QuietHours(time(22, 0), time(7, 0)))
    clock.local = time(21, 30)
    assert policy.next_deadline() == clock.now + 30 * 60  # the start
    clock.local = time(23, 15)
    policy.announcement(ann(1))
    assert policy.next_deadline() == clock.now + (7 * 60 + 45) * 60  # the end
    clock.now += (7 * 60 + 45) * 60
    clock.local = time(7, 0)
    assert policy.due() == [Toast(ToastKind.SUMMARY, count=1)]
    assert policy.next_deadline() == clock.now + 15 * 3600  # tonight's start


def test_a_correction_and_a_reminder_are_toasts_of_their_own_kind() -> None:
    """Issue 25: "Updated" and "Reminder" toasts follow the rules of announcements; a
    correction or a reminder of one still waiting (a catch-up) joins it: one toast for it,
    with its newest text, in its place."""
    clock = FakeClock()
    policy = make(clock)
    assert policy.announcement(ann(1), ToastKind.UPDATE) == []
    assert settle(policy, clock) == [Toast(ToastKind.UPDATE, ann(1))]
    urgent = ann(2, Priority.URGENT)
    assert policy.announcement(urgent, ToastKind.REMINDER) == [Toast(ToastKind.REMINDER, urgent)]

    clock.now += 60  # after the burst window
    policy.catch_up_started()
    corrected = Announcement(id="3", title="Title 3, corrected", body="Body 3")
    for item, kind in (
        (ann(3), ToastKind.ANNOUNCEMENT),
        (ann(4), ToastKind.UPDATE),
        (corrected, ToastKind.UPDATE),
        (corrected, ToastKind.REMINDER),
        (ann(4), ToastKind.REMINDER),
    ):
        assert policy.announcement(item, kind) == []
    assert policy.catch_up_finished() == []
    shown = settle(policy, clock)
    assert shown == [
        Toast(ToastKind.ANNOUNCEMENT, corrected),  # new, with its corrected text: once
        Toast(ToastKind.UPDATE, ann(4)),
    ]
    assert shown[0].announcement is not None and shown[0].announcement.title.endswith("corrected")
