"""The HTTP layer's hardening, against the real server on loopback: CORS for allowed web
origins, the headers of every answer, hostile JSON, readiness and the metrics token."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.exit_codes import EXIT_USAGE
from app.server.config import ServerConfig
from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ServerFactory
from tests.fixtures.server_process import server_env
from tests.fixtures.wait import wait_until
from tests.server.conftest import TIMEOUT, bearer, login, publish

ORIGIN = "http://127.0.0.1:8765"  # the seed's web client, served from another loopback origin
OTHER = "http://evil.example"

# what EventSourcePolyfill sends on its stream request
POLYFILL_HEADERS = "authorization,cache-control,last-event-id,x-requested-with"


@pytest.fixture
def cors_server(server_factory: ServerFactory) -> EmbeddedServer:
    return server_factory(demo_users=True, ping_interval=0.5, cors_origins=(ORIGIN,))


def _preflight(
    client: httpx.Client, path: str, method: str, headers: str, origin: str = ORIGIN
) -> httpx.Response:
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


@pytest.mark.parametrize(
    ("path", "method", "headers"),
    [
        ("/auth/login", "POST", "content-type"),
        ("/auth/refresh", "POST", "content-type"),
        ("/auth/logout", "POST", "content-type"),
        ("/sse/connect/alice", "GET", POLYFILL_HEADERS),
        ("/sse/close/alice", "GET", "authorization"),
        ("/sse/close/alice", "DELETE", "authorization"),
        ("/announcements", "POST", "authorization,content-type,idempotency-key"),
        ("/announcements", "GET", "authorization"),
        ("/announcements/1/ack", "POST", "authorization"),
    ],
)
def test_preflights_from_an_allowed_origin_are_answered(
    cors_server: EmbeddedServer, path: str, method: str, headers: str
) -> None:
    with httpx.Client(base_url=cors_server.url, timeout=TIMEOUT) as client:
        answer = _preflight(client, path, method, headers)
    assert answer.status_code == 204
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in answer.headers["Vary"]
    assert method in answer.headers["Access-Control-Allow-Methods"]
    allowed = {h.strip().lower() for h in answer.headers["Access-Control-Allow-Headers"].split(",")}
    assert set(headers.split(",")) <= allowed
    assert {"authorization", "content-type", "last-event-id", "idempotency-key"} <= allowed
    assert answer.headers["Access-Control-Allow-Origin"] != "*"


def test_a_disallowed_origin_gets_no_cors_headers(cors_server: EmbeddedServer) -> None:
    with httpx.Client(base_url=cors_server.url, timeout=TIMEOUT) as client:
        preflight = _preflight(client, "/auth/login", "POST", "content-type", origin=OTHER)
        actual = client.post(
            "/auth/login", json={"username": "alice", "password": "demo"}, headers={"Origin": OTHER}
        )
    assert preflight.status_code == 405
    for answer in (preflight, actual):
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")]


def test_cors_is_off_by_default(companion_server: EmbeddedServer) -> None:
    assert ServerConfig().cors_origins == ()
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as client:
        preflight = _preflight(client, "/auth/login", "POST", "content-type")
        actual = client.get("/healthz", headers={"Origin": ORIGIN})
    assert preflight.status_code == 405
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert "Access-Control-Allow-Origin" not in actual.headers


def test_every_answer_to_an_allowed_origin_carries_cors_headers(
    cors_server: EmbeddedServer,
) -> None:
    """Login, the API, an error, the close call and the stream itself (as the polyfill opens
    it) all name the origin and vary on it."""
    origin = {"Origin": ORIGIN}
    with httpx.Client(base_url=cors_server.url, timeout=TIMEOUT) as client:
        tokens = client.post(
            "/auth/login", json={"username": "alice", "password": "demo"}, headers=origin
        )
        boss = login(client, "publisher")
        ann_id = publish(client, boss)
        answers = [
            tokens,
            client.get("/announcements", headers={**origin, **bearer(tokens.json())}),
            client.get("/announcements", headers=origin),  # 401
            client.get("/sse/close/alice", headers={**origin, **bearer(tokens.json())}),
        ]
        stream_headers = {
            **origin,
            **bearer(tokens.json()),
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Requested-With": "XMLHttpRequest",
            "Last-Event-ID": "0",
        }
        with client.stream("GET", "/sse/connect/alice", headers=stream_headers) as stream:
            assert stream.status_code == 200
            answers.append(stream)
            seen = b""
            for chunk in stream.iter_raw():
                seen += chunk
                if f"id: {ann_id}".encode() in seen:
                    break
    assert [a.status_code for a in answers] == [200, 200, 401, 200, 200]
    for answer in answers:
        assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "Origin" in answer.headers["Vary"]
        assert answer.headers["Access-Control-Allow-Credentials"] == "true"


def test_cors_origin_must_be_an_origin() -> None:
    wildcards = ("https://*.example.org", "https://*", "http://a.*.example")
    for bad in ("*", "http://a.example/", "a.example", "http://a.example/path", "ftp://a",
                *wildcards, "https://a_b.example", "https://bücher.example"):  # fmt: skip
        with pytest.raises(ValueError, match="not a web origin"):
            ServerConfig(cors_origins=(bad,))
    assert ServerConfig(cors_origins=("https://a.example:8443",)).cors_origins
    good = ("http://[::1]:8000", "https://xn--bcher-kva.example")
    assert ServerConfig(cors_origins=good).cors_origins == good


def test_the_server_command_refuses_a_wildcard_origin(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "server", "--port", "0", "--data-dir", str(tmp_path),
         "--cors-origin", "https://*.example.org"],
        capture_output=True, text=True, timeout=60, env=server_env(tmp_path), check=False,
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE
    assert "'https://*.example.org' is not a web origin" in done.stderr
    assert "no wildcard" in done.stderr and "listening" not in done.stdout


# headers ------------------------------------------------------------------------------
def test_token_answers_are_not_stored_and_every_answer_is_nosniff(
    companion_server: EmbeddedServer,
) -> None:
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as client:
        tokens = client.post("/auth/login", json={"username": "alice", "password": "demo"})
        refreshed = client.post(
            "/auth/refresh", json={"refresh_token": tokens.json()["refresh_token"]}
        )
        others = [
            client.get("/healthz"),
            client.get("/metrics"),
            client.get("/nowhere"),
            client.get("/announcements", headers=bearer(refreshed.json())),
        ]
    for answer in (tokens, refreshed):
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == "no-store"
    for answer in (tokens, refreshed, *others):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]


def test_metrics_can_require_a_token(server_factory: ServerFactory) -> None:
    server = server_factory(metrics_token="m-secret")
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer("wrong")).status_code == 401
        good = client.get("/metrics", headers=bearer("m-secret"))
        assert good.status_code == 200
        assert "tray_notifier_connections" in good.text
        assert client.get("/healthz").status_code == 200  # liveness stays open


# hostile input ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"[" * 1000 + b"]" * 1000, "nested deeper than"),
        (b'{"a":' * 1000 + b"1" + b"}" * 1000, "nested deeper than"),
        (b"[" * 60_000, "nested deeper than"),
        (b'{"username": NaN, "password": 1}', "not valid JSON"),
        (b'{"username": "\\ud800", "password": "x"}', "lone surrogate"),
        (b'{"username": "alice", "\\udfff": 1, "password": "demo"}', "lone surrogate"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{", "not valid JSON"),
        (b"NaN", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
    ],
)
def test_hostile_json_on_login_is_a_400_naming_the_problem(
    companion_server: EmbeddedServer, body: bytes, problem: str
) -> None:
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as client:
        answer = client.post(
            "/auth/login", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    assert problem in answer.json()["error"]


def test_a_lone_surrogate_in_a_publish_is_a_400(companion_server: EmbeddedServer) -> None:
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as client:
        boss = bearer(login(client, "publisher"))
        raw = b'{"title": "t", "body": "x\\udc00y", "audience": {"all": true}}'
        answer = client.post(
            "/announcements",
            content=raw,
            headers={**boss, "Content-Type": "application/json"},
        )
        assert answer.status_code == 400
        assert "lone surrogate" in answer.json()["error"]
        assert client.get("/announcements", headers=boss).json() == []


# readiness ----------------------------------------------------------------------------
def test_healthz_is_not_ready_until_the_demo_users_exist(server_factory: ServerFactory) -> None:
    """A script that waits for healthy and logs in at once must never get 401."""
    server = server_factory()
    api = server._running().api
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        api.ready = False
        starting = client.get("/healthz")
        assert (starting.status_code, starting.json()["status"]) == (503, "starting")


def test_a_started_server_with_demo_users_is_ready_and_they_can_log_in(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(demo_users=True)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert client.get("/healthz").status_code == 200
        assert login(client, "alice")["user_id"] == "alice"


def test_no_answer_carries_a_token_in_a_header_it_should_not(
    companion_server: EmbeddedServer,
) -> None:
    with socket.create_connection(("127.0.0.1", companion_server.port), timeout=10) as sock:
        body = json.dumps({"username": "alice", "password": "demo"}).encode()
        sock.sendall(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0].decode().lower()
    assert "cache-control: no-store" in head
    assert "access_token" not in head


def test_a_script_that_waits_for_healthy_can_log_in_at_once(tmp_path: Path) -> None:
    """``server --demo-users``: poll /healthz from the moment the port opens; the first 200
    means the demo accounts exist (the issue's script got 401 here)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "TRAY_NOTIFIER_HOME": str(tmp_path / "home")}
    # fmt: off
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "server", "--port", str(port), "--demo-users",
         "--data-dir", str(tmp_path / "server")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env,
    )
    # fmt: on
    url = f"http://127.0.0.1:{port}"
    seen: list[int] = []
    try:
        with httpx.Client(base_url=url, timeout=TIMEOUT) as client:

            def healthy() -> bool:
                try:
                    seen.append(client.get("/healthz").status_code)
                except httpx.TransportError:
                    return False
                return seen[-1] == 200

            wait_until(healthy, timeout=30)
            assert login(client, "alice")["user_id"] == "alice"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert set(seen) <= {200, 503}


