"""How an event's data becomes an announcement under a backend profile (``[payload]``).

Without a profile (:attr:`PayloadProfile.is_set` false) the companion format is read, with the
common ``{"code", "msg", "data"}`` envelope and plain text understood too
(:func:`app.core.events.to_stream_event`). With one, JSON Pointers pick the id, title, body,
priority and link out of the event's JSON; ``body_format = "html"`` turns markup into plain text
(:mod:`app.core.htmltext`), never rendered. Rules that hold either way:

- plain-text data is the body; JSON that matches no pointer is shown as its text: never an
  empty toast;
- the identity of an event is the payload's id, else the event's own ``id:`` line; with neither,
  the event is new each time (an inherited last event id never identifies an event).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from app.core import htmltext, pointer
from app.core.config import PayloadProfile
from app.core.events import load_json, plain_text, to_stream_event
from app.core.model import (
    CONTROL_EVENTS,
    Announcement,
    ControlEvent,
    Priority,
    RawEvent,
    StreamEvent,
    anonymous_id,
)

log = logging.getLogger(__name__)


def event_parser(profile: PayloadProfile | None) -> Callable[[RawEvent], StreamEvent]:
    """:func:`parse_event` with ``profile`` bound, chosen once per stream (the engine calls it
    for every event)."""
    if profile is None or not profile.is_set:
        return to_stream_event
    return functools.partial(parse_event, profile=profile)


def parse_event(raw: RawEvent, profile: PayloadProfile | None = None) -> StreamEvent:
    """Type a raw event under ``profile`` (None or an empty one: the companion format).
    Never raises."""
    if profile is None or not profile.is_set:
        return to_stream_event(raw)
    if raw.event in CONTROL_EVENTS:
        return ControlEvent(raw.event, raw.data)
    obj: Any = None
    if raw.data.lstrip().startswith(("{", "[")):
        try:
            obj = load_json(raw.data)
        except ValueError:
            log.warning("event %r carries malformed JSON; shown as plain text", raw.id or raw.event)
    if obj is None:
        return plain_text(raw, _body(raw.data, profile))
    title = _text(obj, profile.title)
    body = _text(obj, profile.body)
    if not title and not body:  # matches no pointer: its text, never an empty toast
        if isinstance(obj, dict) and profile.is_set:
            log.info("event %r: the [payload] pointers found no title or body", raw.id)
        return plain_text(raw, raw.data)
    ident = _text(obj, profile.id) or raw.event_id
    return Announcement(
        id=ident or anonymous_id(),
        title=htmltext.to_text(title) if profile.body_format == "html" else title,
        body=_body(body, profile),
        priority=_priority(pointer.resolve(obj, profile.priority), profile)
        if profile.priority
        else Priority.NORMAL,
        url=_url(_text(obj, profile.url)),
        anonymous=not ident,
    )


def _text(obj: Any, ptr: str) -> str:
    """The text at ``ptr`` (numbers as their digits); "" for no pointer, nothing or null."""
    if not ptr:
        return ""
    value = pointer.resolve(obj, ptr)
    if value is pointer.MISSING or value is None or isinstance(value, bool):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _body(text: str, profile: PayloadProfile) -> str:
    return htmltext.to_text(text) if profile.body_format == "html" else text


def _priority(value: Any, profile: PayloadProfile) -> Priority:
    if value is pointer.MISSING or value is None:
        return Priority.NORMAL
    key = str(value).strip()
    if key in profile.priorities:
        return profile.priorities[key]
    return Priority.parse(key, default=Priority.NORMAL)


def _url(text: str) -> str | None:
    return text if text.startswith(("http://", "https://")) else None
