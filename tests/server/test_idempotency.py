"""Idempotent publish (both backends): a retry with the same ``Idempotency-Key`` returns the
first id and stores nothing new; keys are per publisher; and (Redis) a publish answered 503
while Redis is stalled is not stored behind the caller's back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.server.embedded import EmbeddedServer
from tests.fixtures.redis import RedisServer
from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT, bearer, login

PAYLOAD = {"title": "Fire drill", "body": "At 3 pm.", "audience": {"all": True}}


def _publish(client: httpx.Client, tokens: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {**bearer(tokens), **({"Idempotency-Key": key} if key is not None else {})}
    return client.post("/announcements", json=PAYLOAD, headers=headers)


def test_a_retry_with_the_same_key_returns_the_first_id(http: httpx.Client) -> None:
    boss = login(http, "publisher")
    first = _publish(http, boss, "k-1")
    again = _publish(http, boss, "k-1")
    other = _publish(http, boss, "k-2")
    plain = [_publish(http, boss, None) for _ in range(2)]
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    ids = {first.json()["id"], other.json()["id"], *(p.json()["id"] for p in plain)}
    assert len(ids) == 4  # without a key (or with another) each publish is new
    listed = http.get("/announcements", headers=bearer(boss)).json()
    assert len(listed) == 4


def test_a_key_is_the_publishers_own(http: httpx.Client, companion_server: EmbeddedServer) -> None:
    companion_server.add_user("boss2", "pw", publisher=True)
    boss, boss2 = login(http, "publisher"), login(http, "boss2", "pw")
    one = _publish(http, boss, "same").json()["id"]
    two = _publish(http, boss2, "same").json()["id"]
    assert one != two


@pytest.mark.parametrize("key", [b"x" * 201, "caf\u00e9".encode(), b""])
def test_a_bad_key_is_a_400(http: httpx.Client, key: bytes) -> None:
    boss = login(http, "publisher")
    headers = [(k.encode(), v.encode()) for k, v in bearer(boss).items()]
    answer = http.post(
        "/announcements", json=PAYLOAD, headers=[*headers, (b"Idempotency-Key", key)]
    )
    assert answer.status_code == 400
    assert answer.json()["field"] == "Idempotency-Key"


@pytest.fixture
def stalled_redis(redis_server: RedisServer) -> Iterator[RedisServer]:
    yield redis_server
    redis_server.resume()  # whatever the test did


def test_a_publish_answered_503_while_redis_stalls_is_not_stored(
    server_factory: ServerFactory, server_backend: str, stalled_redis: RedisServer
) -> None:
    if server_backend != "redis":
        pytest.skip("only the Redis backend can stall apart from the server")
    url = f"{stalled_redis.url}?timeout=2"
    server = server_factory(demo_users=True, redis_url=url)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        boss = login(client, "publisher")
        stalled_redis.pause()
        refused = [_publish(client, boss, f"stall-{n}") for n in range(2)]
        stalled_redis.resume()
        assert [r.status_code for r in refused] == [503, 503]
        assert all(r.headers["Retry-After"] for r in refused)
        after = _publish(client, boss, "after")
        assert after.status_code == 201, after.text
        listed = client.get("/announcements", headers=bearer(boss)).json()
        assert [a["id"] for a in listed] == [after.json()["id"]]  # no phantom
        retried = _publish(client, boss, "stall-0")  # the publisher's retry: one, new
        assert retried.status_code == 201
        listed = client.get("/announcements", headers=bearer(boss)).json()
        assert len(listed) == 2
