"""Every conversion of an announcement at a boundary of the server, each written once:

- a validated :class:`~app.server.model.Draft` becomes a :class:`~app.server.model.Record`
  (:func:`new_record`), the same way in both backends, whichever publish path (HTTP
  ``POST /announcements`` or ``EmbeddedServer.publish``) it came from;
- a record <-> its stored form: a SQLite row (:func:`to_row`, :func:`from_row`) and a Redis
  Streams entry (:func:`to_entry`, :func:`from_entry`), both built on one field mapping
  (:func:`_stored`, :func:`_from_stored`);
- a record -> the stream's and the REST API's JSON (:func:`announcement_json`; for
  publishers, ``GET /announcements`` adds the revocation: :func:`listed_json`), and a
  revocation -> its control message (:func:`revocation_json`). The SSE framing of these is
  ``app/server/wire.py``.

Times are stored and sent as ISO 8601 in UTC with a ``Z`` (:func:`iso`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app.core.model import Priority, parse_time
from app.server.model import (
    REMIND,
    REVOKE,
    UPDATE,
    Audience,
    Change,
    Draft,
    Record,
    Revocation,
)

# the one field of a Redis Streams announcement entry: the stored form as JSON
ENTRY_FIELD = "data"
# the one field of a change's entry in the same stream (a correction, a reminder, a revoke):
# its kind, announcement, audience, users and event data as JSON (:func:`to_change_entry`)
CHANGE_FIELD = "change"


def new_record(draft: Draft, *, ann_id: str, author: str, now: datetime) -> Record:
    """``draft`` as published at ``now`` with ``ann_id`` (its times in UTC)."""
    return Record(
        id=ann_id,
        title=draft.title,
        body=draft.body,
        priority=draft.priority,
        audience=draft.audience,
        created_at=now.astimezone(UTC),
        url=draft.url,
        expires_at=draft.expires_at.astimezone(UTC) if draft.expires_at else None,
        author=author,
    )


# ---------------------------------------------------------------- the stream's JSON


def announcement_json(record: Record) -> dict[str, Any]:
    """``{"type":"announcement","id","title","body","priority","url","created_at",
    "expires_at"}``: the ``data:`` of an announcement event and an item of ``GET
    /announcements`` (docs/api.md, "Stream")."""
    return {
        "type": "announcement",
        "id": record.id,
        "title": record.title,
        "body": record.body,
        "priority": record.priority.value,
        "url": record.url,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at) if record.expires_at else None,
    }


def listed_json(record: Record, *, publisher: bool) -> dict[str, Any]:
    """An item of ``GET /announcements``: :func:`announcement_json` (a corrected one's current
    text, with ``"revision"`` and ``"updated_at"``), and for a publisher (who also sees revoked
    ones) ``"revoked_at"`` and ``"revoked_by"`` (null while not revoked)."""
    item = announcement_json(record)
    if record.revision:  # corrected: the text above is the current one (docs/api.md)
        item["revision"] = record.revision
        item["updated_at"] = iso(record.updated_at) if record.updated_at else None
    if publisher:
        item["revoked_at"] = revoked_at_json(record)
        item["revoked_by"] = (record.revoked_by or None) if record.revoked else None
    return item


def revoked_at_json(record: Record) -> str | None:
    """When ``record`` was revoked, as the API writes times; None while it is not. A revoked
    record whose time is not known (stored unreadably) says its creation time rather than
    null, which would read as "not revoked"."""
    if not record.revoked:
        return None
    return iso(record.revoked_at or record.created_at)


def revocation_json(item: Revocation) -> dict[str, Any]:
    """``{"type":"revoke","id":…}``: the ``data:`` of a revoke event."""
    return {"type": "revoke", "id": item.id}


def update_json(record: Record) -> dict[str, Any]:
    """``{"type":"update", ...the announcement's fields..., "revision", "updated_at"}``: the
    ``data:`` of a correction's event (``record`` as corrected)."""
    data = announcement_json(record)
    data["type"] = UPDATE
    data["revision"] = record.revision
    data["updated_at"] = iso(record.updated_at) if record.updated_at else None
    return data


def remind_json(ann_id: str) -> dict[str, Any]:
    """``{"type":"remind","id":…}``: the ``data:`` of a reminder's event."""
    return {"type": REMIND, "id": ann_id}


def revoke_json(ann_id: str) -> dict[str, Any]:
    """``{"type":"revoke","id":…}``: the ``data:`` of a revoke event (with its position)."""
    return {"type": REVOKE, "id": ann_id}


# ---------------------------------------------------------------- stored forms


def to_row(record: Record) -> dict[str, Any]:
    """The SQLite ``announcements`` columns of a new record (named parameters; no ``id``,
    which SQLite assigns, and no ``revoked_at``)."""
    row = _stored(record)
    row["audience"] = json.dumps(row["audience"])
    row["expires_ts"] = record.expires_at.timestamp() if record.expires_at else None
    return row


def from_row(row: sqlite3.Row) -> Record:
    """The inverse of :func:`to_row`, for a row of ``announcements``."""
    fields = {key: row[key] for key in row.keys()}  # noqa: SIM118 - a Row is not a mapping
    fields["audience"] = json.loads(row["audience"])
    revoked_at = row["revoked_at"]
    return _from_stored(
        str(row["id"]),
        fields,
        revoked=revoked_at is not None,
        revoked_at=parse_time(revoked_at),
        # a database of an older version has no revoked_by column until it is opened once
        revoked_by=(fields.get("revoked_by") or "") if revoked_at is not None else "",
    )


def to_entry(record: Record) -> dict[str, str]:
    """The fields of a new Redis Streams entry (the entry id, assigned by Redis, is the id)."""
    return {ENTRY_FIELD: json.dumps(_stored(record))}


def from_entry(
    entry_id: str,
    fields: Mapping[Any, Any],
    *,
    revoked: bool = False,
    revoked_at: str | None = None,
    revoked_by: str | None = None,
    correction: str | None = None,
) -> Record:
    """The inverse of :func:`to_entry`; raises ValueError or KeyError on a malformed entry.
    ``revoked_at`` and ``revoked_by``: as stored beside the entry (a revocation's time makes
    it revoked); ``correction``: the last correction stored beside it (:func:`to_correction`),
    whose fields replace the entry's."""
    revoked = revoked or revoked_at is not None
    stored = json.loads(fields[ENTRY_FIELD])
    if correction is not None:
        stored.update(json.loads(correction))
    return _from_stored(
        str(entry_id),
        stored,
        revoked=revoked,
        revoked_at=parse_time(revoked_at) if revoked_at is not None else None,
        revoked_by=(revoked_by or "") if revoked else "",
    )


def to_correction(record: Record) -> str:
    """A corrected record's fields as stored beside its Redis entry (the entry itself never
    changes): its text, priority, link, expiry, revision and when it was corrected."""
    stored = _stored(record)
    corrected = {k: stored[k] for k in ("title", "body", "priority", "url", "expires_at")}
    corrected["revision"] = record.revision
    corrected["updated_at"] = iso(record.updated_at) if record.updated_at else None
    return json.dumps(corrected)


def to_change_entry(change: Change) -> str:
    """The value of :data:`CHANGE_FIELD` for a change (its position is the entry's id)."""
    return json.dumps(
        {
            "kind": change.kind,
            "id": change.id,
            "audience": change.audience.to_json(),
            "users": sorted(change.users) if change.users is not None else None,
            "data": change.data,
        },
        ensure_ascii=False,
    )


def from_change_entry(entry_id: str, fields: Mapping[Any, Any]) -> Change:
    """The inverse of :func:`to_change_entry`; raises ValueError or KeyError when malformed."""
    obj = json.loads(fields[CHANGE_FIELD])
    users = obj.get("users")
    return Change(
        str(entry_id),
        str(obj["kind"]),
        str(obj["id"]),
        Audience.from_json(obj["audience"]),
        obj["data"],
        frozenset(users) if users is not None else None,
    )


def _stored(record: Record) -> dict[str, Any]:
    return {
        "title": record.title,
        "body": record.body,
        "priority": record.priority.value,
        "url": record.url,
        "created_at": iso(record.created_at),
        "expires_at": iso(record.expires_at) if record.expires_at else None,
        "audience": record.audience.to_json(),
        "author": record.author,
    }


def _from_stored(
    ann_id: str,
    obj: Mapping[str, Any],
    *,
    revoked: bool,
    revoked_at: datetime | None = None,
    revoked_by: str = "",
) -> Record:
    created = parse_time(obj.get("created_at"))
    if created is None:
        raise ValueError(f"announcement {ann_id} has no valid created_at")
    return Record(
        id=ann_id,
        title=obj["title"],
        body=obj["body"],
        priority=Priority(obj["priority"]),
        audience=Audience.from_json(obj["audience"]),
        created_at=created,
        url=obj.get("url"),
        expires_at=parse_time(obj.get("expires_at")),
        author=obj.get("author") or "",
        revoked=revoked,
        revoked_at=revoked_at,
        revoked_by=revoked_by,
        revision=int(obj.get("revision") or 0),
        updated_at=parse_time(obj.get("updated_at")),
    )


def iso(when: datetime) -> str:
    """``when`` in UTC as ISO 8601 with a ``Z``: how the server writes every time."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
