"""Request validation on its own (the HTTP answers are in test_api.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.core.model import Priority
from app.server.model import Audience, Draft
from app.server.validation import BadInput, parse_audience, parse_draft

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_full_draft_is_typed() -> None:
    draft = parse_draft(
        {
            "title": "t",
            "body": "",
            "priority": "urgent",
            "url": "https://example.org",
            "expires_at": "2030-01-02T00:00:00Z",
            "audience": {"groups": ["it"], "users": ["bob"]},
        },
        now=NOW,
    )
    assert draft == Draft(
        "t",
        "",
        Priority.URGENT,
        Audience(groups=frozenset({"it"}), users=frozenset({"bob"})),
        url="https://example.org",
        expires_at=datetime(2030, 1, 2, tzinfo=UTC),
    )
    assert draft.priority is Priority.URGENT


def test_defaults_and_empty_optional_fields() -> None:
    draft = parse_draft({"title": "t", "body": "b", "url": "", "audience": {"all": True}}, now=NOW)
    assert (draft.priority, draft.url, draft.expires_at) == (Priority.NORMAL, None, None)


@pytest.mark.parametrize(
    "audience,field",
    [([], "audience"), ({"all": False}, "audience"), ({"groups": [1]}, "audience.groups")],
)
def test_bad_audiences_name_their_field(audience: object, field: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_audience(audience)
    assert caught.value.field == field
    assert caught.value.to_json() == {"error": str(caught.value), "field": field}


@pytest.mark.parametrize("field", ["title", "body"])
@pytest.mark.parametrize("control", ["\x1b", "\x00", "\x07", "\x7f", "\x9b", "\x85", "\x0b"])
def test_control_characters_are_refused_in_title_and_body(field: str, control: str) -> None:
    fields = {"title": "t", "body": "b", field: f"a{control}[2J b"}
    with pytest.raises(BadInput) as caught:
        parse_draft({**fields, "audience": {"all": True}}, now=NOW)
    assert caught.value.field == field
    assert f"control character U+{ord(control):04X}" in str(caught.value)


def test_tabs_line_breaks_and_any_script_are_text() -> None:
    text = "Line one\tcol\r\nline two\n通知 \u202eright-to-left is text too"
    draft = parse_draft({"title": text, "body": text, "audience": {"all": True}}, now=NOW)
    assert (draft.title, draft.body) == (text, text)
