"""The proxy conversation: a proxy asked for credentials (HTTP 407), the dialog asks the person
once, the worker keeps them in the keyring (as ``proxy-login`` does) and the tray reconnects."""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal

from app.core.errors import ErrorKind
from app.core.login_failure import FailureKind, LoginFailure
from app.core.model import ConnState, Status
from app.core.proxy import ProxyCredentials
from app.ui.proxy_dialog import ProxyDialog

log = logging.getLogger(__name__)

_PROXY_KINDS = frozenset({ErrorKind.PROXY_AUTH, ErrorKind.PROXY_REFUSED})


class ProxyFlow(QObject):
    """Opens the proxy dialog on a 407, hands the credentials on, and asks for a reconnect.

    Rules kept here: the dialog opens at the first 407, and again only after a person's action
    (Save, a login attempt) or a connection that worked, so a proxy that keeps refusing never
    brings it back by itself: Cancel leaves the tray's error state, which names proxy-login.
    A 407 with the stored credentials says the proxy refused them. The password goes from the
    dialog to the worker and nowhere else: never logged, never in the settings. GUI thread.

    Signals (GUI thread):
        store(ProxyCredentials): keep these in the keyring (answers: :meth:`stored`,
            :meth:`not_stored`).
        reconnectRequested(): the credentials asked for by the stream's 407 are kept: connect
            again now.
    """

    store = Signal(ProxyCredentials)
    reconnectRequested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._dialog: ProxyDialog | None = None
        self._may_ask = True  # a 407 may open the dialog (at most once per person's action)
        self._ended = False  # closed on quit: statuses queued before it ask nothing
        self._reconnect = True  # after Save: the stream's 407 reconnects; a login's is retried

    @property
    def dialog(self) -> ProxyDialog | None:
        """The proxy dialog while it is open."""
        return self._dialog

    def status_changed(self, status: Status) -> None:
        """The worker's status: a 407 opens the dialog (when it may); a connection re-arms it."""
        if status.error in _PROXY_KINDS:
            self._ask(status.proxy, refused=status.error is ErrorKind.PROXY_REFUSED, stream=True)
        elif status.state is ConnState.CONNECTED:
            self._may_ask = True

    def login_failed(self, failure: LoginFailure) -> None:
        """A login attempt met the proxy's 407: ask for its credentials too."""
        if failure.kind is FailureKind.PROXY_AUTH:
            self._ask(failure.proxy, refused=failure.proxy_refused, stream=False)

    def allow_again(self) -> None:
        """A person acted (a login attempt): the next 407 may ask again."""
        self._may_ask = True

    def _ask(self, proxy: str, *, refused: bool, stream: bool) -> None:
        self._reconnect = stream
        if self._dialog is not None:  # already asking: say what the proxy said last
            self._dialog.set_proxy(proxy)
            self._dialog.set_refused(refused)
            return
        if self._ended:
            return
        if not self._may_ask:
            log.info("the proxy asks for credentials again: not asking until the person acts")
            return
        self._may_ask = False
        dialog = ProxyDialog(proxy, refused=refused)
        dialog.saveRequested.connect(self.store)
        dialog.finished.connect(lambda _result: self._closed(dialog))
        self._dialog = dialog
        dialog.show()  # a new window comes to the front by itself
        dialog.activateWindow()

    def stored(self) -> None:
        """The credentials are in the keyring: close the dialog and reconnect with them (a
        refusal of these may ask once more); after a login's 407 the login dialog, still open,
        is where the person logs in again."""
        if self._ended:
            return
        self._may_ask = True
        dialog, self._dialog = self._dialog, None
        if dialog is not None:
            dialog.accept()
            dialog.deleteLater()
        if self._reconnect:
            self.reconnectRequested.emit()

    def not_stored(self, _reason: str) -> None:
        """The keyring could not keep them (the reason is in the log): the dialog says so."""
        if self._dialog is not None:
            self._dialog.show_not_stored()

    def close(self) -> None:
        """Close the dialog (on quit); nothing is asked after this."""
        self._ended = True
        dialog, self._dialog = self._dialog, None
        if dialog is not None:
            dialog.close()
            dialog.deleteLater()

    def _closed(self, dialog: ProxyDialog) -> None:
        if self._dialog is dialog:  # Cancel, or the window closed: the error state stays
            self._dialog = None
            log.info("proxy credentials not given: the tray stays stopped (proxy-login)")
        dialog.deleteLater()
