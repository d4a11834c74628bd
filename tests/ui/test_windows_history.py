"""The Announcements window over a real history file."""

from __future__ import annotations

import itertools
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, Qt, QUrl
from PySide6.QtWidgets import QWidget

from app.core.model import Announcement, Priority
from app.core.store import HistoryStore
from app.ui.history_model import COL_PRIORITY, COL_TIME, LIMIT
from app.ui.history_window import ARRIVALS_PER_UPDATE, HistoryWindow
from tests.fixtures.history import T0, add_many, purge_one
from tests.fixtures.screens import dark_share

# the offscreen platform warns about this for every shown window with a layout

HOSTILE = "<img src=http://x/a.png><b>hi</b>"


@pytest.fixture
def store(tmp_path: Path):
    with HistoryStore(tmp_path / "history.sqlite3") as s:
        yield s


def add(store: HistoryStore, ann_id: str, minutes: int = 0, **kw: Any) -> Announcement:
    kw.setdefault("title", f"Title {ann_id}")
    kw.setdefault("body", f"Body of {ann_id}")
    ann = Announcement(id=ann_id, created_at=T0 + timedelta(minutes=minutes), **kw)
    assert store.add(ann)
    return ann


class LinkSpy:
    """Stands in for the confirmation dialog and the browser: records what it was asked."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.confirmed: list[str] = []
        self.opened: list[QUrl] = []

    def confirm(self, parent: QWidget, url: str) -> bool:
        self.confirmed.append(url)
        return self.answer

    def open(self, url: QUrl) -> bool:
        self.opened.append(url)
        return True


@pytest.fixture
def links() -> LinkSpy:
    return LinkSpy()


@pytest.fixture
def window(qtbot, store: HistoryStore, links: LinkSpy) -> HistoryWindow:
    w = HistoryWindow(store, confirm_link=links.confirm, open_url=links.open)
    qtbot.addWidget(w)
    return w


def titles(w: HistoryWindow) -> list[str]:
    return [w.model.item(r, 0).text() for r in range(w.model.rowCount())]


def test_newest_first_unread_bold(qtbot, store: HistoryStore, links: LinkSpy) -> None:
    add(store, "1", 0)
    add(store, "2", 5, priority=Priority.HIGH)
    add(store, "3", 10)
    store.mark_read("1")
    w = HistoryWindow(store, confirm_link=links.confirm, open_url=links.open)
    qtbot.addWidget(w)
    assert titles(w) == ["Title 3", "Title 2", "Title 1"]
    assert w.is_bold("3") and w.is_bold("2")
    assert not w.is_bold("1")
    assert w.model.item(1, 1).text() == "High"
    assert w.unread_label.text() == "2 unread"
    assert w.details.currentIndex() == 0  # nothing selected, nothing read by opening


def test_hostile_title_is_plain_text(window: HistoryWindow, store: HistoryStore) -> None:
    add(store, "x", title=HOSTILE, body=HOSTILE)
    window.reload()
    window.show_announcement("x")
    assert window.detail.title_label.textFormat() == Qt.TextFormat.PlainText
    assert window.detail.title_label.text() == HOSTILE
    assert window.detail.body.toPlainText() == HOSTILE
    assert window.model.item(0, 0).text() == HOSTILE
    # the rendered label shows the markup literally: it is as wide as the raw text
    assert (
        window.detail.title_label.sizeHint().width()
        > window.detail.title_label.fontMetrics().horizontalAdvance("hi") * 5
    )


def test_selecting_marks_read_and_signals(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    add(store, "1", 0)
    add(store, "2", 1)
    window.reload()
    with qtbot.waitSignal(window.readChanged, timeout=1000):
        window.list.setCurrentIndex(window.model.index(1, 0))
    assert store.get("1").read  # type: ignore[union-attr]
    assert not window.is_bold("1")
    assert window.is_bold("2")
    assert window.detail.title_label.text() == "Title 1"
    assert window.unread_label.text() == "1 unread"


def test_mark_selected_read_button(qtbot, window: HistoryWindow, store: HistoryStore) -> None:
    for i in range(3):
        add(store, str(i), i)
    window.reload()
    window.list.selectAll()  # the current row is read on selection; the button reads the rest
    assert window.mark_read_button.isEnabled()
    with qtbot.waitSignal(window.readChanged, timeout=1000):
        qtbot.mouseClick(window.mark_read_button, Qt.MouseButton.LeftButton)
    assert store.unread_count() == 0
    assert not any(window.is_bold(str(i)) for i in range(3))
    assert not window.mark_read_button.isEnabled()


def test_mark_all_read(qtbot, window: HistoryWindow, store: HistoryStore) -> None:
    for i in range(4):
        add(store, str(i), i)
    window.reload()
    assert window.mark_all_button.isEnabled()
    with qtbot.waitSignal(window.readChanged, timeout=1000):
        qtbot.mouseClick(window.mark_all_button, Qt.MouseButton.LeftButton)
    assert store.unread_count() == 0
    assert not any(window.is_bold(str(i)) for i in range(4))
    assert window.unread_label.text() == ""
    assert not window.mark_all_button.isEnabled()


def test_mark_all_read_with_a_search_marks_what_is_shown_and_says_so(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    add(store, "1", 0, title="Fire drill at 3 pm")
    add(store, "2", 1, title="Lunch")
    add(store, "3", 2, title="Fire alarm test")
    add(store, "4", 3, title="Parking")
    window.reload()
    assert window.mark_all_button.text() == "Mark &all read"
    window.search.setText("fire")
    assert titles(window) == ["Fire alarm test", "Fire drill at 3 pm"]
    assert window.mark_all_button.text() == "Mark &shown read"
    assert window.mark_all_button.accessibleName() == "Mark the announcements shown read"
    assert window.mark_all_button.isEnabled()
    with qtbot.waitSignal(window.readChanged, timeout=1000):
        qtbot.mouseClick(window.mark_all_button, Qt.MouseButton.LeftButton)
    # only what was shown: the others stay unread, and no read receipt goes out for them
    assert store.unread_count() == 2
    assert sorted(i for i, kind in store.pending_receipts() if kind == "read") == ["1", "3"]
    assert window.unread_label.text() == "2 unread"
    assert not window.mark_all_button.isEnabled()  # nothing shown is unread any more
    window.search.clear()
    assert window.mark_all_button.text() == "Mark &all read"
    assert window.mark_all_button.isEnabled()
    assert window.is_bold("2") and window.is_bold("4")
    assert not window.is_bold("1") and not window.is_bold("3")


def test_search_filters_as_you_type(qtbot, window: HistoryWindow, store: HistoryStore) -> None:
    add(store, "1", 0, title="Fire drill at 3 pm")
    add(store, "2", 1, title="Lunch", body="Free pizza in the kitchen")
    add(store, "3", 2, title="Network maintenance")
    window.reload()
    qtbot.keyClicks(window.search, "PIZZA")
    assert titles(window) == ["Lunch"]
    window.search.clear()
    qtbot.keyClicks(window.search, "nothing like it")
    assert titles(window) == []
    assert window.placeholder.text() == "No announcements match “nothing like it”."
    window.search.clear()
    assert len(titles(window)) == 3


def test_ctrl_f_focuses_search_and_escape_closes(qtbot, window: HistoryWindow) -> None:
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    window.list.setFocus()
    qtbot.keyClick(window.list, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(window.search.hasFocus, timeout=2000)
    qtbot.keyClick(window.search, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=2000)


def test_keyboard_enter_opens(qtbot, window: HistoryWindow, store: HistoryStore) -> None:
    add(store, "1", 0)
    add(store, "2", 1)
    window.reload()
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.search.setFocus()
    qtbot.keyClick(window.search, Qt.Key.Key_Return)  # from the search box into the list
    assert window.current_id() == "2"
    assert store.get("2").read  # type: ignore[union-attr]
    qtbot.keyClick(window.list, Qt.Key.Key_Down)
    assert window.current_id() == "1"
    qtbot.keyClick(window.list, Qt.Key.Key_Return)
    qtbot.waitUntil(window.detail.body.hasFocus, timeout=2000)
    assert window.detail.body.toPlainText() == "Body of 1"


def test_tab_order_and_accessible_names(window: HistoryWindow) -> None:
    chain = [
        window.search,
        window.list,
        window.detail.body,
        window.detail.link_field,
        window.detail.open_link_button,
        window.ack_button,
        window.mark_read_button,
        window.mark_all_button,
        window.close_button,
    ]
    for a, b in itertools.pairwise(chain):
        assert a.nextInFocusChain() is b or b in _focus_successors(a, 4)
    for w in (
        window.search,
        window.list,
        window.detail.body,
        window.mark_read_button,
        window.mark_all_button,
        window.detail.open_link_button,
        window.ack_button,
    ):
        assert w.accessibleName()


def _focus_successors(w: QWidget, n: int) -> list[QWidget]:
    out: list[QWidget] = []
    cur: QWidget | None = w
    for _ in range(n):
        assert cur is not None
        cur = cur.nextInFocusChain()
        if cur is not None:
            out.append(cur)
    return out


def test_open_link_shows_address_then_opens(
    window: HistoryWindow, store: HistoryStore, links: LinkSpy
) -> None:
    url = "https://intranet.example.org/drill?id=7"
    add(store, "1", url=url)
    window.reload()
    window.show_announcement("1")
    assert window.detail.link_field.text() == url
    assert window.detail.open_link_button.isEnabled()
    assert window.open_link() is True
    assert links.confirmed == [url]
    assert [u.toString() for u in links.opened] == [url]


def test_open_link_cancelled_opens_nothing(
    window: HistoryWindow, store: HistoryStore, links: LinkSpy
) -> None:
    links.answer = False
    add(store, "1", url="https://example.org/")
    window.reload()
    window.show_announcement("1")
    assert window.open_link() is False
    assert links.confirmed == ["https://example.org/"]
    assert links.opened == []


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "data:text/html,hi", "/relative"]
)
def test_unsafe_links_are_refused(
    window: HistoryWindow, store: HistoryStore, links: LinkSpy, url: str
) -> None:
    add(store, "1", url=url)
    window.reload()
    window.show_announcement("1")
    assert window.detail.link_field.text() == url  # shown, as text
    assert not window.detail.open_link_button.isEnabled()
    assert not window.detail.link_note.isHidden()
    assert window.open_link() is False
    assert links.confirmed == [] and links.opened == []


def withdrawn_shown(window: HistoryWindow, ann_id: str) -> bool:
    """The row of ``ann_id`` is struck through and its details say when it was withdrawn."""
    row = window.model.row_of(ann_id)
    font = window.model.index(row, 0).data(Qt.ItemDataRole.FontRole)
    detail = window.detail
    return (
        font is not None
        and font.strikeOut()
        and window.current_id() == ann_id
        and not detail.withdrawn_label.isHidden()
        and re.fullmatch(r"Withdrawn at \d\d?:\d\d.*", detail.withdrawn_label.text()) is not None
        and detail.title_label.property("withdrawn") is True
    )


def test_a_withdrawn_one_stays_struck_through_after_reload(
    window: HistoryWindow, store: HistoryStore
) -> None:
    add(store, "1", 0)
    add(store, "2", 1, priority=Priority.URGENT)
    window.reload()
    window.show_announcement("1")
    store.withdraw("2")
    window.reload()
    assert titles(window) == ["Title 2", "Title 1"]  # never silently deleted
    window.show_announcement("2")
    assert withdrawn_shown(window, "2")
    assert window.ack_button.isHidden()  # nothing left to acknowledge
    assert window.unread_label.text() == ""  # "1" was read; "2" no longer counts
    window.show_announcement("1")
    assert window.detail.withdrawn_label.isHidden()
    assert window.detail.title_label.property("withdrawn") is False


def test_reload_keeps_selection_and_shows_new(window: HistoryWindow, store: HistoryStore) -> None:
    add(store, "1", 0)
    window.reload()
    window.show_announcement("1")
    add(store, "2", 5)
    window.reload()
    assert titles(window) == ["Title 2", "Title 1"]
    assert window.current_id() == "1"
    assert window.is_bold("2")


def test_show_announcement_clears_a_hiding_search(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    add(store, "1", 0, title="Alpha")
    add(store, "2", 1, title="Beta")
    window.reload()
    window.search.setText("alpha")
    window.show_announcement("2")
    assert window.search.text() == ""
    assert window.current_id() == "2"
    assert window.isVisible()
    assert window.detail.title_label.text() == "Beta"


def test_acknowledge_button_for_an_urgent_unacknowledged_one(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    add(store, "n", 0)
    add(store, "u", 1, priority=Priority.URGENT)
    window.reload()
    window.show()
    window.show_announcement("n")
    assert window.ack_button.isHidden()
    window.show_announcement("u")
    assert window.ack_button.isVisible() and window.ack_button.isEnabled()
    assert window.ack_button.accessibleName()
    with qtbot.waitSignal(window.acknowledgeRequested, timeout=1000) as blocker:
        qtbot.mouseClick(window.ack_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["u"]
    # the root acknowledges it in the store, then reloads: the button goes away
    store.queue_ack("u")
    window.reload()
    assert window.current_id() == "u"
    assert window.ack_button.isHidden()
    with qtbot.assertNotEmitted(window.acknowledgeRequested):
        window.acknowledge_current()


class StoreReads:
    """Counts the store's full list reads (re-reads of the whole list)."""

    def __init__(self, store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lists = 0
        original = store.list

        def counting(**kw: Any) -> list[Any]:
            self.lists += 1
            return original(**kw)

        monkeypatch.setattr(store, "list", counting)


def shown(qtbot, window: HistoryWindow) -> HistoryWindow:
    window.show()
    qtbot.waitExposed(window)
    return window


def test_arrivals_are_inserted_in_one_batch_without_a_reread(
    qtbot, window: HistoryWindow, store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many arrivals with the window open: one insertion at the top, no re-read of the list."""
    add(store, "old", 0)
    shown(qtbot, window).show_announcement("old")
    reads = StoreReads(store, monkeypatch)
    insertions: list[tuple[int, int]] = []
    window.model.rowsInserted.connect(lambda _parent, first, last: insertions.append((first, last)))
    for i in range(300):
        window.announcement_arrived(add(store, f"a{i}", 1 + i))
    assert window.model.rowCount() == 1  # nothing done per arrival
    qtbot.waitUntil(lambda: window.model.rowCount() == 301, timeout=5000)
    assert insertions == [(0, 299)]
    assert reads.lists == 0
    assert titles(window)[:2] == ["Title a299", "Title a298"]
    assert window.current_id() == "old"  # the selection stays on its announcement
    assert window.is_bold("a0") and not window.is_bold("old")
    assert window.unread_label.text() == "300 unread"


def test_arrivals_land_where_a_reread_puts_them(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    """Out of order (a replay, a late publish, equal times, a duplicate): the same order as the
    store's own list."""
    for minutes in (0, 10, 20):
        add(store, f"s{minutes}", minutes)
    shown(qtbot, window).reload()
    arrivals = [add(store, f"n{i}", m) for i, m in enumerate((15, 25, 5, 10, -3, 25, 20))]
    arrivals.append(arrivals[0])  # told twice: listed once
    with qtbot.waitSignal(window.model.rowsInserted, timeout=2000):
        for ann in arrivals:
            window.announcement_arrived(ann)
    inserted = titles(window)
    window.reload()
    assert inserted == titles(window)
    assert len(inserted) == 10
    assert inserted[:4] == ["Title n5", "Title n1", "Title n6", "Title s20"]  # n5 came last


def test_the_list_keeps_the_newest_thousand(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    for i in range(LIMIT - 2):
        add(store, f"o{i}", i)
    shown(qtbot, window)
    window.reload()
    oldest = window.model.index(LIMIT - 3, 0)
    window.list.setCurrentIndex(oldest)  # read, shown: about to drop off the end
    assert window.current_id() == "o0"
    with qtbot.waitSignal(window.model.rowsRemoved, timeout=2000):
        for i in range(5):
            window.announcement_arrived(add(store, f"n{i}", LIMIT + i))
    assert window.model.rowCount() == LIMIT
    assert titles(window)[0] == "Title n4"
    assert titles(window)[-1] == "Title o3"
    # its row went: nothing is shown, and no other row was read in its place
    assert window.current_id() is None
    assert window.details.currentIndex() == 0
    assert store.unread_count() == LIMIT + 3 - 1


def test_a_search_rereads_on_arrivals(qtbot, window: HistoryWindow, store: HistoryStore) -> None:
    """The store decides what matches: with a search on, arrivals re-read the list."""
    add(store, "1", 0, title="Fire drill")
    shown(qtbot, window)
    window.search.setText("fire")
    window.announcement_arrived(add(store, "2", 1, title="Lunch"))
    window.announcement_arrived(add(store, "3", 2, title="Fire alarm test"))
    qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=2000)
    assert titles(window) == ["Fire alarm test", "Fire drill"]


def test_a_withdrawn_one_is_struck_through_in_place_without_a_reread(
    qtbot, window: HistoryWindow, store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        add(store, str(i), i)
    shown(qtbot, window).show_announcement("1")
    reads = StoreReads(store, monkeypatch)
    store.withdraw("1")
    window.announcement_withdrawn("1")
    assert titles(window) == ["Title 2", "Title 1", "Title 0"]
    assert withdrawn_shown(window, "1")
    assert window.is_bold("2") and window.is_bold("0")  # nothing else was read
    assert store.unread_count() == 2 and window.unread_label.text() == "2 unread"
    assert reads.lists == 0
    # an unread one withdrawn no longer counts as unread
    store.withdraw("2")
    window.announcement_withdrawn("2")
    assert not window.is_bold("2") and window.unread_label.text() == "1 unread"


def test_acknowledged_elsewhere_updates_its_row(
    qtbot, window: HistoryWindow, store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, "u", 0, priority=Priority.URGENT)
    shown(qtbot, window).show_announcement("u")
    assert window.ack_button.isVisible()
    reads = StoreReads(store, monkeypatch)
    store.queue_ack("u")  # from its urgent window
    window.announcement_changed("u")
    assert window.ack_button.isHidden()
    assert window.model.stored(0).acked
    assert reads.lists == 0


def test_changed_but_gone_is_removed_without_reading_another(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    add(store, "a", 0)
    add(store, "u", 1, priority=Priority.URGENT)
    add(store, "b", 2)
    shown(qtbot, window).show_announcement("u")
    store.queue_ack("u")
    purge_one(store, "u")  # acknowledged, then purged before the window heard of it
    window.announcement_changed("u")
    assert titles(window) == ["Title b", "Title a"]
    assert window.current_id() is None and window.details.currentIndex() == 0
    assert window.is_bold("a") and window.is_bold("b")


def test_a_hidden_window_does_nothing_until_shown(
    qtbot, window: HistoryWindow, store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = StoreReads(store, monkeypatch)
    window.announcement_arrived(add(store, "1", 0))
    window.schedule_reload()
    assert window.model.rowCount() == 0  # hidden: nothing done yet
    assert not window._update_timer.isActive()
    assert reads.lists == 0
    window.show()
    assert titles(window) == ["Title 1"]
    assert reads.lists == 1


def test_store_changes_reread_coalesced(
    qtbot, window: HistoryWindow, store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many changes of another kind with the window open: one re-read, the list complete."""
    shown(qtbot, window)
    reads = StoreReads(store, monkeypatch)
    for i in range(300):
        add(store, f"a{i}", i)
        window.schedule_reload()
    qtbot.waitUntil(lambda: window.model.rowCount() == 300, timeout=5000)
    assert reads.lists == 1
    assert window.unread_label.text() == "300 unread"


def test_closing_cancels_a_pending_update(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    """On quit the window closes, then the store: nothing may run after that."""
    shown(qtbot, window)
    window.announcement_arrived(add(store, "1", 0))
    window.schedule_reload()
    assert window._update_timer.isActive()
    window.close()
    store.close()
    assert not window._update_timer.isActive()  # so no update can run (it would raise)
    QCoreApplication.processEvents()
    assert window.model.rowCount() == 0


def test_a_catch_up_batch_is_listed_in_turns_with_one_read_per_turn(
    qtbot, window: HistoryWindow, store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thousands arriving at once (a catch-up's batches): listed ARRIVALS_PER_UPDATE at a time,
    the GUI answering in between, each turn one store query, never a re-read of the list."""
    add(store, "old", 0)
    shown(qtbot, window).show_announcement("old")
    reads = StoreReads(store, monkeypatch)
    insertions: list[tuple[int, int]] = []
    window.model.rowsInserted.connect(lambda _parent, first, last: insertions.append((first, last)))
    n = ARRIVALS_PER_UPDATE * 2 - 100
    batch = [add(store, f"a{i}", 1 + i) for i in range(n)]
    window.announcements_arrived(batch[: n // 2])
    window.announcements_arrived(batch[n // 2 :])
    assert window.model.rowCount() == 1
    qtbot.waitUntil(lambda: window.model.rowCount() == n + 1, timeout=5000)
    assert [last - first + 1 for first, last in insertions] == [
        ARRIVALS_PER_UPDATE,
        n - ARRIVALS_PER_UPDATE,
    ]
    assert reads.lists == 0
    assert titles(window)[0] == f"Title a{n - 1}"


class StoreFetches:
    """Counts the announcements the window reads from the store by id."""

    def __init__(self, store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ids = 0
        original = store.get_many

        def counting(ann_ids: Any) -> list[Any]:
            wanted = list(ann_ids)
            self.ids += len(wanted)
            return original(wanted)

        monkeypatch.setattr(store, "get_many", counting)


def test_a_catch_up_beyond_the_limit_reads_only_what_can_show(
    qtbot, window: HistoryWindow, store: HistoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three times as many arrivals as the list holds, out of order, some without a time, with
    the list full: it ends as a re-read has it (order and read state), the current row kept,
    and only those that can show were read from the store."""
    add_many(store, [(f"o{i}", i) for i in range(LIMIT)])
    store.mark_read("o999")
    shown(qtbot, window).show_announcement("o999")  # the newest listed, read
    fetches = StoreFetches(store, monkeypatch)
    reads = StoreReads(store, monkeypatch)
    minutes = [LIMIT + (i * 7919) % (3 * LIMIT) for i in range(3 * LIMIT)]  # a permutation
    specs: list[tuple[str, int | None]] = [(f"n{i}", m) for i, m in enumerate(minutes)]
    specs[10] = ("untimed", None)  # placed by its received time, which the store knows
    arrivals = add_many(store, specs)
    for i in range(0, len(arrivals), 200):  # the worker's batches
        window.announcements_arrived(arrivals[i : i + 200])
    unread = store.unread_count()
    qtbot.waitUntil(lambda: window.unread_label.text() == f"{unread} unread", timeout=10_000)
    assert not window._update_timer.isActive()
    listed = [window.model.stored(r) for r in range(window.model.rowCount())]
    window.reload()
    assert listed == [window.model.stored(r) for r in range(window.model.rowCount())]
    assert len(listed) == LIMIT and reads.lists == 1  # (that re-read is this test's)
    assert fetches.ids <= LIMIT + 1  # not 3,000
    assert "untimed" in window.model  # received now, long after T0
    assert window.current_id() is None  # o999 fell off the end: no other row read instead
    assert store.unread_count() == unread


def test_priority_and_date_fit_the_rows_on_screen(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    """Sized once per change of the list (not by the header on every relayout), wide enough
    for what is shown."""
    add_many(store, [(f"l{i}", i) for i in range(5)], priority=Priority.LOW)
    shown(qtbot, window)
    header = window.list.header()

    def fits() -> bool:
        return all(
            header.sectionSize(c) >= window.list.sizeHintForColumn(c)
            for c in (COL_PRIORITY, COL_TIME)
        )

    assert fits()
    narrow = header.sectionSize(COL_PRIORITY)
    window.announcements_arrived(add_many(store, [("u", 10)], priority=Priority.URGENT))
    qtbot.waitUntil(lambda: "u" in window.model, timeout=2000)
    assert fits() and header.sectionSize(COL_PRIORITY) > narrow  # "Urgent", unread: bold


def test_the_scroll_bars_have_no_black_trough(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    long_body = "\n\n".join(f"Paragraph {i} of a long announcement." for i in range(80))
    for i in range(60):
        add(store, str(i), i, body=long_body)
    shown(qtbot, window).show_announcement("59")
    bars = [window.list.verticalScrollBar(), window.detail.body.verticalScrollBar()]
    qtbot.waitUntil(lambda: all(bar.isVisible() for bar in bars), timeout=2000)
    assert [dark_share(bar) < 0.2 for bar in bars] == [True, True]  # the text's was black
