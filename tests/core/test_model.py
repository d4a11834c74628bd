"""The announcement model: one value object, one conversion per boundary, typed priorities."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.model import (
    ROW_COLUMNS,
    Announcement,
    Draft,
    Priority,
    from_epoch,
    parse_time,
)
from tests.fixtures.announcements import FULL


def test_stream_json_round_trip() -> None:
    obj = FULL.to_json()
    assert obj == {
        "type": "announcement",
        "id": "7",
        "title": "Fire drill",
        "body": "Thursday at ten",
        "priority": "urgent",
        "url": "https://example.org/drill",
        "created_at": "2030-01-02T03:04:05Z",
        "expires_at": "2030-01-03T00:00:00Z",
    }
    assert Announcement.from_json(obj) == FULL


def test_the_priority_is_typed_when_parsed() -> None:
    ann = Announcement.from_json({"id": "1", "title": "t", "body": "b", "priority": " HIGH "})
    assert ann.priority is Priority.HIGH
    unknown = Announcement.from_json({"id": "1", "title": "t", "body": "b", "priority": "meh"})
    assert unknown.priority is Priority.NORMAL
    with pytest.raises(ValueError, match="use one of low, normal, high, urgent"):
        Priority.parse("meh")


def test_stream_json_that_is_not_an_announcement() -> None:
    with pytest.raises(ValueError, match="strings"):
        Announcement.from_json({"id": "1", "title": 5, "body": "b"})
    assert Announcement.from_json({"title": "t", "body": "b"}, fallback_id="9").id == "9"


def test_store_row_round_trip() -> None:
    row = FULL.to_row()
    assert len(row) == len(ROW_COLUMNS)
    assert dict(zip(ROW_COLUMNS, row, strict=True)) == {
        "id": "7",
        "title": "Fire drill",
        "body": "Thursday at ten",
        "priority": "urgent",
        "url": "https://example.org/drill",
        "created_at": FULL.created_at.timestamp() if FULL.created_at else None,
        "expires_at": FULL.expires_at.timestamp() if FULL.expires_at else None,
        "legacy": 0,
    }
    assert Announcement.from_row((*row, "extra", "columns")) == FULL
    legacy = Announcement("legacy-1", "", "plain text", legacy=True)
    assert Announcement.from_row(legacy.to_row()) == legacy


def test_from_epoch() -> None:
    assert from_epoch(None) is None
    assert from_epoch(0) == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(TypeError):
        from_epoch("0")


@pytest.mark.parametrize(
    ("draft", "audience"),
    [
        (Draft("t", "b"), {"all": True}),
        (Draft("t", "b", groups=("it",)), {"groups": ["it"]}),
        (Draft("t", "b", users=("alice", "bob")), {"users": ["alice", "bob"]}),
    ],
)
def test_draft_to_json(draft: Draft, audience: dict[str, object]) -> None:
    assert draft.to_json() == {
        "title": "t",
        "body": "b",
        "priority": "normal",
        "audience": audience,
    }


def test_draft_with_link_and_expiry() -> None:
    obj = Draft("t", "b", Priority.LOW, url="https://x", expires_at="2030-01-01").to_json()
    assert (obj["priority"], obj["url"], obj["expires_at"]) == ("low", "https://x", "2030-01-01")


# Issue 24: ``from_json`` (every stream event) builds the frozen Announcement by slot stores on
# a twin class and a ``__class__`` assignment, and ``parse_time`` tests ``tzinfo is not None``.
# The references below are the plain way, as both were written before: the dataclass's own
# constructor, ``Priority.parse``, a truthiness test of ``tzinfo``. On the same objects the two
# must agree in every field (its type too), in the error raised and in its words.


def _reference_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _reference_from_json(obj: Any, fallback_id: str = "") -> Announcement:
    if not isinstance(obj, dict):
        raise ValueError("announcement must be a JSON object")
    title, body = obj.get("title", ""), obj.get("body", "")
    if not isinstance(title, str) or not isinstance(body, str):
        raise ValueError("announcement title and body must be strings")
    ann_id = obj.get("id")
    url, created, expires = obj.get("url"), obj.get("created_at"), obj.get("expires_at")
    return Announcement(
        id=fallback_id if ann_id is None or ann_id == "" else str(ann_id),
        title=title,
        body=body,
        priority=Priority.parse(obj.get("priority", "normal"), default=Priority.NORMAL),
        url=url if url and isinstance(url, str) else None,
        created_at=_reference_time(created) if created else None,
        expires_at=_reference_time(expires) if expires else None,
    )


_TIMES: list[object] = [
    None,
    "",
    "2026-12-05T09:30:01Z",
    "2026-12-05T09:30:01.123456Z",
    "2026-12-05T09:30:01",  # no offset: UTC
    "2026-12-05",
    "2026-12-05T09:30:01+02:00",
    "2026-12-05T09:30:01-00:00",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "2026-13-45T99:99:99Z",
    "2026-12-05T09:30:01ZZ",
    " 2026-12-05T09:30:01Z",
    "yesterday",
    "\x00",
    0,
    1764927000,
    1.5,
    True,
    False,
    [],
    ["2026-12-05T09:30:01Z"],
    {},
    {"at": "2026-12-05T09:30:01Z"},
]
#: every member's values, hostile ones included; _ABSENT leaves the member out
_ABSENT = object()
_MEMBERS: dict[str, list[object]] = {
    "type": [_ABSENT, "announcement", "update", None, 5],
    "id": [
        *(_ABSENT, None, "", "1764927000001-0", "x" * 10_000, "\x00", "é 日"),
        *(0, 7, -1, 2.5, True, False, [], ["7"], {}, {"id": "7"}),
    ],
    "title": [_ABSENT, "", "Fire drill", "é 日 \x00", None, 5, 2.5, True, [], ["t"], {}],
    "body": [_ABSENT, "", "The office closes at 16:00.", "b" * 100_000, None, 0, False, [], {}],
    "priority": [
        *(_ABSENT, "low", "normal", "high", "urgent", " HIGH ", "Urgent", "meh", ""),
        *(None, 0, 3, 2.5, True, False, [], ["high"], {}, {"high": 1}),
    ],
    "url": [
        *(_ABSENT, None, "", "https://intranet.example.org/news/1", "javascript:x", "x"),
        *(0, 1, True, False, [], ["https://x"], {}, {"href": "https://x"}),
    ],
    "created_at": [_ABSENT, *_TIMES],
    "expires_at": [_ABSENT, *_TIMES],
    "revision": [_ABSENT, 2],
}


def _outcome(build: Any, obj: object, fallback_id: str) -> object:
    """Every field of what ``build`` made (value, type, UTC offset), or the error it raised."""
    try:
        ann = build(obj, fallback_id=fallback_id)
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return (type(exc), str(exc))
    assert type(ann) is Announcement
    values = [getattr(ann, f.name) for f in dataclasses.fields(Announcement)]
    return [(v, type(v), v.utcoffset() if isinstance(v, datetime) else None) for v in values]


@pytest.mark.parametrize("seed", range(10))
def test_from_json_reads_as_the_plain_constructor_does(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        members = {name: rng.choice(values) for name, values in _MEMBERS.items()}
        obj = {name: value for name, value in members.items() if value is not _ABSENT}
        fallback = rng.choice(["", "9", "1764927000001-0"])
        expected = _outcome(_reference_from_json, obj, fallback)
        assert _outcome(Announcement.from_json, obj, fallback) == expected, obj


@pytest.mark.parametrize(
    "obj", [None, [], ["title"], "title", '{"title": "t"}', 5, 2.5, True, (("title", "t"),)]
)
def test_from_json_refuses_what_is_not_an_object_as_before(obj: object) -> None:
    assert _outcome(Announcement.from_json, obj, "") == _outcome(_reference_from_json, obj, "")
    with pytest.raises(ValueError, match="must be a JSON object"):
        Announcement.from_json(obj)  # type: ignore[arg-type]


def test_from_json_on_the_servers_event_is_a_plain_frozen_announcement() -> None:
    obj = json.loads(
        '{"type":"announcement","id":"1764927000001-0","title":"Announcement 1",'
        '"body":"The office closes at 16:00.","priority":"high",'
        '"url":"https://intranet.example.org/news/1","created_at":"2026-12-05T09:30:01Z",'
        '"expires_at":"2026-12-12T09:30:00Z"}'
    )
    ann = Announcement.from_json(obj)
    same = _reference_from_json(obj)
    assert type(ann) is Announcement and ann == same and hash(ann) == hash(same)
    assert not hasattr(ann, "__dict__")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ann.title = "changed"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del ann.body
    assert dataclasses.replace(ann, title="changed").title == "changed"
    assert copy.copy(ann) == ann and copy.deepcopy(ann) == ann
    assert pickle.loads(pickle.dumps(ann)) == ann  # noqa: S301 - our own bytes
    assert ann.created_at == datetime(2026, 12, 5, 9, 30, 1, tzinfo=UTC)
    assert Announcement.from_row(ann.to_row()) == ann


@pytest.mark.parametrize("value", [*_TIMES, "2026-12-05T09:30:01+00:00", "2026-W49-6"])
def test_parse_time_reads_as_before(value: object) -> None:
    got, expected = parse_time(value), _reference_time(value)
    assert got == expected
    if got is not None and expected is not None:
        assert got.tzinfo is not None and got.utcoffset() == expected.utcoffset()
