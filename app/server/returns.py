"""When the clients of a stopping process come back (issue 24).

A process that stops closes every stream it holds (``event: close``, reason ``shutdown``), and
every client then waits the stream's ``retry:`` time, plus at most a quarter of jitter, before
it reconnects (DESIGN.md's client rules; the tray's :class:`~app.core.backoff.Backoff`). With
one ``retry:`` for all, a fleet comes back within that quarter: 100,000 trays in under a
second, a spike no set of processes takes, whose excess is refused, times out and comes back
again. So each stream is told a ``retry:`` of its own before its ``event: close``: the usual
time plus a random share of a window that grows with the streams this process closes, at
:attr:`~app.server.config.HttpSettings.return_rate` streams a second, and is at most
:attr:`~app.server.config.HttpSettings.return_window` seconds. A small office (a few hundred
streams) comes back as before; a process of 16,000 spreads them over 16 s, a steady flow the
processes that remain or restart can take. The wait a client is asked for is the server asking
for longer, which DESIGN.md allows ("unless the server asks for longer"); the next stream's
``retry:`` puts it back to the usual time.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from app.server.config import HttpSettings


class ReturnSpread:
    """The ``retry:`` time of each stream closed by a shutdown: :meth:`begin` with the number of
    streams closing, then :meth:`retry_ms` once per stream."""

    def __init__(self, settings: HttpSettings, rng: Callable[[], float] = random.random) -> None:
        self._retry_ms = settings.retry_ms
        self._rate = settings.return_rate
        self._max_ms = settings.return_window * 1000.0
        self._rng = rng
        self._window_ms = 0.0

    def begin(self, streams: int) -> None:
        """``streams`` are about to be closed: the window their clients come back over."""
        self._window_ms = min(self._max_ms, max(streams, 0) * 1000.0 / self._rate)

    @property
    def window_ms(self) -> float:
        return self._window_ms

    def retry_ms(self) -> int:
        """One stream's ``retry:``: the usual time plus its random share of the window."""
        return self._retry_ms + int(self._rng() * self._window_ms)
