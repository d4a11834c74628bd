"""Each conversion of an announcement, byte for byte: the stream's JSON, a Redis entry (the
stored format existing deployments hold), a SQLite row, and a draft becoming a record."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone

from app.core.model import Priority
from app.server import codec, wire
from app.server.model import Audience, Draft, Record, Revocation

NOW = datetime(2030, 1, 31, 17, 0, 0, 250000, tzinfo=UTC)
RECORD = Record(
    id="7",
    title="Fire drill",
    body="At 3 pm.\nBring \u4f60\u597d",
    priority=Priority.URGENT,
    audience=Audience(groups=frozenset({"it", "hr"})),
    created_at=NOW,
    url="https://example.org/a",
    expires_at=NOW + timedelta(hours=1),
    author="publisher",
)


def test_a_draft_becomes_a_record_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    draft = Draft(
        "t", "b", Priority.LOW, Audience(everyone=True), expires_at=NOW.astimezone(plus_two)
    )
    record = codec.new_record(draft, ann_id="3", author="boss", now=NOW.astimezone(plus_two))
    assert record == Record(
        "3", "t", "b", Priority.LOW, Audience(everyone=True), NOW, expires_at=NOW, author="boss"
    )
    assert record.created_at.tzinfo is UTC and record.expires_at is not None
    assert record.expires_at.tzinfo is UTC


def test_the_stream_json_and_its_event_bytes() -> None:
    assert codec.announcement_json(RECORD) == {
        "type": "announcement",
        "id": "7",
        "title": "Fire drill",
        "body": "At 3 pm.\nBring \u4f60\u597d",
        "priority": "urgent",
        "url": "https://example.org/a",
        "created_at": "2030-01-31T17:00:00.250000Z",
        "expires_at": "2030-01-31T18:00:00.250000Z",
    }
    assert (
        wire.record(RECORD)
        == (
            "id: 7\n"
            'data: {"type":"announcement","id":"7","title":"Fire drill","body":"At 3 pm.\\nBring '
            '\u4f60\u597d","priority":"urgent","url":"https://example.org/a",'
            '"created_at":"2030-01-31T17:00:00.250000Z","expires_at":"2030-01-31T18:00:00.250000Z"}'
            "\n\n"
        ).encode()
    )
    revoke = Revocation("7", RECORD.audience)
    assert wire.delivery(revoke) == b'data: {"type":"revoke","id":"7"}\n\n'


def test_a_redis_entry_keeps_the_stored_format_and_round_trips() -> None:
    entry = codec.to_entry(RECORD)
    assert list(entry) == ["data"]
    assert json.loads(entry["data"]) == {
        "title": "Fire drill",
        "body": "At 3 pm.\nBring \u4f60\u597d",
        "priority": "urgent",
        "url": "https://example.org/a",
        "created_at": "2030-01-31T17:00:00.250000Z",
        "expires_at": "2030-01-31T18:00:00.250000Z",
        "audience": {"groups": ["hr", "it"]},
        "author": "publisher",
    }
    assert codec.from_entry("7", entry) == RECORD
    assert codec.from_entry("7", entry, revoked=True).revoked


def test_a_sqlite_row_round_trips_including_rows_written_before() -> None:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.execute(
        "CREATE TABLE announcements (id INTEGER PRIMARY KEY, title, body, priority, url,"
        " created_at, expires_at, expires_ts, audience, author, revoked_at)"
    )
    row = codec.to_row(RECORD)
    assert row["expires_ts"] == (NOW + timedelta(hours=1)).timestamp()
    db.execute(
        "INSERT INTO announcements (id, title, body, priority, url, created_at, expires_at,"
        " expires_ts, audience, author) VALUES (7, :title, :body, :priority, :url, :created_at,"
        " :expires_at, :expires_ts, :audience, :author)",
        row,
    )
    # a row as the server wrote it before (times with +00:00, no url, revoked)
    db.execute(
        "INSERT INTO announcements VALUES (8, 't', 'b', 'low', NULL,"
        " '2030-01-31T17:00:00+00:00', NULL, NULL, '{\"all\": true}', 'p', '2030-02-01')"
    )
    first, second = db.execute("SELECT * FROM announcements ORDER BY id").fetchall()
    assert codec.from_row(first) == RECORD
    assert codec.from_row(second) == Record(
        "8",
        "t",
        "b",
        Priority.LOW,
        Audience(everyone=True),
        datetime(2030, 1, 31, 17, tzinfo=UTC),
        author="p",
        revoked=True,
    )
