"""The one announcement view of the history and urgent windows: plain text, links, Acknowledge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtWidgets import QLabel, QWidget

from app import APP_NAME
from app.core.model import Announcement, Priority
from app.core.store import StoredAnnouncement
from app.ui.detail import AnnouncementView, acknowledgeable

HOSTILE = "<img src=http://x/a.png><b>hi</b>"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Links:
    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.confirmed: list[str] = []
        self.opened: list[str] = []

    def confirm(self, _parent: QWidget, url: str) -> bool:
        self.confirmed.append(url)
        return self.answer

    def open(self, url: QUrl) -> bool:
        self.opened.append(url.toString())
        return True


@pytest.fixture
def links() -> Links:
    return Links()


@pytest.fixture
def view(qtbot, links: Links) -> AnnouncementView:
    v = AnnouncementView(confirm_link=links.confirm, open_url=links.open)
    qtbot.addWidget(v)
    v.show()
    qtbot.waitExposed(v)
    return v


def ann(**kw: Any) -> Announcement:
    kw.setdefault("id", "a1")
    kw.setdefault("title", "Network maintenance")
    kw.setdefault("body", "Tonight.")
    return Announcement(**kw)


def test_server_text_is_plain_text(view: AnnouncementView) -> None:
    view.set_announcement(ann(title=HOSTILE, body=HOSTILE, created_at=T0))
    for label in view.findChildren(QLabel):
        assert label.textFormat() == Qt.TextFormat.PlainText, label.objectName()
    assert view.title_label.text() == HOSTILE
    assert view.body.toPlainText() == HOSTILE
    assert view.body.isReadOnly()


def test_title_chip_and_time(view: AnnouncementView) -> None:
    view.set_announcement(ann(priority=Priority.HIGH, created_at=T0))
    assert view.chip.text() == "HIGH"
    assert view.meta_label.text().startswith("Published ")
    view.show_stored(StoredAnnouncement(ann(title=""), received_at=T0, read=True, acked=False))
    assert view.title_label.text() == APP_NAME  # a legacy text has no title
    assert view.meta_label.text().startswith("Received ")
    assert view.announcement == ann(title="")


def test_nothing_shown(view: AnnouncementView) -> None:
    view.set_announcement(ann(url="https://example.org/", priority=Priority.URGENT))
    view.set_announcement(None)
    assert view.announcement is None
    assert view.title_label.text() == "" and view.body.toPlainText() == ""
    assert view.link_field.isHidden() and view.ack_button.isHidden()
    assert view.open_link() is False


def test_safe_link_opens_after_the_address_is_confirmed(
    qtbot, view: AnnouncementView, links: Links
) -> None:
    url = "https://intranet.example.org/drill?id=7"
    view.set_announcement(ann(url=url))
    assert view.link_field.isVisible() and view.link_field.text() == url
    assert view.link_note.isHidden()
    qtbot.mouseClick(view.open_link_button, Qt.MouseButton.LeftButton)
    assert links.confirmed == [url] and links.opened == [url]
    links.answer = False
    assert view.open_link() is False
    assert links.opened == [url]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "file:///etc/passwd", "/relative"])
def test_unsafe_link_is_shown_but_never_opened(
    view: AnnouncementView, links: Links, url: str
) -> None:
    view.set_announcement(ann(url=url))
    assert view.link_field.text() == url
    assert view.link_field.property("unsafe") is True
    assert not view.open_link_button.isEnabled() and view.link_note.isVisible()
    assert view.open_link() is False
    assert links.confirmed == [] and links.opened == []


@pytest.mark.parametrize(
    ("priority", "acked", "offered"),
    [
        (Priority.URGENT, False, True),
        (Priority.URGENT, True, False),
        (Priority.HIGH, False, False),
    ],
)
def test_acknowledge_only_for_urgent_unacknowledged(
    qtbot, view: AnnouncementView, priority: Priority, acked: bool, offered: bool
) -> None:
    shown = ann(priority=priority)
    assert acknowledgeable(shown, acked=acked) is offered
    view.set_announcement(shown, acked=acked)
    assert view.ack_button.isVisible() is offered
    assert view.ack_button.isEnabled() is offered
    assert view.ack_button.accessibleName()
    if offered:
        with qtbot.waitSignal(view.acknowledgeRequested, timeout=1000) as blocker:
            qtbot.mouseClick(view.ack_button, Qt.MouseButton.LeftButton)
        assert blocker.args == ["a1"]
    else:
        with qtbot.assertNotEmitted(view.acknowledgeRequested):
            view.acknowledge()


def test_tab_order(view: AnnouncementView) -> None:
    chain = view.focus_chain()
    assert chain[0] is view.body and chain[-1] is view.ack_button
    assert all(w.accessibleName() for w in chain)
