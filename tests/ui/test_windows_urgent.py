"""The urgent window: on top, plain text, stays until acknowledged, never blocks quitting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QApplication, QLabel, QSizeGrip, QWidget

from app.core.model import Announcement, Priority
from app.ui.detail import AnnouncementView
from app.ui.urgent_window import FIRST_WIDTH, MIN_HEIGHT, SCREEN_SHARE, UrgentWindow
from tests.fixtures.screens import dark_share

# the offscreen platform warns about this for every shown window with a layout

HOSTILE = "<img src=http://x/a.png><b>hi</b>"


def make(qtbot, **kw: Any) -> UrgentWindow:
    kw.setdefault("title", "Evacuate building B")
    kw.setdefault("body", "Leave by the north stairs now.\nDo not use the lifts.")
    ann = Announcement(
        id="u1", priority=Priority.URGENT, created_at=datetime(2026, 3, 1, 9, 0, tzinfo=UTC), **kw
    )
    w = UrgentWindow(ann)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_on_top_with_full_plain_text(qtbot) -> None:
    w = make(qtbot, title=HOSTILE, body=HOSTILE + "\nsecond line")
    assert w.windowFlags() & Qt.WindowType.WindowStaysOnTopHint
    assert w.detail.title_label.textFormat() == Qt.TextFormat.PlainText
    assert w.detail.title_label.text() == HOSTILE
    assert w.detail.body.toPlainText() == HOSTILE + "\nsecond line"
    chip = w.findChild(QLabel, "priorityChip")
    assert chip is not None and chip.text() == "URGENT"


def test_acknowledge_is_default_and_focused(qtbot) -> None:
    w = make(qtbot)
    assert w.ack_button.isDefault()
    w.activateWindow()
    qtbot.waitUntil(lambda: w.ack_button.hasFocus(), timeout=2000)
    assert w.ack_button.accessibleName()


def test_close_attempts_are_ignored(qtbot) -> None:
    w = make(qtbot)
    assert w.close() is False
    qtbot.keyClick(w.ack_button, Qt.Key.Key_Escape)
    assert w.isVisible()


def test_acknowledge_emits_once_and_closes(qtbot) -> None:
    w = make(qtbot)
    with qtbot.waitSignal(w.acknowledged, timeout=1000) as blocker:
        qtbot.keyClick(w.ack_button, Qt.Key.Key_Return)
    assert blocker.args == ["u1"]
    assert not w.isVisible()


def test_dismiss_closes_without_acknowledging(qtbot) -> None:
    w = make(qtbot)
    with qtbot.assertNotEmitted(w.acknowledged):
        w.dismiss()
    assert not w.isVisible()


def test_does_not_block_quit_after_dismiss(qtbot) -> None:
    """Qt 6 cancels a quit while a window refuses to close: the root dismisses first."""
    w = make(qtbot)
    w.dismiss()
    assert w not in [x for x in QApplication.topLevelWidgets() if x.isVisible()]


def test_link_shown_and_opened_after_confirmation(qtbot) -> None:
    confirmed: list[str] = []
    opened: list[QUrl] = []

    def confirm(_parent: QWidget, url: str) -> bool:
        confirmed.append(url)
        return True

    def open_url(url: QUrl) -> bool:
        opened.append(url)
        return True

    ann = Announcement(
        id="u1", title="Evacuate", body="Now.", priority=Priority.URGENT,
        url="https://example.org/evacuation",
    )  # fmt: skip
    w = UrgentWindow(ann, confirm_link=confirm, open_url=open_url)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.detail.link_field.text() == "https://example.org/evacuation"
    assert w.detail.link_field.isVisible() and w.detail.open_link_button.isEnabled()
    qtbot.mouseClick(w.detail.open_link_button, Qt.MouseButton.LeftButton)
    assert confirmed == ["https://example.org/evacuation"]
    assert [u.toString() for u in opened] == confirmed
    assert w.isVisible()  # opening the link does not acknowledge


def test_unsafe_link_cannot_be_opened(qtbot) -> None:
    w = make(qtbot, url="javascript:alert(1)")
    assert w.detail.link_field.text() == "javascript:alert(1)"  # shown, as text
    assert not w.detail.open_link_button.isEnabled()
    assert w.detail.link_note.isVisible()
    assert w.detail.open_link() is False


def test_no_link_no_link_row(qtbot) -> None:
    w = make(qtbot)
    assert w.detail.link_field.isHidden() and w.detail.open_link_button.isHidden()


def test_uses_the_shared_announcement_view(qtbot) -> None:
    w = make(qtbot)
    assert isinstance(w.detail, AnnouncementView)
    assert w.ack_button is w.detail.ack_button
    assert w.detail.announcement == w.announcement


LONG = "\n\n".join(
    f"Paragraph {i}: a gas leak was reported on floor 2. Leave by the north stairs and meet at "
    "assembly point C. Do not use the lifts; wardens check every room."
    for i in range(1, 25)
)


def test_a_long_message_scrolls_in_a_resizable_window_of_a_sensible_first_size(qtbot) -> None:
    short = make(qtbot)
    w = make(qtbot, body=LONG)
    screen = w.screen().availableGeometry()
    # the first size: wider than before, taller for the long text, never beyond the screen
    assert w.width() >= FIRST_WIDTH or w.width() >= screen.width() * 0.9 - 1
    assert w.height() > short.height() >= MIN_HEIGHT
    assert w.height() <= max(MIN_HEIGHT, screen.height() * SCREEN_SHARE) + 1
    # the text scrolls, all of it there
    assert w.detail.body.verticalScrollBar().maximum() > 0
    assert w.detail.body.toPlainText() == LONG
    # resizable whatever the window manager offers: a size grip, and sizes it takes
    grip = w.findChild(QSizeGrip)
    assert grip is not None and grip.isVisible()
    assert w.minimumWidth() < w.maximumWidth() and w.minimumHeight() < w.maximumHeight()
    w.resize(700, 300)
    assert (w.width(), w.height()) == (700, 300)
    w.dismiss()
    short.dismiss()


def test_the_scroll_bar_has_no_black_trough(qtbot) -> None:
    w = make(qtbot, body=LONG)
    bar = w.detail.body.verticalScrollBar()
    assert bar.isVisible()
    assert dark_share(bar) < 0.2  # was about 0.75: a solid black trough
    w.dismiss()
