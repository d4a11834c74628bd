"""The login conversation: the dialog, the attempt in flight, and what a failed one means; and
the sign-in with the organisation account (single sign-on), which the worker carries out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal

from app.core.login_failure import FailureKind, LoginFailure
from app.core.oidc import BrowserPrompt, SignInFailure, SignInOptions
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
    words. How the server signs people in is asked as the dialog opens (and when another
    address is typed); the answer (:meth:`options_known`) shows the organisation sign-in
    and hides the password form as the server says. GUI thread only.

    Signals (GUI thread):
        attempt(LoginAttempt): log in with these now.
        optionsWanted(str server_url): how does this server sign people in? (answer:
            :meth:`options_known`).
        signIn(str server_url): sign in with the organisation account there now (answers:
            :meth:`sign_in_waiting`, :meth:`sign_in_failed`, or :meth:`succeeded`).
        signInCancelled(): stop the sign-in in progress.
    """

    attempt = Signal(LoginAttempt)
    optionsWanted = Signal(str)
    signIn = Signal(str)
    signInCancelled = Signal()

    def __init__(self, settings: Settings, notices: Notices, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._notices = notices
        self._dialog: LoginDialog | None = None
        self._pending: LoginAttempt | None = None  # in flight: repeated for "this run only"
        self._signing_in = False  # a sign-in with the organisation account is in flight

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
        dialog.serverChosen.connect(self._ask_options)
        dialog.signInRequested.connect(self.request_sign_in)
        dialog.signInCancelRequested.connect(self.cancel_sign_in)
        dialog.finished.connect(lambda _result: self._closed(dialog))
        self._dialog = dialog
        if reason:
            dialog.show_error(reason)
        dialog.show()
        dialog.ask_sign_in_options()

    def request(self, server_url: str, username: str, password: str) -> None:
        """Log in (from the dialog, or the demo)."""
        if self._settings.server_fixed():
            server_url = self._settings.config.server_url
        if self._dialog is not None:
            self._dialog.set_busy(True)
        self._start(LoginAttempt(server_url, username, password))

    def _ask_options(self, server_url: str) -> None:
        if self._settings.server_fixed():
            server_url = self._settings.config.server_url
        self.optionsWanted.emit(server_url)

    def options_known(self, options: SignInOptions) -> None:
        """How a server signs people in (the worker asked it): the dialog follows."""
        if self._dialog is not None:
            self._dialog.set_sign_in_options(options)

    def request_sign_in(self, server_url: str) -> None:
        """Sign in with the organisation account (from the dialog)."""
        if self._settings.server_fixed():
            server_url = self._settings.config.server_url
        self._signing_in = True
        self.signIn.emit(server_url)

    def sign_in_waiting(self, prompt: BrowserPrompt) -> None:
        """The provider's page is open in the browser: the dialog can offer its address."""
        if self._dialog is not None:
            self._dialog.sign_in_waiting(prompt)

    def sign_in_failed(self, failure: SignInFailure) -> None:
        """The sign-in ended without a login: the dialog says why (nothing changed)."""
        log.info("sign-in failed (%s): %s", failure.kind.value, failure.failure.message)
        self._signing_in = False
        if self._dialog is not None:
            self._dialog.show_sign_in_failure(failure)

    def cancel_sign_in(self) -> None:
        """Stop the sign-in in progress (Cancel sign-in, the dialog closed, quit)."""
        if self._signing_in:
            self.signInCancelled.emit()

    def _start(self, attempt: LoginAttempt) -> None:
        self._pending = attempt
        self.attempt.emit(attempt)

    def succeeded(self, _username: str = "") -> None:
        """A session started: the dialog closes, the password is forgotten."""
        self._pending = None
        self._signing_in = False
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
        """Close the dialog (on quit); a sign-in in progress is cancelled."""
        self.cancel_sign_in()
        dialog, self._dialog = self._dialog, None
        if dialog is not None:
            dialog.close()
            dialog.deleteLater()

    def _closed(self, dialog: LoginDialog) -> None:
        if self._dialog is dialog:
            self._dialog = None
        dialog.deleteLater()
