"""One announcement, read in full: the detail pane of the history window and the body of the
urgent window. Server text is shown as plain text only; a link is shown as its address and opened
(http/https only) after confirmation."""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.links import safe_link
from app.core.model import Announcement, Priority
from app.core.store import StoredAnnouncement
from app.ui import widgets


def acknowledgeable(ann: Announcement, *, acked: bool, withdrawn: bool = False) -> bool:
    """Whether Acknowledge is offered: urgent announcements not acknowledged yet (nor
    withdrawn: nothing is left to acknowledge)."""
    return ann.priority is Priority.URGENT and not acked and not withdrawn


class AnnouncementView(QWidget):
    """Priority chip, time, title, plain-text body, link (with Open link…) and Acknowledge.
    A withdrawn announcement (revoked) says "Withdrawn at 08:28" and its title is struck
    through; it offers no Acknowledge.

    Signals (emitted on the GUI thread):
        acknowledgeRequested(str): Acknowledge was pressed for the shown announcement, which is
            urgent and not acknowledged (the owner acknowledges it and shows the new state).

    ``confirm_link`` and ``open_url`` (keyword options) decide and perform link opening; tests
    inject them instead of driving the modal confirmation.
    """

    acknowledgeRequested = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        confirm_link: widgets.ConfirmLink = widgets.ask_to_open_link,
        open_url: widgets.OpenUrl = QDesktopServices.openUrl,
    ) -> None:
        super().__init__(parent)
        self._confirm_link = confirm_link
        self._open_url = open_url
        self._ann: Announcement | None = None
        self._acked = False
        self._withdrawn = False
        self.setObjectName("announcementView")
        self._build()

    def _build(self) -> None:
        self.chip = widgets.PriorityChip(self)
        self.meta_label = widgets.plain_label("", self)
        self.meta_label.setObjectName("detailMeta")
        self.title_label = widgets.plain_label("", self)
        self.title_label.setObjectName("detailTitle")
        self.withdrawn_label = widgets.plain_label("", self)
        self.withdrawn_label.setObjectName("withdrawnNotice")
        self.withdrawn_label.hide()
        self.body = QPlainTextEdit(self)
        self.body.setObjectName("detailBody")
        self.body.setReadOnly(True)
        self.body.setTabChangesFocus(True)
        self.body.setMinimumHeight(90)
        self.body.setAccessibleName(self.tr("Announcement text"))
        self.link_caption = QLabel(self.tr("Link:"), self)
        self.link_caption.setTextFormat(Qt.TextFormat.PlainText)
        self.link_field = QLineEdit(self)
        self.link_field.setObjectName("linkField")
        self.link_field.setReadOnly(True)
        self.link_field.setAccessibleName(self.tr("Link address"))
        self.link_caption.setBuddy(self.link_field)
        self.open_link_button = QPushButton(self.tr("&Open link…"), self)
        self.open_link_button.setAccessibleName(self.tr("Open the link in your web browser"))
        self.open_link_button.clicked.connect(self.open_link)
        self.link_note = widgets.plain_label(
            self.tr("This link cannot be opened: only web addresses (http, https) are allowed."),
            self,
        )
        self.link_note.setObjectName("hint")
        self.ack_button = QPushButton(self.tr("Ac&knowledge"), self)
        self.ack_button.setObjectName("acknowledgeButton")
        self.ack_button.setAccessibleName(self.tr("Acknowledge this announcement"))
        self.ack_button.setToolTip(
            self.tr("Confirm that you have read this urgent announcement; the sender is told.")
        )
        self.ack_button.setMinimumWidth(140)
        self.ack_button.clicked.connect(self.acknowledge)

        head = QHBoxLayout()
        head.addWidget(self.chip)
        head.addWidget(self.meta_label, 1)
        link_row = QHBoxLayout()
        link_row.addWidget(self.link_caption)
        link_row.addWidget(self.link_field, 1)
        link_row.addWidget(self.open_link_button)
        ack_row = QHBoxLayout()
        ack_row.addStretch(1)
        ack_row.addWidget(self.ack_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addLayout(head)
        layout.addWidget(self.withdrawn_label)
        layout.addWidget(self.title_label)
        layout.addWidget(self.body, 1)
        layout.addLayout(link_row)
        layout.addWidget(self.link_note)
        layout.addLayout(ack_row)
        widgets.tab_order(*self.focus_chain())
        self.set_announcement(None)

    # ------------------------------------------------------------------ public API

    def focus_chain(self) -> list[QWidget]:
        """Its parts in tab order, for the window's own order."""
        return [self.body, self.link_field, self.open_link_button, self.ack_button]

    @property
    def announcement(self) -> Announcement | None:
        """The announcement shown, or None."""
        return self._ann

    @property
    def can_acknowledge(self) -> bool:
        return self._ann is not None and acknowledgeable(
            self._ann, acked=self._acked, withdrawn=self._withdrawn
        )

    def show_stored(self, stored: StoredAnnouncement | None) -> None:
        """Show an announcement of the history (with its received time and acknowledged state)."""
        if stored is None:
            self.set_announcement(None)
        else:
            self.set_announcement(
                stored.announcement,
                received_at=stored.received_at,
                acked=stored.acked,
                withdrawn_at=stored.withdrawn_at,
                updated_at=stored.updated_at if stored.updated else None,
            )

    def set_announcement(
        self,
        ann: Announcement | None,
        *,
        received_at: datetime | None = None,
        acked: bool = False,
        withdrawn_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        """Show ``ann`` (None: show nothing); the time shown is its publication time, else
        ``received_at``; ``withdrawn_at``: revoked then (struck through, said in words);
        ``updated_at``: corrected by its publisher then ("Updated at 08:28")."""
        self._ann, self._acked = ann, acked
        self._withdrawn = ann is not None and withdrawn_at is not None
        if withdrawn_at is not None and ann is not None:
            self.withdrawn_label.setText(widgets.withdrawn_text(withdrawn_at))
        self.withdrawn_label.setVisible(self._withdrawn)
        if bool(self.title_label.property("withdrawn")) != self._withdrawn:
            self.title_label.setProperty("withdrawn", self._withdrawn)  # struck through (qss)
            self.title_label.style().unpolish(self.title_label)
            self.title_label.style().polish(self.title_label)
        if ann is None:
            for label in (self.meta_label, self.title_label):
                label.clear()
            self.body.clear()
            self._show_link(None)
        else:
            self.chip.set_priority(ann.priority)
            created = widgets.format_time(ann.created_at)
            received = widgets.format_time(received_at)
            if created:
                meta = self.tr("Published %1").replace("%1", created)
            elif received:
                meta = self.tr("Received %1").replace("%1", received)
            else:
                meta = ""
            if updated_at is not None:
                updated = widgets.updated_text(updated_at)
                meta = f"{meta} · {updated}" if meta else updated
            self.meta_label.setText(meta)
            self.title_label.setText(ann.display_title())
            self.body.setPlainText(ann.body)
            self._show_link(ann.url)
        can_ack = self.can_acknowledge
        self.ack_button.setEnabled(can_ack)
        self.ack_button.setVisible(can_ack)

    def open_link(self) -> bool:
        """Open the shown announcement's link after confirmation; False when refused."""
        if self._ann is None:
            return False
        return widgets.open_link(
            self, self._ann.url, confirm=self._confirm_link, opener=self._open_url
        )

    def acknowledge(self) -> None:
        """Ask to acknowledge the shown announcement when it is urgent and not acknowledged."""
        if self._ann is not None and self.can_acknowledge:
            self.acknowledgeRequested.emit(self._ann.id)

    # ------------------------------------------------------------------ parts

    def _show_link(self, url: str | None) -> None:
        """The address is shown as text (unsafe ones too, greyed, with a note); only a safe one
        can be opened."""
        link = safe_link(url)
        has_url = bool(url)
        for part in (self.link_caption, self.link_field, self.open_link_button):
            part.setVisible(has_url)
        self.link_field.setText(url or "")
        self.link_field.setCursorPosition(0)
        self.open_link_button.setEnabled(link is not None)
        self.link_field.setProperty("unsafe", has_url and link is None)
        self.link_field.style().unpolish(self.link_field)
        self.link_field.style().polish(self.link_field)
        self.link_note.setVisible(has_url and link is None)
