"""The server's values: who calls, who an announcement is for, a stored announcement, users,
grants and receipts, and the two errors every backend raises. The bottom of ``app/server``: it
imports nothing else of the server, so every other module may import it.

A stored announcement is a :class:`Record`; it is converted to and from each wire format
(a SQLite row, a Redis entry, the stream's JSON) only in ``app/server/codec.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from app.core.model import Priority

PUBLISHER_ROLE = "publisher"
# the position "nothing yet": as a cursor (a resume id), every backend reads it as "from the
# beginning"; the ``connected`` event of a stream whose viewer may see nothing yet carries it
NOTHING_YET = "0"


class InvalidCursor(ValueError):
    """An announcement id that this backend never issued in this form (bad ``since``/resume id)."""


class BrokerUnavailable(Exception):
    """The backend's store cannot be reached right now (HTTP 503); nothing was changed. The
    message says what is unreachable and to try again; it never holds a credential."""


class NameTaken(Exception):
    """A person of the identity provider signs in under a name that belongs to a local
    (password) account: refused (HTTP 409), never merged. The message says what IT can do."""

    def __init__(self, username: str) -> None:
        super().__init__(
            f"the name {username!r} belongs to a local account of this server, not to your"
            " organisation account: ask IT to rename or remove that local account (it is"
            " never merged with yours), or log in with its password"
        )


class AlreadyRevoked(Exception):
    """A correction or a reminder of a revoked announcement (HTTP 409): nothing was changed."""


class StorageDamaged(Exception):
    """The server's database cannot be used (damaged, or not a database): the message names
    the file and what to do. The server does not start."""


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
class AudienceMembers:
    """Who an audience names now (``Broker.audience_members``): ``recipients``, the user ids
    of every user it names, sorted; and what it names that does not exist, sorted: the groups
    no user is in and the users no user is called."""

    recipients: tuple[str, ...] = ()
    unknown_groups: tuple[str, ...] = ()
    unknown_users: tuple[str, ...] = ()

    @property
    def unknown(self) -> list[str]:
        """What does not exist in words (``group x``, then ``user y``): a publish's refusal."""
        return [f"group {g}" for g in self.unknown_groups] + [
            f"user {u}" for u in self.unknown_users
        ]


@dataclass(frozen=True, slots=True)
class Draft:
    """A validated announcement before it has an id (see ``app/server/validation.py``)."""

    title: str
    body: str
    priority: Priority
    audience: Audience
    url: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Correction:
    """A validated correction of a sent announcement (``PATCH /announcements/{id}``): the
    fields in ``given`` are replaced (``url`` or ``expires_at`` given as None: removed), the
    others kept (see ``app/server/validation.py``)."""

    given: frozenset[str]
    title: str = ""
    body: str = ""
    priority: Priority = Priority.NORMAL
    url: str | None = None
    expires_at: datetime | None = None

    def apply(self, record: Record, *, now: datetime) -> Record:
        """``record`` corrected at ``now``: the next revision."""
        given = self.given
        return dataclasses.replace(
            record,
            title=self.title if "title" in given else record.title,
            body=self.body if "body" in given else record.body,
            priority=self.priority if "priority" in given else record.priority,
            url=self.url if "url" in given else record.url,
            expires_at=self.expires_at if "expires_at" in given else record.expires_at,
            revision=record.revision + 1,
            updated_at=now,
        )


