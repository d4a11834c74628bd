"""The urgent window: on top, plain text, stays until acknowledged, never blocks quitting."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from app.core.model import Announcement, Priority
from app.ui.detail import AnnouncementView
from app.ui.urgent_window import UrgentWindow

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
