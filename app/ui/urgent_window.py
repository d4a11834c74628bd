"""The small always-on-top window of an urgent announcement; it stays until acknowledged."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QShowEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME
from app.core.links import safe_link
from app.core.model import Announcement
from app.ui import widgets
from app.ui.icons import app_icon


class UrgentWindow(QWidget):
    """An urgent announcement, on top of other windows, until Acknowledge is pressed.

    A close attempt (the window manager's close button, Alt+F4) is ignored; Escape does nothing. The
    composition root calls ``dismiss()`` when the app quits or the announcement is revoked:
    that closes it without acknowledging (Qt 6 cancels a quit while a window refuses to close).
    It is not deleted on close: whoever holds it drops its reference once it has closed.

    Signals (emitted on the GUI thread):
        acknowledged(str): the announcement id, once, when Acknowledge is pressed.
    """

    acknowledged = Signal(str)

    def __init__(self, ann: Announcement, parent: QWidget | None = None) -> None:
        super().__init__(
            parent,
            Qt.WindowType.Window
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.CustomizeWindowHint
            | Qt.WindowType.WindowTitleHint,
        )
        self.announcement = ann
        self._may_close = False
        self.setObjectName("urgentWindow")
        self.setWindowTitle(self.tr("Urgent announcement — %1").replace("%1", APP_NAME))
        self.setWindowIcon(app_icon())
        self.setStyleSheet(widgets.stylesheet())
        self.setMinimumWidth(440)
        self.resize(480, 320)
        self._build(ann)

    def _build(self, ann: Announcement) -> None:
        banner = QFrame(self)
        banner.setObjectName("urgentBanner")
        chip = widgets.PriorityChip(self)
        chip.set_priority(ann.priority)
        when = widgets.plain_label(widgets.format_time(ann.created_at), self, wrap=False)
        when.setObjectName("detailMeta")
        self.title_label = widgets.plain_label(ann.title or APP_NAME, self)
        self.title_label.setObjectName("urgentTitle")
        self.body = QPlainTextEdit(self)
        self.body.setObjectName("urgentBody")
        self.body.setReadOnly(True)
        self.body.setTabChangesFocus(True)
        self.body.setPlainText(ann.body)
        self.body.setAccessibleName(self.tr("Announcement text"))
        self.body.setMinimumHeight(90)

        self.ack_button = QPushButton(self.tr("&Acknowledge"), self)
        self.ack_button.setAccessibleName(self.tr("Acknowledge this announcement"))
        self.ack_button.setAutoDefault(True)
        self.ack_button.setDefault(True)
        self.ack_button.setMinimumWidth(140)
        self.ack_button.clicked.connect(self._acknowledge)

        head = QHBoxLayout()
        head.addWidget(chip)
        head.addStretch(1)
        head.addWidget(when)
        content = QVBoxLayout()
        content.setContentsMargins(16, 12, 16, 16)
        content.setSpacing(8)
        content.addLayout(head)
        content.addWidget(self.title_label)
        content.addWidget(self.body, 1)
        link = safe_link(ann.url)
        if link:
            self.link_field = QLineEdit(link, self)
            self.link_field.setObjectName("linkField")
            self.link_field.setReadOnly(True)
            self.link_field.setCursorPosition(0)
            self.link_field.setAccessibleName(self.tr("Link address"))
            link_row = QHBoxLayout()
            caption = QLabel(self.tr("Link:"), self)
            caption.setBuddy(self.link_field)
            link_row.addWidget(caption)
            link_row.addWidget(self.link_field, 1)
            content.addLayout(link_row)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.ack_button)
        content.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(banner)
        layout.addLayout(content)
        self.setTabOrder(self.ack_button, self.body)
        self.setFocusProxy(self.ack_button)

    @property
    def announcement_id(self) -> str:
        return self.announcement.id

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.ack_button.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def dismiss(self) -> None:
        """Close without acknowledging: the app is quitting or the announcement was revoked."""
        self._may_close = True
        self.close()

    def _acknowledge(self) -> None:
        if self._may_close:
            return
        self._may_close = True
        self.acknowledged.emit(self.announcement.id)
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._may_close:
            event.accept()
        else:
            event.ignore()
