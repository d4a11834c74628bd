"""Login, refresh with rotation, logout, 401 and 403, the signing key."""

from __future__ import annotations

import stat

import httpx
import jwt
import pytest

from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ManualClock
from tests.server.conftest import bearer, login


def test_login_returns_a_token_pair(http: httpx.Client) -> None:
    tokens = login(http, "alice")
    assert tokens["user_id"] == "alice"
    assert tokens["expires_in"] == pytest.approx(900.0)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "alice" and claims["groups"] == ["it"] and claims["roles"] == []
    assert claims["exp"] > claims["iat"]
    publisher = jwt.decode(
        login(http, "publisher")["access_token"], options={"verify_signature": False}
    )
    assert publisher["roles"] == ["publisher"]


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("nobody", "demo")])
def test_wrong_credentials_are_401(http: httpx.Client, user: str, password: str) -> None:
    response = http.post("/auth/login", json={"username": user, "password": password})
    assert response.status_code == 401
    assert response.json() == {"error": "wrong user name or password"}


def test_refresh_rotates_and_the_old_token_fails(http: httpx.Client) -> None:
    first = login(http, "alice")
    second = http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"] and pair["user_id"] == "alice"
    assert http.get("/announcements", headers=bearer(pair)).status_code == 200
    reused = http.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    # a reused refresh token means theft: the whole session is revoked
    assert (
        http.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    )


def test_logout_revokes_the_refresh_token(http: httpx.Client) -> None:
    tokens = login(http, "alice")
    other = login(http, "alice")  # another session of the same user stays valid
    assert (
        http.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 204
    )
    assert (
        http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 401
    )
    assert (
        http.post("/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code
        == 200
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic YWxpY2U6ZGVtbw=="}],
)
def test_bad_token_is_401(http: httpx.Client, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/sse/connect/alice"),
        ("GET", "/announcements"),
        ("POST", "/sse/close/alice"),
    ]:
        response = http.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in response.json()


def test_token_of_another_server_is_401(http: httpx.Client) -> None:
    forged = jwt.encode({"sub": "alice", "exp": 4_000_000_000}, "x" * 64, algorithm="HS256")
    assert http.get("/sse/connect/alice", headers=bearer(forged)).status_code == 401


def test_expired_token_is_401(server_factory, server_clock: ManualClock) -> None:
    server = server_factory(demo_users=True, token_ttl=60.0, clock=server_clock)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        tokens = login(client, "alice")
        assert tokens["expires_in"] == pytest.approx(60.0)
        server_clock.advance(59.0)
        assert client.get("/announcements", headers=bearer(tokens)).status_code == 200
        server_clock.advance(1.0)
        response = client.get("/announcements", headers=bearer(tokens))
        assert response.status_code == 401
        assert "expired" in response.json()["error"]
        # a refresh on the same clock gives a token that works again
        pair = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert client.get("/announcements", headers=bearer(pair.json())).status_code == 200


def test_another_users_stream_is_403(http: httpx.Client) -> None:
    response = http.get("/sse/connect/bob", headers=bearer(login(http, "alice")))
    assert response.status_code == 403
    assert response.json() == {"error": "the access token belongs to another user"}
    assert http.post("/sse/close/bob", headers=bearer(login(http, "alice"))).status_code == 403


def test_publishing_needs_the_publisher_role(http: httpx.Client) -> None:
    alice = login(http, "alice")
    payload = {"title": "x", "body": "y", "audience": {"all": True}}
    assert http.post("/announcements", json=payload, headers=bearer(alice)).status_code == 403
    assert http.delete("/announcements/1", headers=bearer(alice)).status_code == 403


def test_signing_key_is_private_and_survives_a_restart(server_factory) -> None:
    first = server_factory(demo_users=True)
    key = first.data_dir / "signing.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with httpx.Client(base_url=first.url, timeout=10) as client:
        tokens = login(client, "alice")
    first.stop()
    second: EmbeddedServer = server_factory(data_dir=first.data_dir, port=first.port)
    assert second.port == first.port
    with httpx.Client(base_url=second.url, timeout=10) as client:
        assert client.get("/announcements", headers=bearer(tokens)).status_code == 200
        rotated = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert rotated.status_code == 200


def test_add_user_in_process(server_factory) -> None:
    server = server_factory()
    server.add_user("carol", "s3cret", groups=["it", "ops"], publisher=True)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        claims = jwt.decode(
            login(client, "carol", "s3cret")["access_token"], options={"verify_signature": False}
        )
    assert claims["groups"] == ["it", "ops"] and claims["roles"] == ["publisher"]
