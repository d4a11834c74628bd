"""Ending a login session at once, on every process (both backends): logout, a reused
refresh token and revoke-all refuse the session's access tokens (401) and end its open
streams with ``event: close``; an ended session stays ended across a restart."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import jwt

from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT, Stream, bearer, login

StreamOpener = Callable[..., Stream]


def _closed_for(stream: Stream) -> str:
    """The reason of the ``event: close`` the stream ends with."""
    events = stream.until(lambda e: e.event == "close")
    assert stream.rest() == []  # and the response ends there
    return str(json.loads(events[-1].data)["reason"])


def _connected(stream: Stream) -> Stream:
    stream.until(lambda e: e.event == "connected")
    return stream


def test_every_access_token_names_its_session(http: httpx.Client) -> None:
    claims = jwt.decode(login(http, "alice")["access_token"], options={"verify_signature": False})
    assert isinstance(claims["sid"], str) and claims["sid"]


def test_logout_ends_the_session_its_tokens_and_its_stream(
    http: httpx.Client, streams: StreamOpener
) -> None:
    tokens = login(http, "alice")
    other = login(http, "alice")  # another login of the same user: not touched
    stream = _connected(streams(http, "alice", tokens["access_token"]))
    kept = _connected(streams(http, "alice", other["access_token"]))
    assert http.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code
    assert _closed_for(stream) == "session_ended"
    refused = http.get("/announcements", headers=bearer(tokens))
    assert refused.status_code == 401
    assert "session has ended" in refused.json()["error"]
    again = http.get("/sse/connect/alice", headers=bearer(tokens))
    assert again.status_code == 401
    assert http.get("/announcements", headers=bearer(other)).status_code == 200
    kept.close()


def test_a_reused_refresh_token_ends_the_session_everywhere(
    http: httpx.Client, streams: StreamOpener
) -> None:
    first = login(http, "alice")
    second = http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    stream = _connected(streams(http, "alice", second["access_token"]))
    stolen = http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 401
    assert _closed_for(stream) == "session_ended"
    for tokens in (first, second):
        assert http.get("/announcements", headers=bearer(tokens)).status_code == 401
    refreshed = http.post("/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert refreshed.status_code == 401


def test_revoke_all_ends_every_session_of_the_user(
    http: httpx.Client, streams: StreamOpener
) -> None:
    laptop, phone, bob = login(http, "alice"), login(http, "alice"), login(http, "bob")
    laptop_stream = _connected(streams(http, "alice", laptop["access_token"]))
    phone_stream = _connected(streams(http, "alice", phone["access_token"]))
    assert http.post("/auth/revoke-all", headers=bearer(phone)).status_code == 204
    assert _closed_for(laptop_stream) == "session_ended"
    assert _closed_for(phone_stream) == "session_ended"
    for tokens in (laptop, phone):
        assert http.get("/announcements", headers=bearer(tokens)).status_code == 401
        again = http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert again.status_code == 401
    assert http.get("/announcements", headers=bearer(bob)).status_code == 200
    fresh = login(http, "alice")  # a new login after it works
    assert http.get("/announcements", headers=bearer(fresh)).status_code == 200


def test_a_logout_on_one_process_ends_the_session_on_another(
    server_factory: ServerFactory, server_backend: str, streams: StreamOpener
) -> None:
    """Redis: two processes share the backend; SQLite: the one process, restarted on the same
    file, still refuses the ended session's token."""
    first = server_factory(demo_users=True, ping_interval=0.5)
    with httpx.Client(base_url=first.url, timeout=TIMEOUT) as a:
        tokens = login(a, "alice")
        if server_backend == "redis":
            second = server_factory(ping_interval=0.5, data_dir=first.data_dir)
            with httpx.Client(base_url=second.url, timeout=TIMEOUT) as b:
                stream = _connected(streams(b, "alice", tokens["access_token"]))
                assert a.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
                assert _closed_for(stream) == "session_ended"
                assert b.get("/announcements", headers=bearer(tokens)).status_code == 401
            third = server_factory(ping_interval=0.5, data_dir=first.data_dir)  # started later
            with httpx.Client(base_url=third.url, timeout=TIMEOUT) as c:
                assert c.get("/announcements", headers=bearer(tokens)).status_code == 401
            return
        assert a.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    port, data_dir = first.port, first.data_dir
    first.stop()
    again = server_factory(data_dir=data_dir, port=port)
    with httpx.Client(base_url=again.url, timeout=TIMEOUT) as client:
        assert client.get("/announcements", headers=bearer(tokens)).status_code == 401


def test_a_token_without_a_session_is_refused(companion_server: EmbeddedServer) -> None:
    key = (companion_server.data_dir / "signing.key").read_text().strip().encode()
    forged = jwt.encode({"sub": "alice", "exp": 2**40, "iat": 1}, key, algorithm="HS256")
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as client:
        assert client.get("/announcements", headers=bearer(forged)).status_code == 401
