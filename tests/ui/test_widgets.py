"""The small shared pieces: titles, priorities, plain-text labels, times, links, tab order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtWidgets import QApplication, QLineEdit, QMessageBox, QWidget

from app.core.model import Priority
from app.ui import widgets


def test_priority_names_chips_and_dots(qtbot) -> None:
    assert [widgets.priority_name(p) for p in Priority] == ["Low", "Normal", "High", "Urgent"]
    chip = widgets.PriorityChip()
    qtbot.addWidget(chip)
    chip.set_priority(Priority.URGENT)
    assert chip.text() == "URGENT" and chip.property("priority") == "urgent"
    assert chip.textFormat() == Qt.TextFormat.PlainText
    assert chip.accessibleName() == "Priority: Urgent"
    assert widgets.priority_dot(Priority.LOW, 10).size().width() == 10


def test_plain_label_never_renders_markup(qtbot) -> None:
    label = widgets.plain_label("<b>hi</b>")
    qtbot.addWidget(label)
    assert label.textFormat() == Qt.TextFormat.PlainText and label.text() == "<b>hi</b>"
    assert label.wordWrap() and not widgets.plain_label("x", wrap=False).wordWrap()


def test_format_time() -> None:
    assert widgets.format_time(None) == ""
    assert "2026" in widgets.format_time(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


def test_withdrawn_says_when_by_the_clock_today_and_with_the_date_before() -> None:
    when = datetime(2026, 3, 1, 9, 0).astimezone()  # local time
    today = widgets.withdrawn_text(when, now=when + timedelta(minutes=30))
    assert today == f"Withdrawn at {widgets.format_moment(when, now=when)}"
    assert "2026" not in today and "9" in today
    earlier = widgets.withdrawn_text(when, now=when + timedelta(days=2))
    assert earlier == f"Withdrawn at {widgets.format_time(when)}" and "2026" in earlier


@pytest.mark.parametrize(
    ("url", "answer", "asked", "opened"),
    [
        ("https://example.org/a", True, True, True),
        ("https://example.org/a", False, True, False),
        ("javascript:alert(1)", True, False, False),
        (None, True, False, False),
    ],
)
def test_open_link_asks_first_and_only_for_web_addresses(
    qtbot, url: str | None, answer: bool, asked: bool, opened: bool
) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    confirmed: list[str] = []
    urls: list[QUrl] = []

    def confirm(_parent: QWidget, address: str) -> bool:
        confirmed.append(address)
        return answer

    def opener(address: QUrl) -> bool:
        urls.append(address)
        return True

    assert widgets.open_link(parent, url, confirm=confirm, opener=opener) is opened
    assert confirmed == ([url] if asked else [])
    assert [u.toString() for u in urls] == ([url] if opened else [])


@pytest.mark.parametrize("click", ["Open", "Cancel"])
def test_the_confirmation_shows_a_look_alike_host_in_ascii(qtbot, click: str) -> None:
    """``ex\u0430mple.com`` has a Cyrillic letter: the dialog shows what it really is."""
    parent = QWidget()
    qtbot.addWidget(parent)
    shown: list[str] = []

    def answer() -> None:  # as a person would; closes the dialog whatever it holds
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):  # not shown yet
            QTimer.singleShot(10, answer)
            return
        shown.append(box.text())
        buttons = [b for b in box.buttons() if b.text() == click]
        if len(buttons) == 1:
            buttons[0].click()
        else:
            box.reject()

    QTimer.singleShot(0, answer)
    url = "https://ex\u0430mple.com/login"
    assert widgets.ask_to_open_link(parent, url) is (click == "Open")
    (text,) = shown
    assert text.endswith("\n\nhttps://xn--exmple-4nf.com/login")
    assert "\u0430" not in text


def test_tab_order(qtbot) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    a, b, c = (QLineEdit(parent) for _ in range(3))
    widgets.tab_order(a, c, b)
    assert a.nextInFocusChain() is c and c.nextInFocusChain() is b


def test_stylesheet_styles_the_shared_parts() -> None:
    qss = widgets.stylesheet()
    assert "QLabel#priorityChip" in qss and "QLabel#detailTitle" in qss
