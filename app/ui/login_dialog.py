"""The login dialog: server address, user name, password. It asks (the login flow logs in) and
words a failed login for people."""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt, Signal
from PySide6.QtGui import QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME
from app.core import http
from app.core.config import AuthProfile
from app.core.links import safe_link
from app.core.login_failure import FailureKind, LoginFailure
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
    return QCoreApplication.translate("BackendProfile", "Server type: companion")


class LoginDialog(QDialog):
    """Asks for a server address, user name and password; validates them; shows progress and
    the login's errors. Escape or Cancel rejects it; ``succeeded()`` accepts it.

    Signals (emitted on the GUI thread):
        loginRequested(str server_url, str username, str password): fields are valid and the
            user pressed Log in (or Enter); the dialog is busy until ``set_busy(False)``,
            ``show_error()`` or ``succeeded()``.
    """

    loginRequested = Signal(str, str, str)

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
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(self.tr("&Server address:"), self.server_edit)
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
        for edit in (self.server_edit, self.user_edit, self.password_edit):
            if not edit.text():
                edit.setFocus(Qt.FocusReason.OtherFocusReason)
                return
        self.password_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    # ------------------------------------------------------------------ public API

    def submit(self) -> None:
        """Validate the fields; when valid, go busy and emit ``loginRequested``."""
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
        for w in (self.server_edit, self.user_edit, self.password_edit, self.login_button):
            w.setEnabled(not busy)
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
        return failure.message

    def succeeded(self) -> None:
        """The login worked: close the dialog (accepted); the password is forgotten."""
        self.set_busy(False)
        self.accept()

    def done(self, result: int) -> None:
        """Closing for any reason forgets the typed password."""
        self.password_edit.clear()
        super().done(result)

    def _fail(self, message: str, field: QLineEdit) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self._fit_height()
        field.setFocus(Qt.FocusReason.OtherFocusReason)
        field.selectAll()
