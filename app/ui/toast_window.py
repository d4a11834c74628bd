"""Our own toast: a small frameless window in the bottom-right corner, used where the desktop
has no tray and no notification service. It hides itself after a while (``timeout_ms``; 0:
it stays until closed); a click opens."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout

TOAST_TIMEOUT_MS = 8000  # how long a toast stays: ours, Qt's balloon and a Notify call alike
_MARGIN = 12
_WIDTH = 340


class ToastWindow(QFrame):
    """One toast. Title and body are always shown as plain text.

    Signals (GUI thread):
        clicked(): the toast was clicked (it then closes).
        closed(): the toast hid itself or was clicked away.
    """

    clicked = Signal()
    closed = Signal()

    def __init__(
        self, title: str, body: str, *, timeout_ms: int = TOAST_TIMEOUT_MS, urgent: bool = False
    ) -> None:
        flags = (
            Qt.WindowType.Tool
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.WindowDoesNotAcceptFocus
        )
        super().__init__(None, flags)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setObjectName("toast")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        accent = "#c62828" if urgent else "#3949ab"
        self.setStyleSheet(
            f"QFrame#toast {{ background: #263238; border: 2px solid {accent};"
            " border-radius: 8px; }"
            " QLabel { color: #eceff1; background: transparent; }"
            " QLabel#toastTitle { font-weight: bold; }"
        )
        self.title_label = self._label(title, "toastTitle")
        self.body_label = self._label(body, "toastBody")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 12)
        layout.setSpacing(4)
        layout.addWidget(self.title_label)
        layout.addWidget(self.body_label)
        self.setAccessibleName(self.tr("Notification: %1").replace("%1", title))
        self.setFixedWidth(_WIDTH)
        self._timeout_ms = timeout_ms
        self._timer = QTimer(self, singleShot=True, interval=max(0, timeout_ms))
        self._timer.timeout.connect(self.close)

    @staticmethod
    def _label(text: str, name: str) -> QLabel:
        label = QLabel(text)
        label.setObjectName(name)
        label.setTextFormat(Qt.TextFormat.PlainText)  # server text never becomes markup
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        return label

    def pop_up(self, above: QRect | None = None) -> None:
        """Show in the bottom-right corner of the screen, or above another toast."""
        self.adjustSize()
        screen = QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen else QRect(0, 0, 1280, 800)
        bottom = (above.top() if above is not None else area.bottom()) - _MARGIN
        self.move(QPoint(area.right() - self.width() - _MARGIN, bottom - self.height()))
        self.show()
        if self._timeout_ms > 0:
            self._timer.start()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit()
            self.close()
        super().mouseReleaseEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._timer.stop()
        self.closed.emit()
        super().closeEvent(event)
