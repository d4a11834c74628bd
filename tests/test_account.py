"""``python -m app login`` / ``logout`` against the companion server: the login is stored as the
dialog stores it, a refusal is exit 3 with the server's reason, and logout tells the server."""

from __future__ import annotations

import argparse
import http.server
import io
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from app import account
from app.cli import build_parser
from app.core import config as config_mod
from app.core.auth import Tokens
from app.core.secrets import MemorySecretStore, login_key
from app.exit_codes import EXIT_AUTH, EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from app.server.embedded import EmbeddedServer
from tests.fixtures.server import DEMO_PASSWORD
from tests.fixtures.spring import PROFILE, SpringBackend
from tests.fixtures.tls import self_signed

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAY_NOTIFIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def feed_stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_login_stores_tokens_and_settings_then_logout_revokes(
    home: Path,
    companion_server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secrets = MemorySecretStore()
    url = companion_server.url
    feed_stdin(monkeypatch, f"{DEMO_PASSWORD}\n")
    code = account.run_login(
        args("login", "--server", url, "--user", "alice", "--password-stdin"), secrets=secrets
    )
    assert code == EXIT_OK
    stored = secrets.get(login_key(url, "alice"))
    assert stored is not None
    tokens = Tokens.from_secret(stored)
    assert tokens is not None
    saved = config_mod.load(config_mod.Paths.default())
    assert (saved.server_url, saved.username) == (url, "alice")
    out = capsys.readouterr()
    assert DEMO_PASSWORD not in out.out + out.err
    assert tokens.access_token not in out.out + out.err

    # the token works until logout; after it the refresh token is revoked and forgotten
    assert account.run_logout(args("logout"), secrets=secrets) == EXIT_OK
    assert secrets.get(login_key(url, "alice")) is None
    refused = httpx.post(
        f"{url}/auth/refresh", json={"refresh_token": tokens.refresh_token}, timeout=10
    )
    assert refused.status_code == 401


def test_wrong_password_is_exit_3_and_stores_nothing(
    home: Path,
    companion_server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secrets = MemorySecretStore()
    feed_stdin(monkeypatch, "not the password\n")
    code = account.run_login(
        args("login", "--server", companion_server.url, "--user", "alice", "--password-stdin"),
        secrets=secrets,
    )
    assert code == EXIT_AUTH
    assert secrets.get(login_key(companion_server.url, "alice")) is None
    said = capsys.readouterr().err
    # the plain sentence, no time stamp or level around it
    assert said == "The user name or password is wrong: check both and try again.\n"
    assert not config_mod.Paths.default().user_config_file.exists()


def test_unreachable_server_is_exit_1(
    home: Path, monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    feed_stdin(monkeypatch, "pw\n")
    server = f"http://127.0.0.1:{unused_tcp_port}"
    code = account.run_login(
        args("login", "--server", server, "--user", "alice", "--password-stdin"),
        secrets=MemorySecretStore(),
    )
    assert code == EXIT_FAILURE


def test_no_server_or_no_stored_login_says_what_to_give(
    home: Path, companion_server: EmbeddedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert account.run_login(args("login", "--password-stdin"), secrets=MemorySecretStore()) == (
        EXIT_USAGE
    )
    assert "--server" in capsys.readouterr().err
    code = account.run_logout(
        args("logout", "--server", companion_server.url, "--user", "alice"),
        secrets=MemorySecretStore(),
    )
    assert code == EXIT_AUTH
    assert "no stored login" in capsys.readouterr().err


def test_a_server_it_locked_cannot_be_changed_from_the_command_line(
    home: Path,
    tmp_path: Path,
    companion_server: EmbeddedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    system = tmp_path / "system.toml"
    system.write_text(f'server_url = "{companion_server.url}"\nlocked = ["server_url"]\n')
    monkeypatch.setenv("TRAY_NOTIFIER_SYSTEM_CONFIG", str(system))
    secrets = MemorySecretStore()
    feed_stdin(monkeypatch, f"{DEMO_PASSWORD}\n")
    elsewhere = "https://elsewhere.example.org"
    code = account.run_login(
        args("login", "--server", elsewhere, "--user", "alice", "--password-stdin"),
        secrets=secrets,
    )
    assert code == EXIT_USAGE
    assert "IT department" in capsys.readouterr().err
    # the locked server itself is fine
    feed_stdin(monkeypatch, f"{DEMO_PASSWORD}\n")
    code = account.run_login(args("login", "--user", "alice", "--password-stdin"), secrets=secrets)
    assert code == EXIT_OK
    assert secrets.get(login_key(companion_server.url, "alice")) is not None
    assert "server_url" not in config_mod.Paths.default().user_config_file.read_text()


# ---------------------------------------------------------------- a Spring/RuoYi backend (issue 11)


def write_profile(tmp_path: Path, backend: SpringBackend) -> Path:
    """The profile as IT would write it: a system config file."""
    target = tmp_path / "system.toml"
    target.write_text(config_mod.dumps({"server_url": backend.url, **PROFILE}), encoding="utf-8")
    return target


def test_login_and_logout_with_a_token_profile(
    home: Path,
    tmp_path: Path,
    spring: Callable[..., SpringBackend],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    backend = spring()
    monkeypatch.setenv("TRAY_NOTIFIER_SYSTEM_CONFIG", str(write_profile(tmp_path, backend)))
    secrets = MemorySecretStore()
    feed_stdin(monkeypatch, "admin123\n")
    code = account.run_login(args("login", "--user", "admin", "--password-stdin"), secrets=secrets)
    assert code == EXIT_OK
    tokens = Tokens.from_secret(secrets.get(login_key(backend.url, "admin")) or "")
    assert tokens is not None and tokens.user_id == "1"
    assert "admin123" not in capsys.readouterr().out

    assert account.run_logout(args("logout"), secrets=secrets) == EXIT_OK
    assert [(c.path, c.authorization) for c in backend.closes] == [
        ("/sse/close/1", f"Bearer {tokens.access_token}")
    ]
    assert secrets.get(login_key(backend.url, "admin")) is None


def test_a_refused_token_login_is_exit_3_with_the_backends_words(
    tmp_path: Path, spring: Callable[..., SpringBackend]
) -> None:
    backend = spring()
    env = {
        **os.environ,
        "TRAY_NOTIFIER_HOME": str(tmp_path / "home"),
        "TRAY_NOTIFIER_SYSTEM_CONFIG": str(write_profile(tmp_path, backend)),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "app", "login", "--user", "admin", "--password-stdin"],
        input="wrong\n",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )
    assert result.returncode == EXIT_AUTH
    assert "用户不存在/密码错误" in result.stderr
    assert result.stderr == "The server refused the login: 用户不存在/密码错误\n"  # no log line
    assert not (tmp_path / "home" / "config" / "config.toml").exists()  # nothing saved


class _Refuse(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_error(401)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def untrusted_https(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server whose certificate no trust store holds (self-signed)."""
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_an_untrusted_certificate_names_the_setting_that_exists(
    home: Path,
    untrusted_https: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    feed_stdin(monkeypatch, "pw\n")
    code = account.run_login(
        args("login", "--server", untrusted_https, "--user", "alice", "--password-stdin"),
        secrets=MemorySecretStore(),
    )
    assert code != EXIT_OK
    said = capsys.readouterr().err
    assert "certificate" in said
    # login has no --ca-bundle option: the message names the settings file's [stream] ca_bundle
    assert "--ca-bundle" not in said
    assert "ca_bundle in the [stream] section of the settings file" in said
    with pytest.raises(SystemExit):
        build_parser().parse_args(["login", "--ca-bundle", "x.pem"])


def test_logout_after_the_server_moved_finds_the_login_kept_at_the_old_address(
    home: Path, companion_server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IT moved the server (previous_server_urls): the commands follow it as the tray does, or
    ``logout`` found no stored login and the next tray start brought the old one back."""
    secrets = MemorySecretStore()
    url = companion_server.url
    old = url.replace("127.0.0.1", "localhost")  # the same server under its previous address
    feed_stdin(monkeypatch, f"{DEMO_PASSWORD}\n")
    login = args("login", "--server", old, "--user", "alice", "--password-stdin")
    assert account.run_login(login, secrets=secrets) == EXIT_OK
    config = home / "config" / "config.toml"
    moved = f'server_url = "{url}"\nusername = "alice"\nprevious_server_urls = ["{old}"]\n'
    config.write_text(moved)
    assert account.run_logout(args("logout"), secrets=secrets) == EXIT_OK
    assert secrets.get(login_key(old, "alice")) is None
    assert secrets.get(login_key(url, "alice")) is None
