"""Attention without Qt: what the last run left undone comes back (urgent windows, untold
announcements gathered with the first replay), urgent ones open their window, what was told is
marked shown (thousands in turns, all before the history changes or closes), and an
acknowledgement is written to the history once, here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.attention import NO_REPLAY_COMING, Attention
from app.core.model import Announcement, ConnState, Priority
from app.core.store import HistoryStore


def ann(ann_id: str, priority: Priority = Priority.NORMAL) -> Announcement:
    return Announcement(id=ann_id, title=f"Title {ann_id}", body="b", priority=priority)


class Screen:
    """The notifier and the urgent windows, recorded in one list of calls; ``turns`` counts
    the turns asked for (``schedule_marks``)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.windows: list[str] = []  # open urgent windows
        self.turns = 0

    def announcement(self, ann: Announcement) -> None:
        self.calls.append(("toast", ann.id))

    def announcements(self, anns: list[Announcement]) -> None:
        self.calls.append(("toasts", tuple(a.id for a in anns)))

    def update(self, ann: Announcement) -> None:
        self.calls.append(("update", ann.id))

    def reminder(self, ann: Announcement) -> None:
        self.calls.append(("reminder", ann.id))

    def catch_up_started(self) -> None:
        self.calls.append(("catch_up_started", None))

    def catch_up_finished(self) -> None:
        self.calls.append(("catch_up_finished", None))

    def dismiss(self, ann_id: str) -> None:
        self.calls.append(("dismiss", ann_id))

    def open_urgent(self, ann: Announcement) -> None:
        self.calls.append(("window", ann.id))
        if ann.id not in self.windows:
            self.windows.append(ann.id)

    def close_urgent(self, ann_id: str) -> None:
        if ann_id in self.windows:
            self.windows.remove(ann_id)
            self.calls.append(("window closed", ann_id))

    def schedule(self) -> None:
        self.turns += 1

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@pytest.fixture
def screen() -> Screen:
    return Screen()


def attention_for(screen: Screen, per_turn: int = 1000) -> Attention:
    return Attention(
        screen,
        open_urgent=screen.open_urgent,
        close_urgent=screen.close_urgent,
        schedule_marks=screen.schedule,
        per_turn=per_turn,
    )


@pytest.fixture
def attention(screen: Screen) -> Attention:
    return attention_for(screen)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(tmp_path / "h.sqlite3") as s:
        yield s


def left_by_a_crash(store: HistoryStore) -> None:
    """What a kill leaves: one told, two never told, an urgent one not acknowledged and an
    urgent one acknowledged."""
    for a in (ann("1"), ann("2"), ann("3"), ann("u", Priority.URGENT), ann("v", Priority.URGENT)):
        store.add(a)
    store.mark_shown(["1"])
    store.queue_ack("v")


# ---------------------------------------------------------------------- restore


def test_at_start_urgent_windows_come_back_and_what_was_never_told_is_one_catch_up(
    screen: Screen, attention: Attention, store: HistoryStore
) -> None:
    left_by_a_crash(store)
    attention.use_store(store)
    assert attention.store is store
    assert screen.calls == [
        ("window", "u"),
        ("toast", "u"),  # urgent: at once, before the rest
        ("catch_up_started", None),
        ("toast", "2"),
        ("toast", "3"),  # the urgent one is not told twice
    ]
    assert screen.windows == ["u"]
    assert attention.restoring  # left open: the replay joins it


def test_the_restore_ends_with_the_first_replay_in_one_summary(
    screen: Screen, attention: Attention, store: HistoryStore
) -> None:
    left_by_a_crash(store)
    attention.use_store(store)
    del screen.calls[:]
    attention.catch_up_started()
    attention.arrived_many([ann("4"), ann("5")])
    attention.catch_up_finished()
    assert screen.calls == [
        ("catch_up_started", None),
        ("toasts", ("4", "5")),
        ("catch_up_finished", None),  # the replay's
        ("catch_up_finished", None),  # and the restore's: both told now
    ]
    assert not attention.restoring
    attention.catch_up_finished()  # a later replay ends only itself
    assert screen.names()[-2:] == ["catch_up_finished", "catch_up_finished"]
    assert len(screen.calls) == 5


