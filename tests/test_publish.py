"""``python -m app publish`` in process: through the core's client and session, with the endpoint
templates of the settings, against the companion server and scripted servers on loopback."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from app import publish
from app.cli import build_parser
from app.core.auth import AuthSession
from app.core.config import Config
from app.core.model import Draft, Priority
from app.core.secrets import MemorySecretStore
from app.exit_codes import EXIT_AUTH, EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL
from app.server.embedded import EmbeddedServer
from tests.fixtures.scripted import Conn, ScriptedServer, redirect, status
from tests.fixtures.server import DEMO_PASSWORD
from tests.server.conftest import bearer, login

TOKENS = {"access_token": "pub-access", "refresh_token": "pub-refresh", "expires_in": 900}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAY_NOTIFIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(
    monkeypatch: pytest.MonkeyPatch, *argv: str, password: str = DEMO_PASSWORD
) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    args = build_parser().parse_args(["publish", "--password-stdin", *argv])
    return publish.run(args), out.getvalue()


def json_reply(code: int, obj: object) -> Callable[[Conn], object]:
    async def script(conn: Conn) -> None:
        await conn.respond(code, json.dumps(obj).encode(), content_type="application/json")

    return script


def test_publish_to_the_companion_server(
    home: Path, companion_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ("--server", companion_server.url, "--user", "alice", "--title", "T", "--body", "B")
    code, out = run(monkeypatch, *argv, "--priority", "urgent")
    assert code == EXIT_OK
    ann_id = out.strip()
    with httpx.Client(base_url=companion_server.url) as client:
        seen = client.get("/announcements", headers=bearer(login(client, "alice"))).json()
    assert [(a["id"], a["title"], a["priority"]) for a in seen] == [(ann_id, "T", "urgent")]


def test_publish_uses_the_configured_endpoints_and_revokes_its_login(
    home: Path,
    scripted: Callable[..., ScriptedServer],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text(
        '[endpoints]\nlogin = "/api/login"\nlogout = "/api/logout"\n'
        'announcements = "/api/notices"\n'
    )
    server = scripted(json_reply(200, TOKENS), json_reply(201, {"id": "n-42"}), status(200))
    code, out = run(
        monkeypatch,
        *("--server", server.url, "--group", "it", "--group", "hr"),
        *("--title", "Fire drill", "--body", "at ten", "--priority", "HIGH"),
        *("--url", "https://example.org/drill", "--expires-at", "2030-01-01T00:00:00Z"),
    )
    assert (code, out) == (EXIT_OK, "n-42\n")
    login_req, publish_req, logout_req = server.requests
    assert (login_req.method, login_req.path) == ("POST", "/api/login")
    assert json.loads(login_req.body) == {"username": "publisher", "password": DEMO_PASSWORD}
    assert (publish_req.method, publish_req.path) == ("POST", "/api/notices")
    assert publish_req.headers["authorization"] == "Bearer pub-access"
    assert len(publish_req.headers["idempotency-key"]) >= 16  # a retry never publishes twice
    assert json.loads(publish_req.body) == {
        "title": "Fire drill",
        "body": "at ten",
        "priority": "high",
        "audience": {"groups": ["it", "hr"]},
        "url": "https://example.org/drill",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    # only the refresh token is revoked: no close call ends the publisher's own streams
    assert (logout_req.method, logout_req.path) == ("POST", "/api/logout")
    assert json.loads(logout_req.body) == {"refresh_token": "pub-refresh"}
    assert "pub-access" not in capsys.readouterr().err


def test_publish_follows_the_core_redirect_policy(
    home: Path, scripted: Callable[..., ScriptedServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = scripted(json_reply(200, TOKENS))  # another origin: must never see the password
    server = scripted(redirect(lambda: elsewhere.url + "/auth/login", 307))
    code, _ = run(monkeypatch, "--server", server.url, "--all", "--title", "t", "--body", "b")
    assert code == EXIT_FAILURE
    assert elsewhere.requests == []


def test_refusals_become_exit_codes_with_the_reason(
    home: Path,
    companion_server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ("--server", companion_server.url, "--all", "--title", "t", "--body", "b")
    assert run(monkeypatch, *base, password="wrong")[0] == EXIT_AUTH
    assert "login refused" in capsys.readouterr().err
    assert run(monkeypatch, *base, "--login", "alice")[0] == EXIT_AUTH
    assert "publisher account" in capsys.readouterr().err
    assert run(monkeypatch, *base, "--url", "ftp://x")[0] == EXIT_PROTOCOL
    assert "field url" in capsys.readouterr().err


def test_an_unusable_ca_bundle_is_a_configuration_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("not a certificate")
    argv = ("--server", "https://127.0.0.1:9", "--all", "--title", "t", "--body", "b")
    assert run(monkeypatch, *argv, "--ca-bundle", str(bad))[0] == EXIT_PROTOCOL
    assert "CA bundle" in capsys.readouterr().err


def test_draft_of_the_options() -> None:
    argv = ["--server", "http://x", "--user", "a", "--user", "b", "--title", "t", "--body", "b"]
    args = build_parser().parse_args(["publish", *argv])
    assert publish.draft_of(args) == Draft("t", "b", Priority.NORMAL, users=("a", "b"))


def _run_with(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal, nothing piped
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    return publish.run(build_parser().parse_args(["publish", *argv])), out.getvalue()


def test_the_password_comes_from_a_file_or_the_environment_never_the_command_line(
    home: Path,
    companion_server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ("--server", companion_server.url, "--all", "--title", "T", "--body", "B")
    secret = tmp_path / "password"
    secret.write_text(DEMO_PASSWORD + "\n")
    assert _run_with(monkeypatch, *argv, "--password-file", str(secret))[0] == EXIT_OK
    monkeypatch.setenv(publish.PASSWORD_VARIABLE, DEMO_PASSWORD)
    assert _run_with(monkeypatch, *argv)[0] == EXIT_OK
    monkeypatch.delenv(publish.PASSWORD_VARIABLE)
    assert _run_with(monkeypatch, *argv)[0] == 2  # none: a usage error saying where from
    assert "--password-file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["publish", *argv, "--password", DEMO_PASSWORD])


async def test_a_retried_publish_with_the_same_key_is_one_announcement(
    companion_server: EmbeddedServer,
) -> None:
    config = Config()
    session = AuthSession(
        server_url=companion_server.url,
        username="publisher",
        endpoints=config.endpoints,
        secrets=MemorySecretStore(),
        settings=config.stream,
    )
    try:
        await session.login(DEMO_PASSWORD)
        draft = Draft("Once", "only once", Priority.NORMAL)
        first = await session.publish(draft, idempotency_key="retry-key-1")
        again = await session.publish(draft, idempotency_key="retry-key-1")
        other = await session.publish(draft, idempotency_key="retry-key-2")
    finally:
        await session.aclose()
    assert first == again != other
    with httpx.Client(base_url=companion_server.url) as client:
        seen = client.get("/announcements", headers=bearer(login(client, "alice"))).json()
    assert sorted(a["id"] for a in seen) == sorted([first, other])
