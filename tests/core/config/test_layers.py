"""The typed config: defaults, layering (system < user < environment), locks, validation, the
user's file holding only what the user changed, private file modes, round trip."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import stat
import tomllib
from datetime import time
from pathlib import Path
from typing import Any, TypeVar

import certifi
import pytest

from app.core import config
from app.core.config.values import converters
from app.core.model import Priority
from tests.fixtures.settings_files import refusal


@pytest.fixture
def paths(tmp_path: Path) -> config.Paths:
    return config.Paths(
        config_dir=tmp_path / "user",
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
        system_config_files=(tmp_path / "next-to-binary.toml", tmp_path / "etc.toml"),
    )


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    target = tmp_path / "corp-ca.pem"
    shutil.copyfile(certifi.where(), target)
    return target


def etc(paths: config.Paths) -> Path:
    return paths.system_config_files[1]


def write_user(paths: config.Paths, text: str) -> Path:
    paths.config_dir.mkdir(exist_ok=True)
    paths.user_config_file.write_text(text, encoding="utf-8")
    return paths.user_config_file


def user_file(paths: config.Paths) -> dict[str, object]:
    return tomllib.loads(paths.user_config_file.read_text(encoding="utf-8"))


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_defaults_when_no_file(paths: config.Paths) -> None:
    cfg = config.load(paths, environ={})
    assert cfg == config.Config()
    assert cfg.stream.heartbeat_timeout == 45.0
    assert cfg.endpoints.connect == "/sse/connect/{user_id}"
    assert cfg.locked == frozenset() and cfg.environment == frozenset()


def test_layers_system_then_user_then_environment(paths: config.Paths, ca_file: Path) -> None:
    etc(paths).write_text(
        f'server_url = "https://news.example.org"\n[stream]\nca_bundle = "{ca_file}"\n'
    )
    write_user(paths, 'username = "alice"\n[stream]\nheartbeat_timeout = 30\n')
    cfg = config.load(paths, environ={})
    assert cfg.server_url == "https://news.example.org"
    assert cfg.username == "alice"
    assert cfg.stream.ca_bundle == str(ca_file)
    assert cfg.stream.heartbeat_timeout == 30.0

    env = {"TRAY_NOTIFIER_SERVER": "https://other.example.org", "SSE_HEARTBEAT_TIMEOUT": "12.5"}
    cfg = config.load(paths, environ=env)
    assert cfg.server_url == "https://other.example.org"
    assert cfg.stream.heartbeat_timeout == 12.5
    assert cfg.environment == {"server_url", "stream.heartbeat_timeout"}
    assert cfg.set_by_environment("server_url") == "TRAY_NOTIFIER_SERVER"
    assert cfg.set_by_environment("username") is None


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
        username='quote"back\\slash\nnew line\x07',
        quiet_hours=config.QuietHours(time(22, 0), time(7, 30)),
        toast_min_priority=Priority.HIGH,
        do_not_disturb=True,
        retention_days=30,
        endpoints=config.Endpoints(connect="/stream/{user_id}", close_method="GET"),
    )
    written = config.save_user(cfg, paths)
    assert written == paths.user_config_file
    assert config.load(paths, environ={}) == cfg


S = TypeVar("S")


def changed(section: type[S], ca_file: Path) -> S:
    """A section with every setting changed from its default."""
    by_type: dict[type, Any] = {bool: True, float: 7.5, int: 12345, str: "changed"}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(section):  # type: ignore[arg-type]
        value = by_type[type(getattr(section(), f.name))]
        values[f.name] = str(ca_file) if f.name == "ca_bundle" else value
    return section(**values)


def test_every_setting_round_trips_through_a_file(paths: config.Paths, ca_file: Path) -> None:
    """A new field with a non-default value survives save and load: none is dropped."""
    cfg = config.Config(
        server_url="https://x.example",
        username="u",
        previous_server_urls=("https://old.example", "https://x.example/old"),
        endpoints=changed(config.Endpoints, ca_file),
        stream=changed(config.StreamSettings, ca_file),
        network=config.NetworkSettings(proxy="http://proxy.example:3128", pac_url="auto"),
        auth=config.AuthProfile(
            style="token",
            login_path="/api/login",
            login_body={"user": {"name": "{username}"}, "pass": "{password}", "n": 1},
            token="/data/access~1token",
            ok=config.OkTest("/code", 200),
            message="/msg",
            user_info_path="/getInfo",
            user_id="/user/userId",
            relogin=True,
        ),
        payload=config.PayloadProfile(
            id="/noticeId",
            title="/noticeTitle",
            body="/noticeContent",
            priority="/level",
            priorities={"1": Priority.URGENT, "2": Priority.LOW},
            url="/link",
            body_format="html",
        ),
        start_at_login=True,
        do_not_disturb=True,
        quiet_hours=config.QuietHours(time(1, 0), time(2, 0)),
        toast_min_priority=Priority.URGENT,
        toast_settle_ms=120,
        language="zh_CN",
        retention_days=5,
        log_level="DEBUG",
    )
    settings = [f for f in dataclasses.fields(config.Config) if not f.metadata.get("origin")]
    for f in settings:  # this test sets every top-level setting: extend it with a new field
        assert getattr(cfg, f.name) != getattr(config.Config(), f.name), f.name
    config.save_user(cfg, paths)
    assert config.load(paths, environ={}) == cfg
    assert config.from_dict(config.to_dict(cfg)) == cfg
    assert set(config.setting_keys()) >= {"server_url", "stream.ca_bundle", "endpoints.connect"}


def test_a_field_of_an_unknown_type_fails_loudly() -> None:
    with pytest.raises(TypeError, match="no parser"):
        converters("new_setting", list[str])


# ---------------------------------------------------------------- the user's file: only changes


def test_the_users_file_holds_only_what_the_user_changed(paths: config.Paths) -> None:
    etc(paths).write_text('server_url = "https://old.example.org"\nretention_days = 60\n')
    cfg = config.load(paths, environ={})
    # the first login saves the whole merged config with the user name
    config.save_user(cfg.with_changes(username="alice", do_not_disturb=True), paths)
    assert user_file(paths) == {"username": "alice", "do_not_disturb": True}
    # IT moves the server later: the user follows
    etc(paths).write_text('server_url = "https://new.example.org"\nretention_days = 60\n')
    cfg = config.load(paths, environ={})
    assert (cfg.server_url, cfg.username, cfg.retention_days) == (
        "https://new.example.org",
        "alice",
        60,
    )


def test_a_value_set_back_to_its_layer_below_leaves_the_file(paths: config.Paths) -> None:
    etc(paths).write_text("retention_days = 60\n")
    write_user(paths, 'retention_days = 30\nlanguage = "en"\n')
    cfg = config.load(paths, environ={})
    config.save_user(cfg.with_changes(retention_days=60), paths)
    assert user_file(paths) == {"language": "en"}  # kept: still differs
    etc(paths).write_text("retention_days = 45\n")
    assert config.load(paths, environ={}).retention_days == 45


def test_unknown_keys_in_the_users_file_are_kept(paths: config.Paths) -> None:
    write_user(paths, 'future_option = [1, 2]\n[stream]\nnew_knob = "x"\n')
    cfg = config.load(paths, environ={})
    config.save_user(cfg.with_changes(language="en"), paths)
    assert user_file(paths) == {
        "language": "en",
        "future_option": [1, 2],
        "stream": {"new_knob": "x"},
    }


def test_turning_off_quiet_hours_it_set_is_saved(paths: config.Paths) -> None:
    etc(paths).write_text('[quiet_hours]\nstart = "22:00"\nend = "07:00"\n')
    cfg = config.load(paths, environ={})
    assert cfg.quiet_hours == config.QuietHours(time(22), time(7))
    config.save_user(cfg.with_changes(quiet_hours=None), paths)
    assert user_file(paths) == {"quiet_hours": {}}
    assert config.load(paths, environ={}).quiet_hours is None


def test_environment_overrides_are_never_saved(paths: config.Paths) -> None:
    env = {"TRAY_NOTIFIER_SERVER": "https://env.example.org", "SSE_HEARTBEAT_TIMEOUT": "5"}
    cfg = config.load(paths, environ=env)
    config.save_user(cfg.with_changes(username="alice"), paths)
    assert user_file(paths) == {"username": "alice"}
    # the user's own value stays in the file while the environment overrides it
    write_user(paths, 'server_url = "https://mine.example.org"\n')
    cfg = config.load(paths, environ=env)
    assert cfg.server_url == "https://env.example.org"
    config.save_user(cfg.with_changes(do_not_disturb=True), paths)
    assert user_file(paths) == {"server_url": "https://mine.example.org", "do_not_disturb": True}
    assert config.load(paths, environ={}).server_url == "https://mine.example.org"


# ---------------------------------------------------------------- locks


def test_locked_settings_ignore_the_users_file_with_a_warning(
    paths: config.Paths, ca_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    etc(paths).write_text(
        'locked = ["server_url", "toast_min_priority", "stream.ca_bundle"]\n'
        'server_url = "https://it.example.org"\n'
        'toast_min_priority = "high"\n'
    )
    user = write_user(
        paths,
        'server_url = "https://mine.example.org"\ntoast_min_priority = "low"\nlanguage = "en"\n'
        f'[stream]\nca_bundle = "{ca_file}"\n',
    )
    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        cfg = config.load(paths, environ={})
    assert cfg.server_url == "https://it.example.org"
    assert cfg.toast_min_priority is Priority.HIGH
    assert cfg.stream.ca_bundle == ""
    assert cfg.language == "en"
    assert cfg.locked == {"server_url", "toast_min_priority", "stream.ca_bundle"}
    assert cfg.is_locked("stream.ca_bundle") and not cfg.is_locked("stream.heartbeat_timeout")
    found = warnings(caplog)
    for key in ("server_url", "toast_min_priority", "stream.ca_bundle"):
        assert any(str(user) in w and key in w and str(etc(paths)) in w for w in found), key

    # save never writes a locked setting, even when the config passed in differs
    config.save_user(cfg.with_changes(server_url="https://other.example.org"), paths)
    assert user_file(paths) == {"language": "en"}


def test_a_locked_section_covers_its_settings(paths: config.Paths) -> None:
    etc(paths).write_text('locked = ["endpoints"]\n[endpoints]\nconnect = "/it/{user_id}"\n')
    write_user(paths, '[endpoints]\nconnect = "/mine/{user_id}"\nclose = "/mine/close"\n')
    cfg = config.load(paths, environ={})
    assert cfg.endpoints == config.Endpoints(connect="/it/{user_id}")
    assert cfg.is_locked("endpoints.close")


def test_the_environment_still_applies_to_a_locked_setting(paths: config.Paths) -> None:
    etc(paths).write_text('locked = ["server_url"]\nserver_url = "https://it.example.org"\n')
    cfg = config.load(paths, environ={"TRAY_NOTIFIER_SERVER": "https://env.example.org"})
    assert cfg.server_url == "https://env.example.org" and cfg.is_locked("server_url")


def test_a_lock_list_counts_only_in_a_system_file(
    paths: config.Paths, caplog: pytest.LogCaptureFixture
) -> None:
    user = write_user(paths, 'locked = ["language"]\nlanguage = "en"\n')
    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        cfg = config.load(paths, environ={})
    assert cfg.locked == frozenset() and cfg.language == "en"
    assert any(str(user) in w and "locked" in w for w in warnings(caplog))
    config.save_user(cfg, paths)
    assert user_file(paths) == {"language": "en"}


def test_a_lock_of_an_unknown_setting_warns(
    paths: config.Paths, caplog: pytest.LogCaptureFixture
) -> None:
    etc(paths).write_text('locked = ["server_ulr", "stream"]\n')
    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        cfg = config.load(paths, environ={})
    assert cfg.locked == {"stream"}
    assert any(str(etc(paths)) in w and "server_ulr" in w for w in warnings(caplog))


def test_a_lock_list_must_be_a_list_of_names(paths: config.Paths) -> None:
    etc(paths).write_text('locked = "server_url"\n')
    message = refusal(paths, "system")
    assert "list of setting names" in message and str(etc(paths)) in message


# ---------------------------------------------------------------- unknown keys, bad values


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('sever_url = "https://x.example"', "sever_url"),
        ("[stream]\nheartbeat_timout = 30", "stream.heartbeat_timout"),
        ('[quiet_hours]\nstart = "22:00"\nend = "07:00"\nstop = "08:00"', "quiet_hours.stop"),
        ('[colours]\nred = "#f00"', "colours"),
    ],
)
@pytest.mark.parametrize("layer", ["system", "user"])
def test_unknown_keys_warn_naming_the_file_and_key(
    paths: config.Paths, caplog: pytest.LogCaptureFixture, text: str, key: str, layer: str
) -> None:
    target = etc(paths) if layer == "system" else write_user(paths, "")
    target.write_text(text)
    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        config.load(paths, environ={})
    assert any(str(target) in w and key in w for w in warnings(caplog)), warnings(caplog)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("server_url = 'ftp://x'", "https://"),
        ("retention_days = 0", "retention_days"),
        ("retention_days = 2.5", "retention_days"),
        ("toast_settle_ms = -1", "toast_settle_ms"),
        ("[stream]\nheartbeat_timeout = -1", "stream.heartbeat_timeout"),
        ("[stream]\nheartbeat_timeout = 'soon'", "stream.heartbeat_timeout"),
        ("[stream]\nmax_event_bytes = true", "stream.max_event_bytes"),
        ("stream = 3", "stream must be a table"),
        ("toast_min_priority = 'loud'", "toast_min_priority"),
        ("[quiet_hours]\nstart = '25:00'\nend = '07:00'", "quiet_hours.start"),
        ("[quiet_hours]\nstart = '22:00'", "start and end"),
        ("start_at_login = 'perhaps'", "start_at_login"),
        ("log_level = 'chatty'", "log_level"),
        ("username = 3", "username"),
    ],
)
@pytest.mark.parametrize("layer", ["system", "user"])
def test_bad_values_name_the_file_and_the_setting(
    paths: config.Paths, text: str, needle: str, layer: str
) -> None:
    target = etc(paths) if layer == "system" else write_user(paths, "")
    target.write_text(text)
    message = refusal(paths, layer)
    assert needle in message
    assert str(target) in message
    assert "Fix the value in" in message  # what to do


# every number setting's range (issue 18): no negative, zero, NaN, infinite or absurd value
RANGES = {
    "stream.heartbeat_timeout": (1, 86400),
    "stream.connect_timeout": (1, 300),
    "stream.max_event_bytes": (1024, 64 * 1024 * 1024),
    "toast_settle_ms": (0, 10000),
    "retention_days": (1, 3650),
}


def _line(key: str, value: str) -> str:
    section, _, name = key.rpartition(".")
    return f"[{section}]\n{name} = {value}\n" if section else f"{key} = {value}\n"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stream.max_event_bytes", "-1"),
        ("stream.max_event_bytes", "0"),
        ("stream.max_event_bytes", "1023"),
        ("stream.max_event_bytes", "67108865"),
        ("stream.max_event_bytes", "100000000000000000000000000000"),  # once "no limit"
        ("stream.heartbeat_timeout", "nan"),
        ("stream.heartbeat_timeout", "inf"),
        ("stream.heartbeat_timeout", "0"),
        ("stream.heartbeat_timeout", "0.5"),
        ("stream.heartbeat_timeout", "86401"),
        ("stream.heartbeat_timeout", "1e29"),
        ("stream.heartbeat_timeout", "1" + "0" * 400),  # an integer no float holds
        ("stream.connect_timeout", "-inf"),
        ("stream.connect_timeout", "nan"),
        ("stream.connect_timeout", "-1"),
        ("stream.connect_timeout", "301"),
        ("toast_settle_ms", "-1"),
        ("toast_settle_ms", "10001"),
        ("retention_days", "0"),
        ("retention_days", "3651"),
        ("retention_days", "100000000000000000000000000000"),
    ],
)
def test_numbers_outside_their_range_say_the_range(
    paths: config.Paths, key: str, value: str
) -> None:
    target = write_user(paths, _line(key, value))
    with pytest.raises(config.ConfigError) as info:
        config.load(paths, environ={})
    low, high = RANGES[key]
    message = str(info.value)
    assert f"{target}: {key} = " in message
    assert f"must be from {low} to {high} (" in message
    assert f"Fix the value in {target}" in message


@pytest.mark.parametrize("key", RANGES)
def test_numbers_at_the_ends_of_their_range_are_accepted(paths: config.Paths, key: str) -> None:
    section, _, name = key.rpartition(".")
    for end in RANGES[key]:
        write_user(paths, _line(key, str(end)))
        cfg = config.load(paths, environ={})
        assert getattr(getattr(cfg, section) if section else cfg, name) == end


def test_every_number_setting_has_a_range() -> None:
    numbers = [k for k in config.setting_keys() if isinstance(_default(k), int | float)]
    numbers = [k for k in numbers if not isinstance(_default(k), bool)]
    assert sorted(numbers) == sorted(RANGES) == sorted(config.RANGES)
    with pytest.raises(TypeError, match="range"):
        converters("new_number", int)


def _default(key: str) -> object:
    value: object = config.Config()
    for part in key.split("."):
        value = getattr(value, part)
    return value


@pytest.mark.parametrize("text", ["nan", "inf", "1e400", "0", "100000", "1" * 5000])
def test_a_heartbeat_variable_out_of_range_is_named(paths: config.Paths, text: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load(paths, environ={"SSE_HEARTBEAT_TIMEOUT": text})
    message = str(info.value)
    assert "SSE_HEARTBEAT_TIMEOUT" in message and "from 1 to 86400" in message


def test_missing_files_are_no_error(tmp_path: Path) -> None:
    p = config.Paths(tmp_path / "u", tmp_path / "d", tmp_path / "l", (tmp_path / "none.toml",))
    assert config.load(p, environ={}) == config.Config()


def test_unreadable_toml_names_the_file(paths: config.Paths) -> None:
    target = write_user(paths, "this is not toml")
    with pytest.raises(config.ConfigError, match="cannot read the config file") as info:
        config.load(paths, environ={})
    assert str(target) in str(info.value)


def test_a_bad_environment_variable_is_named(paths: config.Paths) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load(paths, environ={"SSE_HEARTBEAT_TIMEOUT": "soon"})
    message = str(info.value)
    assert "SSE_HEARTBEAT_TIMEOUT" in message and "stream.heartbeat_timeout" in message
    assert "unset SSE_HEARTBEAT_TIMEOUT" in message


def test_log_level_is_checked_and_normalised(paths: config.Paths) -> None:
    write_user(paths, 'log_level = "debug"\n')
    assert config.load(paths, environ={}).log_level == "DEBUG"


# ---------------------------------------------------------------- ca_bundle


def test_a_readable_ca_bundle_is_accepted(paths: config.Paths, ca_file: Path) -> None:
    etc(paths).write_text(f'[stream]\nca_bundle = "{ca_file}"\n')
    assert config.load(paths, environ={}).stream.ca_bundle == str(ca_file)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "missing.pem", "does not exist"),
        (lambda d: d, "is not a file"),
        (lambda d: (d / "junk.pem").write_text("not a certificate") and d / "junk.pem", "no PEM"),
    ],
)
@pytest.mark.parametrize("layer", ["system", "user"])
def test_a_bad_ca_bundle_is_a_config_error_at_load(
    paths: config.Paths, tmp_path: Path, make, problem: str, layer: str
) -> None:
    bundle = make(tmp_path)
    target = etc(paths) if layer == "system" else write_user(paths, "")
    target.write_text(f'[stream]\nca_bundle = "{bundle}"\n')
    message = refusal(paths, layer)
    assert "stream.ca_bundle" in message and problem in message and str(target) in message
    assert "PEM file of your organisation's certificate authority" in message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_ca_bundle_is_a_config_error_at_load(
    paths: config.Paths, ca_file: Path
) -> None:
    ca_file.chmod(0)
    etc(paths).write_text(f'[stream]\nca_bundle = "{ca_file}"\n')
    assert "cannot be read" in refusal(paths, "system")


# ---------------------------------------------------------------- folders and file modes


def test_quiet_hours_across_midnight() -> None:
    q = config.QuietHours(time(22, 0), time(7, 0))
    assert q.contains(time(23, 59)) and q.contains(time(0, 0)) and q.contains(time(6, 59))
    assert not q.contains(time(7, 0)) and not q.contains(time(12, 0))
    day = config.QuietHours(time(12, 0), time(13, 0))
    assert day.contains(time(12, 30)) and not day.contains(time(13, 0))


def test_tray_notifier_home_moves_only_the_users_folders(tmp_path: Path) -> None:
    p = config.Paths.default({"TRAY_NOTIFIER_HOME": str(tmp_path)})
    for d in (p.config_dir, p.data_dir, p.log_dir):
        assert d.is_relative_to(tmp_path)
    assert p.system_config_files  # the real system layers still apply
    assert not any(f.is_relative_to(tmp_path) for f in p.system_config_files)
    assert p.system_config_files == config.system_config_files({})


def test_the_system_config_variable_names_the_system_layers(tmp_path: Path) -> None:
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    env = {
        "TRAY_NOTIFIER_HOME": str(tmp_path),
        "TRAY_NOTIFIER_SYSTEM_CONFIG": f"{a}{os.pathsep}{b}",
    }
    assert config.Paths.default(env).system_config_files == (a, b)
    env["TRAY_NOTIFIER_SYSTEM_CONFIG"] = ""
    assert config.Paths.default(env).system_config_files == ()


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_the_users_file_is_private(paths: config.Paths) -> None:
    paths.config_dir.mkdir(mode=0o755)
    paths.config_dir.chmod(0o755)  # a folder an older version left open
    old = os.umask(0)
    try:
        config.save_user(config.Config(language="en"), paths)
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths.user_config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(paths.config_dir.stat().st_mode) == 0o700
    assert sorted(p.name for p in paths.config_dir.iterdir()) == ["config.toml"]


# ---------------------------------------------------------------- backend profiles (issue 11)

RUOYI_PROFILE = """
server_url = "https://oa.example.org/prod-api"
[auth]
style = "token"
login_path = "/login"
login_body = { username = "{username}", password = "{password}", code = "", uuid = "" }
token = "/token"
ok = { pointer = "/code", value = 200 }
message = "/msg"
user_info_path = "/getInfo"
user_id = "/user/userId"
relogin = true
[endpoints]
close_method = "GET"
[payload]
id = "/noticeId"
title = "/noticeTitle"
body = "/noticeContent"
priorities = { "1" = "urgent", "2" = "normal" }
body_format = "html"
[stream]
heartbeat_timeout = 3600
"""


def test_a_ruoyi_profile_loads_from_a_system_file(paths: config.Paths) -> None:
    etc(paths).write_text(RUOYI_PROFILE)
    cfg = config.load(paths, environ={})
    assert cfg.auth.style == "token" and cfg.auth.relogin
    assert cfg.auth.ok == config.OkTest("/code", 200)
    assert cfg.auth.login_body["code"] == ""
    assert cfg.payload.priorities == {"1": Priority.URGENT, "2": Priority.NORMAL}
    assert cfg.payload.is_set and not config.PayloadProfile().is_set
    assert cfg.stream.heartbeat_timeout == 3600.0
    assert cfg.auth.describe() == "token login (/login)"
    assert config.AuthProfile().describe() == "companion"


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('[auth]\nstyle = "oauth"', "auth.style"),
        ('[auth]\ntoken = "token"', "auth.token"),
        ('[auth]\nuser_id = "/user/~2"', "auth.user_id"),
        ('[auth]\nok = { pointer = "code", value = 200 }', "auth.ok"),
        ('[auth]\nlogin_body = "username"', "auth.login_body"),
        ('[auth]\ntokn = "/token"', "auth.tokn"),
        ('[payload]\ntitle = "noticeTitle"', "payload.title"),
        ('[payload]\nbody_format = "markdown"', "payload.body_format"),
        ('[payload]\ntitel = "/t"', "payload.titel"),
        ('[payload]\npriorities = { "1" = "very" }', "payload.priorities"),
    ],
)
def test_a_bad_profile_stops_naming_the_key_and_the_file(
    paths: config.Paths, line: str, key: str
) -> None:
    etc(paths).write_text(line + "\n")
    message = refusal(paths, "system")
    assert key in message and str(etc(paths)) in message


def test_a_bad_system_layer_leaves_that_setting_at_the_layer_below_and_keeps_locks(
    paths: config.Paths, caplog: pytest.LogCaptureFixture
) -> None:
    """One bad value in IT's file stopped every user's tray with a modal error telling staff
    to edit a file they cannot touch (issue 22): that setting falls back, the rest of IT's
    file applies, its locks hold, and the problem is logged once and kept for the tray."""
    etc(paths).write_text(
        'server_url = "https://oa.example.org"\nretention_days = "forever"\n'
        'locked = ["server_url"]\n'
    )
    write_user(paths, 'server_url = "https://elsewhere.example.org"\nretention_days = 30\n')
    with caplog.at_level(logging.WARNING):
        loaded = config.load(paths, environ={})
    assert loaded.server_url == "https://oa.example.org"  # IT's, locked: the user's ignored
    assert loaded.is_locked("server_url")
    assert loaded.retention_days == 30  # the user's own value applies again
    (problem,) = loaded.problems
    assert "retention_days" in problem and str(etc(paths)) in problem
    assert [r for r in caplog.records if "IT's settings" in r.getMessage()] != []


def test_an_unreadable_lock_list_locks_every_setting_its_file_names(paths: config.Paths) -> None:
    etc(paths).write_text('server_url = "https://oa.example.org"\nlocked = "server_url"\n')
    write_user(paths, 'server_url = "https://elsewhere.example.org"\n')
    loaded = config.load(paths, environ={})
    assert loaded.server_url == "https://oa.example.org" and loaded.is_locked("server_url")