def test_brackets_inside_strings_are_text_not_nesting(companion_server: EmbeddedServer) -> None:
    """The depth check counts real nesting: a title of 40 ``[`` was refused as nested too
    deep. An escaped quote does not end the string."""
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as client:
        boss = login(client, "publisher")
        title = "[" * 40 + '\\"{' * 20
        ann_id = publish(client, boss, title=title, body="{[" * 500)
        listed = client.get("/announcements", headers=bearer(boss)).json()
        assert [a["title"] for a in listed if a["id"] == ann_id] == [title]
        deep = '{"title": "t", "x": ' + "[" * 40 + "]" * 40 + "}"
        answer = client.post(
            "/announcements",
            content=deep.encode(),
            headers={**bearer(boss), "Content-Type": "application/json"},
        )
        assert answer.status_code == 400
        assert "nested deeper than" in answer.json()["error"]


def test_a_body_announced_too_large_is_refused_at_once(companion_server: EmbeddedServer) -> None:
    """``Content-Length: 99999999999`` waited 10 s for a 408: it is a 413 at once, and the
    connection closes (the body is never read)."""
    with socket.create_connection(("127.0.0.1", companion_server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 99999999999\r\n\r\n{"
        )
        sock.settimeout(5)  # well under the 10 s body timeout
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body) == {"error": "the request body is over 64 KiB", "field": None}


def _raw_answer(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    return raw


NUL_HEADER = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Probe: a\x00b\r\n\r\n"
LONG_LINE = b"GET /" + b"q" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"


def test_malformed_requests_are_one_quiet_line_not_a_traceback_each(
    companion_server: EmbeddedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        answers = [_raw_answer(companion_server.port, NUL_HEADER) for _ in range(30)]
        answers.append(_raw_answer(companion_server.port, LONG_LINE))
    assert all(answer.startswith(b"HTTP/1.0 400 ") for answer in answers)
    said = [r for r in caplog.records if "malformed" in r.getMessage()]
    assert [r.getMessage() for r in said] == [
        "answered 400 to a malformed HTTP request (BadHttpMessage)"
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert "X-Probe" not in caplog.text and "qqqq" not in caplog.text


def test_no_answer_names_the_software_versions(companion_server: EmbeddedServer) -> None:
    normal = _raw_answer(
        companion_server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    for answer in (normal, _raw_answer(companion_server.port, NUL_HEADER)):
        head = answer.partition(b"\r\n\r\n")[0].decode().lower()
        assert "\r\nserver: tray-notifier\r\n" in head + "\r\n"
        assert "python" not in head and "aiohttp" not in head


def test_a_body_of_escaped_quotes_is_refused_without_stalling_the_server(
    companion_server: EmbeddedServer,
) -> None:
    """A 64 KiB login body of '"\\"\\"...' made the nesting check quadratic (11 s of the event
    loop, every stream with it, before any login): it is a 400 like any malformed body, and the
    server answers it within the client's bound."""
    body = b'"' + b'\\"' * 32_000
    with httpx.Client(base_url=companion_server.url, timeout=3.0) as client:
        answer = client.post(
            "/auth/login", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 400
        assert "not valid JSON" in answer.json()["error"]
        assert client.get("/healthz").status_code == 200
