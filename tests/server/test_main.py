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
from app.server.config import HttpSettings, ServerConfig
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
