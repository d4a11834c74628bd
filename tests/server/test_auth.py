"""Login, refresh with rotation, logout, 401 and 403, the signing key."""

from __future__ import annotations

import base64
import hmac
import json
import stat
from typing import Any

import httpx
import jwt
import pytest

from app.server.auth import InvalidToken, TokenIssuer
from app.server.embedded import EmbeddedServer
from app.server.model import User
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


# ---------------------------------------------------------------- the token format itself

KEY = b"k" * 64
OWN_HEADER = b'{"alg":"HS256","typ":"JWT"}'
CLAIMS = {"sub": "alice", "groups": ["it"], "roles": [], "sid": "s1", "iat": 100.0, "exp": 2000.0}


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def _token(header: bytes, claims: Any, *, key: bytes = KEY, digest: str = "sha256") -> str:
    signed = _b64(header) + b"." + _b64(json.dumps(claims).encode())
    return (signed + b"." + _b64(hmac.digest(key, signed, digest))).decode()


def _issuer() -> TokenIssuer:
    return TokenIssuer(KEY, ttl=900.0, clock=lambda: 1000.0)


def test_tokens_are_standard_jwts_and_the_previous_versions_still_verify() -> None:
    issuer = _issuer()
    token, _ = issuer.issue(User("alice", "", frozenset({"it"})), session_id="s1")
    claims = jwt.decode(token, KEY, algorithms=["HS256"], options={"verify_exp": False})
    assert claims == {**CLAIMS, "iat": 1000.0, "exp": 1900.0}
    # written by PyJWT, as the server did before it wrote its tokens itself
    earlier = jwt.encode(CLAIMS, KEY, algorithm="HS256")
    principal = issuer.verify(earlier).principal
    assert principal.user_id == "alice" and principal.groups == {"it"} and not principal.publisher
    assert issuer.verify(_token(OWN_HEADER, CLAIMS)).expires_at == 2000.0


@pytest.mark.parametrize(
    "token",
    [
        _token(b'{"alg":"none","typ":"JWT"}', CLAIMS).rpartition(".")[0] + ".",
        _token(b'{"alg":"HS512","typ":"JWT"}', CLAIMS, digest="sha512"),
        _token(b'{"typ":"JWT","alg":"HS256"}', CLAIMS),  # not the header this server writes
        _token(OWN_HEADER, CLAIMS, key=b"x" * 64),  # another key
        _token(OWN_HEADER, CLAIMS) + "A",  # a signature with more to it
        _token(OWN_HEADER, CLAIMS)[:-1],
        _token(OWN_HEADER, CLAIMS).replace(".", "..", 1),
        _token(OWN_HEADER, ["not", "an", "object"]),
        _token(OWN_HEADER, {**CLAIMS, "sid": ""}),
        _token(OWN_HEADER, {k: v for k, v in CLAIMS.items() if k != "iat"}),
        _token(OWN_HEADER, {**CLAIMS, "sub": 7}),
        _token(OWN_HEADER, {**CLAIMS, "groups": "it"}),
        _token(OWN_HEADER, {**CLAIMS, "exp": "2000"}),
        "é" + _token(OWN_HEADER, CLAIMS),
        "two.segments",
        "",
    ],
)
def test_only_this_servers_own_tokens_are_accepted(token: str) -> None:
    with pytest.raises(InvalidToken, match="not valid"):
        _issuer().verify(token)


def test_a_payload_changed_after_signing_is_refused() -> None:
    header, _, signature = _token(OWN_HEADER, CLAIMS).split(".")
    changed = _b64(json.dumps({**CLAIMS, "roles": ["publisher"]}).encode()).decode()
    with pytest.raises(InvalidToken, match="not valid"):  # (the signature covers both)
        _issuer().verify(f"{header}.{changed}.{signature}")


def test_an_expired_token_says_so() -> None:
    with pytest.raises(InvalidToken, match="expired"):
        _issuer().verify(_token(OWN_HEADER, {**CLAIMS, "exp": 1000.0}))
