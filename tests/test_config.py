"""The typed config: defaults, layering (system < user < environment), validation, round trip."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from app import config
from app.core.model import Priority


@pytest.fixture
def paths(tmp_path: Path) -> config.Paths:
    return config.Paths(
        config_dir=tmp_path / "user",
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
        system_config_files=(tmp_path / "next-to-binary.toml", tmp_path / "etc.toml"),
    )


def test_defaults_when_no_file(paths: config.Paths) -> None:
    cfg = config.load(paths, environ={})
    assert cfg == config.Config()
    assert cfg.stream.heartbeat_timeout == 45.0
    assert cfg.endpoints.connect == "/sse/connect/{user_id}"


def test_layers_system_then_user_then_environment(paths: config.Paths) -> None:
    paths.system_config_files[1].write_text(
        'server_url = "https://news.example.org"\n[stream]\nca_bundle = "/etc/ca.pem"\n'
    )
    paths.config_dir.mkdir()
    paths.user_config_file.write_text('username = "alice"\n[stream]\nheartbeat_timeout = 30\n')
    cfg = config.load(paths, environ={})
    assert cfg.server_url == "https://news.example.org"
    assert cfg.username == "alice"
    assert cfg.stream.ca_bundle == "/etc/ca.pem"
    assert cfg.stream.heartbeat_timeout == 30.0

    env = {"TRAY_NOTIFIER_SERVER": "https://other.example.org", "SSE_HEARTBEAT_TIMEOUT": "12.5"}
    cfg = config.load(paths, environ=env)
    assert cfg.server_url == "https://other.example.org"
    assert cfg.stream.heartbeat_timeout == 12.5


def test_the_file_next_to_the_binary_wins_over_nothing_but_loses_to_etc(
    paths: config.Paths,
) -> None:
    paths.system_config_files[0].write_text('server_url = "https://a.example"\nusername = "x"\n')
    paths.system_config_files[1].write_text('server_url = "https://b.example"\n')
    cfg = config.load(paths, environ={})
    assert (cfg.server_url, cfg.username) == ("https://b.example", "x")


def test_save_user_round_trip(paths: config.Paths) -> None:
    cfg = config.Config(
        server_url="https://news.example.org",
        username='quote"back\\slash',
        quiet_hours=config.QuietHours(time(22, 0), time(7, 30)),
        toast_min_priority=Priority.HIGH,
        do_not_disturb=True,
        retention_days=30,
    )
    written = config.save_user(cfg, paths)
    assert written == paths.user_config_file
    assert config.load(paths, environ={}) == cfg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("server_url = 'ftp://x'", "https://"),
        ("retention_days = 0", "retention_days"),
        ("[stream]\nheartbeat_timeout = -1", "stream.heartbeat_timeout"),
        ("[stream]\nheartbeat_timeout = 'soon'", "stream.heartbeat_timeout"),
        ("toast_min_priority = 'loud'", "toast_min_priority"),
        ("[quiet_hours]\nstart = '25:00'\nend = '07:00'", "quiet_hours.start"),
        ("[quiet_hours]\nstart = '22:00'", "start and end"),
        ("start_at_login = 'perhaps'", "start_at_login"),
        ("this is not toml", "cannot read the config file"),
    ],
)
def test_bad_values_name_the_setting(paths: config.Paths, text: str, needle: str) -> None:
    paths.config_dir.mkdir()
    paths.user_config_file.write_text(text)
    with pytest.raises(config.ConfigError, match=needle.replace(".", r"\.")):
        config.load(paths, environ={})


def test_quiet_hours_across_midnight() -> None:
    q = config.QuietHours(time(22, 0), time(7, 0))
    assert q.contains(time(23, 59)) and q.contains(time(0, 0)) and q.contains(time(6, 59))
    assert not q.contains(time(7, 0)) and not q.contains(time(12, 0))
    day = config.QuietHours(time(12, 0), time(13, 0))
    assert day.contains(time(12, 30)) and not day.contains(time(13, 0))


def test_tray_notifier_home_moves_every_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAY_NOTIFIER_HOME", str(tmp_path))
    p = config.Paths.default()
    for d in (p.config_dir, p.data_dir, p.log_dir):
        assert d.is_relative_to(tmp_path)
