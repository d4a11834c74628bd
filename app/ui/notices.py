"""The messages and questions the tray puts to the person, worded in one place.

``inform(title, message)`` and ``ask_yes_no(title, question)`` are injected (tests record
them); by default a message box, or the log where nobody could see a box (offscreen).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QMessageBox

log = logging.getLogger(__name__)

AskYesNo = Callable[[str, str], bool]  # (title, question) -> yes?
Inform = Callable[[str, str], None]  # (title, message)

_HEADLESS = frozenset({"offscreen", "minimal"})


def ask_yes_no(title: str, question: str) -> bool:
    answer = QMessageBox.question(None, title, question)
    return answer == QMessageBox.StandardButton.Yes


def inform(title: str, message: str) -> None:
    """A message box; without a screen (offscreen) nobody could close it: logged instead."""
    if QGuiApplication.platformName() in _HEADLESS:
        log.warning("%s: %s", title, message)
        return
    QMessageBox.information(None, title, message)


class Notices(QObject):
    """Tells the person what they need to know, in their language. GUI thread only."""

    def __init__(
        self,
        *,
        inform: Inform = inform,
        ask_yes_no: AskYesNo = ask_yes_no,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._inform = inform
        self._ask = ask_yes_no

    def history_moved_aside(self, aside: Path) -> None:
        self._inform(
            self.tr("Announcement history damaged"),
            self.tr(
                "Your announcement history could not be read: the file is damaged. It was "
                "moved aside to:\n%1\n\nTray Notifier starts with a new, empty history. "
                "New announcements arrive as usual."
            ).replace("%1", str(aside)),
        )

    def settings_not_saved(self, reason: str) -> None:
        self._inform(
            self.tr("Settings"),
            self.tr("The settings could not be saved: %1").replace("%1", reason),
        )

    def autostart_failed(self, reason: str) -> None:
        self._inform(
            self.tr("Start at login"),
            self.tr("Start at login could not be changed: %1").replace("%1", reason),
        )

    def language_after_restart(self, _language: str = "") -> None:
        self._inform(
            self.tr("Language"),
            self.tr("The new language is used after Tray Notifier restarts."),
        )

    def keep_login_this_run_only(self) -> bool:
        """The keyring refused the login: stay logged in for this run only?"""
        return self._ask(
            self.tr("Keyring not available"),
            self.tr(
                "You are logged in, but your login cannot be saved: the system keyring is "
                "not available or locked.\n\nStay logged in for this run only? You will "
                "have to log in again next time."
            ),
        )
