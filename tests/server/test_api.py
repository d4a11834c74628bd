"""REST endpoints: listing, acks, bad input, metrics, health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.server.conftest import bearer, login, metric, publish


def test_listing_shows_only_what_the_caller_may_see(http: httpx.Client) -> None:
    boss = login(http, "publisher")
    hr = publish(http, boss, title="hr", audience={"groups": ["hr"]})
    everyone = publish(http, boss, title="all")
    to_alice = publish(http, boss, title="alice", audience={"users": ["alice"]})
    alice, bob = bearer(login(http, "alice")), bearer(login(http, "bob"))
    assert [a["id"] for a in http.get("/announcements", headers=alice).json()] == [
        everyone,
        to_alice,
    ]
    assert [a["id"] for a in http.get("/announcements", headers=bob).json()] == [hr, everyone]
    assert len(http.get("/announcements", headers=bearer(boss)).json()) == 3
    since = http.get("/announcements", params={"since": everyone, "limit": 1}, headers=alice)
    assert [a["id"] for a in since.json()] == [to_alice]
    newest = http.get("/announcements", params={"limit": 1}, headers=alice).json()
    assert newest[0]["title"] == "alice" and newest[0]["type"] == "announcement"
    # alice cannot ack (nor learn about) bob's announcement
    assert http.post(f"/announcements/{hr}/ack", headers=alice).status_code == 404


@pytest.mark.parametrize(
    "params,field",
    [({"since": "abc"}, "since"), ({"limit": "0"}, "limit"), ({"limit": "x"}, "limit")],
)
def test_listing_bad_query_is_400(http: httpx.Client, params: dict[str, str], field: str) -> None:
    response = http.get("/announcements", params=params, headers=bearer(login(http, "alice")))
    assert response.status_code == 400 and response.json()["field"] == field


def test_acks_are_idempotent_and_listed_for_publishers_only(http: httpx.Client) -> None:
    boss = login(http, "publisher")
    ann = publish(http, boss, priority="urgent")
    alice, bob = bearer(login(http, "alice")), bearer(login(http, "bob"))
    first = http.post(f"/announcements/{ann}/ack", headers=alice)
    again = http.post(f"/announcements/{ann}/ack", headers=alice)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() and first.json()["id"] == ann
    http.post(f"/announcements/{ann}/ack", headers=bob)
    acks = http.get(f"/announcements/{ann}/acks", headers=bearer(boss))
    assert acks.status_code == 200
    rows = acks.json()
    assert [(r["user_id"], r["username"]) for r in rows] == [("alice", "alice"), ("bob", "bob")]
    assert rows[0]["acked_at"] == first.json()["acked_at"]
    assert http.get(f"/announcements/{ann}/acks", headers=alice).status_code == 403
    assert http.post("/announcements/424242/ack", headers=alice).status_code == 404
    assert http.get("/announcements/424242/acks", headers=bearer(boss)).status_code == 404


_GOOD = {"title": "t", "body": "b", "priority": "high", "audience": {"all": True}}


@pytest.mark.parametrize(
    "change,field",
    [
        ({"title": None}, "title"),
        ({"title": 5}, "title"),
        ({"title": "  "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"body": None}, "body"),
        ({"body": ["x"]}, "body"),
        ({"priority": "critical"}, "priority"),
        ({"priority": 3}, "priority"),
        ({"audience": None}, "audience"),
        ({"audience": {}}, "audience"),
        ({"audience": {"groups": []}}, "audience"),
        ({"audience": {"groups": "it"}}, "audience.groups"),
        ({"audience": {"users": [""]}}, "audience.users"),
        ({"audience": {"all": "yes"}}, "audience.all"),
        ({"audience": {"everyone": True}}, "audience"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "ftp://example.org/x"}, "url"),
        ({"url": 7}, "url"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_each_bad_field_is_400_and_nothing_is_stored(
    http: httpx.Client, change: dict[str, object], field: str
) -> None:
    boss = bearer(login(http, "publisher"))
    payload = {k: v for k, v in {**_GOOD, **change}.items() if v is not None}
    response = http.post("/announcements", json=payload, headers=boss)
    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"]
    assert http.get("/announcements", headers=boss).json() == []
    assert metric(http, "published_total") == 0


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b"{not json", 400),
        (b"[1, 2]", 400),
        (b"\xff\xfe", 400),
        (b'{"title": "' + b"x" * (64 * 1024) + b'"}', 413),
    ],
)
def test_bad_bodies_are_refused(http: httpx.Client, content: bytes, status: int) -> None:
    boss = bearer(login(http, "publisher"))
    response = http.post(
        "/announcements", content=content, headers={**boss, "Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["field"] is None and response.json()["error"]
    assert http.get("/announcements", headers=boss).json() == []


def test_login_bad_input_names_the_field(http: httpx.Client) -> None:
    response = http.post("/auth/login", json={"username": "alice"})
    assert response.status_code == 400 and response.json()["field"] == "password"
    response = http.post("/auth/refresh", json={"refresh_token": 12})
    assert response.status_code == 400 and response.json()["field"] == "refresh_token"


def test_publish_with_all_fields(http: httpx.Client) -> None:
    boss = login(http, "publisher")
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    ann = publish(http, boss, url="https://example.org/a?b=c", expires_at=expires, priority="low")
    got = http.get("/announcements", headers=bearer(login(http, "alice"))).json()
    assert got[0]["id"] == ann and got[0]["url"] == "https://example.org/a?b=c"
    assert got[0]["priority"] == "low" and got[0]["expires_at"].endswith("Z")


def test_metrics_and_health_move(http: httpx.Client, companion_server, streams) -> None:
    assert http.get("/healthz").json()["status"] == "ok"
    metrics = http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE tray_notifier_connections gauge" in metrics.text
    assert "# TYPE tray_notifier_delivered_total counter" in metrics.text
    stream = streams(http, "alice", login(http, "alice")["access_token"])
    stream.next()
    assert metric(http, "connections") == 1
    assert http.get("/healthz").json()["connections"] == 1
    ann = companion_server.publish("m", "x")
    assert stream.next().id == ann
    assert metric(http, "published_total") == 1
    assert metric(http, "delivered_total") == 1
    assert metric(http, "logins_total") == 1
    http.post("/auth/login", json={"username": "alice", "password": "no"})
    assert metric(http, "login_failures_total") == 1
