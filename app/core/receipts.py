"""Receipts the server must get: kept in the history until it has them (no Qt here).

A receipt is queued in the history store first (``HistoryStore.queue_ack``), so it survives a
quit, a crash and a logout, and is sent by :class:`ReceiptQueue` while a session is open:
at once when queued, again whenever the connection comes back (:meth:`ReceiptQueue.wake`),
and every :data:`RETRY` seconds while the server cannot be reached or refuses it.

Today the queue carries acknowledgements (``POST`` to ``endpoints.ack``). Delivered and read
receipts (``POST /receipts``) join as further :class:`ReceiptKind` values with their own
pending list in the store; the sending loop, the retry rule and the outcome of a reply stay
here, in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from typing import Any, Protocol

from app.core.errors import LoginRequired, TrayNotifierError
from app.core.http import Reply
from app.core.store import HistoryStore

log = logging.getLogger(__name__)

RETRY = 30.0  # seconds between attempts while receipts cannot be sent


class ReceiptKind(enum.StrEnum):
    ACKNOWLEDGED = "acknowledged"  # the person pressed Acknowledge


class _Outcome(enum.Enum):
    SENT = "sent"  # everything pending reached the server
    RETRY = "retry"  # the server could not be reached or refused: try again after RETRY
    WAIT = "wait"  # the login is gone: wait until woken (a new session makes a new queue)


class Session(Protocol):
    """What the queue needs of :class:`app.core.auth.AuthSession`."""

    @property
    def endpoints(self) -> Any: ...

    async def request(
        self,
        method: str,
        template: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **values: str,
    ) -> Reply: ...


class ReceiptQueue:
    """Sends the receipts pending in one history store over one session.

    Use it on one asyncio loop: :meth:`run` is the sending task (run it until the session
    ends, then cancel it); :meth:`add` and :meth:`wake` may be called meanwhile. ``on_sent``
    is called with the announcement id of each receipt the server has now. Errors of the
    store are not caught here: they end :meth:`run` (the caller supervises it).
    """

    def __init__(
        self,
        store: HistoryStore,
        session: Session,
        *,
        on_sent: Callable[[str], None] = lambda _id: None,
        retry: float = RETRY,
    ) -> None:
        self._store = store
        self._session = session
        self._on_sent = on_sent
        self._retry = retry
        self._wake = asyncio.Event()
        self._wake.set()  # send what an earlier run left pending as soon as run() starts

    def add(self, ann_id: str, kind: ReceiptKind = ReceiptKind.ACKNOWLEDGED) -> None:
        """Queue a receipt (idempotent: an acknowledged announcement is queued once) and send
        it now."""
        if kind is ReceiptKind.ACKNOWLEDGED:
            self._store.queue_ack(ann_id)
        self.wake()

    def wake(self) -> None:
        """Send what is pending now (connected again, or a receipt was added)."""
        self._wake.set()

    def pending(self) -> list[str]:
        """Announcement ids whose receipts the server does not have yet, oldest first."""
        return self._store.pending_acks()

    async def run(self) -> None:
        """Send whenever woken, and every ``retry`` seconds while something fails to go."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if await self._send_pending() is not _Outcome.RETRY:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._retry)
            self._wake.set()

    async def _send_pending(self) -> _Outcome:
        for ann_id in self.pending():
            outcome = await self._send(ann_id)
            if outcome is not _Outcome.SENT:
                return outcome
        return _Outcome.SENT

    async def _send(self, ann_id: str) -> _Outcome:
        session = self._session
        try:
            response = await session.request("POST", session.endpoints.ack, id=ann_id)
        except LoginRequired:
            return _Outcome.WAIT  # the stream says so too; the next login sends it
        except TrayNotifierError as exc:
            log.info("receipt of %s not sent (%s): retry in %.0f s", ann_id, exc, self._retry)
            return _Outcome.RETRY
        # 404: the announcement is gone (revoked, expired): nothing left to acknowledge
        if response.ok or response.status == 404:
            self._store.ack_sent(ann_id)
            self._on_sent(ann_id)
            return _Outcome.SENT
        log.warning("receipt of %s: HTTP %d, retry in %.0f s", ann_id, response.status, self._retry)
        return _Outcome.RETRY
