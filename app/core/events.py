"""Typing the events of a stream in the companion format, and in the foreign formats a
backend without a profile may send: Spring's ``{"code", "msg", "data"}`` envelope and plain text.

A backend profile (``[payload]``, :mod:`app.core.payload`) reads the rest; both end in the typed
messages of :mod:`app.core.model`.
"""

from __future__ import annotations

import dataclasses
import json
import json.scanner
import logging
from typing import Any, cast

from app.core.model import (
    CONTROL_EVENTS,
    Announcement,
    ControlEvent,
    RawEvent,
    Remind,
    Revoke,
    StreamEvent,
    Update,
    anonymous_id,
    parse_time,
)

log = logging.getLogger(__name__)

_JSON = json.JSONDecoder()
# the C scanner json.loads itself uses, called directly (0.65 against 1.45 µs for a small
# announcement; tests/core/test_events.py checks it reads what json.loads reads). typeshed types
# its argument as a scanner: it is the decoder whose settings it takes
_SCAN = json.scanner.make_scanner(cast(Any, _JSON))
_JSON_SPACE = " \t\n\r"


def load_json(text: str) -> Any:
    """``json.loads`` of a str: the same values, the same ValueError for what is not JSON.

    An object that starts at the first character (every JSON server's event) is read by
    json's own C scanner called directly, without the two whitespace passes of
    ``json.loads`` around it: a third of its time on a small announcement.
    """
    if text[:1] == "{":
        try:
            obj, end = _SCAN(text, 0)
        except (ValueError, StopIteration):
            pass  # json.loads below says what is wrong, in its own words
        else:
            if end == len(text) or not text[end:].strip(_JSON_SPACE):
                return obj
    return _JSON.decode(text)


def to_stream_event(raw: RawEvent) -> StreamEvent:
    """Type a raw event of the companion format (no backend profile). Never raises.

    - ``message`` (or no event name) with JSON ``{"type": "announcement", ...}`` (or an object
      with a ``title`` or ``body`` and no ``type``): Announcement.
    - JSON ``{"type": "revoke", "id": ...}``: Revoke; ``{"type": "remind", "id": ...}``:
      Remind; ``{"type": "update", ...the announcement's fields..., "revision"}``: Update.
    - The common envelope ``{"code": 200, "msg": "New notice", "data": ...}``: an Announcement
      titled with ``msg`` whose body is the text of ``data``.
    - A legacy backend's plain text, malformed JSON or JSON we do not understand: an
      Announcement whose body is the text, never an empty one.
    - Named control events (connected, close, sync): ControlEvent.

    Identity: only an id the event itself carried counts (its own ``id:`` line, or the ``id``
    of its JSON); an event with neither gets a made-up id (:func:`anonymous_id`) and is new
    each time. The inherited last event id is the resume position, never an identity.
    """
    event, data, last_id, _, own_id = raw
    if event in CONTROL_EVENTS:
        return ControlEvent(event, data)
    obj: Any = None
    # no stripped copy of the data when it starts with its brace, as a JSON server's does
    if data[:1] == "{" or data.lstrip()[:1] == "{":
        try:
            obj = load_json(data)
        except ValueError:
            log.warning("event %r carries malformed JSON; shown as plain text", last_id or event)
    if type(obj) is dict:  # (json makes plain dicts)
        kind = obj.get("type")
        # the usual event first: its kind is none of the three below, so the order of the
        # tests changes only the time they take
        if kind == "announcement" or (kind is None and ("title" in obj or "body" in obj)):
            try:
                ann = Announcement.from_json(obj, fallback_id=last_id if own_id else "")
            except ValueError as exc:
                log.warning("event %r is not a valid announcement (%s); shown as text", raw.id, exc)
            else:
                if ann.title or ann.body:
                    if ann.id:
                        return ann
                    return dataclasses.replace(ann, id=anonymous_id(), anonymous=True)
        elif kind == "revoke" and obj.get("id") not in (None, ""):
            return Revoke(str(obj["id"]))
        elif kind == "remind" and obj.get("id") not in (None, ""):
            return Remind(str(obj["id"]))
        elif kind == "update" and obj.get("id") not in (None, ""):
            update = _update(obj)
            if update is not None:
                return update
        envelope = from_envelope(obj, raw)
        if envelope is not None:
            return envelope
    return plain_text(raw, raw.data)


def _update(obj: dict[str, Any]) -> Update | None:
    """``{"type":"update", ...the announcement's fields..., "revision", "updated_at"}`` as an
    Update; None (logged) when its fields are not an announcement's."""
    try:
        ann = Announcement.from_json(obj)
    except ValueError as exc:
        log.warning("update of %r is not a valid announcement (%s): ignored", obj.get("id"), exc)
        return None
    revision = obj.get("revision")
    return Update(
        ann,
        revision if type(revision) is int and revision > 0 else 1,
        parse_time(obj.get("updated_at")),
    )


def plain_text(raw: RawEvent, body: str, title: str = "") -> Announcement:
    """The announcement of text we show as it is (a legacy backend's, JSON nobody mapped)."""
    own = raw.event_id
    if not title and raw.event != "message":
        title = raw.event
    return Announcement(
        id=own or anonymous_id(), title=title, body=body, legacy=True, anonymous=not own
    )


#: the members of a ``data`` object that hold its text, most telling first
_TEXT_KEYS = ("body", "content", "text", "message", "msg", "noticeContent", "description")
_TITLE_KEYS = ("title", "subject", "noticeTitle", "name")


def from_envelope(obj: dict[str, Any], raw: RawEvent) -> Announcement | None:
    """``{"code": 200, "msg": "New notice", "data": ...}`` (Spring's common reply envelope):
    titled with ``msg`` (or data's own title), the body the text of ``data``; None when
    ``obj`` is not such an envelope."""
    msg = obj.get("msg", obj.get("message"))
    if "data" not in obj or not isinstance(msg, str):
        return None
    data = obj["data"]
    title, body = msg, ""
    if isinstance(data, str):
        body = data
    elif isinstance(data, dict):
        body = next((data[k] for k in _TEXT_KEYS if isinstance(data.get(k), str)), "")
        inner = next((data[k] for k in _TITLE_KEYS if isinstance(data.get(k), str)), "")
        if inner and not body:
            body = inner
        elif inner and inner != title:
            title = f"{title}: {inner}" if title else inner
        if not body and data:
            body = json.dumps(data, ensure_ascii=False)
    elif data is not None:
        body = json.dumps(data, ensure_ascii=False)
    if not title and not body:
        return None
    own = raw.event_id
    if isinstance(data, dict) and data.get("id") not in (None, "", True, False):
        own = str(data["id"])
    return Announcement(id=own or anonymous_id(), title=title, body=body, anonymous=not own)
