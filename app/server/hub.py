"""In-process fan-out from a backend to the open streams of this process.

Every backend owns one :class:`Hub`: the SQLite backend calls :meth:`Hub.deliver` right after a
commit; a Redis Streams backend calls it from its single ``XREAD BLOCK`` loop. Streams are
indexed by user, by group and "sees everything" (publishers), so a delivery touches only the
streams it is addressed to, never one read per connection.

A delivery is encoded once (:func:`app.server.wire.delivery`), not once per stream. A live
stream attaches a *sink* (:meth:`Subscription.go_live`) that writes those bytes straight to its
socket while the socket's buffer has room, so a broadcast wakes no task per stream. Otherwise
(no sink yet, a full socket buffer, or older items still queued) the delivery goes to the
stream's bounded queue and its task writes it: a stream that falls ``queue_size`` items behind
is closed with reason ``overflow`` and its ``on_overflow`` callback runs (the HTTP layer aborts
the socket), so a client that cannot keep up never makes the server's memory grow. It resumes
by id.

The hub also remembers the stream positions it fanned out lately (:class:`Fanned`): who may
see each of the newest announcements, until when, and whether it was revoked since. A backend
whose every stored announcement and change goes through its hub before anything else runs
(SQLite: one process, the fan-out right after the commit) answers a new stream's start position
from it, without a query.

Everything here runs on the server's event loop; nothing is thread-safe.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Collection, Generator, Iterable, Mapping
from datetime import datetime
from typing import TypeAlias

from app.core.model import parse_time
from app.server import wire
from app.server.model import (
    NOTHING_YET,
    REVOKE,
    UPDATE,
    Audience,
    Change,
    Delivery,
    Principal,
    Record,
    Revocation,
)

# writes one encoded delivery to the stream's socket now; False when it cannot (queue it)
Sink: TypeAlias = Callable[[Delivery, bytes], bool]

log = logging.getLogger(__name__)

# reasons a stream is closed (sent to the client in the data of ``event: close``)
CLOSED = "closed"  # the close endpoint was called
SHUTDOWN = "shutdown"
OVERFLOW = "overflow"
TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a reason, not a secret
SESSION_ENDED = "session_ended"  # logged out, a refresh token reused, or every session revoked
REPLACED = "replaced"  # the user (or the session) opened more streams than it may hold


class Subscription:
    """One open stream: an optional sink, a bounded queue of deliveries and a close reason.

    The stream's task waits with :meth:`wait`, then takes everything queued with :meth:`take`;
    once :attr:`closed_reason` is set, the stream writes ``event: close`` and ends. After its
    replay, the task calls :meth:`go_live`: from then on a delivery goes straight to the sink
    when nothing is queued and the sink accepts it, and records already replayed are skipped.
    """

    __slots__ = (
        "_on_overflow",
        "_queue",
        "_queue_size",
        "_replayed",
        "_sink",
        "_timer",
        "_waiter",
        "_woken",
        "closed_reason",
        "conn_id",
        "horizon",
        "viewer",
    )

    def __init__(
        self,
        viewer: Principal,
        *,
        conn_id: str,
        queue_size: int,
        on_overflow: Callable[[], None],
    ) -> None:
        self.viewer = viewer
        self.conn_id = conn_id
        # the newest announcement id fanned out before this subscribed (set by the backend):
        # every later one is offered to this subscription
        self.horizon = NOTHING_YET
        self.closed_reason: str | None = None
        self._queue: list[Delivery] = []
        self._queue_size = queue_size
        self._on_overflow = on_overflow
        # what wait() waits on: a bare future and a timer, not an asyncio.Event and an
        # asyncio.timeout (an idle stream holds this while it waits: tens of thousands do)
        self._woken = False  # since the last take()
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sink: Sink | None = None
        self._replayed: set[str] = _NONE_REPLAYED

    def go_live(self, sink: Sink | None, replayed: Collection[str]) -> None:
        """Start live delivery: skip the records in ``replayed`` (already sent, also those
        queued now) and, with a ``sink``, write deliveries through it when possible."""
        self._replayed = set(replayed) if replayed else _NONE_REPLAYED
        self._queue = [item for item in self._queue if self._fresh(item)]
        self._sink = sink

    def offer(self, item: Delivery, data: bytes) -> None:
        """Hand over a delivery (``data`` is its encoded event): written through the sink when
        nothing is queued and the sink takes it, else queued; a full queue closes the stream
        (``overflow``) instead."""
        if self.closed_reason is not None or not self._fresh(item):
            return
        if not self._queue and self._sink is not None and self._sink(item, data):
            return
        if len(self._queue) >= self._queue_size:
            self._queue.clear()
            self.close(OVERFLOW)
            self._on_overflow()
            return
        self._queue.append(item)
        self.wake()

    def _fresh(self, item: Delivery) -> bool:
        """False for a record already replayed. Deliveries come in publication order, so the
        first record that was not replayed means no later one was: forget the replay then."""
        if not self._replayed or not item.position:
            return True
        if item.position in self._replayed:  # an announcement's, or a change's
            return False
        self._replayed = _NONE_REPLAYED
        return True

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
        self.wake()

    def wake(self) -> None:
        """Make :meth:`wait` return now (the stream has something to do besides deliveries),
        or at once when it is next called before :meth:`take`."""
        self._woken = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def wait(self, timeout: float) -> Awaitable[None]:
        """What the stream's task awaits: done when woken (something queued, the stream
        closed...) since the last :meth:`take`, or after ``timeout`` s. :meth:`take` ends the
        wait. Not a coroutine: the task awaits the future itself, so an idle stream holds no
        frame of this while it waits (tens of thousands do)."""
        if self._woken or self._queue or self.closed_reason is not None:
            return _READY
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        self._timer = loop.call_later(max(timeout, 0.0), _release, waiter)
        return waiter

    def take(self) -> list[Delivery]:
        """Everything queued, oldest first (empty once closed for overflow); ends the wait."""
        items, self._queue = self._queue, []
        self._woken = False
        self._waiter = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        return items

    @property
    def pending(self) -> int:
        return len(self._queue)


# shared by every subscription that replayed nothing (most): never mutated, only replaced
_NONE_REPLAYED: set[str] = set()


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Ready:
    """An awaitable that is done already: ``await`` returns at once, without suspending."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


