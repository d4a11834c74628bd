"""The server's one configuration: defaults written once, the CLI reading them, the data folder
resolved without the tray's configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import build_parser
from app.server.config import HttpSettings, RedisSettings, ServerConfig, default_data_dir


def test_the_data_folder_follows_tray_notifier_home(tmp_path: Path) -> None:
    env = {"TRAY_NOTIFIER_HOME": str(tmp_path)}
    assert default_data_dir(env) == tmp_path / "data" / "server"
    assert default_data_dir({}).parts[-2:] == ("tray-notifier", "server")


def test_the_server_commands_defaults_are_the_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documented defaults (README, docs/api.md): loopback, port 8080, a 900 s token, a
    ping every 15 s."""
    monkeypatch.setenv("TRAY_NOTIFIER_HOME", str(tmp_path))
    config = ServerConfig()
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert (config.http.token_ttl, config.http.ping_interval) == (900.0, 15.0)
    assert config.data_dir == tmp_path / "data" / "server"
    assert config.database == config.data_dir / "server.db" and config.redis() is None
    args = build_parser().parse_args(["server"])
    assert (args.host, args.port, args.token_ttl, args.ping_interval) == (
        config.host,
        config.port,
        config.http.token_ttl,
        config.http.ping_interval,
    )
    assert (args.db, args.redis, args.data_dir) == (None, None, None)


def test_the_http_tuning_defaults() -> None:
    http = HttpSettings()
    assert (http.retry_ms, http.queue_size, http.replay_limit) == (3000, 256, 1000)
    assert (http.max_body, http.list_limit, http.list_max) == (64 * 1024, 100, 1000)
    assert http.refresh_ttl == 30 * 86400.0


def test_the_redis_backend_comes_from_the_url() -> None:
    config = ServerConfig(data_dir=Path("x"), redis_url="redis://h:1/0?prefix=p:")
    assert config.redis() == RedisSettings(url="redis://h:1/0", prefix="p:")
    with pytest.raises(ValueError, match="redis://"):
        ServerConfig(data_dir=Path("x"), redis_url="http://h/0").redis()
