"""Scheduled announcements (issue 25), on both backends, on the server's clock (a ManualClock:
no test waits for real time to pass): ``POST /announcements`` with ``send_at`` answers 202 and
stores it; ``GET /scheduled`` lists it; ``DELETE /scheduled/{id}`` cancels it; at its time the
server publishes it through the one publish path (recipients at that time, an idempotency key);
it outlives a restart; with several Redis processes it is published exactly once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ManualClock, ServerFactory
from tests.fixtures.wait import wait_until
from tests.server.conftest import TIMEOUT, Stream, bearer, login

HOUR = 3600.0
QUIET = 3600.0  # a scheduler interval no test outlives: ticks come from run_schedule()


def _at(clock: ManualClock, seconds: float) -> str:
    return datetime.fromtimestamp(clock() + seconds, UTC).isoformat().replace("+00:00", "Z")


def _schedule(
    http: httpx.Client, tokens: dict[str, Any], send_at: str, **fields: Any
) -> dict[str, Any]:
    payload = {"title": "T", "body": "B", "audience": {"all": True}, "send_at": send_at, **fields}
    response = http.post("/announcements", json=payload, headers=bearer(tokens))
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def _scheduled(http: httpx.Client, tokens: dict[str, Any]) -> list[dict[str, Any]]:
    response = http.get("/scheduled", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


def _titles(http: httpx.Client, tokens: dict[str, Any]) -> list[str]:
    response = http.get("/announcements", params={"limit": 1000}, headers=bearer(tokens))
    assert response.status_code == 200, response.text
    return [a["title"] for a in response.json()]


@pytest.fixture
def clocked(server_factory: ServerFactory, server_clock: ManualClock) -> EmbeddedServer:
    return server_factory(demo_users=True, clock=server_clock, schedule_interval=QUIET)


def test_published_at_its_time_to_the_audience_of_that_time(
    clocked: EmbeddedServer, server_clock: ManualClock, streams: Callable[..., Stream]
) -> None:
    with httpx.Client(base_url=clocked.url, timeout=TIMEOUT) as http:
        boss = login(http, "publisher")
        alice_tokens = login(http, "alice")
        stream = streams(http, "alice", alice_tokens["access_token"])
        assert stream.next().event == "connected"
        send_at = _at(server_clock, 600)
        answer = _schedule(
            http, boss, send_at, title="Quarterly results", audience={"groups": ["it"]}
        )
        sid = answer["schedule_id"]
        assert answer == {"schedule_id": sid, "send_at": send_at, "status": "pending"}
        (listed,) = _scheduled(http, boss)
        assert listed["id"] == sid and listed["status"] == "pending"
        assert listed["announcement"]["title"] == "Quarterly results"
        assert listed["author"] == "publisher" and listed["announcement_id"] is None
        # nobody sees it before its time
        assert "Quarterly results" not in _titles(http, alice_tokens)
        assert clocked.run_schedule() == []

        # someone joins the group meanwhile: the recipients are those of the time it is sent
        clocked.add_user("dave", "pw", groups=["it"])
        server_clock.advance(599)
        assert clocked.run_schedule() == []
        server_clock.advance(2)  # (send_at is to the microsecond: the clock is finer)
        (ann,) = clocked.run_schedule()
        assert clocked.run_schedule() == []  # once
        event = stream.next()
        assert event.id == ann and '"title":"Quarterly results"' in event.data
        assert _scheduled(http, boss) == []
        done = http.get(f"/scheduled/{sid}", headers=bearer(boss)).json()
        assert (done["status"], done["announcement_id"]) == ("sent", ann)
        reach = http.get(f"/announcements/{ann}/reach", headers=bearer(boss)).json()
        assert [u["user_id"] for u in reach["users"]] == ["alice", "dave"]
        entries = http.get("/audit", headers=bearer(boss)).json()["entries"]
        assert [(e["action"], e["announcement_id"], e["schedule_id"]) for e in entries] == [
            ("published", ann, sid),
            ("scheduled", None, sid),
        ]
        assert entries[1]["detail"] == f"{send_at} · Quarterly results"


def test_bad_schedules_are_refused_and_a_retry_schedules_once(
    clocked: EmbeddedServer, server_clock: ManualClock
) -> None:
    with httpx.Client(base_url=clocked.url, timeout=TIMEOUT) as http:
        boss = login(http, "publisher")
        base = {"title": "T", "body": "B", "audience": {"all": True}}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"send_at": _at(server_clock, -1)}, "send_at"),
            ({"send_at": "tomorrow"}, "send_at"),
            ({"send_at": 5}, "send_at"),
            ({"send_at": _at(server_clock, 400 * 86400)}, "send_at"),
            (
                {"send_at": _at(server_clock, HOUR), "expires_at": _at(server_clock, 60)},
                "expires_at",
            ),
            ({"send_at": _at(server_clock, HOUR), "audience": {"groups": ["nope"]}}, "audience"),
            ({"send_at": _at(server_clock, HOUR), "title": ""}, "title"),
        ]
        for fields, field in cases:
            answer = http.post("/announcements", json={**base, **fields}, headers=bearer(boss))
            assert answer.status_code == 400, (fields, answer.text)
            assert answer.json()["field"] == field
        alice = login(http, "alice")
        later = {**base, "send_at": _at(server_clock, HOUR)}
        assert http.post("/announcements", json=later, headers=bearer(alice)).status_code == 403
        assert _scheduled(http, boss) == []
        assert http.get("/scheduled", headers=bearer(alice)).status_code == 403

        keyed = {**bearer(boss), "Idempotency-Key": "k1"}
        first = http.post("/announcements", json=later, headers=keyed)
        again = http.post("/announcements", json=later, headers=keyed)
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
        assert len(_scheduled(http, boss)) == 1
        # "send_at": null is a publish now
        now = http.post("/announcements", json={**base, "send_at": None}, headers=bearer(boss))
        assert now.status_code == 201 and "id" in now.json()


def test_cancel_before_its_time_and_not_after(
    clocked: EmbeddedServer, server_clock: ManualClock
) -> None:
    with httpx.Client(base_url=clocked.url, timeout=TIMEOUT) as http:
        boss = login(http, "publisher")
        clocked.add_user("carol", "pw", publisher=True)
        carol = login(http, "carol", "pw")
        dropped = _schedule(http, boss, _at(server_clock, 60), title="Wrong date")["schedule_id"]
        kept = _schedule(http, boss, _at(server_clock, 120), title="Right date")["schedule_id"]
        # any publisher may cancel one (schedules are the organisation's, like the sent list)
        answer = http.delete(f"/scheduled/{dropped}", headers=bearer(carol))
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "cancelled" and answer.json()["finished_by"] == "carol"
        assert http.delete(f"/scheduled/{dropped}", headers=bearer(carol)).status_code == 200
        assert [s["id"] for s in _scheduled(http, boss)] == [kept]
        assert http.delete("/scheduled/999", headers=bearer(boss)).status_code == 404
        assert http.delete("/scheduled/x", headers=bearer(boss)).status_code == 404
        assert (
            http.delete(f"/scheduled/{kept}", headers=bearer(login(http, "bob"))).status_code == 403
        )

        server_clock.advance(200)
        (ann,) = clocked.run_schedule()
        titles = _titles(http, boss)
        assert "Right date" in titles and "Wrong date" not in titles
        late = http.delete(f"/scheduled/{kept}", headers=bearer(boss))
        assert late.status_code == 409 and ann in late.json()["error"]
        actions = [
            (e["action"], e["actor"], e["schedule_id"])
            for e in http.get("/audit", headers=bearer(boss)).json()["entries"]
        ]
        assert actions == [
            ("published", "publisher", kept),
            ("cancelled", "carol", dropped),
            ("scheduled", "publisher", kept),
            ("scheduled", "publisher", dropped),
        ]


def test_one_that_cannot_be_sent_fails_in_words(
    clocked: EmbeddedServer, server_clock: ManualClock
) -> None:
    with httpx.Client(base_url=clocked.url, timeout=TIMEOUT) as http:
        boss = login(http, "publisher")
        # expiring 10 minutes after its time: a server that was down longer cannot send it
        sid = _schedule(
            http,
            boss,
            _at(server_clock, 60),
            title="Short-lived",
            expires_at=_at(server_clock, 660),
        )["schedule_id"]
        server_clock.advance(HOUR)
        assert clocked.run_schedule() == []
        boss = login(http, "publisher")  # the clock moved past the token's life
        (failed,) = _scheduled(http, boss)
        assert failed["id"] == sid and failed["status"] == "failed"
        assert "expires_at" in failed["problem"]
        assert "Short-lived" not in _titles(http, boss)
        assert http.delete(f"/scheduled/{sid}", headers=bearer(boss)).status_code == 200
        assert _scheduled(http, boss) == []
        actions = [e["action"] for e in http.get("/audit", headers=bearer(boss)).json()["entries"]]
        assert actions == ["cancelled", "failed", "scheduled"]


def test_a_schedule_outlives_a_restart(
    server_factory: ServerFactory, server_clock: ManualClock
) -> None:
    first = server_factory(demo_users=True, clock=server_clock, schedule_interval=QUIET)
    with httpx.Client(base_url=first.url, timeout=TIMEOUT) as http:
        sid = _schedule(http, login(http, "publisher"), _at(server_clock, HOUR), title="Later")[
            "schedule_id"
        ]
    first.stop()
    # its time passes while no server runs: the next one sends it when it starts, by itself
    server_clock.advance(2 * HOUR)
    again = server_factory(data_dir=first.data_dir, clock=server_clock, schedule_interval=0.05)
    with httpx.Client(base_url=again.url, timeout=TIMEOUT) as http:
        boss = login(http, "publisher")
        wait_until(lambda: "Later" in _titles(http, boss), what="the schedule was sent")
        assert _titles(http, boss).count("Later") == 1
        assert http.get(f"/scheduled/{sid}", headers=bearer(boss)).json()["status"] == "sent"


def test_two_redis_processes_send_each_due_schedule_once(
    server_backend: str, server_factory: ServerFactory, server_clock: ManualClock
) -> None:
    if server_backend != "redis":
        pytest.skip("one SQLite database serves one process")
    one = server_factory(demo_users=True, clock=server_clock, schedule_interval=QUIET)
    two = server_factory(clock=server_clock, schedule_interval=QUIET)
    with httpx.Client(base_url=one.url, timeout=TIMEOUT) as http:
        boss = login(http, "publisher")
        titles = [f"Due {n}" for n in range(40)]
        for title in titles:
            _schedule(http, boss, _at(server_clock, 60), title=title)
        server_clock.advance(61)

        # both processes look at the same moment, from two threads: each one is sent once
        barrier = threading.Barrier(2)
        sent: dict[str, list[str]] = {}

        def look(name: str, server: EmbeddedServer) -> None:
            barrier.wait(timeout=10)
            sent[name] = server.run_schedule()

        threads = [threading.Thread(target=look, args=p) for p in (("one", one), ("two", two))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        published = sent["one"] + sent["two"]
        assert len(published) == len(set(published)) == 40
        assert sorted(_titles(http, boss)) == sorted(titles)
        assert _scheduled(http, boss) == []
        assert one.run_schedule() == two.run_schedule() == []


def test_their_own_loops_race_and_still_send_once(
    server_backend: str, server_factory: ServerFactory, server_clock: ManualClock
) -> None:
    """The background schedulers of two processes (every 20 ms) against one Redis."""
    if server_backend != "redis":
        pytest.skip("one SQLite database serves one process")
    one = server_factory(demo_users=True, clock=server_clock, schedule_interval=0.02)
    two = server_factory(clock=server_clock, schedule_interval=0.02)
    with httpx.Client(base_url=two.url, timeout=TIMEOUT) as http:
        boss = login(http, "publisher")
        for n in range(25):
            _schedule(http, boss, _at(server_clock, 30), title=f"Race {n}")
        server_clock.advance(31)
        wait_until(lambda: _scheduled(http, boss) == [], what="every schedule was sent")
        titles = _titles(http, boss)
        assert sorted(titles) == sorted(f"Race {n}" for n in range(25))
    assert one.run_schedule() == []
    # the published line of each is in the audit log once
    with httpx.Client(base_url=one.url, timeout=TIMEOUT) as http:
        entries = http.get(
            "/audit", params={"limit": 1000}, headers=bearer(login(http, "publisher"))
        ).json()["entries"]
    assert sum(1 for e in entries if e["action"] == "published") == 25
