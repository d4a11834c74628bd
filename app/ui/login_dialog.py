"""The login dialog: server address, then "Sign in with your organisation account" (when the
server offers single sign-on) and the user name and password (when it takes passwords). It
asks (the login flow logs in) and words a failed login or sign-in for people."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QGuiApplication, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME
from app.core import http
from app.core.config import AuthProfile
from app.core.errors import ErrorKind
from app.core.links import safe_link
from app.core.login_failure import FailureKind, LoginFailure
from app.core.oidc import WAIT_TIMEOUT, BrowserPrompt, SignInFailure, SignInOptions
from app.ui import widgets
from app.ui.icons import app_icon


def check_server_url(text: str) -> tuple[str, str]:
    """Validate a server address typed by a person: ``(normalised address, "")`` when usable,
    else ``("", message saying what to do)``."""
    url = text.strip().rstrip("/")
    if not url:
        return "", QCoreApplication.translate(
            "ServerAddress",
            "Enter the server address, for example https://announcements.example.org.",
        )
    if "://" not in url:
        return "", QCoreApplication.translate(
            "ServerAddress",
            "The server address must start with https:// (or http:// for a test server).",
        )
    if safe_link(url) is None:
        return "", QCoreApplication.translate(
            "ServerAddress",
            "This is not a valid server address. Use the form https://announcements.example.org.",
        )
    return url, ""


def profile_text(profile: AuthProfile) -> str:
    """Which backend profile is active, in one line: "Server type: companion" or "Server type:
    token login (/login)" (the login path IT configured)."""
    if profile.style == "token":
        return QCoreApplication.translate(
            "BackendProfile", "Server type: token login (%1)"
        ).replace("%1", profile.login_path)
    if profile.style == "oidc" and profile.issuer:
        return QCoreApplication.translate(
            "BackendProfile", "Server type: organisation sign-in (%1)"
        ).replace("%1", profile.issuer)
    if profile.style == "oidc":
        return QCoreApplication.translate("BackendProfile", "Server type: organisation sign-in")
    return QCoreApplication.translate("BackendProfile", "Server type: companion")