@pytest.mark.parametrize("state", list(ConnState))
def test_the_restore_ends_when_no_replay_can_come(
    screen: Screen, attention: Attention, store: HistoryStore, state: ConnState
) -> None:
    left_by_a_crash(store)
    attention.use_store(store)
    del screen.calls[:]
    attention.connection(state)
    ends = state in NO_REPLAY_COMING
    assert ends == (state in (ConnState.LOGIN_REQUIRED, ConnState.ERROR, ConnState.STOPPED))
    assert screen.calls == ([("catch_up_finished", None)] if ends else [])
    assert attention.restoring is not ends
    attention.connection(state)  # once
    assert len(screen.calls) == (1 if ends else 0)


def test_nothing_left_undone_means_no_catch_up(
    screen: Screen, attention: Attention, store: HistoryStore
) -> None:
    store.add(ann("1"))
    store.mark_shown(["1"])
    attention.use_store(store)
    assert screen.calls == [] and not attention.restoring
    attention.connection(ConnState.STOPPED)
    attention.catch_up_finished()
    assert screen.calls == [("catch_up_finished", None)]  # the replay's own only


def test_the_same_history_again_restores_nothing_twice(
    screen: Screen, attention: Attention, store: HistoryStore
) -> None:
    left_by_a_crash(store)
    attention.use_store(store)
    calls = list(screen.calls)
    attention.use_store(store)  # logged in again as the same user
    assert screen.calls == calls


# ---------------------------------------------------------------------- arrivals


def test_urgent_arrivals_open_their_window_and_revokes_take_it_away(
    screen: Screen, attention: Attention, store: HistoryStore
) -> None:
    attention.use_store(store)
    attention.arrived(ann("n"))
    attention.arrived(ann("u", Priority.URGENT))
    attention.arrived_many([ann("m"), ann("w", Priority.URGENT)])
    assert screen.calls == [
        ("toast", "n"),
        ("toast", "u"),
        ("window", "u"),
        ("toasts", ("m", "w")),
        ("window", "w"),
    ]
    del screen.calls[:]
    attention.revoked("u")
    assert screen.calls == [("dismiss", "u"), ("window closed", "u")]
    assert screen.windows == ["w"]


def test_a_reminder_of_an_urgent_one_not_acknowledged_opens_its_window_again(
    screen: Screen, attention: Attention, store: HistoryStore
) -> None:
    """Issue 25: corrected, told as an update; reminded, told again; an urgent one waiting
    for its acknowledgement opens its window again (with the new text), an acknowledged one
    does not."""
    for a in (ann("u", Priority.URGENT), ann("a", Priority.URGENT), ann("n")):
        store.add(a)
    attention.use_store(store)
    del screen.calls[:]
    screen.windows.clear()
    assert attention.acknowledge("a")
    del screen.calls[:]
    attention.updated(ann("n"))
    attention.reminded(ann("n"))
    attention.reminded(ann("u", Priority.URGENT))
    attention.reminded(ann("a", Priority.URGENT))
    attention.updated(ann("u", Priority.URGENT))
    assert screen.calls == [
        ("update", "n"),
        ("reminder", "n"),
        ("reminder", "u"),
        ("window", "u"),
        ("reminder", "a"),  # acknowledged: no window again
        ("update", "u"),
        ("window", "u"),  # the open window shows the new text
    ]
    assert screen.windows == ["u"]


# ---------------------------------------------------------------------- shown


def test_what_was_told_is_marked_shown_at_once(
    screen: Screen, attention: Attention, store: HistoryStore
) -> None:
    for i in "123":
        store.add(ann(i))
    attention.use_store(store)
    attention.shown(("1", "3"))
    assert [s.announcement.id for s in store.unshown()] == ["2"]
    assert screen.turns == 0


