"""Reconnect at once after a sleep or when the network comes back.

Sleep is seen as a jump of the wall clock that the monotonic clock did not see (the monotonic
clock stops while the machine sleeps on Linux and macOS). Network changes come from
``QNetworkInformation`` when one of its backends loads on this system.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtNetwork import QNetworkInformation

log = logging.getLogger(__name__)


class WakeMonitor(QObject):
    """Watches for resume from sleep and for the network coming back.

    Signals (GUI thread):
        wokeUp(): the machine resumed from sleep, or the network is reachable again.
    """

    wokeUp = Signal()

    def __init__(
        self,
        *,
        interval_ms: int = 10_000,
        jump: float = 30.0,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._wall, self._mono, self._jump = wall, mono, jump
        self._offset = wall() - mono()
        self._timer = QTimer(self, interval=interval_ms)
        self._timer.timeout.connect(self.check)
        self._reachable: QNetworkInformation.Reachability | None = None
        self._network = self._load_network_information()

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def check(self) -> bool:
        """Compare the clocks; emit wokeUp (and return True) after a jump."""
        offset = self._wall() - self._mono()
        jumped = abs(offset - self._offset) > self._jump
        self._offset = offset
        if jumped:
            log.info("clock jumped (resume from sleep?): reconnecting now")
            self.wokeUp.emit()
        return jumped

    def _load_network_information(self) -> QNetworkInformation | None:
        if not QNetworkInformation.loadBackendByFeatures(QNetworkInformation.Feature.Reachability):
            log.info("no network information backend here: reconnect on wake only")
            return None
        info = QNetworkInformation.instance()
        if info is None:
            return None
        self._reachable = info.reachability()
        info.reachabilityChanged.connect(self._reachability_changed)
        log.info("network information backend: %s", info.backendName())
        return info

    def _reachability_changed(self, reachability: QNetworkInformation.Reachability) -> None:
        was = self._reachable
        self._reachable = reachability
        online = reachability in (
            QNetworkInformation.Reachability.Online,
            QNetworkInformation.Reachability.Site,
        )
        if online and was != reachability:
            log.info("network reachable again (%s): reconnecting now", reachability.name)
            self.wokeUp.emit()
