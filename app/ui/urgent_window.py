"""The small always-on-top window of an urgent announcement; it stays until acknowledged."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QCloseEvent, QDesktopServices, QFontMetrics, QShowEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QSizeGrip, QVBoxLayout, QWidget

from app import APP_NAME
from app.core.model import Announcement
from app.ui import widgets
from app.ui.detail import AnnouncementView
from app.ui.icons import app_icon

FIRST_WIDTH = 560  # the first size: this wide (at most 90 % of the screen) ...
MIN_HEIGHT = 340  # ... at least this tall, taller for a long text ...
SCREEN_SHARE = 0.7  # ... up to this share of the screen's height; the text scrolls beyond


class UrgentWindow(QWidget):
    """An urgent announcement, on top of other windows, until Acknowledge is pressed.

    The announcement is shown by the same :class:`AnnouncementView` as in the history window.
    Its first size fits the text (up to most of the screen: a longer text scrolls); it can be
    resized (a size grip in its corner, whatever the window manager offers).
    A close attempt (the window manager's close button, Alt+F4) is ignored; Escape does nothing. The
    composition root calls ``dismiss()`` when the app quits or the announcement is revoked:
    that closes it without acknowledging (Qt 6 cancels a quit while a window refuses to close).
    It is not deleted on close: whoever holds it drops its reference once it has closed.

    Signals (emitted on the GUI thread):
        acknowledged(str): the announcement id, once, when Acknowledge is pressed.

    ``confirm_link`` and ``open_url`` (keyword options) decide and perform link opening; tests
    inject them instead of driving the modal confirmation.
    """

    acknowledged = Signal(str)

    def __init__(
        self,
        ann: Announcement,
        parent: QWidget | None = None,
        *,
        confirm_link: widgets.ConfirmLink = widgets.ask_to_open_link,
        open_url: widgets.OpenUrl = QDesktopServices.openUrl,
    ) -> None:
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
        self.setMinimumSize(440, 260)
        banner = QFrame(self)
        banner.setObjectName("urgentBanner")
        self.detail = AnnouncementView(self, confirm_link=confirm_link, open_url=open_url)
        self.detail.setContentsMargins(16, 12, 16, 16)
        self.detail.set_announcement(ann)
        self.detail.acknowledgeRequested.connect(self._acknowledge)
        self.ack_button.setAutoDefault(True)
        self.ack_button.setDefault(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(banner)
        layout.addWidget(self.detail, 1)
        self.size_grip = QSizeGrip(self)
        grip_row = QHBoxLayout()
        grip_row.setContentsMargins(0, 0, 0, 0)
        grip_row.addStretch(1)
        grip_row.addWidget(self.size_grip, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(grip_row)
        self.resize(self._first_size())
        chain = self.detail.focus_chain()
        widgets.tab_order(chain[-1], *chain[:-1])  # Acknowledge first
        self.setFocusProxy(self.ack_button)

    @property
    def ack_button(self) -> QPushButton:
        return self.detail.ack_button

    def _first_size(self) -> QSize:
        """Wide enough to read, tall enough for the whole text when the screen allows."""
        self.ensurePolished()
        body = self.detail.body
        body.ensurePolished()  # its font comes from the stylesheet
        screen = self.screen().availableGeometry()
        width = max(self.minimumWidth(), min(FIRST_WIDTH, round(screen.width() * 0.9)))
        layout = self.layout()
        assert layout is not None
        layout.activate()
        # the height of everything but the text, at this width
        others = layout.totalHeightForWidth(width) - body.sizeHint().height()
        margins = self.detail.contentsMargins()
        text_width = (
            width
            - margins.left()
            - margins.right()
            - body.verticalScrollBar().sizeHint().width()
            - 2 * (body.frameWidth() + round(body.document().documentMargin()))
        )
        text = QFontMetrics(body.font()).boundingRect(
            QRect(0, 0, max(text_width, 100), 1_000_000),
            int(Qt.TextFlag.TextWordWrap),
            body.toPlainText(),
        )
        wanted = others + text.height() + 2 * (body.frameWidth() + 8)
        tallest = max(MIN_HEIGHT, round(screen.height() * SCREEN_SHARE))
        return QSize(width, max(MIN_HEIGHT, min(wanted, tallest)))

    @property
    def announcement_id(self) -> str:
        return self.announcement.id

    def show_announcement(self, ann: Announcement) -> None:
        """Show ``ann``'s newest text (corrected by its publisher): the same announcement."""
        self.announcement = ann
        self.detail.set_announcement(ann)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.ack_button.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def dismiss(self) -> None:
        """Close without acknowledging: the app is quitting or the announcement was revoked."""
        self._may_close = True
        self.close()

    def _acknowledge(self, ann_id: str) -> None:
        if self._may_close:
            return
        self._may_close = True
        self.acknowledged.emit(ann_id)
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._may_close:
            event.accept()
        else:
            event.ignore()
