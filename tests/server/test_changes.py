"""Corrections, reminders and revokes are stream events with positions of their own (issue 25,
"Every change reaches every tray, in order, once"), on both backends: their positions follow
the announcements', they are replayed on resume in order and once, only to those who may see
the announcement (a reminder: only to those it names), and a correction keeps the reach."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from tests.server.conftest import Event, Stream, bearer, login, publish

UPDATE_FIELDS = [
    "type",
    "id",
    "title",
    "body",
    "priority",
    "url",
    "created_at",
    "expires_at",
    "revision",
    "updated_at",
]


def _order(position: str) -> tuple[int, ...]:
    """A stream position as something to compare: SQLite's integers, Redis's ``ms-seq``."""
    return tuple(int(part) for part in position.split("-"))


def _messages(stream: Stream, count: int) -> list[Event]:
    """The next ``count`` message events (the control events between them skipped)."""
    seen: list[Event] = []
    while len(seen) < count:
        event = stream.next()
        if event.event == "message":
            seen.append(event)
    return seen


def _replay(stream: Stream) -> list[Event]:
    """What a resumed stream replays: its message events up to ``sync``."""
    connected = stream.next()
    assert connected.event == "connected"
    events = stream.until(lambda e: e.event == "sync")
    return [e for e in events if e.event == "message"]


def _data(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(event.data)
    return data


def _correct(http: httpx.Client, boss: dict[str, Any], ann: str, **fields: Any) -> httpx.Response:
    return http.patch(f"/announcements/{ann}", json=fields, headers=bearer(boss))


def _remind(http: httpx.Client, boss: dict[str, Any], ann: str, who: str) -> httpx.Response:
    return http.post(f"/announcements/{ann}/remind", json={"who": who}, headers=bearer(boss))


def test_changes_have_increasing_positions_and_replay_in_order_once(
    http: httpx.Client, streams: Callable[..., Stream]
) -> None:
    boss = login(http, "publisher")
    alice_tokens = login(http, "alice")
    live = streams(http, "alice", alice_tokens["access_token"])
    assert live.next().event == "connected"
    first = publish(http, boss, title="Fire drill at 10", audience={"groups": ["it"]})
    other = publish(http, boss, title="Cake in the kitchen")
    fixed = _correct(http, boss, first, title="Fire drill at 11", url="https://example.org/d")
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["revision"] == 1 and fixed.json()["title"] == "Fire drill at 11"
    assert _remind(http, boss, first, "unread").json() == {"reminded": 1}
    assert http.delete(f"/announcements/{other}", headers=bearer(boss)).status_code == 200

    events = _messages(live, 5)
    positions = [e.id for e in events]
    assert positions[:2] == [first, other]
    assert sorted(positions, key=_order) == positions and len(set(positions)) == 5
    update, remind, revoke = (_data(e) for e in events[2:])
    assert list(update) == UPDATE_FIELDS
    assert update["type"] == "update" and update["id"] == first
    assert (update["title"], update["url"], update["revision"]) == (
        "Fire drill at 11",
        "https://example.org/d",
        1,
    )
    assert update["updated_at"].endswith("Z") and update["body"] == "B"
    assert remind == {"type": "remind", "id": first}
    assert revoke == {"type": "revoke", "id": other}

    # a tray that stored the first announcement's id: everything after it, in order, once
    resumed = streams(http, "alice", alice_tokens["access_token"], headers={"Last-Event-ID": first})
    replayed = _replay(resumed)
    # the revoked announcement is not replayed; its revoke is (the tray marks it withdrawn)
    assert [e.id for e in replayed] == positions[2:]
    assert [e.data for e in replayed] == [e.data for e in events[2:]]
    # from the last change: nothing again
    done = streams(
        http, "alice", alice_tokens["access_token"], headers={"Last-Event-ID": positions[-1]}
    )
    assert _replay(done) == []
    # a new stream (no resume id) starts at the newest announcement it may see (the contract):
    # the revoked one is not, so the first; the changes after it come on its next resume
    fresh = streams(http, "alice", alice_tokens["access_token"])
    assert fresh.next().id == first
    # the REST catch-up takes a change's position as its cursor
    after = http.get("/announcements", params={"since": positions[2]}, headers=bearer(alice_tokens))
    assert after.status_code == 200 and after.json() == []
    listed = http.get("/announcements", params={"since": "0"}, headers=bearer(alice_tokens))
    (item,) = [i for i in listed.json() if i["id"] == first]
    assert (item["title"], item["revision"]) == ("Fire drill at 11", 1)


def test_a_viewer_outside_the_audience_gets_none_of_its_changes(
    http: httpx.Client, streams: Callable[..., Stream]
) -> None:
    boss = login(http, "publisher")
    start = publish(http, boss, title="Everyone")  # the point both streams resume from
    hr_only = publish(http, boss, title="HR", audience={"groups": ["hr"]})  # bob
    it_only = publish(http, boss, title="IT", audience={"groups": ["it"]})  # alice
    assert _correct(http, boss, it_only, body="for IT").status_code == 200
    assert _remind(http, boss, it_only, "unread").json() == {"reminded": 1}
    assert http.delete(f"/announcements/{it_only}", headers=bearer(boss)).status_code == 200
    resume = {"Last-Event-ID": start}

    bob = _replay(streams(http, "bob", login(http, "bob")["access_token"], headers=resume))
    assert [(e.id, _data(e)["type"]) for e in bob] == [(hr_only, "announcement")]
    alice = _replay(streams(http, "alice", login(http, "alice")["access_token"], headers=resume))
    assert [_data(e)["type"] for e in alice] == ["update", "remind", "revoke"]
    assert {_data(e)["id"] for e in alice} == {it_only}
    # a publisher sees every announcement and its corrections and revokes, but a reminder only
    # reaches those it names
    boss_stream = streams(http, "publisher", boss["access_token"], headers=resume)
    types = [(_data(e)["type"], _data(e)["id"]) for e in _replay(boss_stream)]
    assert types == [
        ("announcement", hr_only),
        ("update", it_only),
        ("revoke", it_only),
    ]


def test_a_correction_keeps_the_reach_and_is_checked_like_a_publish(http: httpx.Client) -> None:
    boss = login(http, "publisher")
    ann = publish(http, boss, title="Wrong time", audience={"groups": ["it", "hr"]})
    alice = bearer(login(http, "alice"))
    assert http.post("/receipts", json={"read": [ann]}, headers=alice).status_code == 200
    before = http.get(f"/announcements/{ann}/reach", headers=bearer(boss)).json()

    fixed = _correct(http, boss, ann, title="Right time", priority="high", expires_at=None)
    assert fixed.status_code == 200, fixed.text
    again = _correct(http, boss, ann, body="More details")
    assert again.json()["revision"] == 2
    assert (again.json()["title"], again.json()["priority"]) == ("Right time", "high")
    after = http.get(f"/announcements/{ann}/reach", headers=bearer(boss)).json()
    assert after["users"] == before["users"] and after["read"] == 1
    assert after["recipients"] == before["recipients"] == 2

    # the same checks as a publish, and only what a correction may change
    assert _correct(http, boss, ann, priority="loud").json()["field"] == "priority"
    assert _correct(http, boss, ann, title="").json()["field"] == "title"
    assert _correct(http, boss, ann, url="javascript:alert(1)").json()["field"] == "url"
    assert _correct(http, boss, ann, body="\x1b[2J").json()["field"] == "body"
    assert _correct(http, boss, ann, expires_at="2001-01-01T00:00:00Z").status_code == 400
    assert _correct(http, boss, ann, audience={"all": True}).json()["field"] == "audience"
    assert _correct(http, boss, ann).status_code == 400
    assert _correct(http, boss, "424242", title="x").status_code == 404
    assert (
        http.patch(f"/announcements/{ann}", json={"title": "x"}, headers=alice).status_code == 403
    )
    assert http.delete(f"/announcements/{ann}", headers=bearer(boss)).status_code == 200
    assert _correct(http, boss, ann, title="Too late").status_code == 409
    assert _remind(http, boss, ann, "unread").status_code == 409


def test_a_reminder_reaches_exactly_who_has_not_read_or_acknowledged(
    http: httpx.Client, streams: Callable[..., Stream]
) -> None:
    boss = login(http, "publisher")
    start = publish(http, boss, title="Start", audience={"users": ["publisher"]})
    ann = publish(http, boss, title="Read me", audience={"groups": ["it", "hr"]})
    alice, bob = login(http, "alice"), login(http, "bob")
    http.post("/receipts", json={"read": [ann]}, headers=bearer(alice))
    reach = http.get(f"/announcements/{ann}/reach", headers=bearer(boss)).json()
    assert (reach["unread"], reach["unacknowledged"], reach["reminded"]) == (1, 0, 0)

    assert _remind(http, boss, ann, "unread").json() == {"reminded": 1}
    assert _remind(http, boss, ann, "unread").json() == {"reminded": 1}
    rows = {
        r["user_id"]: r
        for r in http.get(f"/announcements/{ann}/reach", headers=bearer(boss)).json()["users"]
    }
    assert rows["bob"]["reminders"] == 2 and rows["bob"]["reminded_at"].endswith("Z")
    assert (rows["alice"]["reminders"], rows["alice"]["reminded_at"]) == (0, None)
    csv = http.get(f"/announcements/{ann}/reach.csv", headers=bearer(boss)).text
    assert csv.splitlines()[0].endswith(",reminded_at,reminders")

    resume = {"Last-Event-ID": start}
    bob_events = _replay(streams(http, "bob", bob["access_token"], headers=resume))
    assert [_data(e) for e in bob_events] == [
        _data(bob_events[0]),
        {"type": "remind", "id": ann},
        {"type": "remind", "id": ann},
    ]
    assert _data(bob_events[0])["type"] == "announcement"
    alice_events = _replay(streams(http, "alice", alice["access_token"], headers=resume))
    assert [_data(e)["type"] for e in alice_events] == ["announcement"]

    # "unacknowledged" is for urgent ones (the others ask nobody to acknowledge)
    assert _remind(http, boss, ann, "unacknowledged").json()["field"] == "who"
    assert _remind(http, boss, ann, "everyone").json()["field"] == "who"
    urgent = publish(
        http, boss, title="Ack me", priority="urgent", audience={"groups": ["it", "hr"]}
    )
    http.post("/announcements/" + urgent + "/ack", headers=bearer(bob))
    http.post("/receipts", json={"read": [urgent]}, headers=bearer(alice))  # read, not acked
    reach = http.get(f"/announcements/{urgent}/reach", headers=bearer(boss)).json()
    assert (reach["unread"], reach["unacknowledged"]) == (0, 1)
    assert _remind(http, boss, urgent, "unread").json() == {"reminded": 0}
    assert _remind(http, boss, urgent, "unacknowledged").json() == {"reminded": 1}
    rows = {
        r["user_id"]: r
        for r in http.get(f"/announcements/{urgent}/reach", headers=bearer(boss)).json()["users"]
    }
    assert (rows["alice"]["reminders"], rows["bob"]["reminders"]) == (1, 0)
    assert _remind(http, boss, "424242", "unread").status_code == 404
    assert _remind(http, alice, urgent, "unread").status_code == 403  # staff: not a publisher
