"""In-process fan-out from a backend to the open streams of this process.

Every backend owns one :class:`Hub`: the SQLite backend calls :meth:`Hub.deliver` right after a
commit; a Redis Streams backend calls it from its single ``XREAD BLOCK`` loop. Streams are
indexed by user, by group and "sees everything" (publishers), so a delivery touches only the
streams it is addressed to, never one read per connection.

Each stream has a bounded queue: a stream that falls ``queue_size`` items behind is closed with
reason ``overflow`` and its ``on_overflow`` callback runs (the HTTP layer aborts the socket), so
a client that cannot keep up never makes the server's memory grow. It resumes by id.

Everything here runs on the server's event loop; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from app.server.broker import Audience, Principal, Record, Revocation

Delivery: TypeAlias = "Record | Revocation"

log = logging.getLogger(__name__)

# reasons a stream is closed (sent to the client in the data of ``event: close``)
CLOSED = "closed"  # the close endpoint was called
SHUTDOWN = "shutdown"
OVERFLOW = "overflow"
TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a reason, not a secret


class Subscription:
    """One open stream: a bounded queue of deliveries and a close reason.

    The stream's task waits with :meth:`wait`, then takes everything queued with :meth:`take`;
    once :attr:`closed_reason` is set, the stream writes ``event: close`` and ends.
    """

    __slots__ = (
        "_on_overflow",
        "_queue",
        "_queue_size",
        "_wakeup",
        "closed_reason",
        "conn_id",
        "viewer",
    )

    def __init__(
        self, viewer: Principal, *, queue_size: int, on_overflow: Callable[[], None]
    ) -> None:
        self.viewer = viewer
        self.conn_id = secrets.token_hex(8)
        self.closed_reason: str | None = None
        self._queue: list[Delivery] = []
        self._queue_size = queue_size
        self._on_overflow = on_overflow
        self._wakeup = asyncio.Event()

    def offer(self, item: Delivery) -> None:
        """Queue a delivery; a full queue closes the stream (``overflow``) instead."""
        if self.closed_reason is not None:
            return
        if len(self._queue) >= self._queue_size:
            self._queue.clear()
            self.close(OVERFLOW)
            self._on_overflow()
            return
        self._queue.append(item)
        self._wakeup.set()

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self._wakeup.set()

    async def wait(self, timeout: float) -> None:
        """Return when something is queued, the stream is closed, or after ``timeout`` s."""
        if self._queue or self.closed_reason is not None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=max(timeout, 0.0))

    def take(self) -> list[Delivery]:
        """Everything queued, oldest first (empty once closed for overflow)."""
        items, self._queue = self._queue, []
        self._wakeup.clear()
        return items

    @property
    def pending(self) -> int:
        return len(self._queue)


class Hub:
    """The streams of this process, indexed by user and group, and the fan-out to them."""

    def __init__(self) -> None:
        self._subs: dict[str, Subscription] = {}
        self._by_user: defaultdict[str, set[str]] = defaultdict(set)
        self._by_group: defaultdict[str, set[str]] = defaultdict(set)
        self._see_all: set[str] = set()

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(
        self, viewer: Principal, *, queue_size: int, on_overflow: Callable[[], None]
    ) -> Subscription:
        sub = Subscription(viewer, queue_size=queue_size, on_overflow=on_overflow)
        self._subs[sub.conn_id] = sub
        self._by_user[viewer.user_id].add(sub.conn_id)
        for group in viewer.groups:
            self._by_group[group].add(sub.conn_id)
        if viewer.publisher:
            self._see_all.add(sub.conn_id)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if self._subs.pop(sub.conn_id, None) is None:
            return
        _discard(self._by_user, sub.viewer.user_id, sub.conn_id)
        for group in sub.viewer.groups:
            _discard(self._by_group, group, sub.conn_id)
        self._see_all.discard(sub.conn_id)

    def deliver(self, item: Delivery) -> int:
        """Queue ``item`` on every stream its audience includes; returns how many."""
        targets = self._targets(item.audience)
        for conn_id in targets:
            self._subs[conn_id].offer(item)
        return len(targets)

    def close_user(self, user_id: str, *, session_id: str | None, reason: str = CLOSED) -> int:
        """Close a user's streams: those of one login session, or all. Returns how many."""
        closed = 0
        for conn_id in list(self._by_user.get(user_id, ())):
            sub = self._subs[conn_id]
            if session_id is None or sub.viewer.session_id == session_id:
                sub.close(reason)
                closed += 1
        return closed

    def close_all(self, reason: str) -> None:
        for sub in self._subs.values():
            sub.close(reason)

    def _targets(self, audience: Audience) -> set[str]:
        if audience.everyone:
            return set(self._subs)
        targets = set(self._see_all)
        targets.update(*_lookup(self._by_user, audience.users))
        targets.update(*_lookup(self._by_group, audience.groups))
        return targets


def _lookup(index: dict[str, set[str]], keys: Iterable[str]) -> list[set[str]]:
    return [index[k] for k in keys if k in index]


def _discard(index: defaultdict[str, set[str]], key: str, conn_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.discard(conn_id)
        if not ids:
            del index[key]
