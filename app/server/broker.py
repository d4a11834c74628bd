"""The one interface between the HTTP layer and the server's state: :class:`Broker`.

The HTTP layer (``app/server/http.py``) talks to nothing else. A backend implements every
abstract method below; two are planned:

- :class:`app.server.sqlite_broker.SqliteBroker`: one process, SQLite (WAL) file, in-memory fan-out.
- :class:`app.server.redis_broker.RedisBroker` (scale-out): users, refresh tokens, acks and
  announcements in Redis; one ``XREAD BLOCK`` loop per process feeding the same in-memory
  :class:`app.server.hub.Hub`.

Rules every backend keeps (the contract test suite in ``tests/server`` checks them):

- Announcement ids are opaque strings that increase with publication order. ``list_visible``
  takes such an id as a cursor and raises :class:`InvalidCursor` for a string it never issued
  in that form; it also takes :data:`NOTHING_YET`, meaning "from the beginning".
- ``subscribe`` sets the subscription's ``horizon``: the newest announcement id this process
  had fanned out when the stream subscribed (:data:`NOTHING_YET` if none), so every later one
  reaches the stream live; ``newest_visible_id`` finds a new stream's start position below it.
- ``publish`` stores first, then fans out, and no subscriber of the process sees the record
  twice or misses it if it subscribed before ``publish`` returned. Fan-out reaches the
  subscribers of every process sharing the backend.
- ``close_streams`` and ``revoke`` reach subscribers on every process too.
- Visibility is :meth:`Audience.includes`: everyone listed, members of a listed group, and
  publishers (who manage announcements and see all of them).
- Refresh tokens are stored only as hashes, are single use, and presenting a used one again
  revokes its whole session (token theft detection).
- Subscription, unsubscription and ``close_local_streams`` are plain (non-async) calls made on
  the server's event loop; every other method is a coroutine on that loop.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.core.model import Announcement

if TYPE_CHECKING:
    from app.server.hub import Subscription

PUBLISHER_ROLE = "publisher"
# the position "nothing yet": as a cursor (a resume id), every backend reads it as "from the
# beginning"; the ``connected`` event of a stream whose viewer may see nothing yet carries it
NOTHING_YET = "0"


class InvalidCursor(ValueError):
    """An announcement id that this backend never issued in this form (bad ``since``/resume id)."""


class BrokerUnavailable(Exception):
    """The backend's store cannot be reached right now (HTTP 503); nothing was changed. The
    message says what is unreachable and to try again; it never holds a credential."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the access token says: the user id, groups, role and login session."""

    user_id: str
    groups: frozenset[str] = frozenset()
    publisher: bool = False
    session_id: str = ""


@dataclass(frozen=True, slots=True)
class Audience:
    """Who an announcement is addressed to: everyone, some groups, or some users."""

    everyone: bool = False
    groups: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    def includes(self, viewer: Principal) -> bool:
        """Whether ``viewer`` may receive and list an announcement with this audience."""
        return (
            viewer.publisher
            or self.everyone
            or viewer.user_id in self.users
            or not self.groups.isdisjoint(viewer.groups)
        )

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Audience:
        """The inverse of :meth:`to_json`."""
        return cls(
            everyone=bool(obj.get("all", False)),
            groups=frozenset(obj.get("groups", ())),
            users=frozenset(obj.get("users", ())),
        )

    def to_json(self) -> dict[str, object]:
        if self.everyone:
            return {"all": True}
        out: dict[str, object] = {}
        if self.groups:
            out["groups"] = sorted(self.groups)
        if self.users:
            out["users"] = sorted(self.users)
        return out


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated announcement before it has an id (see ``app/server/validation.py``)."""

    title: str
    body: str
    priority: str
    audience: Audience
    url: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """A stored announcement: its wire form plus who may see it and whether it was revoked."""

    announcement: Announcement
    audience: Audience
    author: str = ""
    revoked: bool = False

    @property
    def id(self) -> str:
        return self.announcement.id


@dataclass(frozen=True, slots=True)
class Revocation:
    """A withdrawn announcement, as fanned out to its audience."""

    id: str
    audience: Audience


@dataclass(frozen=True, slots=True)
class User:
    name: str  # also the user id
    password_hash: str
    groups: frozenset[str] = frozenset()
    publisher: bool = False

    @property
    def roles(self) -> list[str]:
        return [PUBLISHER_ROLE] if self.publisher else []


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a valid refresh token stood for."""

    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class Ack:
    user_id: str
    acked_at: datetime


