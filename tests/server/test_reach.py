"""Receipts, reach, its CSV, the directory and the publishers' live reach events (both
backends)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Collection

import httpx
import pytest

from app.server.embedded import EmbeddedServer
from app.server.model import User
from tests.server.conftest import Stream, bearer, login, publish


def _reach(http: httpx.Client, boss: dict[str, str], ann: str) -> dict[str, object]:
    response = http.get(f"/announcements/{ann}/reach", headers=bearer(boss))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _rows(reach: dict[str, object]) -> dict[str, dict[str, object]]:
    users = reach["users"]
    assert isinstance(users, list)
    return {row["user_id"]: row for row in users}


def test_receipts_are_recorded_once_and_unknown_ids_counted(http: httpx.Client) -> None:
    boss = login(http, "publisher")
    ann = publish(http, boss, audience={"groups": ["it"]})  # alice only
    alice, bob = bearer(login(http, "alice")), bearer(login(http, "bob"))
    before = _reach(http, boss, ann)
    assert before["recipients"] == 1 and before["delivered"] == 0
    assert _rows(before)["alice"] == {
        "user_id": "alice",
        "username": "alice",
        "groups": ["it"],
        "delivered_at": None,
        "displayed_at": None,
        "read_at": None,
        "acked_at": None,
        "online": False,
        "never_connected": False,  # alice logged in before: see tests/server/test_directory.py
        "reminded_at": None,  # no reminder yet: tests/server/test_changes.py
        "reminders": 0,
    }
    body = {"delivered": [ann, "424242", "nonsense"], "read": [], "acknowledged": []}
    first = http.post("/receipts", json=body, headers=alice)
    assert first.status_code == 200 and first.json() == {"recorded": 1, "ignored": 2}
    delivered_at = _rows(_reach(http, boss, ann))["alice"]["delivered_at"]
    assert isinstance(delivered_at, str) and delivered_at.endswith("Z")
    # again: the first time is kept
    assert http.post("/receipts", json=body, headers=alice).json() == {"recorded": 1, "ignored": 2}
    assert _rows(_reach(http, boss, ann))["alice"]["delivered_at"] == delivered_at
    # bob may not see it: ignored, nothing recorded for him
    assert http.post("/receipts", json={"read": [ann]}, headers=bob).json() == {
        "recorded": 0,
        "ignored": 1,
    }
    assert "bob" not in _rows(_reach(http, boss, ann))
    # read implies delivered (kept), acknowledged implies read
    http.post("/receipts", json={"acknowledged": [ann]}, headers=alice)
    after = _reach(http, boss, ann)
    row = _rows(after)["alice"]
    assert row["delivered_at"] == delivered_at and row["read_at"] and row["acked_at"]
    assert (after["delivered"], after["read"], after["acknowledged"]) == (1, 1, 1)
    assert http.get(f"/announcements/{ann}/acks", headers=bearer(boss)).json()[0]["user_id"] == (
        "alice"
    )


def test_the_ack_endpoint_is_also_a_read(http: httpx.Client) -> None:
    boss = login(http, "publisher")
    ann = publish(http, boss, priority="urgent")
    alice = bearer(login(http, "alice"))
    assert http.post(f"/announcements/{ann}/ack", headers=alice).status_code == 200
    reach = _reach(http, boss, ann)
    assert reach["recipients"] == 3  # all: alice, bob, publisher
    row = _rows(reach)["alice"]
    assert row["acked_at"] and row["read_at"] and row["delivered_at"]
    assert (reach["delivered"], reach["read"], reach["acknowledged"]) == (1, 1, 1)


def test_receipts_bad_input_is_400(http: httpx.Client) -> None:
    alice = bearer(login(http, "alice"))
    for body, field in [({"read": "1"}, "read"), ({"delivered": [1]}, "delivered")]:
        response = http.post("/receipts", json=body, headers=alice)
        assert response.status_code == 400 and response.json()["field"] == field
    assert http.post("/receipts", json=[], headers=alice).status_code == 400
    assert http.post("/receipts", json={"read": []}).status_code == 401


def test_reach_and_directory_are_for_publishers_only(http: httpx.Client) -> None:
    boss = login(http, "publisher")
    ann = publish(http, boss)
    alice = bearer(login(http, "alice"))
    for path in (f"/announcements/{ann}/reach", f"/announcements/{ann}/reach.csv", "/directory"):
        assert http.get(path, headers=alice).status_code == 403, path
        assert http.get(path).status_code == 401, path
    assert http.get("/announcements/424242/reach", headers=bearer(boss)).status_code == 404
    directory = http.get("/directory", headers=bearer(boss)).json()
    assert directory["everyone"] == 3
    assert directory["groups"] == [{"name": "hr", "members": 1}, {"name": "it", "members": 1}]
    assert directory["users"][0] == {
        "user_id": "alice",
        "username": "alice",
        "display_name": "alice",  # a local account: its name (the directory's: a person's name)
        "groups": ["it"],
        "publisher": False,
        "source": "local",
    }


def test_publishing_to_what_does_not_exist_is_400_naming_it(http: httpx.Client) -> None:
    boss = bearer(login(http, "publisher"))
    for audience, name in [
        ({"groups": ["it", "sales"]}, "group sales"),
        ({"users": ["alice", "zed"]}, "user zed"),
    ]:
        payload = {"title": "t", "body": "b", "audience": audience}
        response = http.post("/announcements", json=payload, headers=boss)
        assert response.status_code == 400, response.text
        assert response.json()["field"] == "audience" and name in response.json()["error"]
    assert http.get("/announcements", headers=boss).json() == []


def test_recipients_are_those_named_at_publication(
    http: httpx.Client, companion_server: EmbeddedServer
) -> None:
    boss = login(http, "publisher")
    ann = publish(http, boss, audience={"groups": ["hr"], "users": ["alice"]})
    companion_server.add_user("carol", "pw", groups=["hr"])  # joins after: not a recipient
    reach = _reach(http, boss, ann)
    assert reach["recipients"] == 2 and sorted(_rows(reach)) == ["alice", "bob"]
    # a user the audience names now who sends receipts shows too (not counted a recipient)
    carol = bearer(login(http, "carol", "pw"))
    assert http.post("/receipts", json={"read": [ann]}, headers=carol).json()["recorded"] == 1
    reach = _reach(http, boss, ann)
    assert reach["recipients"] == 2 and reach["read"] == 1 and "carol" in _rows(reach)


def test_the_reach_reads_its_rows_users_by_name_never_every_user(
    http: httpx.Client, companion_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 24: the reach, its CSV and a reminder ask the broker for the users of the rows
    (the recipients, and whoever sent receipts), by name; only ``GET /directory`` reads every
    user (``list_users``)."""
    broker = companion_server._running().broker
    asked: list[set[str]] = []
    users_named = broker.users_named

    async def named(names: Collection[str]) -> dict[str, User]:
        asked.append(set(names))
        return await users_named(names)

    async def every_user() -> list[User]:
        raise AssertionError("every user read")

    monkeypatch.setattr(broker, "users_named", named)
    monkeypatch.setattr(broker, "list_users", every_user)
    boss = login(http, "publisher")
    ann = publish(http, boss, audience={"groups": ["hr"]})  # bob
    companion_server.add_user("carol", "pw", groups=["hr"])  # joins after: not a recipient
    carol = bearer(login(http, "carol", "pw"))
    assert http.post("/receipts", json={"read": [ann]}, headers=carol).json()["recorded"] == 1
    rows = _rows(_reach(http, boss, ann))
    assert rows["bob"]["groups"] == rows["carol"]["groups"] == ["hr"]
    csv_reply = http.get(f"/announcements/{ann}/reach.csv", headers=bearer(boss))
    assert csv_reply.status_code == 200 and "carol" in csv_reply.text
    remind = http.post(f"/announcements/{ann}/remind", json={"who": "unread"}, headers=bearer(boss))
    assert remind.json() == {"reminded": 1}  # bob; carol read it
    assert asked == [{"bob", "carol"}] * 3


