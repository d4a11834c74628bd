"""The SSE stream: framing, replay, targeting, close, expiry, keepalive, revoke, slow clients."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime

import httpx

from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ManualClock
from tests.fixtures.wait import wait_until
from tests.server.conftest import (
    TIMEOUT,
    Event,
    Stream,
    bearer,
    login,
    metric,
)


def _announcements(events: list[Event]) -> list[Event]:
    return [e for e in events if e.event == "message"]


def _connected(stream: Stream, position: str = "0") -> Event:
    """The first event: ``connected``, whose id is where the stream starts ("0": nothing yet)."""
    first = stream.next()
    assert first.event == "connected" and first.id == position
    return first


def test_stream_bytes_follow_the_whatwg_rules_exactly(
    http: httpx.Client, companion_server: EmbeddedServer, streams
) -> None:
    alice = login(http, "alice")
    stream = streams(http, "alice", alice["access_token"])
    assert stream.response.status_code == 200
    assert stream.response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert stream.response.headers["cache-control"] == "no-store"
    assert stream.response.headers["x-accel-buffering"] == "no"
    _connected(stream)
    ann_id = companion_server.publish("Two\u00a0lines", "first\nsecond\r\nthird \u4f60\u597d")
    event = stream.next()
    raw = bytes(stream.raw)
    # retry first, then the connected control event (its id: where the stream starts), then
    # the announcement
    assert raw.startswith(b"retry: 3000\n\nevent: connected\nid: 0\ndata: {")
    text = raw.decode("utf-8")
    assert "\r" not in text and not text.startswith("\ufeff")
    connected_block, message_block = text.split("\n\n")[1:3]
    assert connected_block.splitlines()[1] == "id: 0"
    assert message_block.splitlines()[0] == f"id: {ann_id}"
    assert all(line.startswith("data: ") for line in message_block.splitlines()[1:])
    assert stream.parser.retry == 3000
    assert event == Event("message", event.data, ann_id)
    payload = json.loads(event.data)
    assert payload == {
        "type": "announcement",
        "id": ann_id,
        "title": "Two\u00a0lines",
        "body": "first\nsecond\r\nthird \u4f60\u597d",
        "priority": "normal",
        "url": None,
        "created_at": payload["created_at"],
        "expires_at": None,
    }
    assert payload["created_at"].endswith("Z")


def test_connect_and_receive_targeted(http: httpx.Client, companion_server, streams) -> None:
    alice = streams(http, "alice", login(http, "alice")["access_token"])
    bob = streams(http, "bob", login(http, "bob")["access_token"])
    boss = streams(http, "publisher", login(http, "publisher")["access_token"])
    for s in (alice, bob, boss):
        _connected(s)
    hr = companion_server.publish("HR only", "x", audience={"groups": ["hr"]})
    to_alice = companion_server.publish("For alice", "x", audience={"users": ["alice"]})
    everyone = companion_server.publish("All", "x")
    assert [e.id for e in alice.until(lambda e: e.id == everyone)] == [to_alice, everyone]
    assert [e.id for e in bob.until(lambda e: e.id == everyone)] == [hr, everyone]
    assert [e.id for e in boss.until(lambda e: e.id == everyone)] == [hr, to_alice, everyone]


def _publish_many(server: EmbeddedServer, n: int, **kw) -> list[str]:
    return [server.publish(f"n{i}", "x", **kw) for i in range(n)]


def test_replay_by_last_event_id_header(http: httpx.Client, companion_server, streams) -> None:
    ids = _publish_many(companion_server, 4)
    companion_server.publish("not for alice", "x", audience={"groups": ["hr"]})
    token = login(http, "alice")["access_token"]
    stream = streams(http, "alice", token, headers={"Last-Event-ID": ids[1]})
    events = stream.until(lambda e: e.event == "sync")
    assert [e.id for e in _announcements(events)] == ids[2:]
    assert json.loads(events[-1].data) == {"replayed": 2, "more": False, "last_id": ids[3]}


def test_replay_by_query_and_header_wins(http: httpx.Client, companion_server, streams) -> None:
    ids = _publish_many(companion_server, 3)
    token = login(http, "alice")["access_token"]
    by_query = streams(http, "alice", token, params={"lastEventId": ids[0]})
    assert [e.id for e in _announcements(by_query.until(lambda e: e.event == "sync"))] == ids[1:]
    both = streams(
        http, "alice", token, params={"lastEventId": ids[0]}, headers={"Last-Event-ID": ids[1]}
    )
    assert [e.id for e in _announcements(both.until(lambda e: e.event == "sync"))] == ids[2:]


def test_replay_is_bounded_then_sync(http: httpx.Client, server_factory, streams) -> None:
    server = server_factory(demo_users=True, replay_limit=5)
    ids = _publish_many(server, 8)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        stream = streams(
            client, "alice", login(client, "alice")["access_token"], headers={"Last-Event-ID": "0"}
        )
        events = stream.until(lambda e: e.event == "sync")
        assert [e.id for e in _announcements(events)] == ids[:5]
        assert json.loads(events[-1].data) == {"replayed": 5, "more": True, "last_id": ids[4]}
        # the rest is there over REST
        rest = client.get(
            "/announcements", params={"since": ids[4]}, headers=bearer(login(client, "alice"))
        )
        assert [a["id"] for a in rest.json()] == ids[5:]


def test_no_loss_or_repeat_between_replay_and_live(
    http: httpx.Client, companion_server, streams
) -> None:
    before = _publish_many(companion_server, 30)
    during: list[str] = []
    go = threading.Event()

    def publisher() -> None:
        go.wait(10)
        during.extend(_publish_many(companion_server, 40))

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        token = login(http, "alice")["access_token"]
        go.set()
        stream = streams(http, "alice", token, headers={"Last-Event-ID": before[0]})
        thread.join(30)
        received = [e.id for e in _announcements(stream.until(lambda e: e.id == during[-1]))]
    finally:
        go.set()
        thread.join(30)
    assert received == before[1:] + during


def test_close_ends_only_the_callers_streams(http: httpx.Client, companion_server, streams) -> None:
    first, second = login(http, "alice"), login(http, "alice")
    a1 = streams(http, "alice", first["access_token"])
    a1_again = streams(http, "alice", first["access_token"])
    a2 = streams(http, "alice", second["access_token"])
    for s in (a1, a1_again, a2):
        _connected(s)
    for method in ("POST", "GET", "DELETE"):
        response = http.request(method, "/sse/close/alice", headers=bearer(first))
        assert response.json() == {"code": 200, "msg": "ok", "data": None}
    for s in (a1, a1_again):
        rest = s.rest()
        assert [(e.event, json.loads(e.data)) for e in rest] == [("close", {"reason": "closed"})]
    ann = companion_server.publish("still here", "x")
    assert a2.next().id == ann


def test_close_all_sessions(http: httpx.Client, streams) -> None:
    first, second = login(http, "alice"), login(http, "alice")
    a1 = streams(http, "alice", first["access_token"])
    a2 = streams(http, "alice", second["access_token"])
    http.post("/sse/close/alice", params={"all": "true"}, headers=bearer(first))
    for s in (a1, a2):
        assert s.rest()[-1].event == "close"


def test_token_expiry_ends_the_stream(server_factory, server_clock: ManualClock, streams) -> None:
    server = server_factory(demo_users=True, token_ttl=60.0, ping_interval=0.2, clock=server_clock)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        stream = streams(client, "alice", login(client, "alice")["access_token"])
        first = stream.next()
        server_clock.advance(60.0)  # no real wait: the keepalive task sees the expiry
        events = [first, *stream.rest()]
    assert [e.event for e in events] == ["connected", "close"]
    assert json.loads(events[-1].data) == {"reason": "token_expired"}
    assert stream.ended


def test_keepalive_comment_arrives(server_factory, streams) -> None:
    server = server_factory(demo_users=True, ping_interval=0.2)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        stream = streams(client, "alice", login(client, "alice")["access_token"])
        _connected(stream)
        while not stream.parser.comments:
            stream.pump()
        assert stream.parser.comments == ["ping"]
        assert stream.raw.endswith(b"\n\n: ping\n\n")


def test_revoke_reaches_the_audience(http: httpx.Client, companion_server, streams) -> None:
    alice = streams(http, "alice", login(http, "alice")["access_token"])
    bob = streams(http, "bob", login(http, "bob")["access_token"])
    _connected(alice)
    _connected(bob)
    it = companion_server.publish("IT", "x", audience={"groups": ["it"]})
    publisher = login(http, "publisher")
    assert alice.next().id == it
    response = http.delete(f"/announcements/{it}", headers=bearer(publisher))
    assert response.status_code == 200 and response.json() == {"id": it, "revoked": True}
    revoke = alice.next()
    assert revoke.event == "message" and json.loads(revoke.data) == {"type": "revoke", "id": it}
    # bob was not in the audience: the next thing he sees is the next announcement
    marker = companion_server.publish("All", "x")
    assert [e.id for e in bob.until(lambda e: e.id == marker)] == [marker]
    assert http.delete("/announcements/999999", headers=bearer(publisher)).status_code == 404
    # revoked: no longer listed nor replayed
    listed = http.get("/announcements", headers=bearer(login(http, "alice"))).json()
    assert it not in [a["id"] for a in listed]


def test_shutdown_closes_streams(server_factory, streams) -> None:
    server = server_factory(demo_users=True)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        stream = streams(client, "alice", login(client, "alice")["access_token"])
        _connected(stream)
        server.stop()
        rest = stream.rest()
    assert [(e.event, json.loads(e.data)) for e in rest] == [("close", {"reason": "shutdown"})]


def test_a_shutdown_asks_each_client_to_come_back_at_its_own_time(server_factory, streams) -> None:
    # issue 24: one retry for all brought a fleet back within a quarter of it, a spike; each
    # stream closed by a shutdown gets its own, spread over a second per return_rate streams
    server = server_factory(demo_users=True, return_rate=1.0)  # 3 streams: a 3 s window
    with httpx.Client(base_url=server.url, timeout=10) as client:
        opened = [
            streams(client, user, login(client, user)["access_token"])
            for user in ("alice", "bob", "publisher")
        ]
        for stream in opened:
            _connected(stream)
        server.stop()
        for stream in opened:
            stream.rest()
    waits = []
    for stream in opened:
        head, _, tail = bytes(stream.raw).rpartition(b"retry: ")
        assert head.startswith(b"retry: 3000\n\n")  # the stream's own, at its start
        value, _, close = tail.partition(b"\n\n")
        assert close == b'event: close\ndata: {"reason":"shutdown"}\n\n'
        waits.append(int(value))
    assert all(3000 <= wait < 6000 for wait in waits), waits
    assert max(waits) > 3000  # (all three at 3000: a chance of one in 27 billion)


def test_slow_client_is_dropped_and_memory_stays_bounded(server_factory) -> None:
    server = server_factory(demo_users=True, queue_size=8)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        token = login(client, "alice")["access_token"]
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        try:
            sock.sendall(
                f"GET /sse/connect/alice HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"
                "\r\n\r\n".encode()
            )
            wait_until(lambda: metric(client, "connections") == 1)
            body = "x" * 60_000
            for _ in range(2000):  # never read: the server must give up on this client
                server.publish("big", body)
                if metric(client, "dropped_total") == 1:
                    break
            assert metric(client, "dropped_total") == 1
            wait_until(lambda: metric(client, "connections") == 0)
            assert metric(client, "subscriptions") == 0
            received = 0
            try:
                while chunk := sock.recv(65536):
                    received += len(chunk)
            except ConnectionResetError:
                pass  # aborted: the end of the stream either way
        finally:
            sock.close()
        # a well-behaved client is unaffected
        assert client.get("/healthz").json()["status"] == "ok"


# ------------------------------------------------------------------ the resume point


def test_connected_carries_the_resume_id_the_client_sent(
    http: httpx.Client, companion_server, streams
) -> None:
    ids = _publish_many(companion_server, 3)
    token = login(http, "alice")["access_token"]
    by_header = streams(http, "alice", token, headers={"Last-Event-ID": ids[0]})
    first = _connected(by_header, ids[0])
    assert json.loads(first.data)["replay"] is True
    by_query = streams(http, "alice", token, params={"lastEventId": ids[1]})
    _connected(by_query, ids[1])
    unknown = streams(http, "alice", token, headers={"Last-Event-ID": "bogus"})
    _connected(unknown, "bogus")  # echoed: the replayed events then move it on
    events = unknown.until(lambda e: e.event == "sync")
    assert [e.id for e in _announcements(events)] == ids
    assert json.loads(events[-1].data)["more"] is False  # nothing is newer than the newest


def test_a_fresh_client_starts_at_the_newest_announcement_it_may_see(
    http: httpx.Client, companion_server, streams
) -> None:
    hr_only = companion_server.publish("HR", "x", audience={"groups": ["hr"]})
    alice_token = login(http, "alice")["access_token"]
    nothing_yet = _connected(streams(http, "alice", alice_token))  # "0": hr is not hers
    assert json.loads(nothing_yet.data)["replay"] is False
    for_all = companion_server.publish("All", "x")
    also_hr = companion_server.publish("HR again", "x", audience={"groups": ["hr"]})
    _connected(streams(http, "alice", alice_token), for_all)
    _connected(streams(http, "bob", login(http, "bob")["access_token"]), also_hr)
    # "0" is accepted back as "from the beginning" by both backends
    missed = _publish_many(companion_server, 3)
    again = streams(http, "alice", alice_token, headers={"Last-Event-ID": nothing_yet.id})
    _connected(again, "0")
    replayed = again.until(lambda e: e.event == "sync")
    assert [e.id for e in _announcements(replayed)] == [for_all, *missed]
    assert hr_only not in [e.id for e in replayed]


def test_fresh_position_and_live_deliveries_leave_no_gap(
    http: httpx.Client, companion_server, streams
) -> None:
    """Announcements published while a fresh client connects: each one is either at or before
    the position of ``connected`` or delivered live afterwards, never neither."""
    published = _publish_many(companion_server, 1)
    go = threading.Event()

    def publisher() -> None:
        go.wait(10)
        published.extend(_publish_many(companion_server, 60))

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        token = login(http, "alice")["access_token"]
        go.set()
        stream = streams(http, "alice", token)
        start = stream.next()
        thread.join(30)
        received = [e.id for e in _announcements(stream.until(lambda e: e.id == published[-1]))]
    finally:
        go.set()
        thread.join(30)
    assert start.event == "connected" and start.id in published
    assert received == published[published.index(start.id) + 1 :]


def test_a_replay_cut_short_ends_the_response(http: httpx.Client, server_factory, streams) -> None:
    """After ``sync`` with more, no live event may overtake what is still to replay: the
    response ends, and the client continues from the last replayed id."""
    server = server_factory(demo_users=True, replay_limit=5)
    ids = _publish_many(server, 8)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        token = login(client, "alice")["access_token"]
        first = streams(client, "alice", token, headers={"Last-Event-ID": "0"})
        page = first.until(lambda e: e.event == "sync")
        live = server.publish("live", "x")
        assert first.rest() == [] and first.ended
        assert json.loads(page[-1].data) == {"replayed": 5, "more": True, "last_id": ids[4]}
        assert page[-1].id == ids[4]
        second = streams(client, "alice", token, headers={"Last-Event-ID": page[-1].id})
        _connected(second, ids[4])
        rest = second.until(lambda e: e.event == "sync")
        assert [e.id for e in _announcements(rest)] == [*ids[5:], live]
        assert json.loads(rest[-1].data)["more"] is False
        assert not second.ended  # caught up: the stream goes live


def test_a_fresh_clients_start_follows_revokes_expiry_corrections_and_a_restart(
    server_factory, server_clock: ManualClock, streams
) -> None:
    """``connected``'s id for a client that sent none: the newest announcement it may see
    now (not revoked, not expired on the server's clock, addressed to it), before anything
    was published, as things change, and after a restart (from what was stored)."""

    def start(server: EmbeddedServer, user: str) -> str:
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as http:
            stream = streams(http, user, login(http, user)["access_token"])
            first = stream.next()
            assert first.event == "connected"
            stream.close()
            return first.id

    def in_hours(hours: float) -> str:
        when = datetime.fromtimestamp(server_clock() + hours * 3600, UTC)
        return when.isoformat().replace("+00:00", "Z")

    server = server_factory(demo_users=True, ping_interval=0.5, clock=server_clock)
    assert start(server, "alice") == "0"  # nothing yet
    for_all = server.publish("All", "x")
    hr_only = server.publish("HR", "x", audience={"groups": ["hr"]})
    expiring = server.publish("Soon over", "x", expires_at=in_hours(1))
    assert (start(server, "alice"), start(server, "bob")) == (expiring, expiring)
    server_clock.advance(2 * 3600)  # expired
    assert (start(server, "alice"), start(server, "bob")) == (for_all, hr_only)
    server.revoke(hr_only)
    assert start(server, "bob") == for_all
    server.correct(expiring, expires_at=in_hours(24))  # seen again until then
    assert (start(server, "alice"), start(server, "bob")) == (expiring, expiring)
    server.stop()
    again = server_factory(
        data_dir=server.data_dir, demo_users=True, ping_interval=0.5, clock=server_clock
    )
    assert start(again, "alice") == expiring  # what was stored before the start
    again.revoke(expiring)
    assert (start(again, "alice"), start(again, "bob")) == (for_all, for_all)
    it_only = again.publish("IT", "x", audience={"groups": ["it"]})
    assert (start(again, "alice"), start(again, "bob")) == (it_only, for_all)


def test_the_streams_refusals_are_the_apis(http: httpx.Client) -> None:
    """The stream answers its own errors (the error middleware passes it by): the same status,
    JSON body and headers as any other handler's."""

    def answer(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
        headers = {k: v for k, v in response.headers.items() if k != "date"}
        return response.status_code, response.content, headers

    no_token = answer(http.get("/sse/connect/alice"))
    assert no_token == answer(http.get("/announcements"))
    assert no_token[0] == 401 and json.loads(no_token[1])["error"]
    assert no_token[2]["www-authenticate"] == 'Bearer error="invalid_token"'
    assert no_token[2]["x-content-type-options"] == "nosniff"
    bad = {"Authorization": "Bearer not.a.token"}
    assert answer(http.get("/sse/connect/alice", headers=bad)) == answer(
        http.get("/announcements", headers=bad)
    )
    alices = bearer(login(http, "alice"))
    other = answer(http.get("/sse/connect/bob", headers=alices))
    assert other == answer(http.get("/sse/close/bob", headers=alices))
    assert other[0] == 403
