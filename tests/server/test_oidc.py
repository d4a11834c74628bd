"""Single sign-on at the companion server (DESIGN.md "Single sign-on"), on both backends,
against a real OpenID provider (npm ``oidc-provider``, tests/fixtures/oidc.py): ``GET
/auth/config``, ``POST /auth/oidc`` and every refusal the contract names.

The ID tokens here are minted with the provider's own signing key (or a hostile one) by
``oidc_provider.mint_id_token``, so each check is tested alone; the sign-in through the
provider's pages is in tests/test_account_sso.py and tests/web/test_console_sso.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.server.embedded import EmbeddedServer
from tests.fixtures.oidc import CONSOLE_CLIENT_ID, TRAY_CLIENT_ID, OidcProvider
from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT, bearer, publish


@pytest.fixture
def sso_server(server_factory: ServerFactory, oidc_provider: OidcProvider) -> EmbeddedServer:
    return server_factory(oidc=oidc_provider.server_settings())


@pytest.fixture
def client(sso_server: EmbeddedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sso_server.url, timeout=TIMEOUT) as c:
        yield c


def _sign_in(client: httpx.Client, token: str) -> httpx.Response:
    return client.post("/auth/oidc", json={"id_token": token})


def _signed_in(client: httpx.Client, token: str) -> dict[str, Any]:
    reply = _sign_in(client, token)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _refused(client: httpx.Client, token: str) -> str:
    reply = _sign_in(client, token)
    assert reply.status_code == 401, reply.text
    return str(reply.json()["error"])


def _claims(tokens: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return claims


# ---------------------------------------------------------------- how to sign in


def test_auth_config_names_the_provider(client: httpx.Client, oidc_provider: OidcProvider) -> None:
    assert client.get("/auth/config").json() == {
        "password": True,
        "oidc": {
            "issuer": oidc_provider.issuer,
            "client_id": TRAY_CLIENT_ID,
            "console_client_id": CONSOLE_CLIENT_ID,
            "scopes": ["openid", "profile", "email", "offline_access"],
        },
    }


def test_auth_config_without_a_provider_offers_passwords(server_factory: ServerFactory) -> None:
    server = server_factory()
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as plain:
        assert plain.get("/auth/config").json() == {"password": True, "oidc": None}
        refused = plain.post("/auth/oidc", json={"id_token": "x.y.z"})
    assert refused.status_code == 404
    assert "no identity provider" in refused.json()["error"]


def test_no_password_login_refuses_passwords(
    server_factory: ServerFactory, oidc_provider: OidcProvider
) -> None:
    server = server_factory(
        oidc=oidc_provider.server_settings(password_login=False), demo_users=True
    )
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.get("/auth/config").json()["password"] is False
        refused = c.post("/auth/login", json={"username": "alice", "password": "demo"})
        assert refused.status_code == 403
        assert "organisation account" in refused.json()["error"]
        assert _signed_in(c, oidc_provider.mint_id_token(user="carol"))["user_id"] == "carol"


# ---------------------------------------------------------------- a person signs in


def test_a_person_signs_in_with_the_groups_of_the_provider(
    client: httpx.Client, oidc_provider: OidcProvider
) -> None:
    tokens = _signed_in(client, oidc_provider.mint_id_token(user="alice"))
    assert tokens["user_id"] == "alice" and tokens["refresh_token"]
    claims = _claims(tokens)
    assert sorted(claims["groups"]) == ["it", "staff"] and claims["roles"] == []
    assert client.get("/announcements", headers=bearer(tokens)).status_code == 200
    # the server's own session: refresh and logout work as for a password login
    renewed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert renewed.status_code == 200
    assert client.post("/auth/logout", json={"refresh_token": renewed.json()["refresh_token"]})
    again = client.post("/auth/refresh", json={"refresh_token": renewed.json()["refresh_token"]})
    assert again.status_code == 401


def test_a_publisher_group_publishes_and_others_receive_by_group(
    client: httpx.Client, oidc_provider: OidcProvider, sso_server: EmbeddedServer
) -> None:
    carol = _signed_in(client, oidc_provider.mint_id_token(user="carol"))
    assert _claims(carol)["roles"] == ["publisher"]
    alice = _signed_in(client, oidc_provider.mint_id_token(user="alice"))
    bob = _signed_in(client, oidc_provider.mint_id_token(user="bob"))
    for_it = publish(client, carol, title="For IT", audience={"groups": ["it"]})
    listed = client.get("/announcements", headers=bearer(alice)).json()
    assert [a["id"] for a in listed] == [for_it]
    assert client.get("/announcements", headers=bearer(bob)).json() == []
    refused = client.post(
        "/announcements",
        json={"title": "T", "body": "B", "audience": {"all": True}},
        headers=bearer(alice),
    )
    assert refused.status_code == 403
    directory = client.get("/directory", headers=bearer(carol)).json()
    assert {"alice", "bob", "carol"} <= {u["user_id"] for u in directory["users"]}


def test_groups_are_replaced_at_each_sign_in_and_a_missing_claim_is_none(
    client: httpx.Client,
    oidc_provider: OidcProvider,
) -> None:
    first = _signed_in(client, oidc_provider.mint_id_token(user="alice", groups=["comms"]))
    assert _claims(first)["roles"] == ["publisher"]
    second = _signed_in(client, oidc_provider.mint_id_token(user="alice", groups=["staff"]))
    assert _claims(second)["groups"] == ["staff"] and _claims(second)["roles"] == []
    # the refresh of the first session reads the user as it is now
    renewed = client.post("/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert _claims(renewed.json())["groups"] == ["staff"]
    dave = _signed_in(client, oidc_provider.mint_id_token(user="dave"))
    assert _claims(dave)["groups"] == []


def test_two_provider_people_with_one_name_are_two_users(
    client: httpx.Client, oidc_provider: OidcProvider
) -> None:
    north, south = "sam.north@example.org", "sam.south@example.org"
    assert oidc_provider.user(north).username == oidc_provider.user(south).username == "sam"
    first = _signed_in(client, oidc_provider.mint_id_token(user=north))
    other = _signed_in(client, oidc_provider.mint_id_token(user=south))
    assert (first["user_id"], other["user_id"]) == ("sam", "sam~2")
    assert _claims(other)["groups"] == ["hr", "staff"]
    # each keeps their own user at the next sign-in (another token: another nonce)
    again = oidc_provider.mint_id_token(user=south, nonce="again")
    assert _signed_in(client, again)["user_id"] == "sam~2"
    again = oidc_provider.mint_id_token(user=north, nonce="again")
    assert _signed_in(client, again)["user_id"] == "sam"


def test_a_local_account_name_is_refused_never_merged(
    sso_server: EmbeddedServer, client: httpx.Client, oidc_provider: OidcProvider
) -> None:
    sso_server.add_user("alice", "local-password", groups=["hr"])
    reply = _sign_in(client, oidc_provider.mint_id_token(user="alice"))
    assert reply.status_code == 409
    assert "local account" in reply.json()["error"]
    local = client.post("/auth/login", json={"username": "alice", "password": "local-password"})
    assert local.status_code == 200 and _claims(local.json())["groups"] == ["hr"]


def test_add_user_refuses_the_name_of_a_provider_person(
    sso_server: EmbeddedServer, client: httpx.Client, oidc_provider: OidcProvider
) -> None:
    _signed_in(client, oidc_provider.mint_id_token(user="bob"))
    with pytest.raises(ValueError, match="identity provider"):
        sso_server.add_user("bob", "a-password")
    refused = client.post("/auth/login", json={"username": "bob", "password": "a-password"})
    assert refused.status_code == 401


# ---------------------------------------------------------------- hostile tokens


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_token_signed_by_another_key_under_the_providers_kid_is_refused(
    client: httpx.Client,
    oidc_provider: OidcProvider,
) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert "signature" in _refused(client, oidc_provider.mint_id_token(key=forger))


def test_alg_none_is_refused(client: httpx.Client, oidc_provider: OidcProvider) -> None:
    assert "'none'" in _refused(client, oidc_provider.mint_id_token(algorithm="none"))


def test_hs256_with_the_public_key_as_secret_is_refused(
    client: httpx.Client, oidc_provider: OidcProvider
) -> None:
    public_pem = oidc_provider.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = oidc_provider.mint_id_token(algorithm="HS256", key=public_pem)
    assert "HS256" in _refused(client, token)
    # the same forgery by hand, in case the fixture ever changes how it signs
    header = _b64(json.dumps({"alg": "HS256", "kid": oidc_provider.kid}).encode())
    now = int(time.time())
    body = _b64(
        json.dumps(
            {
                "iss": oidc_provider.issuer,
                "aud": TRAY_CLIENT_ID,
                "sub": "x",
                "iat": now,
                "exp": now + 300,
                "preferred_username": "mallory",
            }
        ).encode()
    )
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert "HS256" in _refused(client, f"{header}.{body}.{_b64(mac)}")


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "another-app"}, "another application"),
        ({"aud": ["another-app", TRAY_CLIENT_ID]}, "azp"),
        ({"aud": [CONSOLE_CLIENT_ID, TRAY_CLIENT_ID], "azp": "another-app"}, "azp"),
        ({"exp_in": -61}, "expired"),
        ({"iat_ago": 661}, "too long ago"),
        ({"nbf_in": 120}, "not valid yet"),
        ({"iss": "https://login.example.org"}, "not issued by"),
        ({"sub": None}, "'sub'"),
        ({"preferred_username": None}, "preferred_username"),
    ],
    ids=["audience", "azp-missing", "azp-other", "expired", "old", "nbf", "issuer", "sub", "name"],
)
def test_claims_that_do_not_fit_are_refused(
    client: httpx.Client, oidc_provider: OidcProvider, claims: dict[str, Any], reason: str
) -> None:
    now = int(time.time())
    claims = dict(claims)
    if "exp_in" in claims:
        claims["exp"] = now + claims.pop("exp_in")
    if "iat_ago" in claims:
        claims["iat"] = now - claims.pop("iat_ago")
        claims["exp"] = now + 300
    if "nbf_in" in claims:
        claims["nbf"] = now + claims.pop("nbf_in")
    assert reason in _refused(client, oidc_provider.mint_id_token(**claims))


def test_the_leeway_is_sixty_seconds(client: httpx.Client, oidc_provider: OidcProvider) -> None:
    now = int(time.time())
    assert _signed_in(client, oidc_provider.mint_id_token(exp=now - 50))["user_id"] == "alice"
    assert _signed_in(client, oidc_provider.mint_id_token(user="bob", nbf=now + 50))


def test_an_id_token_signs_in_once(client: httpx.Client, oidc_provider: OidcProvider) -> None:
    token = oidc_provider.mint_id_token(user="alice")
    _signed_in(client, token)
    assert "used already" in _refused(client, token)


def test_an_id_token_signs_in_once_across_server_processes(
    server_factory: ServerFactory, oidc_provider: OidcProvider, server_backend: str
) -> None:
    if server_backend != "redis":
        pytest.skip("one SQLite database serves one process")
    one = server_factory(oidc=oidc_provider.server_settings())
    two = server_factory(oidc=oidc_provider.server_settings())
    token = oidc_provider.mint_id_token(user="alice")
    with (
        httpx.Client(base_url=one.url, timeout=TIMEOUT) as first,
        httpx.Client(base_url=two.url, timeout=TIMEOUT) as second,
    ):
        signed = _signed_in(first, token)
        assert "used already" in _refused(second, token)
        # a session made on one process works on the other
        assert second.get("/announcements", headers=bearer(signed)).status_code == 200


def test_a_new_signing_key_is_fetched_and_made_up_kids_are_rate_limited(
    client: httpx.Client, oidc_provider: OidcProvider, caplog: pytest.LogCaptureFixture
) -> None:
    _signed_in(client, oidc_provider.mint_id_token(user="alice"))
    old_key, old_kid = oidc_provider.private_key, oidc_provider.kid
    oidc_provider.restart(new_key=True)
    assert oidc_provider.kid != old_kid
    with caplog.at_level(logging.INFO, logger="app.server.oidc"):
        _signed_in(client, oidc_provider.mint_id_token(user="bob"))  # unknown kid: fetched again
        stale = oidc_provider.mint_id_token(user="carol", key=old_key, headers={"kid": old_kid})
        assert "does not publish" in _refused(client, stale)
        made_up = oidc_provider.mint_id_token(user="carol", headers={"kid": "made-up"})
        assert "does not publish" in _refused(client, made_up)
    fetches = [r for r in caplog.records if r.getMessage().startswith("fetched")]
    assert len(fetches) == 1, [r.getMessage() for r in fetches]


def test_an_unreachable_provider_is_a_503_not_a_refusal(
    server_factory: ServerFactory, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.mint_id_token(user="alice")
    oidc_provider.stop()
    server = server_factory(oidc=oidc_provider.server_settings())
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        reply = _sign_in(c, token)
    assert reply.status_code == 503 and reply.headers["Retry-After"]
    assert "cannot check your sign-in" in reply.json()["error"]


def test_refused_tokens_are_throttled_like_failed_logins(client: httpx.Client) -> None:
    for _ in range(5):
        assert _sign_in(client, "not-a-token").status_code == 401
    throttled = _sign_in(client, "not-a-token")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