_READY = _Ready()

# how many stream positions (announcements and changes) :class:`Fanned` keeps: the newest
# announcement a viewer may see is nearly always among the last few; when it is not, the store
# is asked (after a look through all of them: 7 µs, against 0.6 µs for one of the last)
FANNED_KEPT = 64
_MISSING = object()  # a correction that does not give ``expires_at``: the store is asked


class _Position:
    """A stream position the hub fanned out: an announcement's (with who may see it, until
    when, and whether it was revoked since) or a change's (``audience`` None)."""

    __slots__ = ("audience", "expires_ts", "known", "position", "revoked")

    def __init__(self, position: str, record: Record | None = None) -> None:
        self.position = position
        self.audience = record.audience if record is not None else None
        self.expires_ts = _epoch(record.expires_at) if record is not None else None
        self.revoked = record.revoked if record is not None else False
        self.known = True  # False: a correction whose expiry could not be read (ask the store)


def _epoch(when: datetime | None) -> float | None:
    """An expiry as the stores compare it: its POSIX timestamp (SQLite's ``expires_ts``)."""
    return when.timestamp() if when is not None else None


class Fanned:
    """The last :data:`FANNED_KEPT` stream positions fanned out here, oldest first, and the
    newest of all (:attr:`head`).

    :meth:`newest_visible` answers ``Broker.newest_visible_id`` from them; it is the store's
    answer only for a backend that fans out every announcement and change it stores, in
    order, before anything else runs (nothing stored escapes the hub, nothing is stored
    between a commit and its fan-out), whose announcements' audiences never change, and
    which tells the hub, before its first delivery, the newest position it held before
    (:meth:`begin`). The SQLite backend is such a backend; with Redis another process may
    have revoked or corrected an announcement that this process has not read yet, so the
    store must be asked.
    """

    def __init__(self, kept: int = FANNED_KEPT) -> None:
        self._kept = kept
        self._positions: deque[_Position] = deque()
        self._announcements: dict[str, _Position] = {}  # of those kept, by announcement id
        # the newest position fanned out, or the store's before that (begin); None: unknown
        self.head: str | None = None
        self._complete = False  # the positions kept start at the store's very first

    def begin(self, stored: str) -> None:
        """The newest position the store held before this hub fanned out anything (from
        the store itself); ignored once anything was fanned out."""
        if self.head is None:
            self.head = stored
            self._complete = stored == NOTHING_YET

    def note(self, item: Delivery) -> None:
        """Remember a delivery, before it is offered to the streams."""
        if isinstance(item, Record):
            self._add(_Position(item.position, item))
        elif isinstance(item, Change):
            seen = self._announcements.get(item.id)
            if seen is not None and item.kind == REVOKE:
                seen.revoked = True
            elif seen is not None and item.kind == UPDATE:  # its expiry may have changed
                text = item.data.get("expires_at", _MISSING)
                when = parse_time(text)
                seen.expires_ts = _epoch(when)
                if when is None and text is not None:
                    seen.known = False  # unreadable: the store knows
            self._add(_Position(item.position))
        elif isinstance(item, Revocation):  # no position (servers before corrections)
            seen = self._announcements.get(item.id)
            if seen is not None:
                seen.revoked = True

    def _add(self, entry: _Position) -> None:
        self.head = entry.position
        positions = self._positions
        positions.append(entry)
        if entry.audience is not None:
            self._announcements[entry.position] = entry
        if len(positions) > self._kept:
            gone = positions.popleft()
            self._announcements.pop(gone.position, None)
            self._complete = False

    def newest_visible(self, viewer: Principal, *, upto: str, now: datetime) -> str | None:
        """The newest announcement ``viewer`` may see (not revoked, not expired at ``now``)
        among those up to and including the position ``upto``: its id, or
        :data:`~app.server.model.NOTHING_YET` when there is none; None when what is kept
        cannot tell (``upto`` is not among the positions kept, or no announcement kept up to
        it is visible while older ones may be): then ask the store."""
        if upto == NOTHING_YET:
            return NOTHING_YET  # nothing comes before the first position
        now_ts = now.timestamp()
        reached = False
        for entry in reversed(self._positions):
            if not reached:
                reached = entry.position == upto
                if not reached:
                    continue  # fanned out after ``upto``
            audience = entry.audience
            if audience is None or entry.revoked:
                continue
            if not entry.known:
                return None
            expires_ts = entry.expires_ts
            if (expires_ts is None or expires_ts > now_ts) and audience.includes(viewer):
                return entry.position
        return NOTHING_YET if reached and self._complete else None


