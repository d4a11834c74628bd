"""The server's values: who calls, who an announcement is for, a stored announcement, users,
grants and receipts, and the two errors every backend raises. The bottom of ``app/server``: it
imports nothing else of the server, so every other module may import it.

A stored announcement is a :class:`Record`; it is converted to and from each wire format
(a SQLite row, a Redis entry, the stream's JSON) only in ``app/server/codec.py``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
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
class Draft:
    """A validated announcement before it has an id (see ``app/server/validation.py``)."""

    title: str
    body: str
    priority: Priority
    audience: Audience
    url: str | None = None
    expires_at: datetime | None = None


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

    def live(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        return not self.revoked and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class Revocation:
    """A withdrawn announcement, as fanned out to its audience."""

    id: str
    audience: Audience


# what the fan-out hands to a stream
Delivery: TypeAlias = Record | Revocation


@dataclass(frozen=True, slots=True)
class User:
    name: str  # also the user id
    password_hash: str  # "": no password (a person of the identity provider)
    groups: frozenset[str] = frozenset()
    publisher: bool = False
    # a person of the identity provider: their (issuer, sub) as :func:`subject_key` writes it;
    # "": a local account (``server add-user``)
    subject: str = ""

    @property
    def roles(self) -> list[str]:
        return [PUBLISHER_ROLE] if self.publisher else []


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


@dataclass(slots=True)
class BrokerStats:
    """Backend figures for ``/metrics`` (the HTTP layer counts the rest itself)."""

    subscriptions: int = 0
    extra: dict[str, float] = field(default_factory=dict)  # more gauges: name -> value
    healthy: bool = True  # False while the store cannot be reached (/healthz says "degraded")
    problem: str | None = None  # what is wrong, for /healthz, when not healthy
