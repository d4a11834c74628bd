"""Server-Sent Events framing, as the WHATWG HTML standard reads it back.

Every line ends with LF; a field's value has no CR or LF (multi-line data becomes several
``data:`` lines, which the reader joins with LF again); an event ends with a blank line.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring
from typing import Any

from app.server import codec
from app.server.model import Change, Delivery, Record

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

PING = b": ping\n\n"


def retry(milliseconds: int) -> bytes:
    return f"retry: {int(milliseconds)}\n\n".encode("ascii")


def event(data: str, *, name: str | None = None, event_id: str | None = None) -> bytes:
    """One event. ``name`` and ``event_id`` must be single-line; ``event_id`` has no NUL."""
    lines: list[str] = []
    if name is not None:
        _check_field("event", name)
        lines.append(f"event: {name}")
    if event_id is not None:
        _check_field("id", event_id)
        if "\0" in event_id:
            raise ValueError("an SSE id must not contain NUL")
        lines.append(f"id: {event_id}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def valid_id(event_id: str | None) -> bool:
    """Whether ``event_id`` can be sent as an SSE ``id:`` (one line, no NUL)."""
    return event_id is not None and not _LINE_BREAK.search(event_id) and "\0" not in event_id


def json_event(obj: Any, *, name: str | None = None, event_id: str | None = None) -> bytes:
    return event(_dumps(obj), name=name, event_id=event_id)


def connected(connection_id: str, user_id: str, replay: bool, position: str | None) -> bytes:
    """``event: connected`` with ``position`` as its ``id:`` (none when None; it is one line
    without NUL), byte for byte what ``json_event({"connection_id", "user_id", "replay"},
    name="connected", event_id=position)`` writes, without building and encoding a dictionary
    on every open (json.dumps took most of the event's 4 µs): the JSON strings are written by
    the encoder ``json.dumps(..., ensure_ascii=False)`` uses, which escapes every line break
    (so the data is one line)."""
    id_line = "" if position is None else f"id: {position}\n"
    return (
        f"event: connected\n{id_line}"
        f'data: {{"connection_id":{encode_basestring(connection_id)},'
        f'"user_id":{encode_basestring(user_id)},"replay":{"true" if replay else "false"}}}\n\n'
    ).encode()


def record(item: Record) -> bytes:
    """An announcement, with its id as the SSE ``id:`` (the client resumes from it)."""
    return json_event(codec.announcement_json(item), event_id=item.id)


def delivery(item: Delivery) -> bytes:
    """What a stream is sent for a delivery: the announcement, or a change (correction,
    reminder, revoke) at its own position; an unpositioned revoke carries no ``id:``."""
    if isinstance(item, Record):
        return record(item)
    if isinstance(item, Change):
        return json_event(item.data, event_id=item.position)
    return json_event(codec.revocation_json(item))


def chunk(data: bytes) -> bytes:
    """``data`` as one HTTP/1.1 chunk (RFC 9112 7.1), byte for byte what aiohttp writes for a
    chunked response, for writing straight to its transport. ``data`` is never empty here (an
    empty chunk would end the response)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _check_field(field: str, value: str) -> None:
    if _LINE_BREAK.search(value):
        raise ValueError(f"an SSE {field} must be a single line")
