"""Typing stream events without a backend profile (the companion format, plain text), and the
JSON reader of the hot path."""

from __future__ import annotations

import json

import pytest

from app import APP_NAME
from app.core.events import load_json, to_stream_event
from app.core.model import Announcement, RawEvent, Remind, Revoke, Update, parse_time
from tests.fixtures.announcements import FULL


def test_display_title_is_the_one_rule() -> None:
    assert FULL.display_title() == "Fire drill"
    untitled = to_stream_event(RawEvent(data="the canteen is closed today"))
    assert isinstance(untitled, Announcement) and untitled.legacy
    assert untitled.display_title() == APP_NAME
    assert untitled.display_title("Notices") == "Notices"


def test_typed_stream_events() -> None:
    raw = RawEvent(data='{"type":"revoke","id":"3"}', id="3")
    assert to_stream_event(raw) == Revoke("3")
    assert to_stream_event(RawEvent(data=json.dumps(FULL.to_json()), id="7")) == FULL


def test_corrections_and_reminders_are_typed() -> None:
    """Issue 25: ``update`` carries the announcement's fields, its revision and when;
    ``remind`` and ``revoke`` the announcement's id (their own ``id:`` is a position)."""
    update = {
        **FULL.to_json(),
        "type": "update",
        "revision": 2,
        "updated_at": "2030-01-01T09:00:00Z",
    }
    typed = to_stream_event(RawEvent(data=json.dumps(update), id="12"))
    assert typed == Update(FULL, 2, parse_time("2030-01-01T09:00:00Z"))
    assert isinstance(typed, Update) and typed.id == FULL.id
    remind = RawEvent(data='{"type":"remind","id":"3"}', id="13")
    assert to_stream_event(remind) == Remind("3")
    no_id = to_stream_event(RawEvent(data='{"type":"remind","body":"x"}', id="14"))
    assert not isinstance(no_id, Remind)  # a reminder of nothing is no reminder


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "1", "title": "T", "nested": {"a": [1, 2.5, null, true]}}',
        '{"a": 1}  \n\t\r ',
        '  {"a": 1}',
        "[1, 2]",
        '"text"',
        "12",
        '{"a": "\\u00e9\\ud83d\\ude80"}',
        '{"a": NaN, "b": Infinity}',
    ],
)
def test_load_json_reads_what_json_loads_reads(text: str) -> None:
    assert load_json(text) == json.loads(text)
    assert type(load_json(text)) is type(json.loads(text))


@pytest.mark.parametrize(
    "text", ['{"a": 1} x', '{"a": 1}{"b": 2}', '{"a": ', "{", "{'a': 1}", '{"a": 1,}', "", "x"]
)
def test_load_json_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(text)
    with pytest.raises(ValueError) as got:
        load_json(text)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # issue 24 tests the announcement's kind first: a kind it is not still reads as itself
        ('{"type":"revoke","id":"3","title":"t","body":"b"}', Revoke("3")),
        ('{"type":"remind","id":"3","title":"t","body":"b"}', Remind("3")),
        ('{"type":"announcement","id":"3","title":"t"}', Announcement("3", "t", "")),
        ('{"id":"3","body":"b"}', Announcement("3", "", "b")),
        # a kind without its id, or an invalid announcement: the envelope, else the text
        ('{"type":"revoke","title":"t"}', None),
        ('{"type":"remind","id":""}', None),
        ('{"type":"update","id":"3","title":5}', None),
        ('{"type":"announcement","id":"3","title":5}', None),
        ('{"type":"announcement","id":"3","title":""}', None),
        ('{"type":"revoke","msg":"m","data":"d"}', Announcement("4", "m", "d")),
        ('{"type":"announcement","title":[],"msg":"m","data":"d"}', Announcement("4", "m", "d")),
        ('{"type":"news","id":"3","title":"t"}', None),
    ],
)
def test_each_kind_is_read_whatever_the_order_of_the_tests(
    data: str, expected: Announcement | Revoke | Remind | None
) -> None:
    raw = RawEvent(data=data, id="4")
    got = to_stream_event(raw)
    if expected is None:  # shown as its text
        expected = Announcement("4", "", data, legacy=True)
    assert got == expected
    assert type(got) is type(expected)
