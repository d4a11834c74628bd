"""``python -m app doctor --json`` against real broken hops (issue 23): each failure the tray
can meet is named by the check of its hop, with its remedy, and exits 1; a healthy way through
an authenticating proxy exits 0. No secret ever appears in the report."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from app import doctor
from app.core import doctor as core_doctor
from app.core.auth import Tokens
from app.core.proxy import store_credentials
from app.core.secrets import MemorySecretStore, SecretStoreUnavailable, login_key
from app.server.embedded import EmbeddedServer
from tests.fixtures.proxy import Squid, SquidFactory
from tests.fixtures.scripted import Conn, ScriptedServer, status
from tests.fixtures.server import ServerFactory
from tests.fixtures.tls import private_ca
from tests.fixtures.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "at-secret-0123456789"
REFRESH = "rt-secret-9876543210"
PROXY_PASSWORD = "proxy-secret-pw"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAY_NOTIFIER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)  # no notification service
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def _settings(home: Path, server_url: str, *, proxy: str = "none") -> None:
    folder = home / "config"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / "config.toml"
    path.write_text(
        f'server_url = "{server_url}"\nusername = "alice"\n\n[network]\nproxy = "{proxy}"\n'
    )
    path.chmod(0o600)


def _stored_login(server_url: str, user_id: str = "alice") -> MemorySecretStore:
    tokens = Tokens(TOKEN, REFRESH, time.time() + 3600, user_id, time.time())
    return MemorySecretStore({login_key(server_url, "alice"): tokens.to_secret()})


def _run(
    capsys: pytest.CaptureFixture[str], secrets: Any, *, stream_wait: float = 5.0
) -> tuple[int, dict[str, dict[str, str]], str]:
    code = doctor.run(argparse.Namespace(json=True), secrets=secrets, stream_wait=stream_wait)
    out = capsys.readouterr().out
    checks = json.loads(out)["checks"]
    for check in checks:
        assert set(check) == {"name", "status", "detail", "remedy"}
        assert check["status"] in ("ok", "warn", "fail")
    return code, {c["name"]: c for c in checks}, out


def _first_failure(checks: dict[str, dict[str, str]]) -> str:
    return next(name for name, c in checks.items() if c["status"] == "fail")


@pytest.fixture
def tls_server(
    server_factory: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> EmbeddedServer:
    ca_file, _ = private_ca(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return server_factory(
        demo_users=True,
        ping_interval=0.5,
        tls_cert=tmp_path / "server.pem",
        tls_key=tmp_path / "server.key",
    )


def _logged_in(server: EmbeddedServer) -> MemorySecretStore:
    """A real login of alice on ``server``, stored as the tray stores it."""
    import asyncio

    from app.core.auth import AuthSession
    from app.core.config import Endpoints, StreamSettings
    from tests.fixtures.server import DEMO_PASSWORD

    secrets = MemorySecretStore()

    async def login() -> None:
        session = AuthSession(
            server_url=server.url,
            username="alice",
            endpoints=Endpoints(),
            secrets=secrets,
            settings=StreamSettings(),
        )
        await session.login(DEMO_PASSWORD)
        await session.aclose()

    asyncio.run(login())
    return secrets


def test_a_healthy_way_through_an_authenticating_proxy_shows_no_secret(
    home: Path,
    tls_server: EmbeddedServer,
    squid_factory: SquidFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    squid = squid_factory(users={"ann": PROXY_PASSWORD})
    _settings(home, tls_server.url)  # log in directly first (the proxy is set after)
    secrets = _logged_in(tls_server)
    store_credentials(secrets, "ann", PROXY_PASSWORD)
    stored = secrets.get(login_key(tls_server.url, "alice"))
    assert stored is not None
    _settings(home, tls_server.url, proxy=squid.url)
    code, checks, out = _run(capsys, secrets)
    assert code == 0, out
    assert checks["proxy"]["status"] == "ok" and squid.url in checks["proxy"]["detail"]
    assert "stored for ann" in checks["proxy credentials"]["detail"]
    assert "accepted by the system's trust store" in checks["tls"]["detail"]
    assert "Test Private CA" in checks["tls"]["detail"]
    assert "expires in 0 days" in checks["tls"]["detail"]  # the test's certificate: a day
    assert checks["stream"]["status"] == "ok" and "through the proxy" in checks["stream"]["detail"]
    assert checks["login"]["status"] == "ok"
    assert checks["notifications"]["status"] == "warn"  # no session bus here
    for secret in (PROXY_PASSWORD, *json.loads(stored).values()):
        if isinstance(secret, str) and len(secret) > 8:
            assert secret not in out
    wait_until(lambda: bool(squid.went_through(f"127.0.0.1:{tls_server.port}")), 30)


def test_an_untrusted_chain_names_its_issuer(
    home: Path,
    server_factory: ServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    private_ca(tmp_path)  # the "inspecting firewall's" CA: signs the server, trusted nowhere
    (tmp_path / "os").mkdir()
    os_roots, _ = private_ca(tmp_path / "os")
    monkeypatch.setenv("SSL_CERT_FILE", str(os_roots))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    server = server_factory(tls_cert=tmp_path / "server.pem", tls_key=tmp_path / "server.key")
    _settings(home, server.url)
    code, checks, _ = _run(capsys, MemorySecretStore())
    assert code == 1
    assert _first_failure(checks) == "tls"
    assert "issued by 'Test Private CA'" in checks["tls"]["detail"]
    assert "inspects TLS: IT must install its root" in checks["tls"]["remedy"]
    assert checks["server"]["status"] == "warn"  # not tried after the broken hop


def test_a_407_names_proxy_login(
    home: Path,
    companion_server: EmbeddedServer,
    squid_factory: SquidFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    squid: Squid = squid_factory(users={"ann": PROXY_PASSWORD})
    _settings(home, companion_server.url, proxy=squid.url)
    code, checks, _ = _run(capsys, MemorySecretStore())
    assert code == 1
    assert _first_failure(checks) == "proxy credentials"
    assert "407" in checks["proxy credentials"]["detail"]
    assert "proxy-login" in checks["proxy credentials"]["remedy"]


def test_a_proxy_that_is_down_is_the_tcp_hop(
    home: Path, companion_server: EmbeddedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens once closed
    _settings(home, companion_server.url, proxy=f"http://127.0.0.1:{dead}")
    code, checks, _ = _run(capsys, MemorySecretStore())
    assert code == 1 and _first_failure(checks) == "tcp"
    assert "the proxy" in checks["tcp"]["detail"]


async def _stream_then_stall(conn: Conn) -> None:
    await conn.head(200, Date=formatdate(usegmt=True))
    await conn.stall()


def test_a_stream_held_back_on_the_way_is_named(
    home: Path, scripted: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    server: ScriptedServer = scripted(status(404, Date=formatdate(usegmt=True)), _stream_then_stall)
    _settings(home, server.url)
    code, checks, _ = _run(capsys, _stored_login(server.url), stream_wait=0.5)
    assert code == 1 and _first_failure(checks) == "stream"
    assert "no byte of it within 0.5 s" in checks["stream"]["detail"]
    assert "buffer" in checks["stream"]["remedy"]
    assert checks["server"]["status"] == "ok"  # a 404 at / is still the server's answer


def test_a_clock_far_off_is_named(
    home: Path, scripted: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    an_hour_ago = formatdate(time.time() - 3600, usegmt=True)
    server: ScriptedServer = scripted(status(200, Date=an_hour_ago), _stream_then_stall)
    _settings(home, server.url)
    code, checks, _ = _run(capsys, _stored_login(server.url), stream_wait=0.2)
    assert code == 1
    assert checks["clock"]["status"] == "fail"
    assert re.search(r"clock is 3[56]\d\d s ahead of the server", checks["clock"]["detail"])


class LockedKeyring:
    def get(self, key: str) -> str | None:
        raise SecretStoreUnavailable("Cannot read your login from the system keyring: locked.")

    def set(self, key: str, value: str) -> None:
        raise SecretStoreUnavailable("locked")

    def delete(self, key: str) -> None:
        raise SecretStoreUnavailable("locked")

    def prefetch(self, key: str) -> None:
        pass


def test_a_locked_keyring_is_named(
    home: Path, companion_server: EmbeddedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _settings(home, companion_server.url)
    code, checks, _ = _run(capsys, LockedKeyring())
    assert code == 1
    assert checks["keyring"]["status"] == "fail" and "unlock" in checks["keyring"]["remedy"]
    assert checks["login"]["status"] == "fail"
    assert checks["server"]["status"] == "ok"


def test_the_command_line_prints_json_and_exits_1_without_a_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    env.update(TRAY_NOTIFIER_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "app", "doctor", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["settings"]["status"] == "fail" and "server_url" in checks["settings"]["detail"]
    assert {"settings", "login", "notifications", "keyring"} <= set(checks)


def test_the_text_report_lists_every_check() -> None:
    checks = [
        core_doctor.Check("tcp", "ok", "connected"),
        core_doctor.Check("tls", "fail", "untrusted", "install the root"),
    ]
    text = core_doctor.report(checks)
    assert "[FAIL] tls: untrusted" in text and "→ install the root" in text
