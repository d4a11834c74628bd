"""Receipts the server must get: kept in the history until it has them (no Qt here).

A receipt is queued in the history store first, in the same transaction as what it reports,
so it survives a quit, a crash and a logout: **delivered** when an announcement is stored,
**displayed** when the person is shown it (a toast, a summary toast that counts it, the urgent
window; not while Do not disturb or quiet hours hold it back), **read** when it is first marked
read (opened in the history, a notification clicked, Mark read, Mark all read),
**acknowledged** when Acknowledge is pressed (``HistoryStore.queue_ack``,
written once, by :class:`app.core.attention.Attention` on the GUI thread).
The store tells :class:`ReceiptQueue` (a listener, from any thread), which gathers them for
:data:`BATCH_DELAY` seconds and sends them in batches with ``POST /receipts`` while a session is
open: never in the way of a toast (the stream stores and tells first; sending runs apart), again
whenever the connection comes back (:meth:`ReceiptQueue.wake`), and every :data:`RETRY` seconds
while the server cannot be reached or refuses them. The server keeps the first time of each.

The paths are the backend profile's (``[endpoints] receipts`` and ``ack``). A server without the
batch call (it answers 404 or 405) gets acknowledgements one by one at ``endpoints.ack``;
delivered and read receipts are then dropped (logged once). An empty path says the backend has
no such call (an organisation's own backend): nothing is sent there and nothing is logged, the
receipts are settled here, and an acknowledgement is kept on this computer only.
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
from app.core.store import HistoryStore, ReceiptKind

log = logging.getLogger(__name__)

RETRY = 30.0  # seconds between attempts while receipts cannot be sent
BATCH_DELAY = 1.0  # seconds receipts are gathered before a batch goes
BATCH_MAX = 500  # receipts in one POST /receipts


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
    ends, then cancel it); :meth:`wake` may be called meanwhile. It queues no receipt itself:
    they are queued in the store (from any thread), which wakes it. ``on_sent``
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
        batch_delay: float = BATCH_DELAY,
    ) -> None:
        self._store = store
        self._session = session
        self._on_sent = on_sent
        self._retry = retry
        self._batch_delay = batch_delay
        # False when the profile names no batch call, or the server said it has none
        self._batches = bool(session.endpoints.receipts)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Send what is pending now (connected again, or a receipt was added)."""
        self._wake.set()

    def pending(self) -> list[str]:
        """Announcement ids whose acknowledgements the server does not have yet, oldest first."""
        return self._store.pending_acks()

    async def run(self) -> None:
        """Send whenever woken (a receipt queued in the store wakes it, from any thread), and
        every ``retry`` seconds while something fails to go."""
        loop = asyncio.get_running_loop()

        def queued() -> None:
            loop.call_soon_threadsafe(self._wake.set)

        unlisten = self._store.add_receipt_listener(queued)
        self._wake.set()  # send what is pending (an earlier run's, queued meanwhile) at once
        try:
            while True:
                await self._wake.wait()
                await asyncio.sleep(self._batch_delay)  # gather a burst into one batch
                self._wake.clear()
                if await self._send_pending() is not _Outcome.RETRY:
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._retry)
                self._wake.set()
        finally:
            unlisten()

    async def _send_pending(self) -> _Outcome:
        while self._batches:
            batch = self._store.pending_receipts(limit=BATCH_MAX)
            if not batch:
                return _Outcome.SENT
            outcome = await self._send_batch(batch)
            if outcome is not _Outcome.SENT:
                return outcome
        dropped = [r for r in self._store.pending_receipts() if r[1] != ReceiptKind.ACKNOWLEDGED]
        self._store.receipts_sent(dropped)
        for ann_id in self.pending():
            outcome = await self._send(ann_id)
            if outcome is not _Outcome.SENT:
                return outcome
        return _Outcome.SENT

    async def _send_batch(self, batch: list[tuple[str, str]]) -> _Outcome:
        body: dict[str, list[str]] = {}  # only the kinds it holds (an older server knows no
        for ann_id, kind in batch:  # "displayed"; it ignores what it does not know anyway)
            body.setdefault(kind, []).append(ann_id)
        try:
            path = self._session.endpoints.receipts
            response = await self._session.request("POST", path, json=body)
        except LoginRequired:
            return _Outcome.WAIT
        except TrayNotifierError as exc:
            log.info("%d receipts not sent (%s): retry in %.0f s", len(batch), exc, self._retry)
            return _Outcome.RETRY
        if response.status in (404, 405):
            log.warning(
                "the server has no %s (HTTP %d): acknowledgements go one by one, delivered"
                ' and read receipts are not sent (set [endpoints] receipts = "" for a'
                " backend without one)",
                path,
                response.status,
            )
            self._batches = False
            return _Outcome.SENT
        if response.ok or response.status == 400:
            if not response.ok:  # never retried: it would be refused again for ever
                log.warning("the server refused %d receipts (HTTP 400): dropped", len(batch))
            self._store.receipts_sent(batch)
            for ann_id, kind in batch:
                if kind == ReceiptKind.ACKNOWLEDGED:
                    self._on_sent(ann_id)
            return _Outcome.SENT
        log.warning(
            "%d receipts: HTTP %d, retry in %.0f s", len(batch), response.status, self._retry
        )
        return _Outcome.RETRY

    async def _send(self, ann_id: str) -> _Outcome:
        session = self._session
        if not session.endpoints.ack:  # the backend has no acknowledge call: kept here only
            self._store.ack_sent(ann_id)
            self._on_sent(ann_id)
            return _Outcome.SENT
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
