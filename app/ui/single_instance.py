"""One running copy per user, and the channel the command line tells it through.

A second launch asks the first to show its history window; ``login`` and ``logout`` on the
command line tell it that the stored login changed, and it follows at once (:func:`tell_running`).
One line per message, over the per-user local socket: ``show``, ``login KEY``, ``logout KEY``
(``KEY``: :func:`~app.core.secrets.login_key`, the user and the server's address: no secret).
"""

from __future__ import annotations

import getpass
import hashlib
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from app import APP_ID

log = logging.getLogger(__name__)

SHOW, LOGIN, LOGOUT = "show", "login", "logout"
_MAX_LINE = 4096  # a message is one short line


def default_key(scope: str = "") -> str:
    """A local-socket name unique to this user (and to ``scope``, e.g. a data folder)."""
    digest = hashlib.sha256(f"{getpass.getuser()}\0{scope}".encode()).hexdigest()[:16]
    return f"{APP_ID}-{digest}"


def tell_running(key: str, word: str, argument: str = "", *, timeout_ms: int = 1000) -> bool:
    """Send one message to the copy running on ``key``; False when none runs."""
    sock = QLocalSocket()
    sock.connectToServer(key)
    if not sock.waitForConnected(timeout_ms):
        return False
    line = f"{word} {argument}".strip() + "\n"
    sock.write(line.encode("utf-8"))
    sock.flush()
    sent = sock.waitForBytesWritten(timeout_ms) or sock.bytesToWrite() == 0
    sock.disconnectFromServer()
    return sent


class SingleInstance(QObject):
    """Owns the per-user local socket while this copy runs.

    Signals (GUI thread):
        activated(): another launch asked this copy to show its window.
        loginStored(str): ``login`` on the command line stored a new login (its key).
        loggedOut(str): ``logout`` on the command line is ending a login (its key).
    """

    activated = Signal()
    loginStored = Signal(str)
    loggedOut = Signal(str)

    def __init__(self, key: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self._server: QLocalServer | None = None

    def notify_running(self, timeout_ms: int = 1000) -> bool:
        """True when another copy runs (and was asked to show itself)."""
        return tell_running(self.key, SHOW, timeout_ms=timeout_ms)

    def listen(self) -> bool:
        """Become the running copy; False (and logged) when the socket cannot be taken."""
        server = QLocalServer(self)
        server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        if not server.listen(self.key):
            # a crashed copy can leave its socket file behind: remove it and try once more
            QLocalServer.removeServer(self.key)
            if not server.listen(self.key):
                log.warning(
                    "single instance socket %s unavailable: %s", self.key, server.errorString()
                )
                return False
        server.newConnection.connect(self._accept)
        self._server = server
        return True

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _accept(self) -> None:
        assert self._server is not None
        while (sock := self._server.nextPendingConnection()) is not None:
            sock.readyRead.connect(self._read)
            sock.disconnected.connect(sock.deleteLater)

    def _read(self) -> None:
        sock = self.sender()
        if not isinstance(sock, QLocalSocket):
            return
        while sock.canReadLine():
            raw = bytes(sock.readLine(_MAX_LINE).data())
            word, _, argument = raw.decode("utf-8", "replace").strip().partition(" ")
            if word == SHOW:
                self.activated.emit()
            elif word == LOGIN:
                self.loginStored.emit(argument)
            elif word == LOGOUT:
                self.loggedOut.emit(argument)
            else:
                log.warning("ignored an unknown message on the single instance socket")