@dataclass(slots=True)
class BrokerStats:
    """Backend figures for ``/metrics`` (the HTTP layer counts the rest itself)."""

    subscriptions: int = 0
    extra: dict[str, float] = field(default_factory=dict)  # more gauges: name -> value
    healthy: bool = True  # False while the store cannot be reached (/healthz says "degraded")
    problem: str | None = None  # what is wrong, for /healthz, when not healthy


class Broker(abc.ABC):
    """Users, refresh tokens, announcements, acks and the fan-out to open streams."""

    # users ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def save_user(self, user: User) -> None:
        """Create the user, or replace its password hash, groups and role."""

    @abc.abstractmethod
    async def get_user(self, name: str) -> User | None: ...

    # refresh tokens (hashes only) -------------------------------------------------------
    @abc.abstractmethod
    async def add_refresh_token(
        self, token_hash: str, *, user_id: str, session_id: str, expires_at: float
    ) -> None:
        """Store a new refresh token's hash, valid until ``expires_at`` (epoch seconds)."""

    @abc.abstractmethod
    async def use_refresh_token(self, token_hash: str, *, now: float) -> RefreshGrant | None:
        """Consume a refresh token (single use). None when unknown, expired or already used;
        an already used one also revokes every token of its session."""

    @abc.abstractmethod
    async def revoke_refresh_token(self, token_hash: str) -> None:
        """Logout: revoke this token and every other token of its session. Unknown: no-op."""

    # announcements ----------------------------------------------------------------------
    @abc.abstractmethod
    async def publish(self, draft: Draft, *, author: str, now: datetime) -> Record:
        """Store a new announcement, then fan it out to its audience's streams."""

    @abc.abstractmethod
    async def get(self, ann_id: str) -> Record | None:
        """One announcement by id, revoked or not; None when unknown (or a malformed id)."""

    @abc.abstractmethod
    async def list_visible(
        self,
        viewer: Principal,
        *,
        after: str | None,
        limit: int,
        now: datetime,
    ) -> list[Record]:
        """What ``viewer`` may see, not revoked and not expired, oldest first.

        With ``after``: the first ``limit`` published after that id (raises InvalidCursor).
        Without: the newest ``limit``.
        """

    @abc.abstractmethod
    async def newest_visible_id(self, viewer: Principal, *, upto: str, now: datetime) -> str | None:
        """The id of the newest announcement ``viewer`` may see (not revoked, not expired) among
        those up to and including ``upto`` (a subscription's ``horizon``); None when none."""

    @abc.abstractmethod
    async def revoke(self, ann_id: str) -> Record | None:
        """Mark revoked and fan out a :class:`Revocation`; None when unknown. Revoking twice
        returns the record again without a second fan-out."""

    @abc.abstractmethod
    async def ack(self, ann_id: str, user_id: str, *, now: datetime) -> datetime:
        """Record a read receipt (idempotent: the first time is kept and returned)."""

    @abc.abstractmethod
    async def acks(self, ann_id: str) -> list[Ack]:
        """Read receipts of one announcement, oldest first."""

    # streams ----------------------------------------------------------------------------
    @abc.abstractmethod
    def subscribe(
        self, viewer: Principal, *, queue_size: int, on_overflow: Callable[[], None]
    ) -> Subscription:
        """Register a stream of this process; see :class:`app.server.hub.Subscription`."""

    @abc.abstractmethod
    def unsubscribe(self, sub: Subscription) -> None: ...

    @abc.abstractmethod
    async def close_streams(self, user_id: str, *, session_id: str | None) -> None:
        """End a user's streams on every process: those of one login session, or all."""

    @abc.abstractmethod
    def close_local_streams(self, reason: str) -> None:
        """End every stream of this process (shutdown)."""

    @abc.abstractmethod
    def stats(self) -> BrokerStats: ...

    async def start(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Connect before serving (the server awaits it once, on its loop); default: nothing."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the backend (database, connections). Streams are closed before this."""