def test_online_says_who_has_a_stream_open(
    http: httpx.Client, streams: Callable[..., Stream]
) -> None:
    boss = login(http, "publisher")
    ann = publish(http, boss)
    stream = streams(http, "bob", login(http, "bob")["access_token"])
    stream.until(lambda e: e.event == "connected")
    rows = _rows(_reach(http, boss, ann))
    assert rows["bob"]["online"] is True and rows["alice"]["online"] is False


def test_reach_csv_has_a_header_and_is_safe_in_a_spreadsheet(
    http: httpx.Client, companion_server: EmbeddedServer
) -> None:
    companion_server.add_user("=HYPERLINK(1)", "pw", groups=["@evil"])
    sneaky = [" =1+1", "\uff1dHYPERLINK(1)", "\n=1", "\u200b+1", "\t-1"]
    for n, name in enumerate(sneaky):
        companion_server.add_user(name, "pw", groups=[f"g{n}"])
    boss = login(http, "publisher")
    ann = publish(http, boss)
    http.post("/receipts", json={"delivered": [ann]}, headers=bearer(login(http, "alice")))
    response = http.get(f"/announcements/{ann}/reach.csv", headers=bearer(boss))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ROW_FIELDS  # the CSV's columns are the JSON rows' fields
    by_id = {r[0]: r for r in rows[1:]}
    assert by_id["alice"][3].endswith("Z") and by_id["alice"][4:7] == ["", "", ""]
    assert by_id["'=HYPERLINK(1)"][2] == "'@evil"
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    assert {f"'{name}" for name in sneaky} == {r[0] for r in rows[1:] if r[0][1:] in sneaky}
    assert by_id["alice"][0] == "alice" and by_id["alice"][2] == "it"  # plain text untouched


