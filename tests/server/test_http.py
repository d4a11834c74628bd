"""The HTTP layer's own pieces: the metrics text, and its settings reaching the requests (the
endpoints' behaviour is in test_api.py, the stream in test_stream.py and test_fanout_paths.py)."""

from __future__ import annotations

import httpx

from app.server.metrics import Metrics
from tests.fixtures.server import ServerFactory
from tests.server.conftest import bearer, login, publish


def test_metrics_are_prometheus_text() -> None:
    text = Metrics(connections=2, published=5).prometheus(subscriptions=2, extra={"redis_up": 1.0})
    lines = text.splitlines()
    assert lines[:3] == [
        "# HELP tray_notifier_connections open SSE streams",
        "# TYPE tray_notifier_connections gauge",
        "tray_notifier_connections 2",
    ]
    assert "tray_notifier_published_total 5" in lines
    assert lines[-3:] == [
        "# HELP tray_notifier_redis_up backend figure",
        "# TYPE tray_notifier_redis_up gauge",
        "tray_notifier_redis_up 1.0",
    ]
    assert text.endswith("\n")


def test_list_limits_come_from_the_settings(server_factory: ServerFactory) -> None:
    server = server_factory(demo_users=True, list_limit=2, list_max=3)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        boss = login(client, "publisher")
        ids = [publish(client, boss, title=str(n)) for n in range(4)]
        alice = bearer(login(client, "alice"))
        assert [a["id"] for a in client.get("/announcements", headers=alice).json()] == ids[2:]
        too_many = client.get("/announcements", params={"limit": "4"}, headers=alice)
        assert too_many.status_code == 400
        assert too_many.json()["error"] == "limit must be a whole number from 1 to 3"


def test_the_body_limit_comes_from_the_settings(server_factory: ServerFactory) -> None:
    server = server_factory(demo_users=True, max_body=2048)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        boss = bearer(login(client, "publisher"))
        payload = {"title": "t", "body": "x" * 4096, "audience": {"all": True}}
        response = client.post("/announcements", json=payload, headers=boss)
        assert response.status_code == 413
        assert response.json()["error"] == "the request body is over 2 KiB"