@dataclass(frozen=True, slots=True)
class Record:
    """A stored announcement: what the stream shows, who may see it, who published it and
    whether it was revoked (a revoked one is kept: publishers still read it and its reach).
    Times are aware (UTC). ``revoked_at`` and ``revoked_by`` (when, and which publisher) say
    more about a revocation but are not part of a record's equality: ``revoked`` is."""

    id: str
    title: str
    body: str
    priority: Priority
    audience: Audience
    created_at: datetime
    url: str | None = None
    expires_at: datetime | None = None
    author: str = ""
    revoked: bool = False
    revoked_at: datetime | None = field(default=None, compare=False)
    revoked_by: str = field(default="", compare=False)
    # corrections (``PATCH /announcements/{id}``): how many, and when the last one was made;
    # the fields above are the corrected text
    revision: int = 0
    updated_at: datetime | None = None

    @property
    def position(self) -> str:
        """Its stream position (the SSE ``id:``): an announcement's position is its id."""
        return self.id

    def live(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Revocation:
    """A withdrawn announcement as servers before corrections fanned it out: no stream
    position (backends now fan out a :class:`Change` of kind ``revoke``)."""

    id: str
    audience: Audience

    @property
    def position(self) -> str:
        return ""


# the kinds of :class:`Change`: the ``type`` of its stream event
UPDATE = "update"
REMIND = "remind"
REVOKE = "revoke"
CHANGE_KINDS: tuple[str, ...] = (UPDATE, REMIND, REVOKE)


@dataclass(frozen=True, slots=True)
class Change:
    """A correction, a reminder or a revoke of the announcement ``id``, as stored and fanned
    out: an event at its own stream ``position`` (from the announcements' sequence, after every
    earlier announcement and change), replayed on resume like announcements.

    ``data`` is the event's JSON object as sent (``app/server/codec.py`` builds it:
    ``{"type":"update", ...the announcement's fields..., "revision", "updated_at"}``,
    ``{"type":"remind","id"}``, ``{"type":"revoke","id"}``). It reaches the announcement's
    ``audience``, or with ``users`` (a reminder) exactly those users and nobody else.
    """

    position: str
    kind: str
    id: str
    audience: Audience
    data: Mapping[str, Any] = field(compare=False)
    users: frozenset[str] | None = None

    def reaches(self, viewer: Principal) -> bool:
        """Whether ``viewer``'s streams get it (replayed or live)."""
        if self.users is not None:
            return viewer.user_id in self.users
        return self.audience.includes(viewer)


# what the fan-out hands to a stream
Delivery: TypeAlias = Record | Revocation | Change


@dataclass(frozen=True, slots=True)
class User:
    name: str  # also the user id
    password_hash: str  # "": no password (a person of the identity provider)
    groups: frozenset[str] = frozenset()
    publisher: bool = False
    # a person of the identity provider: their (issuer, sub) as :func:`subject_key` writes it;
    # "": a local account (``server add-user``)
    subject: str = ""
    # a person of the organisation's directory (LDAP, ``app/server/directory.py``): their
    # groups are the directory's; "" / False for the others
    display_name: str = ""
    directory: bool = False

    @property
    def roles(self) -> list[str]:
        return [PUBLISHER_ROLE] if self.publisher else []

    @property
    def local(self) -> bool:
        """A local account (``server add-user``): neither the provider's nor the directory's."""
        return not self.subject and not self.directory


@dataclass(frozen=True, slots=True)
class DirectoryPerson:
    """One person as the organisation's directory lists them: the login attribute's value (the
    user id here), the display name, and every group they are in, nested ones resolved."""

    name: str
    display_name: str = ""
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DirectoryStatus:
    """What the last directory sync did, shared by every process on the backend. Times are
    epoch seconds; ``synced_at`` is the last sync that read the directory (None: never),
    ``checked_at`` the last attempt, ``problem`` why that attempt failed (None: it did not)."""

    synced_at: float | None = None
    checked_at: float | None = None
    people: int = 0
    groups: int = 0
    problem: str | None = None
    conflicts: tuple[str, ...] = ()  # directory names that are local accounts' (not merged)

    def to_json(self) -> dict[str, Any]:
        return {
            "synced_at": self.synced_at,
            "checked_at": self.checked_at,
            "people": self.people,
            "groups": self.groups,
            "problem": self.problem,
            "conflicts": list(self.conflicts),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DirectoryStatus:
        return cls(
            synced_at=obj.get("synced_at"),
            checked_at=obj.get("checked_at"),
            people=int(obj.get("people", 0)),
            groups=int(obj.get("groups", 0)),
            problem=obj.get("problem"),
            conflicts=tuple(obj.get("conflicts", ())),
        )


def with_directory(user: User | None, person: DirectoryPerson | None) -> User | None:
    """The user as the server sees them: a directory person's groups and display name over
    their stored row (a person of the provider who is also in the directory), or a directory
    person with no row yet (who never signed in). A local account keeps its own name: the
    directory person of the same name is left out (never merged; docs/directory.md)."""
    if person is None:
        return user
    if user is None:
        return User(
            person.name, "", person.groups, display_name=person.display_name, directory=True
        )
    if not user.subject:
        return user  # a local account: it stays as it is
    return User(
        user.name,
        user.password_hash,
        person.groups,
        user.publisher,
        user.subject,
        display_name=person.display_name,
        directory=True,
    )


def person_names(username: str) -> Iterator[str]:
    """The names a new person of the identity provider may get, in order of preference: the
    username claim, then ``name~2``, ``name~3``... (two provider people with one name are two
    users; ``~`` needs no escaping in a URL path)."""
    yield username
    for n in itertools.count(2):
        yield f"{username}~{n}"


def subject_key(issuer: str, sub: str) -> str:
    """One provider person's key, unambiguous whatever characters the issuer and sub hold."""
    return json.dumps([issuer, sub], ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    """What a valid refresh token stood for."""

    user_id: str
    session_id: str


@dataclass(frozen=True, slots=True)
class Ack:
    user_id: str
    acked_at: datetime


# receipt kinds (``POST /receipts``) and what each also records (docs/api.md, "Receipts"):
# anything reported was delivered; an acknowledged announcement was read. "Displayed" (the
# tray put it in front of the person: a toast, a summary counting it, the urgent window) is
# only ever reported for itself: reading it in the history, or acknowledging it there, after
# do not disturb held its toast back does not make the notification shown.
ACKNOWLEDGED = "acknowledged"
READ = "read"
DISPLAYED = "displayed"
DELIVERED = "delivered"
RECEIPT_KINDS: tuple[str, ...] = (DELIVERED, DISPLAYED, READ, ACKNOWLEDGED)
IMPLIED: dict[str, tuple[str, ...]] = {
    ACKNOWLEDGED: (ACKNOWLEDGED, READ, DELIVERED),
    READ: (READ, DELIVERED),
    DISPLAYED: (DISPLAYED, DELIVERED),
    DELIVERED: (DELIVERED,),
}


@dataclass(frozen=True, slots=True)
class Receipt:
    """What one user's client reported of one announcement (None: not yet)."""

    user_id: str
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    acked_at: datetime | None = None
    displayed_at: datetime | None = None
    # reminders (``POST /announcements/{id}/remind``) sent to this user: the last, how many
    reminded_at: datetime | None = None
    reminders: int = 0


@dataclass(slots=True)
class BrokerStats:
    """Backend figures for ``/metrics`` (the HTTP layer counts the rest itself)."""

    subscriptions: int = 0
    extra: dict[str, float] = field(default_factory=dict)  # more gauges: name -> value
    healthy: bool = True  # False while the store cannot be reached (/healthz says "degraded")
    problem: str | None = None  # what is wrong, for /healthz, when not healthy
