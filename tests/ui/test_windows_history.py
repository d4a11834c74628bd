"""The Announcements window over a real history file."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QWidget

from app.core.model import Announcement, Priority
from app.core.store import HistoryStore
from app.ui.history_window import HistoryWindow

# the offscreen platform warns about this for every shown window with a layout

HOSTILE = "<img src=http://x/a.png><b>hi</b>"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


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
    assert window.title_label.textFormat() == Qt.TextFormat.PlainText
    assert window.title_label.text() == HOSTILE
    assert window.body.toPlainText() == HOSTILE
    assert window.model.item(0, 0).text() == HOSTILE
    # the rendered label shows the markup literally: it is as wide as the raw text
    assert (
        window.title_label.sizeHint().width()
        > window.title_label.fontMetrics().horizontalAdvance("hi") * 5
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
    assert window.title_label.text() == "Title 1"
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
    qtbot.waitUntil(window.body.hasFocus, timeout=2000)
    assert window.body.toPlainText() == "Body of 1"


def test_tab_order_and_accessible_names(window: HistoryWindow) -> None:
    chain = [
        window.search,
        window.list,
        window.body,
        window.link_field,
        window.open_link_button,
        window.mark_read_button,
        window.mark_all_button,
        window.close_button,
    ]
    for a, b in itertools.pairwise(chain):
        assert a.nextInFocusChain() is b or b in _focus_successors(a, 4)
    for w in (
        window.search,
        window.list,
        window.body,
        window.mark_read_button,
        window.mark_all_button,
        window.open_link_button,
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
    assert window.link_field.text() == url
    assert window.open_link_button.isEnabled()
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
    assert window.link_field.text() == url  # shown, as text
    assert not window.open_link_button.isEnabled()
    assert not window.link_note.isHidden()
    assert window.open_link() is False
    assert links.confirmed == [] and links.opened == []


def test_revoked_gone_after_reload(window: HistoryWindow, store: HistoryStore) -> None:
    add(store, "1", 0)
    add(store, "2", 1)
    window.reload()
    window.show_announcement("2")
    store.remove("2")
    window.reload()
    assert titles(window) == ["Title 1"]
    assert window.details.currentIndex() == 0  # its details are gone too


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
    assert window.title_label.text() == "Beta"


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


def test_new_announcements_reload_coalesced(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    """Many arrivals with the window open: a few reloads, not one each; the list ends complete."""
    window.show()
    qtbot.waitExposed(window)
    reloads = []
    original = window.reload

    def counting() -> None:
        reloads.append(1)
        original()

    window._reload_timer.timeout.disconnect()
    window._reload_timer.timeout.connect(counting)
    for i in range(300):
        add(store, f"a{i}", i)
        window.schedule_reload()
    qtbot.waitUntil(lambda: window.model.rowCount() == 300, timeout=5000)
    assert len(reloads) == 1
    assert window.unread_label.text() == "300 unread"


def test_a_hidden_window_reloads_when_shown(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    window.reload()
    add(store, "1", 0)
    window.schedule_reload()
    assert window.model.rowCount() == 0  # hidden: nothing done yet
    window.show()
    assert titles(window) == ["Title 1"]


def test_closing_cancels_a_pending_reload(
    qtbot, window: HistoryWindow, store: HistoryStore
) -> None:
    """On quit the window closes, then the store: no reload may run after that."""
    window.show()
    qtbot.waitExposed(window)
    add(store, "1", 0)
    window.schedule_reload()
    window.close()
    store.close()
    qtbot.wait(300)  # longer than RELOAD_INTERVAL_MS: nothing runs (a reload would raise)
    assert window.model.rowCount() == 0
