"""``python -m app server`` in process: options to config, ``add-user``, a bad --redis URL
(the command as a subprocess is in test_cli.py)."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import pytest

from app.cli import build_parser
from app.exit_codes import EXIT_OK, EXIT_USAGE
from app.server import main
from app.server.auth import verify_password
from app.server.config import HttpSettings, OidcSettings, ServerConfig
from app.server.sqlite_broker import SqliteBroker


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["server", *argv])


def test_options_become_the_config(tmp_path: Path) -> None:
    config = main._config(
        _args("--data-dir", str(tmp_path), "--port", "0", "--token-ttl", "60", "--db", "x.db")
    )
    assert config == ServerConfig(
        data_dir=tmp_path,
        port=0,
        db_path=Path("x.db"),
        http=HttpSettings(token_ttl=60.0),
        access_log=True,
    )


def test_a_bad_redis_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.run(_args("--redis", "http://nowhere/0")) == EXIT_USAGE
    assert capsys.readouterr().err.startswith("error: --redis: the Redis URL must start")


def test_add_user_saves_in_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    args = _args(
        "--data-dir", str(tmp_path), "add-user", "dave", "--password-stdin", "--group", "it"
    )
    assert main.run(args) == EXIT_OK
    assert "saved user dave (groups: it; role: staff)" in capsys.readouterr().out

    async def stored() -> tuple[frozenset[str], bool] | None:
        broker = SqliteBroker(tmp_path / "server.db")
        try:
            user = await broker.get_user("dave")
            return (
                None
                if user is None
                else (user.groups, verify_password("s3cret", user.password_hash))
            )
        finally:
            await broker.close()

    assert asyncio.run(stored()) == (frozenset({"it"}), True)


def test_add_user_without_a_password_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    args = _args("--data-dir", str(tmp_path), "add-user", "dave", "--password-stdin")
    assert main.run(args) == EXIT_USAGE
    assert "no password on standard input" in capsys.readouterr().err


def test_oidc_options_become_the_config(tmp_path: Path) -> None:
    config = main._config(
        _args(
            *("--data-dir", str(tmp_path), "--oidc-issuer", "https://login.example.org/realms/s"),
            *("--oidc-client-id", "tray", "--oidc-console-client-id", "console"),
            *("--oidc-publisher-group", "comms", "--oidc-publisher-group", "it-ops"),
            *("--oidc-username-claim", "upn", "--no-password-login"),
        )
    )
    assert config.oidc == OidcSettings(
        issuer="https://login.example.org/realms/s",
        client_id="tray",
        console_client_id="console",
        username_claim="upn",
        publisher_groups=("comms", "it-ops"),
        password_login=False,
    )
    assert main._config(_args("--data-dir", str(tmp_path))).oidc is None


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("--oidc-issuer", "http://login.example.org", "--oidc-client-id", "t"), "not https://"),
        (("--oidc-issuer", "login.example.org", "--oidc-client-id", "t"), "not a URL"),
        (("--oidc-issuer", "https://login.example.org"), "--oidc-client-id is needed"),
        (("--oidc-client-id", "t"), "--oidc-client-id needs --oidc-issuer"),
        (("--no-password-login",), "--no-password-login needs --oidc-issuer"),
    ],
)
def test_a_bad_identity_provider_stops_the_server_saying_why(
    argv: tuple[str, ...], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main.run(_args(*argv)) == EXIT_USAGE
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    "issuer", ["http://127.0.0.1:9000", "http://[::1]:9000", "http://localhost"]
)
def test_a_plain_http_issuer_is_allowed_on_loopback(issuer: str) -> None:
    assert OidcSettings(issuer=issuer, client_id="t").issuer == issuer
