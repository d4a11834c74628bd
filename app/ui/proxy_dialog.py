"""The proxy dialog: a proxy on the way asked for credentials (HTTP 407); the person gives the
proxy's user name and password, which are kept in the system keyring as ``proxy-login`` keeps
them. The dialog only asks: the proxy flow stores them and reconnects."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME
from app.core.proxy import ProxyCredentials
from app.ui import widgets
from app.ui.icons import app_icon


class ProxyDialog(QDialog):
    """Asks for the proxy's user name and password; the password field is masked, and the
    password is forgotten when the dialog closes (it lives in no widget after that).

    Signals (GUI thread):
        saveRequested(ProxyCredentials): Save chosen with both fields filled (the dialog goes
            busy until :meth:`show_not_stored` or it is closed).
    """

    saveRequested = Signal(ProxyCredentials)

    def __init__(self, proxy: str, *, refused: bool = False, parent: QWidget | None = None) -> None:
        """``proxy``: the proxy's address, shown as plain text; ``refused``: the proxy refused
        the credentials it was given (said above the fields)."""
        super().__init__(parent)
        self.setObjectName("proxyDialog")
        self.setWindowTitle(self.tr("Proxy credentials — %1").replace("%1", APP_NAME))
        self.setWindowIcon(app_icon())
        self.setStyleSheet(widgets.stylesheet())
        self.setMinimumWidth(440)
        heading = QLabel(self.tr("The proxy asks for a user name and password"), self)
        heading.setObjectName("dialogHeading")
        heading.setWordWrap(True)
        self.proxy_label = widgets.plain_label("", self)  # the address: never markup
        self.set_proxy(proxy)
        self.refused_label = widgets.plain_label(
            self.tr("The proxy refused these credentials. Check them and try again."), self
        )
        self.refused_label.setObjectName("errorLabel")
        self.refused_label.setVisible(refused)
        self.user_edit = QLineEdit(self)
        self.user_edit.setAccessibleName(self.tr("Proxy user name"))
        self.password_edit = QLineEdit(self)
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.password_edit.setAccessibleName(self.tr("Proxy password"))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.addRow(self.tr("&User name:"), self.user_edit)
        form.addRow(self.tr("&Password:"), self.password_edit)
        hint = widgets.plain_label(
            self.tr(
                "They are kept in the system keyring and sent to this proxy only. The network "
                "administrator can tell you which account to use."
            ),
            self,
        )
        hint.setObjectName("hint")
        self.error_label = widgets.plain_label("", self)
        self.error_label.setObjectName("errorLabel")
        self.error_label.hide()
        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(
            self.tr("&Save"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.cancel_button = self.buttons.addButton(
            self.tr("Cancel"), QDialogButtonBox.ButtonRole.RejectRole
        )
        self.save_button.setDefault(True)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(18, 16, 18, 14)
        layout.setSpacing(10)
        layout.addWidget(heading)
        layout.addWidget(self.proxy_label)
        layout.addWidget(self.refused_label)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)
        self.user_edit.setFocus(Qt.FocusReason.OtherFocusReason)

    def set_proxy(self, proxy: str) -> None:
        self.proxy_label.setText(self.tr("Proxy: %1").replace("%1", proxy))

    def set_refused(self, refused: bool) -> None:
        """Say (or no longer say) that the proxy refused the credentials given."""
        self.refused_label.setVisible(refused)
        self.set_busy(False)
        if refused:
            self.password_edit.clear()
            self.password_edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self.adjustSize()

    @property
    def refused(self) -> bool:
        return not self.refused_label.isHidden()

    def submit(self) -> None:
        """Validate; when both fields are filled, go busy and emit ``saveRequested``."""
        user = self.user_edit.text().strip()
        if not user:
            self._fail(self.tr("Enter the proxy user name."), self.user_edit)
            return
        password = self.password_edit.text()
        if not password:
            self._fail(self.tr("Enter the proxy password."), self.password_edit)
            return
        self.error_label.hide()
        self.set_busy(True)
        self.saveRequested.emit(ProxyCredentials(user, password))

    def set_busy(self, busy: bool) -> None:
        for w in (self.user_edit, self.password_edit, self.save_button):
            w.setEnabled(not busy)

    def show_not_stored(self) -> None:
        """The credentials could not be kept (the keyring): say so, let the person retry."""
        self.set_busy(False)
        self._fail(
            self.tr(
                "The credentials cannot be saved: the system keyring is not available or locked."
                " Unlock it and try again."
            ),
            self.password_edit,
        )

    def done(self, result: int) -> None:
        """Closing for any reason forgets the typed password."""
        self.password_edit.clear()
        super().done(result)

    def _fail(self, message: str, field: QLineEdit) -> None:
        self.error_label.setText(message)
        self.error_label.show()
        self.adjustSize()
        field.setFocus(Qt.FocusReason.OtherFocusReason)
        field.selectAll()
