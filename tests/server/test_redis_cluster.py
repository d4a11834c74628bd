"""Two server processes on one real redis-server: what one does, the other sees.

Each "process" is an :class:`EmbeddedServer` (own event loop, own port, own Hub, own XREAD
loop); they share only Redis and the data folder's signing key, as deployed processes share
Redis and a copied ``signing.key``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.server.embedded import EmbeddedServer
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import ServerFactory
from tests.fixtures.wait import wait_until
from tests.server.conftest import TIMEOUT, Event, Stream, bearer, login, publish


@pytest.fixture
def server_backend() -> str:
    return "redis"  # these tests are about the Redis backend only


@pytest.fixture
def pair(
    server_factory: ServerFactory, redis_url: str, tmp_path: Path
) -> tuple[EmbeddedServer, EmbeddedServer]:
    shared = tmp_path / "shared"  # the signing key every process must share
    a = server_factory(data_dir=shared, demo_users=True, ping_interval=0.2)
    b = server_factory(data_dir=shared, ping_interval=0.2)
    return a, b


@pytest.fixture
def clients(pair: tuple[EmbeddedServer, EmbeddedServer]) -> Iterator[tuple[httpx.Client, ...]]:
    with (
        httpx.Client(base_url=pair[0].url, timeout=TIMEOUT) as a,
        httpx.Client(base_url=pair[1].url, timeout=TIMEOUT) as b,
    ):
        yield a, b


def _ids(events: list[Event]) -> list[str]:
    return [e.id for e in events if e.event == "message"]


def _connected(stream: Stream) -> Stream:
    assert stream.next().event == "connected"
    return stream


def test_a_client_on_a_receives_what_is_published_on_b(clients, streams) -> None:
    a, b = clients
    alice = _connected(streams(a, "alice", login(a, "alice")["access_token"]))
    bob = _connected(streams(a, "bob", login(a, "bob")["access_token"]))
    boss = login(b, "publisher")
    for_it = publish(b, boss, title="IT", audience={"groups": ["it"]})
    for_all = publish(b, boss, title="All")
    assert _ids(alice.until(lambda e: e.id == for_all)) == [for_it, for_all]
    assert _ids(bob.until(lambda e: e.id == for_all)) == [for_all]  # never the IT one
    payload = json.loads(alice.raw.decode().split(f"id: {for_it}\ndata: ")[1].split("\n")[0])
    assert payload["title"] == "IT" and payload["id"] == for_it
    # publishing on B is visible over REST on A at once
    listed = a.get("/announcements", headers=bearer(login(a, "alice"))).json()
    assert [x["id"] for x in listed] == [for_it, for_all]


def test_revoke_on_b_reaches_streams_on_a(clients, streams) -> None:
    a, b = clients
    alice = _connected(streams(a, "alice", login(a, "alice")["access_token"]))
    boss = login(b, "publisher")
    ann = publish(b, boss)
    assert alice.next().id == ann
    assert b.delete(f"/announcements/{ann}", headers=bearer(boss)).status_code == 200
    assert json.loads(alice.next().data) == {"type": "revoke", "id": ann}
    # the record is kept (DESIGN.md: DELETE keeps the record): A's publishers still read it,
    # marked revoked, and its receipts
    on_a = bearer(login(a, "publisher"))
    assert a.get(f"/announcements/{ann}/acks", headers=on_a).json() == []
    assert a.get(f"/announcements/{ann}/reach", headers=on_a).json()["revoked_at"]
    listed = {x["id"]: x for x in a.get("/announcements", headers=on_a).json()}
    assert listed[ann]["revoked_by"] == "publisher"
    assert ann not in [
        x["id"] for x in a.get("/announcements", headers=bearer(login(a, "alice"))).json()
    ]


def test_a_fresh_stream_on_a_starts_where_what_b_did_has_reached_a(clients, streams) -> None:
    """A new stream's start position on A while B publishes and revokes: what A had read of
    Redis when the stream subscribed. An announcement of B's is at or before that position
    or delivered live, never both and never neither; once A has read a publish or a revoke,
    every new stream on A starts from it."""
    a, b = clients
    boss = login(b, "publisher")
    # bob's stream on A shows what A has read (he is in hr and sees announcements to all)
    watcher = _connected(streams(a, "bob", login(a, "bob")["access_token"]))

    def start(user: str) -> Stream:
        stream = streams(a, user, login(a, user)["access_token"])
        first = stream.next()
        assert first.event == "connected"
        return stream

    first = publish(b, boss)
    racing = start("alice")  # at once: A may not have read it yet
    marker = publish(b, boss)
    if racing.parser.last_id == first:
        assert _ids(racing.until(lambda e: e.id == marker)) == [marker]
    else:
        assert racing.parser.last_id == "0"
        assert _ids(racing.until(lambda e: e.id == marker)) == [first, marker]
    watcher.until(lambda e: e.id == marker)  # A has read both
    assert start("alice").parser.last_id == marker
    for_hr = publish(b, boss, audience={"groups": ["hr"]})
    watcher.until(lambda e: e.id == for_hr)
    assert (start("alice").parser.last_id, start("bob").parser.last_id) == (marker, for_hr)
    assert b.delete(f"/announcements/{for_hr}", headers=bearer(boss)).status_code == 200
    watcher.until(lambda e: json.loads(e.data) == {"type": "revoke", "id": for_hr})
    assert start("bob").parser.last_id == marker  # the revoked one no longer


def test_refresh_token_rotated_on_a_is_refused_on_b(clients) -> None:
    a, b = clients
    first = login(a, "alice")
    rotated = a.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    again = b.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and "log in again" in again.json()["error"]
    # the reuse revoked the whole session, on every process: the rotated token is dead too
    stolen = b.post("/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]})
    assert stolen.status_code == 401
    # logout on B revokes a session started on A
    second = login(a, "alice")
    assert b.post("/auth/logout", json={"refresh_token": second["refresh_token"]}).is_success
    refused = a.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert refused.status_code == 401


def test_close_on_b_ends_the_callers_streams_on_a(clients, streams, pair) -> None:
    a, b = clients
    mine, other = login(a, "alice"), login(a, "alice")
    on_a = _connected(streams(a, "alice", mine["access_token"]))
    other_session = _connected(streams(a, "alice", other["access_token"]))
    response = b.post("/sse/close/alice", headers=bearer(mine))
    assert response.json() == {"code": 200, "msg": "ok", "data": None}
    rest = on_a.rest()
    assert [(e.event, json.loads(e.data)) for e in rest] == [("close", {"reason": "closed"})]
    ann = pair[1].publish("still here", "x")
    assert _ids(other_session.until(lambda e: e.id == ann)) == [ann]


def test_replay_by_last_event_id_on_the_other_process(clients, streams, pair) -> None:
    a, b = clients
    token = login(a, "alice")["access_token"]
    on_a = _connected(streams(a, "alice", token))
    first = pair[0].publish("one", "x")
    assert on_a.next().id == first
    on_a.close()  # the client drops; its load balancer sends it to B next time
    missed = [pair[0].publish(f"missed {i}", "x") for i in range(3)]
    pair[0].publish("not for alice", "x", audience={"groups": ["hr"]})
    on_b = streams(b, "alice", token, headers={"Last-Event-ID": on_a.parser.last_id})
    events = on_b.until(lambda e: e.event == "sync")
    assert _ids(events) == missed
    assert json.loads(events[-1].data) == {"replayed": 3, "more": False, "last_id": missed[-1]}
    live = pair[0].publish("live", "x")
    assert on_b.next().id == live


def _health(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/healthz").json()
    return body


def _metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"tray_notifier_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} missing")


def test_redis_restarted_mid_stream_and_nothing_is_lost(
    clients, streams, redis_server: RedisServer
) -> None:
    a, b = clients
    boss = login(b, "publisher")
    alice_token = login(a, "alice")["access_token"]
    on_a = _connected(streams(a, "alice", alice_token))
    before = [publish(b, boss, title=f"before {i}") for i in range(3)]
    assert _ids(on_a.until(lambda e: e.id == before[-1])) == before
    assert _health(a)["status"] == "ok" and _metric(a, "redis_up") == 1

    redis_server.stop()
    wait_until(lambda: _health(a)["status"] == "degraded")
    health = _health(a)
    assert "Redis at 127.0.0.1" in health["problem"] and "unreachable" in health["problem"]
    assert _metric(a, "redis_up") == 0 and _metric(a, "redis_outages") == 1
    refused = b.post(
        "/announcements",
        json={"title": "T", "body": "B", "audience": {"all": True}},
        headers=bearer(boss),
    )
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
    assert "cannot be reached" in refused.json()["error"]
    # the stream on A stays connected: keepalives keep coming while Redis is away
    pings = len(on_a.parser.comments)
    while len(on_a.parser.comments) < pings + 2:
        on_a.pump()

    redis_server.start()
    wait_until(lambda: _health(a)["status"] == "ok" and _health(b)["status"] == "ok")
    after = [publish(b, boss, title=f"after {i}") for i in range(3)]
    assert _ids(on_a.until(lambda e: e.id == after[-1])) == after
    assert _metric(a, "redis_outages") == 1
    # and a client that resumes from the first one replays everything else, once
    resumed = streams(b, "alice", alice_token, headers={"Last-Event-ID": before[0]})
    assert _ids(resumed.until(lambda e: e.event == "sync")) == before[1:] + after


def test_publish_and_login_are_refused_while_redis_is_down_then_work(
    pair, clients, redis_server: RedisServer
) -> None:
    a, _ = clients
    boss = login(a, "publisher")
    redis_server.stop()
    refused = [
        a.post(
            "/announcements",
            json={"title": "T", "body": "B", "audience": {"all": True}},
            headers=bearer(boss),
        ),
        a.post("/auth/login", json={"username": "alice", "password": "demo"}),
    ]
    assert [r.status_code for r in refused] == [503, 503]
    redis_server.start()
    wait_until(lambda: _health(a)["status"] == "ok")
    ann = publish(a, boss)
    assert [x["id"] for x in a.get("/announcements", headers=bearer(boss)).json()] == [ann]


def test_retention_trims_the_stream(server_factory, redis_url: str) -> None:
    server = server_factory(redis_url=redis_url + "?maxlen=50&prefix=trim:")
    ids = [server.publish(f"n{i}", "x") for i in range(400)]
    with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
        kept = client.xlen("trim:announcements")
        first = client.xrange("trim:announcements", count=1)[0][0].decode()
    assert 50 <= kept < 400  # MAXLEN ~: about 50, trimmed in whole radix-tree nodes
    assert first == ids[-kept]


def test_bad_resume_ids_are_rejected_and_ids_are_stream_ids(pair, clients) -> None:
    a, _ = clients
    ann = pair[0].publish("x", "y")
    ms, _, seq = ann.partition("-")
    assert ms.isdigit() and seq.isdigit()
    alice = bearer(login(a, "alice"))
    for bad in ("abc", "12", "1-2-3", "-1-0"):
        response = a.get("/announcements", params={"since": bad}, headers=alice)
        assert response.status_code == 400 and response.json()["field"] == "since", bad
    assert [
        x["id"] for x in a.get("/announcements", params={"since": "0"}, headers=alice).json()
    ] == [ann]


def test_receipts_on_a_show_in_reach_and_console_events_on_b(clients) -> None:
    a, b = clients
    boss = login(b, "publisher")
    ann = publish(b, boss, audience={"groups": ["it"]})
    with b.stream("GET", "/console/events", headers=bearer(boss)) as events:
        lines = events.iter_lines()
        while not next(lines).startswith("data:"):  # connected
            pass
        alice = bearer(login(a, "alice"))
        assert a.post("/receipts", json={"read": [ann]}, headers=alice).json() == {
            "recorded": 1,
            "ignored": 0,
        }
        data = next(line for line in lines if line.startswith("data:"))
        assert json.loads(data.removeprefix("data:")) == {"id": ann}
    reach = b.get(f"/announcements/{ann}/reach", headers=bearer(boss)).json()
    assert (reach["recipients"], reach["delivered"], reach["read"]) == (1, 1, 1)
