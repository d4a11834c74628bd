"""Small pieces the windows share: priority names and chips, plain-text labels, times, the
link confirmation, and the windows' stylesheet. Server text only ever reaches the screen
through widgets made here or explicitly set to plain text."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QCoreApplication, QDateTime, QLocale, Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QGuiApplication, QPainter, QPixmap
from PySide6.QtWidgets import QLabel, QMessageBox, QSizePolicy, QWidget

from app import resources
from app.core.links import link_for_display, safe_link
from app.core.model import Priority

ConfirmLink = Callable[[QWidget, str], bool]
"""Asks the user whether to open the address (shown in full); True to open it."""
OpenUrl = Callable[[QUrl], bool]

_HEADLESS_PLATFORMS = frozenset({"offscreen", "minimal"})  # they warn on raise()
_C_LOCALE_FORMAT = "d MMM yyyy, HH:mm"  # unambiguous English for the C locale

PRIORITY_COLORS = {
    Priority.LOW: QColor("#6b7280"),
    Priority.NORMAL: QColor("#2563eb"),
    Priority.HIGH: QColor("#d97706"),
    Priority.URGENT: QColor("#dc2626"),
}


def priority_name(priority: Priority) -> str:
    """The translated name of a priority, for people."""
    names = {
        Priority.LOW: QCoreApplication.translate("Priority", "Low"),
        Priority.NORMAL: QCoreApplication.translate("Priority", "Normal"),
        Priority.HIGH: QCoreApplication.translate("Priority", "High"),
        Priority.URGENT: QCoreApplication.translate("Priority", "Urgent"),
    }
    return names[priority]


def priority_dot(priority: Priority, size: int = 12) -> QPixmap:
    """A small disc in the priority's colour (list decorations)."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(PRIORITY_COLORS[priority])
    painter.drawEllipse(1, 1, size - 2, size - 2)
    painter.end()
    return pixmap


def plain_label(text: str = "", parent: QWidget | None = None, *, wrap: bool = True) -> QLabel:
    """A label that never interprets markup (server text is plain text), selectable."""
    label = QLabel(parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(
        Qt.TextInteractionFlag.TextSelectableByMouse
        | Qt.TextInteractionFlag.TextSelectableByKeyboard
    )
    label.setText(text)
    return label


class PriorityChip(QLabel):
    """A coloured rounded tag naming a priority ("Urgent"); styled by ``windows.qss``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("priorityChip")
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
        self.set_priority(Priority.NORMAL)

    def set_priority(self, priority: Priority) -> None:
        self.setText(priority_name(priority).upper())
        self.setProperty("priority", priority.value)
        self.setAccessibleName(
            QCoreApplication.translate("Priority", "Priority: %1").replace(
                "%1", priority_name(priority)
            )
        )
        # re-apply the stylesheet: the rule depends on the property
        self.style().unpolish(self)
        self.style().polish(self)


def format_time(when: datetime | None) -> str:
    """A time in the user's locale and time zone, in its short format; "" for None.

    "11/24/26 9:59 AM" in en_US, "2026/11/24 09:59" in zh_CN. The C/POSIX locale (no
    language set, as on many servers and containers) has no real format of its own: its
    "24 11 2026 09:59" reads like a mistake, so it gets "24 Nov 2026, 09:59" instead.
    """
    if when is None:
        return ""
    locale = QLocale()
    local = QDateTime.fromMSecsSinceEpoch(round(when.timestamp() * 1000)).toLocalTime()
    if locale.language() == QLocale.Language.C:
        return locale.toString(local, _C_LOCALE_FORMAT)
    return locale.toString(local, QLocale.FormatType.ShortFormat)


def format_moment(when: datetime, *, now: datetime | None = None) -> str:
    """A moment as :func:`format_time` does, only its time ("08:28", "8:28 AM") when it falls
    on today's date (``now``: the local date's reference, by default the current time)."""
    local = QDateTime.fromMSecsSinceEpoch(round(when.timestamp() * 1000)).toLocalTime()
    today = (
        QDateTime.fromMSecsSinceEpoch(round(now.timestamp() * 1000)).toLocalTime()
        if now is not None
        else QDateTime.currentDateTime()
    )
    if local.date() != today.date():
        return format_time(when)
    return QLocale().toString(local.time(), QLocale.FormatType.ShortFormat)


def withdrawn_text(when: datetime, *, now: datetime | None = None) -> str:
    """A revoked announcement, kept in the history: "Withdrawn at 08:28" (on an earlier day
    with its date)."""
    return QCoreApplication.translate("Withdrawn", "Withdrawn at %1").replace(
        "%1", format_moment(when, now=now)
    )


def updated_text(when: datetime, *, now: datetime | None = None) -> str:
    """An announcement its publisher corrected: "Updated at 08:28" (on an earlier day with its
    date)."""
    return QCoreApplication.translate("Updated", "Updated at %1").replace(
        "%1", format_moment(when, now=now)
    )


def ask_to_open_link(parent: QWidget, url: str) -> bool:
    """The default link confirmation: a dialog that shows the full address first, its host in
    ASCII: a look-alike host (a Cyrillic letter among Latin ones) shows as ``xn--...``."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle(QCoreApplication.translate("LinkConfirmation", "Open link?"))
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText(
        QCoreApplication.translate("LinkConfirmation", "Open this address in your web browser?")
        + "\n\n"
        + (link_for_display(url) or url)
    )
    open_button = box.addButton(
        QCoreApplication.translate("LinkConfirmation", "Open"),
        QMessageBox.ButtonRole.AcceptRole,
    )
    box.addButton(
        QCoreApplication.translate("LinkConfirmation", "Cancel"),
        QMessageBox.ButtonRole.RejectRole,
    )
    box.setDefaultButton(open_button)
    box.exec()
    return box.clickedButton() is open_button


def open_link(
    parent: QWidget,
    url: str | None,
    *,
    confirm: ConfirmLink = ask_to_open_link,
    opener: OpenUrl = QDesktopServices.openUrl,
) -> bool:
    """Open ``url`` in the browser if it is a safe web address and the user confirms it."""
    link = safe_link(url)
    if link is None or not confirm(parent, link):
        return False
    return bool(opener(QUrl(link, QUrl.ParsingMode.StrictMode)))


def tab_order(*chain: QWidget) -> None:
    """Tab moves through ``chain`` in this order."""
    for first, second in itertools.pairwise(chain):
        QWidget.setTabOrder(first, second)


def bring_to_front(window: QWidget) -> None:
    """Show, raise and activate a top-level window (platforms without windows only show it)."""
    window.show()
    if QGuiApplication.platformName() not in _HEADLESS_PLATFORMS:
        window.raise_()
        window.activateWindow()


def stylesheet() -> str:
    """The windows' stylesheet (``resources/styles/windows.qss``)."""
    return resources.path("styles", "windows.qss").read_text(encoding="utf-8")
