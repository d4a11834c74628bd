"""An event's data under a backend profile, and the identity of an event (issue 11)."""

from __future__ import annotations

import json

import pytest

from app.core.config import PayloadProfile
from app.core.model import Announcement, Priority, RawEvent, Revoke
from app.core.payload import parse_event
from app.core.sse import SSEDecoder

RUOYI = PayloadProfile(
    id="/noticeId", title="/noticeTitle", body="/noticeContent", body_format="html"
)


def decode(data: bytes) -> list[RawEvent]:
    return SSEDecoder().feed(data)


# ---------------------------------------------------------------- identity


def test_the_decoder_tells_an_own_id_from_an_inherited_one() -> None:
    first, second = decode(b"id:7\ndata:a\n\ndata:b\n\n")
    assert (first.id, first.own_id, first.event_id) == ("7", True, "7")
    assert (second.id, second.own_id, second.event_id) == ("7", False, "")  # resume stays 7


def test_events_without_ids_after_one_with_an_id_are_each_new() -> None:
    """The silent-loss bug: JSON notices after an id used to inherit it and be dropped."""
    raws = decode(
        b'id:5\ndata:{"title":"first","body":"x"}\n\n'
        b'data:{"title":"second","body":"y"}\n\ndata:{"title":"third","body":"z"}\n\n'
    )
    anns = [parse_event(r) for r in raws]
    assert all(isinstance(a, Announcement) for a in anns)
    ids = [a.id for a in anns if isinstance(a, Announcement)]
    assert ids[0] == "5" and len(set(ids)) == 3
    assert [a.anonymous for a in anns if isinstance(a, Announcement)] == [False, True, True]


def test_plain_text_without_an_id_is_new_each_time() -> None:
    a, b = (parse_event(r) for r in decode(b"data:hi\n\ndata:hi\n\n"))
    assert isinstance(a, Announcement) and isinstance(b, Announcement)
    assert a.id != b.id and a.body == b.body == "hi" and a.anonymous


def test_the_payload_id_identifies_the_event() -> None:
    raw = decode(b'id:9\ndata:{"noticeId":12,"noticeTitle":"T","noticeContent":"<p>b</p>"}\n\n')
    ann = parse_event(raw[0], RUOYI)
    assert isinstance(ann, Announcement)
    assert (ann.id, ann.title, ann.body, ann.anonymous) == ("12", "T", "b", False)


# ---------------------------------------------------------------- the profile


def test_a_ruoyi_notice_becomes_title_and_readable_text() -> None:
    notice = {"noticeId": 3, "noticeTitle": "停电通知", "noticeContent": "<p>今晚&nbsp;停电</p>"}
    raw = decode(f"data:{json.dumps(notice, ensure_ascii=False)}\n\n".encode())[0]
    ann = parse_event(raw, RUOYI)
    assert isinstance(ann, Announcement)
    assert (ann.title, ann.body, ann.legacy) == ("停电通知", "今晚 停电", False)


def test_priority_mapping_and_url() -> None:
    profile = PayloadProfile(
        title="/t", body="/b", priority="/level", priorities={"1": Priority.URGENT}, url="/u"
    )
    raw = decode(b'data:{"t":"x","b":"y","level":1,"u":"https://x.example/n"}\n\n')[0]
    ann = parse_event(raw, profile)
    assert isinstance(ann, Announcement)
    assert (ann.priority, ann.url) == (Priority.URGENT, "https://x.example/n")
    other = decode(b'data:{"t":"x","level":"high","u":"javascript:alert(1)"}\n\n')[0]
    ann = parse_event(other, profile)
    assert isinstance(ann, Announcement)
    assert (ann.priority, ann.url) == (Priority.HIGH, None)


@pytest.mark.parametrize("profile", [None, RUOYI])
def test_json_that_matches_no_pointer_is_shown_as_its_text(profile: PayloadProfile | None) -> None:
    raw = decode(b'data:{"something":"else"}\n\n')[0]
    ann = parse_event(raw, profile)
    assert isinstance(ann, Announcement)
    assert ann.body == '{"something":"else"}' and ann.body.strip()


def test_plain_text_is_the_body_under_a_profile_too() -> None:
    ann = parse_event(decode(b"data:<b>hello</b>\n\n")[0], RUOYI)
    assert isinstance(ann, Announcement) and ann.body == "hello"


# ---------------------------------------------------------------- without a profile


def test_the_common_envelope_is_understood_without_a_profile() -> None:
    envelope = b'data:{"code":200,"msg":"New notice","data":{"content":"Fire drill at 3"}}\n\n'
    raw = decode(envelope)[0]
    ann = parse_event(raw)
    assert isinstance(ann, Announcement)
    assert (ann.title, ann.body) == ("New notice", "Fire drill at 3")
    text = decode(b'data:{"code":200,"msg":"Hello","data":"plain words"}\n\n')[0]
    ann = parse_event(text)
    assert isinstance(ann, Announcement) and (ann.title, ann.body) == ("Hello", "plain words")


def test_the_companion_format_keeps_working_without_a_profile() -> None:
    body = {"type": "announcement", "id": "41", "title": "T", "body": "B", "priority": "high"}
    raw = decode(f"id:41\ndata:{json.dumps(body)}\n\n".encode())[0]
    assert parse_event(raw) == Announcement(id="41", title="T", body="B", priority=Priority.HIGH)
    revoke = decode(b'data:{"type":"revoke","id":"41"}\n\n')[0]
    assert parse_event(revoke) == Revoke("41")
