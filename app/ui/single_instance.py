"""One running copy per user: a second launch asks the first to show its history window."""

from __future__ import annotations

import getpass
import hashlib
import logging

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from app import APP_ID

log = logging.getLogger(__name__)

_SHOW = b"show\n"


def default_key(scope: str = "") -> str:
    """A local-socket name unique to this user (and to ``scope``, e.g. a data folder)."""
    digest = hashlib.sha256(f"{getpass.getuser()}\0{scope}".encode()).hexdigest()[:16]
    return f"{APP_ID}-{digest}"


class SingleInstance(QObject):
    """Owns the per-user local socket while this copy runs.

    Signals (GUI thread):
        activated(): another launch asked this copy to show its window.
    """

    activated = Signal()

    def __init__(self, key: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self._server: QLocalServer | None = None

    def notify_running(self, timeout_ms: int = 1000) -> bool:
        """True when another copy runs (and was asked to show itself)."""
        sock = QLocalSocket()
        sock.connectToServer(self.key)
        if not sock.waitForConnected(timeout_ms):
            return False
        sock.write(_SHOW)
        sock.flush()
        sock.waitForBytesWritten(timeout_ms)
        sock.disconnectFromServer()
        return True

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
        if isinstance(sock, QLocalSocket) and bytes(sock.readAll().data()).startswith(b"show"):
            self.activated.emit()
