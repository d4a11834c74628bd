"""Validation of request bodies: every problem becomes a :class:`BadInput` naming its field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from app.core.model import Priority, parse_time
from app.server.model import Audience, Correction, Draft

MAX_TITLE = 200
MAX_URL = 2048
MAX_NAMES = 1000  # groups or users in one audience


class BadInput(ValueError):
    """A request the server refuses with HTTP 400; ``field`` is None for the whole body."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field

    def to_json(self) -> dict[str, Any]:
        return {"error": str(self), "field": self.field}


def require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BadInput("the request body must be a JSON object")
    return payload


def string_field(
    obj: dict[str, Any], name: str, *, required: bool = True, max_len: int | None = None
) -> str | None:
    """A string field: missing (when required), wrong-typed, empty or too long is BadInput."""
    value = obj.get(name)
    if value is None:
        if required:
            raise BadInput(f"{name} is required", name)
        return None
    if not isinstance(value, str):
        raise BadInput(f"{name} must be a string", name)
    if required and not value.strip():
        raise BadInput(f"{name} must not be empty", name)
    if max_len is not None and len(value) > max_len:
        raise BadInput(f"{name} is longer than {max_len} characters", name)
    return value


def parse_draft(payload: Any, *, now: datetime) -> Draft:
    """``{title, body, priority?, url?, expires_at?, audience}`` as a Draft."""
    obj = require_object(payload)
    title = string_field(obj, "title", max_len=MAX_TITLE)
    body = obj.get("body")
    if not isinstance(body, str):
        raise BadInput("body is required and must be a string", "body")
    priority = obj.get("priority", Priority.NORMAL.value)
    if not isinstance(priority, str) or priority not in {p.value for p in Priority}:
        names = ", ".join(p.value for p in Priority)
        raise BadInput(f"priority must be one of {names}", "priority")
    assert title is not None
    _plain_text(title, "title")
    _plain_text(body, "body")
    return Draft(
        title=title,
        body=body,
        priority=Priority(priority),
        audience=parse_audience(obj.get("audience")),
        url=_url(obj),
        expires_at=_expires_at(obj, now),
    )


# the fields a correction (``PATCH /announcements/{id}``) may change: its audience stays
CORRECTABLE = ("title", "body", "priority", "url", "expires_at")


def parse_correction(payload: Any, *, now: datetime) -> Correction:
    """``{title?, body?, url?, priority?, expires_at?}`` as a Correction, each field checked as
    a publish checks it; ``url`` or ``expires_at`` null or "" removes the link or the expiry.
    Nothing to change, or any other field (the audience of a sent announcement stays), is
    BadInput."""
    obj = require_object(payload)
    unknown = sorted(set(obj) - set(CORRECTABLE))
    if unknown:
        raise BadInput(
            f"a correction changes only {', '.join(CORRECTABLE)}; not {', '.join(unknown)}",
            unknown[0],
        )
    if not obj:
        raise BadInput(f"nothing to correct: give one of {', '.join(CORRECTABLE)}")
    given = frozenset(obj)
    title = string_field(obj, "title", max_len=MAX_TITLE) if "title" in given else None
    if title is not None:
        _plain_text(title, "title")
    body = obj.get("body", "")
    if not isinstance(body, str):
        raise BadInput("body must be a string", "body")
    _plain_text(body, "body")
    priority = obj.get("priority", Priority.NORMAL.value)
    if not isinstance(priority, str) or priority not in {p.value for p in Priority}:
        names = ", ".join(p.value for p in Priority)
        raise BadInput(f"priority must be one of {names}", "priority")
    return Correction(
        given=given,
        title=title or "",
        body=body,
        priority=Priority(priority),
        url=_url(obj),
        expires_at=_expires_at(obj, now),
    )


# control characters a title or body may not hold: every C0 control but tab, line feed and
# carriage return, DEL and the C1 controls (ESC and CSI drive terminals; NUL truncates text in
# C code; none of them is text a person reads)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _plain_text(text: str, field: str) -> None:
    found = _CONTROL.search(text)
    if found is not None:
        raise BadInput(
            f"{field} holds the control character U+{ord(found.group()):04X}: only text, tabs"
            " and line breaks are allowed",
            field,
        )


def parse_audience(value: Any) -> Audience:
    """``{"all": true}``, ``{"groups": [...]}`` or ``{"users": [...]}`` (groups and users may
    be combined); anything addressed to nobody is refused."""
    if not isinstance(value, dict):
        raise BadInput(
            'audience must be {"all": true}, {"groups": [...]} or {"users": [...]}', "audience"
        )
    unknown = set(value) - {"all", "groups", "users"}
    if unknown:
        raise BadInput(f"audience has unknown keys: {', '.join(sorted(unknown))}", "audience")
    everyone = value.get("all", False)
    if not isinstance(everyone, bool):
        raise BadInput("audience.all must be true or false", "audience.all")
    groups = _names(value, "groups")
    users = _names(value, "users")
    if everyone and (groups or users):
        raise BadInput("audience.all cannot be combined with groups or users", "audience")
    if not (everyone or groups or users):
        raise BadInput("audience is empty: address everyone, some groups or some users", "audience")
    return Audience(everyone=everyone, groups=groups, users=users)


def _names(audience: dict[str, Any], key: str) -> frozenset[str]:
    field = f"audience.{key}"
    value = audience.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_NAMES:
        raise BadInput(f"{field} must be a list of at most {MAX_NAMES} names", field)
    if not all(isinstance(v, str) and v.strip() for v in value):
        raise BadInput(f"{field} must hold non-empty strings", field)
    return frozenset(value)


def _url(obj: dict[str, Any]) -> str | None:
    url = string_field(obj, "url", required=False, max_len=MAX_URL)
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput("url must be an http:// or https:// link", "url")
    return url


def _expires_at(obj: dict[str, Any], now: datetime) -> datetime | None:
    text = string_field(obj, "expires_at", required=False)
    if not text:
        return None
    when = parse_time(text)
    if when is None:
        raise BadInput(
            "expires_at must be an ISO 8601 time like 2030-01-31T17:00:00Z", "expires_at"
        )
    if when <= now.astimezone(UTC):
        raise BadInput("expires_at is in the past", "expires_at")
    return when
