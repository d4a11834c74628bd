"""The client factory: TLS always verified (a private CA can be added), proxies from the
environment, origins for the redirect rule; no secret (a credential header, a request body)
ever follows a redirect to another origin, proven with two loopback servers on two ports."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app.core import http
from app.core.auth import AuthSession, Tokens
from app.core.config import Endpoints, StreamSettings
from app.core.errors import CertificateError, ConfigError, ProtocolError, ReplyTooLarge
from app.core.secrets import MemorySecretStore, login_key
from app.core.stream import OutcomeKind
from tests.fixtures.engine import first_event
from tests.fixtures.scripted import Conn, ScriptedServer, redirect, sse, status
from tests.fixtures.tls import private_ca

Scripted = Callable[..., ScriptedServer]


async def test_untrusted_certificate_stops_with_a_clear_error(
    scripted: Scripted, tmp_path: Path
) -> None:
    _, tls = private_ca(tmp_path)
    server = scripted(sse("data: secret\n\n"), tls=tls)
    outcome, data = await first_event(server.url, StreamSettings())
    assert outcome.kind is OutcomeKind.FATAL
    assert isinstance(outcome.error, CertificateError)
    assert "CA bundle" in str(outcome.error)
    assert data == []
    assert server.requests == []  # nothing (no token) was sent over the untrusted connection


async def test_ca_bundle_trusts_a_private_authority(scripted: Scripted, tmp_path: Path) -> None:
    ca_file, tls = private_ca(tmp_path)
    server = scripted(sse("data: over tls\n\n"), tls=tls)
    outcome, data = await first_event(server.url, StreamSettings(ca_bundle=str(ca_file)))
    assert outcome.kind is OutcomeKind.STOPPED
    assert data == ["over tls"]


def test_unreadable_ca_bundle_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="CA bundle"):
        http.make_client(StreamSettings(ca_bundle=str(bad)))


async def test_proxy_from_the_environment_is_used(
    scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = scripted(sse("data: via proxy\n\n"))
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    outcome, data = await first_event(
        "http://announcements.example/sse/connect/a", StreamSettings()
    )
    assert outcome.kind is OutcomeKind.STOPPED
    assert data == ["via proxy"]
    assert proxy.requests[0].target == "http://announcements.example/sse/connect/a"


def test_client_timeouts_follow_the_settings() -> None:
    settings = StreamSettings(heartbeat_timeout=12.0, connect_timeout=3.0)

    async def build() -> httpx.Timeout:
        async with http.make_client(settings) as client:
            return client.timeout

    timeout = asyncio.run(build())
    assert (timeout.connect, timeout.read) == (3.0, 12.0)
    assert timeout.write and timeout.pool


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://h/x", "http://h:80/y", True),
        ("https://h/x", "https://h:443/y", True),
        ("https://h/x", "http://h/x", False),
        ("http://h:8080/x", "http://h:8081/x", False),
        ("http://h/x", "http://evil.h/x", False),
    ],
)
def test_origin(a: str, b: str, same: bool) -> None:
    assert (http.origin(httpx.URL(a)) == http.origin(httpx.URL(b))) is same


# ------------------------------------------------------------------ redirects and secrets

PASSWORD = "pw-7f3e-secret"
REFRESH = "rt-91ab-secret"
TOKENS_JSON = json.dumps(
    {"access_token": "at-1", "refresh_token": "rt-2", "expires_in": 900, "user_id": "alice"}
).encode()


def _session(server: ScriptedServer, secrets: MemorySecretStore) -> AuthSession:
    return AuthSession(
        server_url=server.url,
        username="alice",
        endpoints=Endpoints(),
        secrets=secrets,
        settings=StreamSettings(),
    )


def _logged_in(server: ScriptedServer) -> MemorySecretStore:
    secrets = MemorySecretStore()
    tokens = Tokens("at-0", REFRESH, expires_at=time.time() + 900, user_id="alice")
    secrets.set(login_key(server.url, "alice"), tokens.to_secret())
    return secrets


def _leaked(server: ScriptedServer) -> list[str]:
    """What of a secret reached ``server``: bodies, and headers that carry credentials."""
    found = []
    for r in server.requests:
        found += [name for name in http.SECRET_HEADERS if name in r.headers]
        found += [
            s for s in (PASSWORD, REFRESH, "at-0") if s.encode() in r.body + r.target.encode()
        ]
    return found


@pytest.mark.parametrize("code", [307, 308])
async def test_login_and_refresh_bodies_never_follow_a_redirect_to_another_origin(
    scripted: Scripted, code: int
) -> None:
    other = scripted(status(200, TOKENS_JSON, content_type="application/json"))
    server = scripted(redirect(lambda: other.url + "/auth/login", code=code))
    session = _session(server, MemorySecretStore())
    try:
        with pytest.raises(ProtocolError) as login:
            await session.login(PASSWORD)
        session = _session(server, _logged_in(server))
        with pytest.raises(ProtocolError) as refresh:
            await session.refresh()
    finally:
        await session.aclose()
    for exc in (login.value, refresh.value):
        text = str(exc)
        assert "redirected" in text and "another origin" in text and "Check the server URL" in text
        assert f"127.0.0.1:{other.port}" in text
        assert PASSWORD not in text and REFRESH not in text
    assert other.requests == []  # never followed: the other origin got nothing at all
    assert PASSWORD.encode() in server.requests[0].body  # (the first origin got the login)


async def test_logout_sends_no_secret_to_another_origin(scripted: Scripted) -> None:
    other = scripted(status(200, b"{}", content_type="application/json"))
    server = scripted(redirect(lambda: other.url + "/elsewhere", code=307))
    session = _session(server, _logged_in(server))
    try:
        await session.logout()  # best effort: the close call and the logout call both redirect
    finally:
        await session.aclose()
    assert not session.has_stored_login()
    assert _leaked(other) == []
    assert [r.headers.get("authorization") for r in server.requests] == ["Bearer at-0"] * 2


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_secret_headers_are_dropped_on_a_redirect_to_another_origin(
    scripted: Scripted, code: int
) -> None:
    other = scripted(status(200, b"there"))
    server = scripted(redirect(lambda: other.url + "/there", code=code))
    async with http.make_client(StreamSettings()) as client:
        request = client.build_request(
            "GET",
            server.url + "/here",
            headers={
                "Authorization": "Bearer at-0",
                "Cookie": "session=at-0",
                "Proxy-Authorization": "Basic at-0",
                "X-Trace": "kept",
            },
        )
        response = await http.send(client, request)
    assert response.text == "there"
    assert _leaked(other) == []
    assert other.requests[0].headers["x-trace"] == "kept"
    assert server.requests[0].headers["cookie"] == "session=at-0"  # (sent where it belonged)


async def test_a_post_turned_into_a_get_by_303_follows_without_its_body(
    scripted: Scripted,
) -> None:
    other = scripted(status(200, b"ok"))
    server = scripted(redirect(lambda: other.url + "/done", code=303))
    async with http.make_client(StreamSettings()) as client:
        request = client.build_request(
            "POST", server.url + "/auth/login", json={"password": PASSWORD}
        )
        response = await http.send(client, request)
    assert response.status_code == 200
    (followed,) = other.requests
    assert followed.method == "GET" and followed.body == b""
    assert "content-length" not in followed.headers and _leaked(other) == []


@pytest.mark.parametrize("code", [307, 308])
async def test_same_origin_redirect_keeps_the_body_and_the_token(
    scripted: Scripted, code: int
) -> None:
    async def moved(conn: Conn) -> None:
        if conn.request.path == "/auth/login":
            await conn.respond(code, location="/v2/auth/login")
        else:
            await conn.respond(200, TOKENS_JSON, content_type="application/json")

    server = scripted(moved)
    session = _session(server, MemorySecretStore())
    try:
        tokens = await session.login(PASSWORD)
    finally:
        await session.aclose()
    assert tokens.access_token == "at-1"
    first, second = server.requests
    assert second.path == "/v2/auth/login" and second.method == "POST"
    assert second.body == first.body and PASSWORD.encode() in second.body


@pytest.mark.parametrize(
    ("url", "clear"),
    [
        ("http://announcements.example.org", True),
        ("http://10.1.2.3:8080/api", True),
        ("https://announcements.example.org", False),
        ("http://127.0.0.1:8080", False),
        ("http://127.5.5.5", False),
        ("http://[::1]:8080", False),
        ("http://localhost:8080", False),
        ("HTTP://Example.org", True),
        ("not a url", False),
    ],
)
def test_in_clear_is_plain_http_off_this_computer(url: str, clear: bool) -> None:
    assert http.in_clear(url) is clear


# ------------------------------------------------------------------ bounded answers

BOMB_INFLATED = 256 * 1024 * 1024  # what the gzip bomb below inflates to


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 256 KiB of gzip that inflate to 256 MiB of zeros (made a MiB at a time)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1024 * 1024)
    parts = [squeeze.compress(zeros) for _ in range(BOMB_INFLATED // len(zeros))]
    return b"".join(parts) + squeeze.flush()


def _encoded(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":  # a zlib stream, as the standard says
        return zlib.compress(body)
    squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # the bare deflate some servers send
    return squeeze.compress(body) + squeeze.flush()


async def test_a_gzip_bomb_answer_to_login_is_refused_quickly_and_small(
    scripted: Scripted, gzip_bomb: bytes
) -> None:
    """The audit's bug: 512 MiB inflated from a small /auth/login answer took 4.1 GiB."""

    async def bomb(conn: Conn) -> None:
        await conn.respond(200, gzip_bomb, content_type="application/json", content_encoding="gzip")

    server = scripted(bomb)
    session = _session(server, MemorySecretStore())
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ReplyTooLarge) as refused:
            await session.login(PASSWORD)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await session.aclose()
    text = str(refused.value)
    assert "larger than 1 MiB" in text and "Check the server URL" in text
    assert isinstance(refused.value, ProtocolError)  # a login failure of kind "not a server"
    assert PASSWORD not in text
    assert peak < 100 * 1024 * 1024, f"{peak / 2**20:.0f} MiB while refusing the answer"
    assert elapsed < 10
    assert server.requests[0].headers["accept-encoding"] == http.REPLY_ENCODINGS
    assert not session.has_stored_login()


