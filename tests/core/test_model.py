"""The announcement model: one value object, one conversion per boundary, typed priorities."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.core.model import (
    ROW_COLUMNS,
    Announcement,
    Draft,
    Priority,
    from_epoch,
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
