"""The announcement model: typed, immutable messages that flow from the engine to its callers.

Every value that crosses a thread or a signal is one of these frozen dataclasses, never a dict.
"""

from __future__ import annotations

import enum
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: object, default: Priority | None = None) -> Priority:
        """Parse a priority name; unknown values raise ValueError unless a default is given."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            if default is not None:
                return default
            names = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown priority {value!r}: use one of {names}") from None


_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class ConnState(enum.StrEnum):
    """What the engine is doing; the tray icon and tooltip show it."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    OFFLINE = "offline"  # waiting to reconnect after a drop or a failure
    LOGIN_REQUIRED = "login_required"  # stopped: the refresh token was refused or is missing
    ERROR = "error"  # stopped: something a person must fix (403, 404, not an SSE server...)
    STOPPED = "stopped"  # stopped on purpose (logout, quit, HTTP 204)


@dataclass(frozen=True, slots=True)
class Status:
    state: ConnState
    detail: str = ""
    retry_in: float | None = None  # seconds until the next attempt, when OFFLINE


@dataclass(frozen=True, slots=True)
class Announcement:
    id: str
    title: str
    body: str
    priority: Priority = Priority.NORMAL
    url: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    legacy: bool = False  # plain text from a legacy backend, shown under the app's name

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "announcement",
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "priority": self.priority.value,
            "url": self.url,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, fallback_id: str = "") -> Announcement:
        """Build from the stream's JSON object; raises ValueError when it is not an announcement."""
        if not isinstance(obj, dict):
            raise ValueError("announcement must be a JSON object")
        ann_id = obj.get("id", fallback_id)
        title = obj.get("title", "")
        body = obj.get("body", "")
        if not isinstance(title, str) or not isinstance(body, str):
            raise ValueError("announcement title and body must be strings")
        if ann_id is None or ann_id == "":
            ann_id = fallback_id
        url = obj.get("url")
        return cls(
            id=str(ann_id),
            title=title,
            body=body,
            priority=Priority.parse(obj.get("priority", "normal"), default=Priority.NORMAL),
            url=url if isinstance(url, str) and url else None,
            created_at=parse_time(obj.get("created_at")),
            expires_at=parse_time(obj.get("expires_at")),
        )


@dataclass(frozen=True, slots=True)
class Revoke:
    """The server withdrew an announcement: remove it from history and from the screen."""

    id: str


@dataclass(frozen=True, slots=True)
class ControlEvent:
    """A named event without an id: ``connected``, ``close``, ``sync`` or one we do not know."""

    name: str
    data: str = ""


StreamEvent = Announcement | Revoke | ControlEvent


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One dispatched Server-Sent Event, as the WHATWG rules define it."""

    event: str = "message"
    data: str = ""
    id: str = ""  # the last event id in force when it was dispatched
    retry: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t else None


CONTROL_EVENTS = frozenset({"connected", "close", "sync", "ping"})


def to_stream_event(raw: RawEvent) -> StreamEvent:
    """Type a raw event. Never raises: bad JSON becomes a plain-text announcement.

    - ``message`` (or no event name) with JSON ``{"type": "announcement", ...}``: Announcement.
    - JSON ``{"type": "revoke", "id": ...}``: Revoke.
    - A legacy backend's plain text (or malformed JSON): an Announcement whose body is the text.
    - Named control events (connected, close, sync): ControlEvent.
    """
    if raw.event in CONTROL_EVENTS:
        return ControlEvent(raw.event, raw.data)
    obj: Any = None
    stripped = raw.data.lstrip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(raw.data)
        except ValueError:
            log.warning("event %r carries malformed JSON; shown as plain text", raw.id or raw.event)
    if isinstance(obj, dict):
        kind = obj.get("type", "announcement")
        if kind == "revoke" and obj.get("id") not in (None, ""):
            return Revoke(str(obj["id"]))
        if kind == "announcement":
            try:
                return Announcement.from_json(obj, fallback_id=raw.id)
            except ValueError as exc:
                log.warning("event %r is not a valid announcement (%s); shown as text", raw.id, exc)
    # legacy backend: plain text (or JSON we do not understand) shown as the body
    # without an id a legacy event cannot be de-duplicated: each one is new
    ident = raw.id or f"legacy-{uuid.uuid4().hex}"
    title = "" if raw.event == "message" else raw.event
    return Announcement(id=ident, title=title, body=raw.data, legacy=True)
