"""The one interface between the HTTP layer and the server's state: :class:`Broker`.

The HTTP layer (``app/server/api.py``, ``app/server/streams.py``) talks to nothing else. A
backend implements every abstract method below; two are planned:

- :class:`app.server.sqlite_broker.SqliteBroker`: one process, SQLite (WAL) file, in-memory fan-out.
- :class:`app.server.redis_broker.RedisBroker` (scale-out): users, refresh tokens, acks and
  announcements in Redis; one ``XREAD BLOCK`` loop per process feeding the same in-memory
  :class:`app.server.hub.Hub`.

The values it takes and returns are in ``app/server/model.py``; a backend converts them to and
from its stored form only through ``app/server/codec.py``.

Rules every backend keeps (the contract test suite in ``tests/server`` checks them):

- Announcement ids are opaque strings that increase with publication order. ``list_visible``
  takes such an id as a cursor and raises :class:`~app.server.model.InvalidCursor` for a
  string it never issued in that form; it also takes :data:`~app.server.model.NOTHING_YET`,
  meaning "from the beginning".
- ``subscribe`` sets the subscription's ``horizon``: the newest announcement id this process
  had fanned out when the stream subscribed (``NOTHING_YET`` if none), so every later one
  reaches the stream live; ``newest_visible_id`` finds a new stream's start position below it.
- ``publish`` stores first, then fans out, and no subscriber of the process sees the record
  twice or misses it if it subscribed before ``publish`` returned. Fan-out reaches the
  subscribers of every process sharing the backend.
- ``close_streams`` and ``revoke`` reach subscribers on every process too. A revoked
  announcement is never deleted: ``get`` and, for publishers, ``list_visible(...,
  include_revoked=True)`` still return it, with when and by whom it was revoked.
- Visibility is :meth:`~app.server.model.Audience.includes`: everyone listed, members of a
  listed group, and publishers (who manage announcements and see all of them).
- ``audience_members`` answers, by indexed lookups, exactly what filtering every user of
  ``list_users`` would (``tests/server/test_audience_members.py`` compares the two over a
  population of every kind of user); a publish asks it, never ``list_users``. Likewise
  ``users_named`` reads by name exactly the users of ``list_users`` that have those names
  (the same test); the reach asks it for its rows' users, never ``list_users``.
- A person of the identity provider is keyed by their subject, never by name: a local
  account's name is never given to them, nor theirs to another.
- Refresh tokens are stored only as hashes, are single use, and presenting a used one again
  revokes its whole session (token theft detection).
- Subscription, unsubscription and ``close_local_streams`` are plain (non-async) calls made on
  the server's event loop; every other method is a coroutine on that loop.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Iterable
from datetime import datetime

from app.server.hub import Hub, Subscription
from app.server.model import (
    Ack,
    Audience,
    AudienceMembers,
    BrokerStats,
    Change,
    Correction,
    Delivery,
    DirectoryPerson,
    DirectoryStatus,
    Draft,
    Principal,
    Receipt,
    Record,
    RefreshGrant,
    User,
)
from app.server.officer_model import AuditEntry, SavedForm, Schedule

# how long an ended session, and a publish's idempotency key, are remembered by default
REMEMBER = 86400.0


class Broker(abc.ABC):
    """Users, refresh tokens, announcements, acks and the fan-out to open streams.

    Every backend passes on to this constructor how long it remembers an ended session
    (``session_memory``: the server gives its access token lifetime, after which every token
    of the session has expired anyway) and a publish's idempotency key (``idempotency_ttl``).
    """

    _hub: Hub  # this process's streams: every backend fans out through one

    def __init__(
        self, *, session_memory: float = REMEMBER, idempotency_ttl: float = REMEMBER
    ) -> None:
        self.session_memory = session_memory
        self.idempotency_ttl = idempotency_ttl

    # users ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def save_user(self, user: User) -> None:
        """Create the user, or replace its password hash, groups and role."""

    @abc.abstractmethod
    async def get_user(self, name: str) -> User | None: ...

    @abc.abstractmethod
    async def list_users(self) -> list[User]:
        """Every user, by name (the directory, and an audience's recipients): local accounts,
        people of the identity provider, and people of the organisation's directory, who
        need never have signed in (:func:`~app.server.model.with_directory`; ``get_user``
        answers the same way)."""

    @abc.abstractmethod
    async def audience_members(self, audience: Audience) -> AudienceMembers:
        """Who ``audience`` names now among the users :meth:`list_users` lists (merged as
        :func:`~app.server.model.with_directory` merges them), found by group and by name
        rather than by reading every user (a publish asks, on the event loop): every user when
        it is everyone (their names only), each user in one of its groups, and each of its
        users that exists; and the groups no user is in and the users that do not exist
        (:class:`~app.server.model.AudienceMembers`)."""

    @abc.abstractmethod
    async def users_named(self, names: Collection[str]) -> dict[str, User]:
        """The users called one of ``names``, by name, each as :meth:`list_users` lists them
        (merged as :func:`~app.server.model.with_directory` merges them); a name no user has
        is left out. Read by name rather than by reading every user (the reach of an
        announcement asks for its rows' users, on the event loop)."""

    @abc.abstractmethod
    async def local_accounts(self) -> set[str]:
        """The names of the local accounts (``server add-user``: no subject), without reading
        every user: a directory sync leaves out the directory people who have one's name."""

    @abc.abstractmethod
    async def sign_in_person(
        self, subject: str, username: str, *, groups: frozenset[str], publisher: bool
    ) -> User:
        """The user of the identity provider's person ``subject`` (see
        :func:`~app.server.model.subject_key`), atomically on every process: the one it
        already is, with its groups and role replaced; else a new user named ``username``,
        or ``username~2``, ``~3``... when another provider person holds that name. Raises
        :class:`~app.server.model.NameTaken` when ``username`` is a local account's."""

    @abc.abstractmethod
    async def use_once(self, key: str, *, until: float, now: float) -> bool:
        """True the first time ``key`` (an ID token's fingerprint) is presented, on any
        process sharing the backend; False every later time until ``until`` (epoch seconds),
        after which it may be forgotten (the token has expired by then)."""

    # the organisation's directory (app/server/directory.py) -----------------------------
    @abc.abstractmethod
    async def replace_directory(
        self, people: Collection[DirectoryPerson], *, status: DirectoryStatus
    ) -> list[str]:
        """Store what a directory sync read in place of the last one, and its ``status``, at
        once for every process; returns the names of the people who were in the last one and
        are not in this one (their stored groups, as a person of the provider, are cleared
        too: the caller ends their sessions). Local accounts are never touched."""

    @abc.abstractmethod
    async def directory_status(self) -> DirectoryStatus | None:
        """The last sync's status (any process's); None before the first."""

    @abc.abstractmethod
    async def set_directory_status(self, status: DirectoryStatus) -> None:
        """Record a sync that failed (the people of the last good one stay)."""

    @abc.abstractmethod
    async def mark_connected(self, user_id: str, *, now: float) -> None:
        """``user_id`` signed in (a login, a sign-in with the provider, a refresh): the first
        time is kept."""

    @abc.abstractmethod
    async def never_connected(self, user_ids: Iterable[str]) -> set[str]:
        """Those of ``user_ids`` who never signed in to this server (:meth:`mark_connected`)."""

    # refresh tokens (hashes only) -------------------------------------------------------
    @abc.abstractmethod
    async def add_refresh_token(
        self, token_hash: str, *, user_id: str, session_id: str, expires_at: float
    ) -> None:
        """Store a new refresh token's hash, valid until ``expires_at`` (epoch seconds)."""

    @abc.abstractmethod
    async def use_refresh_token(self, token_hash: str, *, now: float) -> RefreshGrant | None:
        """Consume a refresh token (single use). None when unknown, expired or already used;
        an already used one also revokes every token of its session and ends the session on
        every process (as :meth:`revoke_refresh_token`)."""

    @abc.abstractmethod
    async def revoke_refresh_token(self, token_hash: str, *, now: float) -> None:
        """Logout: revoke this token and every other token of its session, and end the
        session on every process (:meth:`session_ended`, its streams closed). Unknown: no-op."""

    @abc.abstractmethod
    async def end_user_sessions(self, user_id: str, *, now: float) -> None:
        """Revoke every refresh token of ``user_id`` and end all its sessions on every
        process: access tokens issued up to ``now`` are refused, its streams closed."""

    def session_ended(self, viewer: Principal, *, issued_at: float) -> bool:
        """Whether the access token (of ``viewer``, issued at ``issued_at``) belongs to an
        ended session: an in-memory lookup (the hub's), on every authenticated request."""
        return self._hub.session_ended(viewer, issued_at=issued_at)

    # announcements ----------------------------------------------------------------------
    @abc.abstractmethod
    async def publish(
        self,
        draft: Draft,
        *,
        author: str,
        now: datetime,
        idempotency_key: str | None = None,
        recipients: Collection[str] = (),
    ) -> Record:
        """Store a new announcement and its ``recipients`` (the user ids its audience named
        at ``now``), then fan it out to its audience's streams.

        With ``idempotency_key``: if ``author`` published with the same key within
        :attr:`idempotency_ttl`, nothing is stored and the first announcement is returned
        (atomically, on every process). A publish that raises BrokerUnavailable stored
        nothing, so a retry never makes a second announcement."""

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
        include_revoked: bool = False,
    ) -> list[Record]:
        """What ``viewer`` may see, not revoked and not expired, oldest first; revoked ones
        too with ``include_revoked`` (a publisher's list: they stay readable, marked).

        With ``after``: the first ``limit`` published after that id (raises InvalidCursor).
        Without: the newest ``limit``.
        """

    @abc.abstractmethod
    async def newest_visible_id(self, viewer: Principal, *, upto: str, now: datetime) -> str | None:
        """The id of the newest announcement ``viewer`` may see (not revoked, not expired) among
        those up to and including ``upto`` (a subscription's ``horizon``); None when none."""

    @abc.abstractmethod
    async def revoke(
        self, ann_id: str, *, by: str = "", now: datetime | None = None
    ) -> Record | None:
        """Mark revoked at ``now`` (default: the wall clock) by the publisher ``by``, keeping
        the announcement, its recipients and its receipts; fan out a
        ``revoke`` :class:`~app.server.model.Change` and tell the reach watchers (a console marks it
        withdrawn). None when unknown. Revoking twice returns the record as first revoked,
        without a second fan-out. The revoke is a :class:`~app.server.model.Change` with its
        own stream position, replayed to trays that were offline."""

    # corrections and reminders: changes with a stream position ----------------------------
    @abc.abstractmethod
    async def correct(
        self, ann_id: str, correction: Correction, *, by: str, now: datetime
    ) -> Record | None:
        """Apply ``correction`` (by the publisher ``by``) to the stored announcement, its
        revision one more, its recipients and receipts kept; store and fan out the ``update``
        :class:`~app.server.model.Change` to its audience. Returns the corrected record; None
        when unknown; raises :class:`~app.server.model.AlreadyRevoked` when revoked."""

    @abc.abstractmethod
    async def remind(
        self, ann_id: str, users: Collection[str], *, by: str, now: datetime
    ) -> Change | None:
        """Store and fan out a ``remind`` :class:`~app.server.model.Change` for exactly
        ``users`` (the caller chose them: who has not read, or not acknowledged), and record
        it in their receipts (:attr:`~app.server.model.Receipt.reminded_at`, ``reminders``);
        tell the reach watchers. None when the announcement is unknown (nothing stored);
        raises :class:`~app.server.model.AlreadyRevoked` when revoked."""

    @abc.abstractmethod
    async def replay(
        self, viewer: Principal, *, after: str, limit: int, now: datetime
    ) -> list[Delivery]:
        """What a stream resuming at ``after`` gets, in stream order: the announcements
        :meth:`list_visible` gives after it, and the changes (corrections, reminders,
        revokes) after it that reach ``viewer`` (:meth:`~app.server.model.Change.reaches`);
        the first ``limit``. Raises InvalidCursor as :meth:`list_visible` does."""

    @abc.abstractmethod
    async def ack(self, ann_id: str, user_id: str, *, now: datetime) -> datetime:
        """Record a read receipt (idempotent: the first time is kept and returned)."""

    @abc.abstractmethod
    async def acks(self, ann_id: str) -> list[Ack]:
        """Read receipts of one announcement, oldest first."""

    # receipts and reach -----------------------------------------------------------------
    @abc.abstractmethod
    async def record_receipts(
        self, user_id: str, marks: Iterable[tuple[str, str]], *, now: datetime
    ) -> list[str]:
        """Record ``(announcement id, kind)`` receipts of ``user_id`` (kinds of
        :data:`~app.server.model.RECEIPT_KINDS`; a kind also records those it implies,
        :data:`~app.server.model.IMPLIED`). Idempotent: the first time of each is kept.
        Returns the ids whose receipts changed, and tells every process's reach watchers
        (:meth:`watch_reach`) about them."""

    @abc.abstractmethod
    async def receipts(self, ann_id: str) -> list[Receipt]:
        """Every user's receipts of one announcement (any order)."""

    @abc.abstractmethod
    async def recipients(self, ann_id: str) -> list[str]:
        """The user ids the announcement's audience named when it was published."""

    def online(self, user_ids: Iterable[str]) -> set[str]:
        """Those of ``user_ids`` with a stream open on THIS process now (with Redis, a user
        streaming to another process shows offline)."""
        return self._hub.online(user_ids)

    def watch_reach(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(ann_id)`` on this process's loop whenever receipts of that
        announcement are recorded (by any process); returns the call that stops it."""
        return self._hub.watch_reach(callback)

    # the communications officer's tools (app/server/officer.py) --------------------------
    @abc.abstractmethod
    async def page_visible(
        self,
        viewer: Principal,
        *,
        after: str | None,
        before: str | None,
        query: str | None,
        limit: int,
        now: datetime,
        include_revoked: bool = False,
    ) -> list[Record]:
        """A page of what :meth:`list_visible` would give ``viewer``, oldest first, searched
        and bounded both ways (a sent list past thousands, paged by id: keyset, never offset).
        ``query``: only those whose title or body holds it, case-insensitively (compared
        casefolded; give it casefolded). With ``after``: the first ``limit`` after that id;
        else the newest ``limit``; either way none at or above ``before``. Raises
        InvalidCursor for a cursor this backend never issued."""

    @abc.abstractmethod
    async def record_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append ``entry`` to the audit log shared by every process; returns it with its id
        (increasing: a paging cursor). Entries are never changed or removed."""

    @abc.abstractmethod
    async def audit(self, *, before: str | None, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` audit entries older than ``before`` (an entry id; None: the
        newest), newest first. Raises InvalidCursor for an id this backend never issued."""

    @abc.abstractmethod
    async def add_schedule(self, schedule: Schedule) -> tuple[Schedule, bool]:
        """Store a pending scheduled announcement (its ``id`` empty: the backend gives one)
        and return it, and True. With its ``idempotency_key``: when its author scheduled with
        the same key within :attr:`idempotency_ttl`, nothing is stored and the first one is
        returned, and False (atomically, on every process)."""

    @abc.abstractmethod
    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        """One schedule, whatever its state; None when unknown (or a malformed id)."""

    @abc.abstractmethod
    async def open_schedules(self) -> list[Schedule]:
        """The pending schedules and those that failed (not yet dismissed), by time to send."""

    @abc.abstractmethod
    async def claim_due(self, *, now: float, lease: float, limit: int) -> list[Schedule]:
        """Atomically, on every process: up to ``limit`` pending schedules whose time has come
        by ``now`` (epoch seconds) and that no process is sending (no unexpired claim), each
        claimed until ``now + lease``. A process that claimed one sends it and then calls
        :meth:`finish_schedule`; should it die first, the claim runs out and another process
        claims it again (the send is idempotent: it publishes once)."""

    @abc.abstractmethod
    async def finish_schedule(
        self,
        schedule_id: str,
        *,
        status: str,
        now: datetime,
        announcement_id: str | None = None,
        problem: str | None = None,
    ) -> None:
        """Record that a claimed schedule was sent (``announcement_id``) or failed
        (``problem``, in words); it is then never claimed again."""

    @abc.abstractmethod
    async def cancel_schedule(self, schedule_id: str, *, by: str, now: datetime) -> Schedule | None:
        """Cancel a pending schedule (or dismiss a failed one) unless a process is sending it
        now, atomically on every process. Returns the schedule as it is afterwards: status
        ``cancelled`` when this call (or an earlier one) cancelled it; ``pending`` with an
        unexpired ``claimed_until`` when it is being sent; ``sent``. None when unknown."""

    @abc.abstractmethod
    async def save_form(self, form: SavedForm) -> SavedForm | None:
        """Store a draft or a template: a new one when its ``id`` is empty (the backend gives
        one), else in place of the one of that kind and id (None when there is none)."""

    @abc.abstractmethod
    async def get_form(self, kind: str, form_id: str) -> SavedForm | None: ...

    @abc.abstractmethod
    async def list_forms(self, kind: str, *, owner: str | None = None) -> list[SavedForm]:
        """The saved forms of ``kind`` (only ``owner``'s when given), newest change first."""

    @abc.abstractmethod
    async def delete_form(self, kind: str, form_id: str) -> bool:
        """Remove one; False when there was none."""

    # streams ----------------------------------------------------------------------------
    @abc.abstractmethod
    def subscribe(
        self, viewer: Principal, *, queue_size: int, on_overflow: Callable[[], None]
    ) -> Subscription:
        """Register a stream of this process; see :class:`app.server.hub.Subscription`."""

    def unsubscribe(self, sub: Subscription) -> None:
        self._hub.unsubscribe(sub)

    def streams_of(self, user_id: str) -> list[Subscription]:
        """The open streams of ``user_id`` on this process, oldest first."""
        return self._hub.streams_of(user_id)

    @abc.abstractmethod
    async def close_streams(self, user_id: str, *, session_id: str | None) -> None:
        """End a user's streams on every process: those of one login session, or all."""

    def close_local_streams(self, reason: str) -> None:
        """End every stream of this process (shutdown)."""
        self._hub.close_all(reason)

    @abc.abstractmethod
    def stats(self) -> BrokerStats: ...

    async def check(self) -> str | None:
        """A cheap probe of the storage for ``/healthz``: None when it answers, else what is
        wrong (in words an operator can act on). Default: nothing to probe."""
        return None

    async def start(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Connect before serving (the server awaits it once, on its loop); default: nothing."""

    async def shared_signing_key(self, local: bytes) -> bytes:
        """The token signing key every process on this backend uses, given this process's own
        (``signing.key`` in its data folder); called once after :meth:`start`. Default: the
        local one (one process). A backend shared by several processes returns the key they
        agreed on, so a token issued by one is accepted by all."""
        return local

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the backend (database, connections). Streams are closed before this."""