class LoginDialog(QDialog):
    """Asks for a server address, user name and password; validates them; shows progress and
    the login's errors. Escape or Cancel rejects it; ``succeeded()`` accepts it.

    "Sign in with your organisation account" shows once :meth:`set_sign_in_options` says the
    server offers it, above the password form; the password form hides when the server takes
    no passwords. While a sign-in waits for the browser: a line saying so, Copy the address,
    and Cancel sign-in.

    Signals (emitted on the GUI thread):
        loginRequested(str server_url, str username, str password): fields are valid and the
            user pressed Log in (or Enter); the dialog is busy until ``set_busy(False)``,
            ``show_error()`` or ``succeeded()``.
        serverChosen(str server_url): a valid server address was given (shown with one, or
            typed): how does it sign people in? Answer with :meth:`set_sign_in_options`.
        signInRequested(str server_url): sign in with the organisation account there; the
            dialog waits until :meth:`show_sign_in_failure` or ``succeeded()``.
        signInCancelRequested(): stop the sign-in in progress (Cancel sign-in, or the dialog
            closed while it waited).
    """

    loginRequested = Signal(str, str, str)
    serverChosen = Signal(str)
    signInRequested = Signal(str)
    signInCancelRequested = Signal()

    def __init__(
        self,
        server_url: str = "",
        username: str = "",
        parent: QWidget | None = None,
        *,
        server_fixed: bool = False,
        profile: AuthProfile | None = None,
    ) -> None:
        """``server_fixed``: IT locked the server (or the environment set it): shown read-only.
        ``profile``: the configured backend profile, named in a line below the fields."""
        super().__init__(parent)
        self._profile = profile or AuthProfile()
        self._asked = ""  # the server address whose options were asked for last
        self._signing_in = False
        self._sign_in_url = ""  # the provider's page of the sign-in in progress
        self.setObjectName("loginDialog")
        self.setWindowTitle(self.tr("Log in — %1").replace("%1", APP_NAME))
        self.setWindowIcon(app_icon())
        self.setStyleSheet(widgets.stylesheet())
        self.setMinimumWidth(440)
        self._build()
        self.server_edit.setText(server_url)
        if server_fixed:
            self.server_edit.setReadOnly(True)
            self.server_edit.setToolTip(
                self.tr("Set by your IT department: this setting cannot be changed here.")
            )
        self.user_edit.setText(username)
        self._focus_first_empty()
        self.server_edit.editingFinished.connect(self._server_edited)

    def _build(self) -> None:
        logo = QLabel(self)
        logo.setPixmap(app_icon().pixmap(48, 48))
        heading = QLabel(self.tr("Log in"), self)
        heading.setObjectName("dialogHeading")
        intro = QLabel(self.tr("Log in to your organisation's announcement server."), self)
        intro.setWordWrap(True)
        intro_text = QVBoxLayout()
        intro_text.setSpacing(2)
        intro_text.addWidget(heading)
        intro_text.addWidget(intro)
        header = QHBoxLayout()
        header.setSpacing(12)
        header.addWidget(logo, 0, Qt.AlignmentFlag.AlignTop)
        header.addLayout(intro_text, 1)
        self.server_edit = QLineEdit(self)
        self.server_edit.setPlaceholderText("https://announcements.example.org")
        self.server_edit.setAccessibleName(self.tr("Server address"))
        self.user_edit = QLineEdit(self)
        self.user_edit.setAccessibleName(self.tr("User name"))
        self.password_edit = QLineEdit(self)
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName(self.tr("Password"))
        self.sso_button = QPushButton(self.tr("Sign in with your organisation account"), self)
        self.sso_button.setObjectName("ssoButton")
        self.sso_button.setAutoDefault(False)
        self.sso_button.clicked.connect(self.start_sign_in)
        self.or_label = QLabel(self.tr("or log in with a password:"), self)
        self.or_label.setObjectName("hint")
        sso_column = QVBoxLayout()
        sso_column.setContentsMargins(0, 4, 0, 4)
        sso_column.addWidget(self.sso_button)
        sso_column.addWidget(self.or_label)
        self.sso_box = QWidget(self)
        self.sso_box.setLayout(sso_column)
        self.sso_box.hide()  # until the server says it offers it
        form = self.form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(self.tr("&Server address:"), self.server_edit)
        form.addRow(self.sso_box)
        form.addRow(self.tr("&User name:"), self.user_edit)
        form.addRow(self.tr("&Password:"), self.password_edit)
        # one short line: never wrapped (a wrapped label in a form row is cut once the dialog
        # relays out for an error)
        self.profile_label = widgets.plain_label(profile_text(self._profile), self, wrap=False)
        self.profile_label.setObjectName("hint")
        form.addRow("", self.profile_label)

        self.clear_warning = widgets.plain_label(
            self.tr(
                "This address is not encrypted (http://): your password would travel in plain "
                "text. Use https:// unless your IT department says otherwise."
            ),
            self,
        )
        self.clear_warning.setObjectName("errorLabel")
        self.clear_warning.hide()
        self.server_edit.textChanged.connect(self._warn_if_in_clear)

        self.error_label = widgets.plain_label("", self)
        self.error_label.setObjectName("errorLabel")
        self.error_label.hide()

        self.progress = QProgressBar(self)
        self.progress.setRange(0, 0)  # busy indicator
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(6)
        self.progress.setAccessibleName(self.tr("Logging in"))
        self.busy_label = QLabel(self.tr("Logging in…"), self)
        busy_row = QHBoxLayout()
        busy_row.addWidget(self.busy_label)
        busy_row.addWidget(self.progress, 1)
        self.busy_box = QWidget(self)
        self.busy_box.setLayout(busy_row)
        busy_row.setContentsMargins(0, 0, 0, 0)
        self.busy_box.hide()

        self.waiting_label = QLabel(self.tr("Waiting for the sign-in in your browser…"), self)
        self.waiting_progress = QProgressBar(self)
        self.waiting_progress.setRange(0, 0)
        self.waiting_progress.setTextVisible(False)
        self.waiting_progress.setMaximumHeight(6)
        self.waiting_progress.setAccessibleName(self.tr("Signing in"))
        self.copy_address_button = QPushButton(self.tr("Copy the address"), self)
        self.copy_address_button.setAutoDefault(False)
        self.copy_address_button.setToolTip(
            self.tr("If no browser window opened, paste this address into your browser.")
        )
        self.copy_address_button.setEnabled(False)
        self.copy_address_button.clicked.connect(self._copy_address)
        self.cancel_sign_in_button = QPushButton(self.tr("Cancel sign-in"), self)
        self.cancel_sign_in_button.setAutoDefault(False)
        self.cancel_sign_in_button.clicked.connect(self.cancel_sign_in)
        waiting_top = QHBoxLayout()
        waiting_top.setContentsMargins(0, 0, 0, 0)
        waiting_top.addWidget(self.waiting_label)
        waiting_top.addWidget(self.waiting_progress, 1)
        waiting_buttons = QHBoxLayout()
        waiting_buttons.setContentsMargins(0, 0, 0, 0)
        waiting_buttons.addStretch(1)
        waiting_buttons.addWidget(self.copy_address_button)
        waiting_buttons.addWidget(self.cancel_sign_in_button)
        waiting_column = QVBoxLayout()
        waiting_column.setContentsMargins(0, 0, 0, 0)
        waiting_column.addLayout(waiting_top)
        waiting_column.addLayout(waiting_buttons)
        self.waiting_box = QWidget(self)
        self.waiting_box.setLayout(waiting_column)
        self.waiting_box.hide()

        self.buttons = QDialogButtonBox(self)
        self.login_button = self.buttons.addButton(
            self.tr("&Log in"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.addButton(
            self.tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole
        )
        self.login_button.setDefault(True)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        layout.setSpacing(12)
        layout.addLayout(header)
        layout.addLayout(form)
        layout.addWidget(self.clear_warning)
        layout.addWidget(self.error_label)
        layout.addWidget(self.busy_box)
        layout.addWidget(self.waiting_box)
        layout.addWidget(self.buttons)

    def _warn_if_in_clear(self, text: str) -> None:
        """Before a password goes out: say so when the address is plain HTTP off this computer."""
        self.clear_warning.setVisible(http.in_clear(text))
        self._fit_height()

    def _fit_height(self, *, shrink: bool = True) -> None:
        """As tall as the wrapped messages need at the current width. Qt gives a window no
        more than its messages' unwrapped height, and a long error then squashes the fields:
        the messages shown or hidden, the height follows (``shrink``); a narrower dialog grows.
        """
        if not self.isVisible():
            return  # showEvent fits it, at its real width
        layout = self.layout()
        assert layout is not None
        layout.activate()
        need = layout.totalHeightForWidth(self.width())
        self.setMinimumHeight(need)
        if self.height() < need or (shrink and self.height() != need):
            self.resize(self.width(), need)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._fit_height()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_height(shrink=False)

    def _focus_first_empty(self) -> None:
        if not self.password_form_shown():
            if not self.server_edit.text():
                self.server_edit.setFocus(Qt.FocusReason.OtherFocusReason)
            elif self.sso_box.isVisibleTo(self):
                self.sso_button.setFocus(Qt.FocusReason.OtherFocusReason)
            return
        for edit in (self.server_edit, self.user_edit, self.password_edit):
            if not edit.text():
                edit.setFocus(Qt.FocusReason.OtherFocusReason)
                return
        self.password_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    # ------------------------------------------------------------------ how to sign in

    def password_form_shown(self) -> bool:
        """Whether the user name and password fields are offered (the server takes passwords,
        or it is not known yet)."""
        return self.form.isRowVisible(self.password_edit)

    def sso_offered(self) -> bool:
        """Whether "Sign in with your organisation account" is offered."""
        return self.sso_box.isVisibleTo(self)

    def ask_sign_in_options(self) -> None:
        """Ask how the server in the address field signs people in (``serverChosen``), once
        per address; nothing when the field holds no valid address."""
        url, problem = check_server_url(self.server_edit.text())
        if problem or url == self._asked:
            return
        self._asked = url
        self.serverChosen.emit(url)

    def _server_edited(self) -> None:
        url, problem = check_server_url(self.server_edit.text())
        if problem or url == self._asked:
            return
        self.set_sign_in_options(SignInOptions(url))  # passwords, until the server says
        self.ask_sign_in_options()

    def set_sign_in_options(self, options: SignInOptions) -> None:
        """How the server signs people in: "Sign in with your organisation account" shown
        first when it offers it, the password form only when it takes passwords. Options for
        another address than the one in the field are ignored."""
        url, _ = check_server_url(self.server_edit.text())
        if url.rstrip("/") != options.server_url.rstrip("/"):
            return
        sso = options.provider is not None
        passwords = options.password or not sso
        self.sso_box.setVisible(sso)
        self.or_label.setVisible(sso and passwords)
        for field in (self.user_edit, self.password_edit):
            self.form.setRowVisible(field, passwords)
        self.login_button.setVisible(passwords)
        self.login_button.setDefault(passwords)
        self.sso_button.setDefault(not passwords)
        self._fit_height()
        if not self._signing_in:
            self._focus_first_empty()

    def start_sign_in(self) -> None:
        """Sign in with the organisation account: validate the address, wait, and emit
        ``signInRequested``."""
        url, problem = check_server_url(self.server_edit.text())
        if problem:
            self._fail(problem, self.server_edit)
            return
        self.server_edit.setText(url)
        self.error_label.hide()
        self._sign_in_url = ""
        self.copy_address_button.setEnabled(False)
        self._set_signing_in(True)
        self.signInRequested.emit(url)

    def sign_in_waiting(self, prompt: BrowserPrompt) -> None:
        """The provider's page was opened in the browser: its address can be copied."""
        if self._signing_in:
            self._sign_in_url = prompt.url
            self.copy_address_button.setEnabled(True)

    def cancel_sign_in(self) -> None:
        """Cancel sign-in: stop waiting (the login flow says how it ended)."""
        if self._signing_in:
            self.cancel_sign_in_button.setEnabled(False)
            self.signInCancelRequested.emit()

    def show_sign_in_failure(self, failure: SignInFailure) -> None:
        """The sign-in ended without a login: say why, in plain words; nothing changed."""
        self._set_signing_in(False)
        self._fail(self.sign_in_failure_text(failure), self.sso_button)

    def sign_in_failure_text(self, failure: SignInFailure) -> str:
        """A sign-in that ended without a login, in plain words."""
        kind = failure.kind
        if kind is ErrorKind.SIGN_IN_CANCELLED:
            return self.tr("The sign-in was cancelled. Nothing was changed.")
        if kind is ErrorKind.SIGN_IN_TIMED_OUT:
            return self.tr(
                "The sign-in was not finished within %1 minutes. Nothing was changed; try again."
            ).replace("%1", f"{WAIT_TIMEOUT / 60:g}")
        if kind is ErrorKind.NO_SINGLE_SIGN_ON:
            return self.tr("This server does not offer sign-in with an organisation account.")
        if kind is ErrorKind.PROVIDER_REFUSED:
            if failure.reason:
                return self.tr("Your organisation's sign-in did not succeed: %1").replace(
                    "%1", failure.reason
                )
            return self.tr("Your organisation's sign-in did not succeed.")
        return self.failure_text(failure.failure)

    def _set_signing_in(self, waiting: bool) -> None:
        self._signing_in = waiting
        self._enable_form(not waiting)
        self.cancel_sign_in_button.setEnabled(waiting)
        self.waiting_box.setVisible(waiting)
        if not waiting:
            self._sign_in_url = ""
            self.copy_address_button.setEnabled(False)
        self._fit_height()

    def _enable_form(self, enabled: bool) -> None:
        """The fields and the Log in and sign-in buttons: disabled while a login or a sign-in
        runs."""
        for w in (
            self.server_edit,
            self.user_edit,
            self.password_edit,
            self.login_button,
            self.sso_button,
        ):
            w.setEnabled(enabled)

    def _copy_address(self) -> None:
        clipboard = QGuiApplication.clipboard()
        if self._sign_in_url and clipboard is not None:
            clipboard.setText(self._sign_in_url)

    @property
    def signing_in(self) -> bool:
        """A sign-in waits for the browser."""
        return self._signing_in

    # ------------------------------------------------------------------ public API

    def submit(self) -> None:
        """Validate the fields; when valid, go busy and emit ``loginRequested``. With no
        password form (the server takes none), Enter signs in with the organisation account."""
        if self._signing_in:
            return
        if not self.password_form_shown():
            self.start_sign_in()
            return
        url, problem = check_server_url(self.server_edit.text())
        if problem:
            self._fail(problem, self.server_edit)
            return
        username = self.user_edit.text().strip()
        if not username:
            self._fail(self.tr("Enter your user name."), self.user_edit)
            return
        password = self.password_edit.text()
        if not password:
            self._fail(self.tr("Enter your password."), self.password_edit)
            return
        self.server_edit.setText(url)
        self.error_label.hide()
        self.set_busy(True)
        self.loginRequested.emit(url, username, password)

    def set_busy(self, busy: bool) -> None:
        """While busy: fields and Log in disabled, a progress line shown. Cancel stays usable."""
        self._enable_form(not busy)
        self.busy_box.setVisible(busy)
        self._fit_height()
        if not busy:
            self._focus_first_empty()

    def show_error(self, message: str) -> None:
        """Show a login error in plain words (plain text), leave busy, select the password."""
        self.set_busy(False)
        self._fail(message, self.password_edit)

    def show_failure(self, failure: LoginFailure) -> None:
        """Show why a login failed, in plain words (see :meth:`failure_text`)."""
        self.show_error(self.failure_text(failure))

    def failure_text(self, failure: LoginFailure) -> str:
        """A failed login in plain words."""
        kind = failure.kind
        if kind is FailureKind.WRONG_CREDENTIALS:
            if failure.reason:  # the backend's own words (a token-style login)
                return self.tr("The server refused the login: %1").replace("%1", failure.reason)
            return self.tr("The user name or password is wrong. Check both and try again.")
        if kind is FailureKind.UNREACHABLE:
            return self.tr(
                "The server cannot be reached. Check the server address and your network "
                "connection."
            )
        if kind is FailureKind.CERTIFICATE:
            return self.tr(
                "The server's certificate is not trusted. If your organisation uses its own "
                "certificate authority, ask IT to set the CA bundle setting."
            )
        if kind is FailureKind.NOT_SERVER:
            return self.tr("This address is not an announcement server. Check the server address.")
        if kind is FailureKind.KEYRING:
            return self.tr("Your login cannot be saved: the system keyring is not available.")
        if kind is FailureKind.PROXY_AUTH:
            return self.tr(
                "The proxy on the way asks for a user name and password: give them in the proxy"
                " window, then log in again."
            )
        return failure.message

    def succeeded(self) -> None:
        """The login worked: close the dialog (accepted); the password is forgotten."""
        self._set_signing_in(False)
        self.set_busy(False)
        self.accept()

    def done(self, result: int) -> None:
        """Closing for any reason forgets the typed password, and ends a sign-in that waits."""
        self.password_edit.clear()
        if self._signing_in:
            self.signInCancelRequested.emit()
            self._set_signing_in(False)
        super().done(result)

    def _fail(self, message: str, field: QWidget) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self._fit_height()
        if not field.isVisibleTo(self):
            field = self.server_edit
        field.setFocus(Qt.FocusReason.OtherFocusReason)
        if isinstance(field, QLineEdit):
            field.selectAll()