def test_thousands_are_marked_in_turns_and_the_rest_before_the_history_changes(
    screen: Screen, store: HistoryStore, tmp_path: Path
) -> None:
    attention = attention_for(screen, per_turn=10)
    ids = [f"{i:03d}" for i in range(35)]
    for i in ids:
        store.add(ann(i))
    attention.use_store(store)
    attention.shown(tuple(ids))  # a summary of 35: not in one go
    assert len(store.unshown()) == 35 and screen.turns == 1
    attention.mark_some()
    assert len(store.unshown()) == 25 and screen.turns == 2
    attention.shown(("x",))  # while turns are under way: it joins them, in order
    assert len(store.unshown()) == 25 and screen.turns == 3  # (a timer asked twice: one turn)
    attention.mark_some()
    assert len(store.unshown()) == 15 and screen.turns == 4
    with HistoryStore(tmp_path / "other.sqlite3") as other:
        attention.use_store(other)  # another user: the rest is written to the first history
        assert store.unshown() == []
        attention.mark_some()  # the turn asked for before: nothing left, no new turn
        assert screen.turns == 4


def test_close_writes_what_waits_and_then_nothing_more(screen: Screen, store: HistoryStore) -> None:
    attention = attention_for(screen, per_turn=2)
    for i in "12345":
        store.add(ann(i, Priority.URGENT))
    attention.use_store(store)
    del screen.calls[:]
    attention.shown(("1", "2", "3"))
    attention.close()  # quit
    assert [s.announcement.id for s in store.unshown()] == ["4", "5"]
    attention.shown(("4",))
    attention.mark_some()
    attention.arrived(ann("6", Priority.URGENT))
    attention.catch_up_finished()
    assert attention.acknowledge("5") is False
    assert [s.announcement.id for s in store.unshown()] == ["4", "5"]
    assert store.pending_acks() == [] and screen.calls == []


# ---------------------------------------------------------------------- acknowledged


def test_acknowledge_writes_once_wakes_the_sender_once_and_closes_everywhere(
    screen: Screen, attention: Attention, store: HistoryStore
) -> None:
    store.add(ann("u", Priority.URGENT))
    attention.use_store(store)  # its window is back
    woken: list[None] = []
    store.add_receipt_listener(lambda: woken.append(None))  # the worker's receipt sender
    del screen.calls[:]
    assert attention.acknowledge("u") is True
    assert screen.calls == [("window closed", "u"), ("dismiss", "u")]
    stored = store.get("u")
    assert stored is not None and (stored.acked, stored.read, stored.shown) == (True, True, True)
    assert store.pending_acks() == ["u"] and len(woken) == 1
    # pressed again (the notification and the history both): no second receipt, no wake
    assert attention.acknowledge("u") is False
    assert store.pending_acks() == ["u"] and len(woken) == 1
    assert store.unacknowledged_urgent() == []


def test_acknowledge_without_a_history_still_closes_the_window(
    screen: Screen, attention: Attention
) -> None:
    attention.arrived(ann("u", Priority.URGENT))
    assert attention.acknowledge("u") is False
    assert screen.windows == [] and ("dismiss", "u") in screen.calls


def test_displayed_is_what_the_person_was_shown(
    attention: Attention, screen: Screen, tmp_path: Path
) -> None:
    """The ``displayed`` receipt (issue 22): an urgent window shows it at once; a toast or a
    summary that counts it shows it; held back (Do not disturb, quiet hours) or below the
    minimum priority it is told (marked shown) but not displayed."""
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        attention.use_store(store)
        for a in (ann("1"), ann("2"), ann("3", Priority.URGENT)):
            store.add(a)
        store.receipts_sent(store.pending_receipts())  # (the delivered ones)
        attention.arrived(ann("3", Priority.URGENT))
        assert ("window", "3") in screen.calls
        attention.shown(["1", "2"])  # told: "2" below the minimum priority, on purpose
        attention.displayed(["1"])  # only "1" reached the screen
        assert sorted(store.pending_receipts()) == [("1", "displayed"), ("3", "displayed")]
