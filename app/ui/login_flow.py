"""The login conversation: the dialog, the attempt in flight, and what a failed one means."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from app.core.login_failure import FailureKind, LoginFailure
from app.ui.login_dialog import LoginDialog
from app.ui.notices import Notices
from app.ui.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    server_url: str
    username: str
    password: str = field(repr=False)
    this_run_only: bool = False  # keep the tokens in memory: the keyring refused them


class LoginFlow(QObject):
    """Asks for a login (the dialog), hands each attempt on, and follows it to its end.

    Rules kept here: a server IT locked (or the environment set) is the one logged in to,
    whatever was typed; a login the keyring cannot keep is offered for this run only (the
    attempt is repeated with ``this_run_only``); a failure is shown in the dialog in plain
    words. GUI thread only.

    Signals (GUI thread):
        attempt(LoginAttempt): log in with these now.
    """

    attempt = Signal(LoginAttempt)

    def __init__(self, settings: Settings, notices: Notices, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._notices = notices
        self._dialog: LoginDialog | None = None
        self._pending: LoginAttempt | None = None  # in flight: repeated for "this run only"

    @property
    def dialog(self) -> LoginDialog | None:
        """The login dialog while it is open."""
        return self._dialog

    def show(self, reason: str = "") -> None:
        """Open the login dialog, or bring it to the front; ``reason`` (words for the person)
        says why a login is needed again, in the dialog."""
        if self._dialog is not None:
            if reason:
                self._dialog.show_error(reason)
            self._dialog.raise_()
            self._dialog.activateWindow()
            return
        cfg = self._settings.config
        dialog = LoginDialog(
            cfg.server_url,
            cfg.username,
            server_fixed=self._settings.server_fixed(),
            profile=cfg.auth,
        )
        dialog.loginRequested.connect(self.request)
        dialog.finished.connect(lambda _result: self._closed(dialog))
        self._dialog = dialog
        if reason:
            dialog.show_error(reason)
        dialog.show()

    def request(self, server_url: str, username: str, password: str) -> None:
        """Log in (from the dialog, or the demo)."""
        if self._settings.server_fixed():
            server_url = self._settings.config.server_url
        if self._dialog is not None:
            self._dialog.set_busy(True)
        self._start(LoginAttempt(server_url, username, password))

    def _start(self, attempt: LoginAttempt) -> None:
        self._pending = attempt
        self.attempt.emit(attempt)

    def succeeded(self, _username: str = "") -> None:
        """A session started: the dialog closes, the password is forgotten."""
        self._pending = None
        if self._dialog is not None:
            self._dialog.succeeded()
            self._dialog = None

    def failed(self, failure: LoginFailure) -> None:
        """A login failed: offer this run only when the keyring refused, else say why."""
        log.info("login failed (%s): %s", failure.kind.value, failure.message)
        pending, self._pending = self._pending, None
        if (
            failure.kind is FailureKind.KEYRING
            and pending is not None
            and not pending.this_run_only
            and self._notices.keep_login_this_run_only()
        ):
            self._start(LoginAttempt(pending.server_url, pending.username, pending.password, True))
            return
        if self._dialog is not None:
            self._dialog.show_failure(failure)

    def close(self) -> None:
        """Close the dialog (on quit)."""
        dialog, self._dialog = self._dialog, None
        if dialog is not None:
            dialog.close()
            dialog.deleteLater()

    def _closed(self, dialog: LoginDialog) -> None:
        if self._dialog is dialog:
            self._dialog = None
        dialog.deleteLater()
