"""The embedded server's own surface: options, in-process calls, its lifecycle."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.server.embedded import EmbeddedServer
from app.server.validation import BadInput
from tests.fixtures.server import ServerFactory
from tests.server.conftest import bearer, login


def test_unknown_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="ping_intervall"):
        EmbeddedServer(data_dir=tmp_path, ping_intervall=1.0)


def test_options_reach_the_config(tmp_path: Path) -> None:
    server = EmbeddedServer(data_dir=tmp_path, token_ttl=5.0, retry_ms=100, host="::1")
    assert (server.config.port, server.config.host) == (0, "::1")
    assert (server.config.http.token_ttl, server.config.http.retry_ms) == (5.0, 100)
    assert server.data_dir == tmp_path
    with pytest.raises(RuntimeError, match="start"):
        _ = server.url


def test_publish_revoke_and_bad_input_in_process(server_factory: ServerFactory) -> None:
    server = server_factory(demo_users=True)
    with pytest.raises(BadInput) as caught:
        server.publish("t", "b", priority="critical")
    assert caught.value.field == "priority"
    ann = server.publish("t", "b", priority="high", audience={"users": ["alice"]})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        alice = bearer(login(client, "alice"))
        listed = client.get("/announcements", headers=alice).json()
        assert [(a["id"], a["priority"]) for a in listed] == [(ann, "high")]
        assert server.revoke(ann) and server.revoke(ann)
        assert not server.revoke("424242")
        assert client.get("/announcements", headers=alice).json() == []


def test_stopped_means_no_more_calls(server_factory: ServerFactory) -> None:
    server = server_factory()
    server.stop()
    server.stop()  # idempotent
    assert server.url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError, match="not running"):
        server.publish("t", "b")