def test_console_events_tell_publishers_when_reach_changes(
    http: httpx.Client, companion_server: EmbeddedServer
) -> None:
    boss = login(http, "publisher")
    alice = bearer(login(http, "alice"))
    assert http.get("/console/events", headers=alice).status_code == 403
    assert http.get("/console/events").status_code == 401
    ann = publish(http, boss)
    with http.stream("GET", "/console/events", headers=bearer(boss)) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        while not next(lines).startswith("data:"):  # the connected event
            pass
        http.post("/receipts", json={"delivered": [ann]}, headers=alice)
        seen = []
        for line in lines:
            seen.append(line)
            if line.startswith("data:"):
                break
        assert "event: reach" in seen
        assert json.loads(seen[-1].removeprefix("data:")) == {"id": ann}
        # an ack through the old endpoint signals too
        http.post(f"/announcements/{ann}/ack", headers=alice)
        for line in lines:
            if line.startswith("data:"):
                assert json.loads(line.removeprefix("data:")) == {"id": ann}
                break


def test_console_events_end_when_the_publishers_session_ends(
    http: httpx.Client, companion_server: EmbeddedServer
) -> None:
    boss = bearer(login(http, "publisher"))
    with http.stream("GET", "/console/events", headers=boss) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        while not next(lines).startswith("data:"):  # the connected event
            pass
        assert http.post("/auth/revoke-all", headers=boss).status_code in (200, 204)
        seen = []
        for line in lines:  # ends within a ping interval (0.5 s here)
            seen.append(line)
            if line.startswith("data:"):
                break
    assert "event: close" in seen
    assert json.loads(seen[-1].removeprefix("data:")) == {"reason": "session_ended"}


# the contract's fields, in its order (DESIGN.md "Server API", GET /announcements/{id}/reach)
REACH_FIELDS = [
    "id",
    "recipients",
    "delivered",
    "displayed",
    "read",
    "acknowledged",
    "requires_ack",
    "revoked_at",
    "users",
    "never_connected",  # then the directory's figure (docs/directory.md)
    "reminded",  # then the reminders' (docs/api.md, "Corrections and reminders")
    "unread",
    "unacknowledged",
]
ROW_FIELDS = [
    "user_id",
    "username",
    "groups",
    "delivered_at",
    "displayed_at",
    "read_at",
    "acked_at",
    "online",
    "never_connected",
    "reminded_at",
    "reminders",
]


def test_displayed_is_recorded_and_implies_delivered_only(http: httpx.Client) -> None:
    """Issue 22, point 10: the person was shown it (a toast, a summary counting it, the urgent
    window) is a receipt of its own, counted in the reach and written in the CSV."""
    boss = login(http, "publisher")
    ann = publish(http, boss, audience={"groups": ["it", "hr"]})  # alice and bob
    alice, bob = bearer(login(http, "alice")), bearer(login(http, "bob"))
    shown = http.post("/receipts", json={"displayed": [ann, "424242"]}, headers=alice)
    assert shown.status_code == 200 and shown.json() == {"recorded": 1, "ignored": 1}
    reach = _reach(http, boss, ann)
    assert list(reach) == REACH_FIELDS
    row = _rows(reach)["alice"]
    assert list(row) == ROW_FIELDS
    displayed_at = row["displayed_at"]
    assert isinstance(displayed_at, str) and displayed_at.endswith("Z")
    assert row["delivered_at"] == displayed_at and row["read_at"] is None  # implied: delivered
    assert (reach["delivered"], reach["displayed"], reach["read"]) == (1, 1, 0)
    # idempotent: the first time is kept; a later read changes nothing of it
    http.post("/receipts", json={"displayed": [ann], "read": [ann]}, headers=alice)
    row = _rows(_reach(http, boss, ann))["alice"]
    assert row["displayed_at"] == displayed_at and row["read_at"]
    # read in the history (or acknowledged) while do not disturb held the toast back: read,
    # and delivered, but never shown as a notification
    http.post("/receipts", json={"acknowledged": [ann]}, headers=bob)
    reach = _reach(http, boss, ann)
    row = _rows(reach)["bob"]
    assert row["acked_at"] and row["read_at"] and row["delivered_at"]
    assert row["displayed_at"] is None
    assert (reach["delivered"], reach["displayed"], reach["read"], reach["acknowledged"]) == (
        2,
        1,
        2,
        1,
    )
    lines = list(
        csv.DictReader(
            io.StringIO(http.get(f"/announcements/{ann}/reach.csv", headers=bearer(boss)).text)
        )
    )
    by_user = {line["user_id"]: line for line in lines}
    assert by_user["alice"]["displayed_at"] == displayed_at
    assert by_user["bob"]["displayed_at"] == ""
    # a displayed receipt that is not a list of ids is refused, naming it
    bad = http.post("/receipts", json={"displayed": "1"}, headers=alice)
    assert bad.status_code == 400 and bad.json()["field"] == "displayed"


def test_only_urgent_announcements_require_acknowledgement(http: httpx.Client) -> None:
    """Issue 22, point 11: "0 acknowledged" is no figure for an announcement that asked
    nobody to acknowledge it: ``requires_ack`` says which ones ask (urgent ones only)."""
    boss = login(http, "publisher")
    asks = {
        priority: _reach(http, boss, publish(http, boss, priority=priority))["requires_ack"]
        for priority in ("low", "normal", "high", "urgent")
    }
    assert asks == {"low": False, "normal": False, "high": False, "urgent": True}