class Hub:
    """The streams of this process, indexed by user and group, and the fan-out to them."""

    def __init__(self) -> None:
        # connection ids: unique in this process (its hub is the only one that reads them)
        # and between processes (a random prefix), without a random draw per stream
        self._conn_prefix = secrets.token_hex(4)
        self._conn_numbers = itertools.count(1)
        # ended login sessions: session id -> until when to remember it (epoch seconds, when
        # every access token of it has expired); user -> (tokens issued up to then are
        # refused, until). Checked on every request: dictionary lookups only.
        self._ended_sessions: dict[str, float] = {}
        self._ended_users: dict[str, tuple[float, float]] = {}
        self._subs: dict[str, Subscription] = {}
        self._by_user: defaultdict[str, dict[str, None]] = defaultdict(dict)  # oldest first
        self._by_group: defaultdict[str, dict[str, None]] = defaultdict(dict)
        self._see_all: set[str] = set()
        self._reach_watchers: set[Callable[[str], None]] = set()
        self.fanned = Fanned()  # the positions fanned out lately (see Fanned for who may ask)

    def streams_of(self, user_id: str) -> list[Subscription]:
        """The open (not closing) streams of ``user_id`` here, oldest first."""
        conn_ids = self._by_user.get(user_id)
        if not conn_ids:
            return []  # (most: a stream is about to open, its user's first)
        subs = (self._subs[conn_id] for conn_id in conn_ids)
        return [sub for sub in subs if sub.closed_reason is None]

    def online(self, user_ids: Iterable[str]) -> set[str]:
        """Those of ``user_ids`` with a stream open here now."""
        return {u for u in user_ids if self._by_user.get(u)}

    def watch_reach(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(ann_id)`` on each :meth:`reach_changed`; returns the unwatch."""
        self._reach_watchers.add(callback)
        return lambda: self._reach_watchers.discard(callback)

    def reach_changed(self, ann_ids: Iterable[str]) -> None:
        """Receipts of these announcements were recorded: tell the watchers."""
        for ann_id in ann_ids:
            for callback in list(self._reach_watchers):
                try:
                    callback(ann_id)
                except Exception:
                    log.exception("a reach watcher failed")

    def __len__(self) -> int:
        return len(self._subs)

    def subscribe(
        self, viewer: Principal, *, queue_size: int, on_overflow: Callable[[], None]
    ) -> Subscription:
        # 16 hex digits, as clients have always been given
        conn_id = f"{self._conn_prefix}{next(self._conn_numbers) & 0xFFFFFFFF:08x}"
        sub = Subscription(viewer, conn_id=conn_id, queue_size=queue_size, on_overflow=on_overflow)
        self._subs[sub.conn_id] = sub
        self._by_user[viewer.user_id][sub.conn_id] = None
        for group in viewer.groups:
            self._by_group[group][sub.conn_id] = None
        if viewer.publisher:
            self._see_all.add(sub.conn_id)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if self._subs.pop(sub.conn_id, None) is None:
            return
        sub.take()  # its wait's timer too (a task cancelled while waiting left it)
        _discard(self._by_user, sub.viewer.user_id, sub.conn_id)
        for group in sub.viewer.groups:
            _discard(self._by_group, group, sub.conn_id)
        self._see_all.discard(sub.conn_id)

    def deliver(self, item: Delivery) -> int:
        """Offer ``item``, encoded once, to every stream its audience includes; returns how
        many. A sink never unsubscribes synchronously, so the index is stable meanwhile."""
        self.fanned.note(item)
        targets = self._targets(item.audience)
        if isinstance(item, Change) and item.users is not None:  # a reminder: exactly those
            targets = [sub for sub in targets if sub.viewer.user_id in item.users]
        if targets:
            data = wire.delivery(item)
            for sub in targets:
                sub.offer(item, data)
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

    def end_session(self, user_id: str, session_id: str, *, until: float, now: float) -> None:
        """Refuse the session's tokens from now on (until ``until``) and close its streams.
        An ending already known changes nothing (backends may hand one over more than once)."""
        self._prune(now)
        known = self._ended_sessions.get(session_id)
        self._ended_sessions[session_id] = max(until, known or 0.0)
        if known is None:
            self.close_user(user_id, session_id=session_id, reason=SESSION_ENDED)

    def end_user_sessions(self, user_id: str, *, before: float, until: float, now: float) -> None:
        """Refuse every token of ``user_id`` issued up to ``before``; close all its streams.
        An ending no later than one already known changes nothing: the streams opened since
        then belong to newer logins."""
        self._prune(now)
        old_before, old_until = self._ended_users.get(user_id, (0.0, 0.0))
        self._ended_users[user_id] = (max(before, old_before), max(until, old_until))
        if before > old_before:
            self.close_user(user_id, session_id=None, reason=SESSION_ENDED)

    def session_ended(self, viewer: Principal, *, issued_at: float) -> bool:
        """Whether a token of ``viewer`` issued at ``issued_at`` belongs to an ended session."""
        if viewer.session_id in self._ended_sessions:
            return True
        ended = self._ended_users.get(viewer.user_id)
        return ended is not None and issued_at <= ended[0]

    def _prune(self, now: float) -> None:
        """Forget ended sessions whose tokens have all expired (on each new ending: cheap)."""
        for sid in [s for s, until in self._ended_sessions.items() if until < now]:
            del self._ended_sessions[sid]
        for user in [u for u, (_, until) in self._ended_users.items() if until < now]:
            del self._ended_users[user]

    def close_all(self, reason: str) -> None:
        for sub in self._subs.values():
            sub.close(reason)

    def _targets(self, audience: Audience) -> list[Subscription]:
        if audience.everyone:
            return list(self._subs.values())
        conn_ids = set(self._see_all)
        conn_ids.update(*_lookup(self._by_user, audience.users))
        conn_ids.update(*_lookup(self._by_group, audience.groups))
        return [self._subs[conn_id] for conn_id in conn_ids]


def _lookup(index: Mapping[str, dict[str, None]], keys: Iterable[str]) -> list[dict[str, None]]:
    return [index[k] for k in keys if k in index]


def _discard(index: defaultdict[str, dict[str, None]], key: str, conn_id: str) -> None:
    ids = index.get(key)
    if ids is not None:
        ids.pop(conn_id, None)
        if not ids:
            del index[key]