@pytest.mark.parametrize("coding", ["gzip", "deflate", "bare-deflate"])
async def test_an_encoded_answer_within_the_limit_is_read(scripted: Scripted, coding: str) -> None:
    padded = json.loads(TOKENS_JSON) | {"padding": "x" * (http.MAX_REPLY_BYTES - 200)}
    body = json.dumps(padded).encode()
    assert len(body) <= http.MAX_REPLY_BYTES
    server = scripted(
        status(
            200,
            _encoded(body, coding),
            content_type="application/json",
            content_encoding=coding.removeprefix("bare-"),
        )
    )
    session = _session(server, MemorySecretStore())
    try:
        tokens = await session.login(PASSWORD)
    finally:
        await session.aclose()
    assert tokens.access_token == "at-1" and tokens.refresh_token == "rt-2"


@pytest.mark.parametrize("length", [True, False])
async def test_every_ordinary_call_is_bounded(scripted: Scripted, length: bool) -> None:
    """An authorized call (receipts, publish, user info) and the logout calls too, with or
    without a Content-Length (a plain body ended by the close)."""
    huge = b'{"id": "' + b"9" * (2 * http.MAX_REPLY_BYTES) + b'"}'

    async def huge_answer(conn: Conn) -> None:
        extra = {"content_length": str(len(huge))} if length else {}
        await conn.head(200, content_type="application/json", **extra)
        await conn.send(huge)

    server = scripted(huge_answer)
    session = _session(server, _logged_in(server))
    try:
        with pytest.raises(ReplyTooLarge, match="larger than 1 MiB"):
            await session.request("POST", "/announcements/{ann_id}/ack", ann_id="7")
        await session.logout()  # best effort: refused answers are logged, the logout happens
    finally:
        await session.aclose()
    assert not session.has_stored_login()
    assert [r.path for r in server.requests] == [
        "/announcements/7/ack",
        "/sse/close/alice",
        "/auth/logout",
    ]


async def test_a_broken_gzip_answer_is_a_protocol_error(scripted: Scripted) -> None:
    server = scripted(
        status(200, b"not gzip at all", content_type="application/json", content_encoding="gzip")
    )
    session = _session(server, MemorySecretStore())
    try:
        with pytest.raises(ProtocolError, match=r"could not be decoded.*check the server URL"):
            await session.login(PASSWORD)
    finally:
        await session.aclose()
