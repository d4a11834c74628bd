"""Hostile config files (issue 18): garbage, nesting that tomllib cannot survive, files another
local user could have written. Each is a config error naming the file (and the key) and what to
do, exit 4 from a command, never a traceback; an exposed system layer is ignored with a warning.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import certifi
import pytest

from app.core import config
from app.core.config.files import beyond_limits
from tests.fixtures.scripted import ScriptedServer, sse, status
from tests.fixtures.settings_files import refusal

ROOT = Path(__file__).resolve().parents[3]
TOKEN = "tok-18-secret"
POSIX = os.name == "posix"
ROOT_USER = POSIX and os.geteuid() == 0
OTHER_UID = 12345 if not POSIX or os.geteuid() != 12345 else 12346

posix_only = pytest.mark.skipif(not POSIX, reason="POSIX file modes (Windows has none)")
root_only = pytest.mark.skipif(not ROOT_USER, reason="only root can give a file to another user")


@pytest.fixture
def paths(tmp_path: Path) -> config.Paths:
    return config.Paths(
        config_dir=tmp_path / "user",
        data_dir=tmp_path / "data",
        log_dir=tmp_path / "logs",
        system_config_files=(tmp_path / "it" / "config.toml",),
    )


def system_file(paths: config.Paths, text: str) -> Path:
    target = paths.system_config_files[0]
    target.parent.mkdir(exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def user_file(paths: config.Paths, data: bytes) -> Path:
    paths.config_dir.mkdir(exist_ok=True)
    paths.user_config_file.write_bytes(data)
    return paths.user_config_file


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# ---------------------------------------------------------------- what is not a settings file

HOSTILE: dict[str, tuple[bytes, list[str]]] = {
    "random bytes": (random.Random(18).randbytes(4096), ["line 1", "not UTF-8"]),
    "invalid UTF-8 in a value": (b'username = "al\xffce"\n', ["line 1", "not UTF-8"]),
    "NUL bytes": (b'username = "a\x00b"\n', ["line 1"]),
    "only NUL bytes": (b"\x00" * 64, ["line 1"]),
    "lists 100,000 deep": (b"a = " + b"[" * 100_000, ["line 1", "a nests", "32 deep"]),
    "inline tables 100,000 deep": (
        b'server_url = "https://x.example"\n[auth]\nlogin_body = ' + b"{ a = " * 100_000,
        ["line 3", "auth.login_body nests", "32 deep"],
    ),
    "lists deep over many lines": (
        b"[stream]\nca_bundle = [\n" + b"[\n" * 40,
        ["line 34: stream.ca_bundle"],
    ),
    "a dotted key of 2000 parts": (b".".join([b"a"] * 2000) + b" = 1\n", ["more than 32 parts"]),
    "a number of 5000 digits": (
        b"[stream]\nmax_event_bytes = 1" + b"0" * 5000 + b"\n",
        ["line 2", "stream.max_event_bytes", "4300 digits"],
    ),
    "2 MB of comments": (b"# padding\n" * 200_000, ["larger than 1024 KiB"]),
}


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize("layer", ["system", "user"])
def test_a_file_that_is_not_settings_is_a_config_error_naming_it(
    paths: config.Paths, name: str, layer: str
) -> None:
    data, needles = HOSTILE[name]
    target = paths.system_config_files[0] if layer == "system" else user_file(paths, b"")
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(data)
    message = refusal(paths, layer)
    assert f"cannot read the config file {target}" in message
    for needle in needles:
        assert needle in message, message
    assert "move it aside" in message  # what to do
    assert target.read_bytes() == data  # nothing is lost


def test_the_nesting_scan_passes_every_valid_shape() -> None:
    """Brackets, quotes and dots inside strings and comments, arrays of tables, dates and
    floats: nothing here is deep, and the scan must not say otherwise."""
    deep = "[" * 40
    text = (
        f'a = """x ] ] {deep} \\""" """"\n'
        f"b = '''{deep} ''''\n"
        f'c = "{deep} \\" {deep}"\n'
        f"d = '{deep}\\'\n"
        f"# {deep}\n"
        f"e = [{', '.join(['1.5'] * 40)}]\n"
        "f = 1979-05-27 07:32:00.999\n"
        f"{'.'.join(['k'] * 32)} = 1\n"
        '"quoted . key" = { "x.y" = [[1], [2]] }\n'
        "[[g.h]]\nx = 1\n[[g.h]]\nx = 2\n"
    )
    assert tomllib.loads(text)["g"]["h"] == [{"x": 1}, {"x": 2}]  # valid TOML
    assert beyond_limits(text) is None
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert beyond_limits(pyproject) is None


def test_32_levels_are_read(paths: config.Paths) -> None:
    user_file(paths, b"future = " + b"[" * 32 + b"]" * 32 + b"\n")
    assert config.load(paths, environ={}) == config.Config()


@posix_only
def test_a_fifo_named_config_toml_does_not_hang_the_command(tmp_path: Path) -> None:
    home_config = tmp_path / "home" / "config"
    home_config.mkdir(parents=True)
    os.mkfifo(home_config / "config.toml")
    result = run_app(tmp_path, "listen", "--url", "http://127.0.0.1:9/x")
    assert result.returncode == 4, result.stderr
    assert "not a regular file" in result.stderr and str(home_config) in result.stderr


# ---------------------------------------------------------------- the command: exit 4, no traceback


def run_app(
    tmp_path: Path, *args: str, system: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRAY_NOTIFIER_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    env["TRAY_NOTIFIER_TOKEN"] = TOKEN
    env["TRAY_NOTIFIER_SYSTEM_CONFIG"] = str(system) if system else ""
    env.pop("SSE_HEARTBEAT_TIMEOUT", None)
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=40,
        check=False,
    )


def _open_to_all(path: Path) -> None:
    path.chmod(0o666)


COMMAND_CASES: dict[str, tuple[bytes, list[str], Callable[[Path], None] | None]] = {
    "random bytes": (HOSTILE["random bytes"][0], ["not UTF-8"], None),
    "lists 100,000 deep": (HOSTILE["lists 100,000 deep"][0], ["a nests"], None),
    "inline tables 100,000 deep": (
        HOSTILE["inline tables 100,000 deep"][0],
        ["auth.login_body"],
        None,
    ),
    "max_event_bytes = -1": (
        b"[stream]\nmax_event_bytes = -1\n",
        ["stream.max_event_bytes = -1", "from 1024 to 67108864", "Fix the value in"],
        None,
    ),
    "max_event_bytes = 10**29": (
        b"[stream]\nmax_event_bytes = 100000000000000000000000000000\n",
        ["stream.max_event_bytes", "from 1024 to 67108864"],
        None,
    ),
    "a file every user may write": (
        b'server_url = "https://x.example"\n',
        ["is not used", "chmod o-w"],
        _open_to_all if POSIX else None,
    ),
}


@pytest.mark.parametrize("name", COMMAND_CASES)
def test_a_hostile_users_file_exits_4_naming_the_file_without_a_traceback(
    tmp_path: Path, name: str
) -> None:
    data, needles, spoil = COMMAND_CASES[name]
    if name == "a file every user may write" and not POSIX:
        pytest.skip("POSIX file modes")
    target = tmp_path / "home" / "config" / "config.toml"
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    if spoil:
        spoil(target)
    result = run_app(tmp_path, "listen", "--url", "http://127.0.0.1:9/x")
    assert result.returncode == 4, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert str(target) in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr[-2000:]
    assert target.read_bytes() == data


@posix_only
def test_a_system_layer_every_user_may_write_is_ignored_by_the_command(
    tmp_path: Path, scripted: Callable[..., ScriptedServer]
) -> None:
    system = tmp_path / "it" / "config.toml"
    system.parent.mkdir()
    system.write_text("retention_days = 0\n")  # read, this would stop the command (exit 4)
    system.chmod(0o646)
    server = scripted(sse("data: one\n\n"), status(204))
    result = run_app(tmp_path, "listen", "--url", server.url, system=system)
    assert result.returncode == 0, result.stderr
    assert f"{system} is ignored" in result.stderr
    assert f"chmod o-w {system}" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- who may write a layer


@posix_only
def test_the_users_file_every_user_may_write_is_refused(paths: config.Paths) -> None:
    target = user_file(paths, b'server_url = "https://x.example"\n')
    target.chmod(0o622)
    with pytest.raises(config.UnsafeConfigFile) as info:
        config.load(paths, environ={})
    message = str(info.value)
    assert f"{target} is not used" in message
    assert "every user of this computer may change it" in message
    assert f"Run chmod o-w {target}, then start again" in message
    target.chmod(0o600)  # the fix named
    assert config.load(paths, environ={}).server_url == "https://x.example"


@posix_only
@pytest.mark.parametrize("level", ["config folder", "a folder above it"])
def test_a_folder_every_user_may_write_is_refused(tmp_path: Path, level: str) -> None:
    shared = tmp_path / "shared"
    p = config.Paths(shared / "home" / "config", tmp_path / "d", tmp_path / "l", ())
    p.config_dir.mkdir(parents=True)
    p.user_config_file.write_text('username = "alice"\n')
    culprit = p.config_dir if level == "config folder" else shared
    culprit.chmod(0o777)
    with pytest.raises(config.ConfigError) as info:
        config.load(p, environ={})
    message = str(info.value)
    assert f"its folder {culprit} is writable by all" in message
    assert f"chmod o-w {culprit}" in message and str(p.user_config_file) in message


@posix_only
def test_a_sticky_folder_like_tmp_is_fine(tmp_path: Path) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    p = config.Paths(sticky / "config", tmp_path / "d", tmp_path / "l", ())
    p.config_dir.mkdir()
    p.user_config_file.write_text('username = "alice"\n')
    assert config.load(p, environ={}).username == "alice"


@posix_only
def test_a_link_into_a_folder_every_user_may_write_is_refused(
    paths: config.Paths, tmp_path: Path
) -> None:
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)
    real = open_folder / "real.toml"
    real.write_text('server_url = "https://x.example"\n')
    paths.config_dir.mkdir()
    paths.user_config_file.symlink_to(real)
    with pytest.raises(config.ConfigError, match="writable by all") as info:
        config.load(paths, environ={})
    assert str(open_folder) in str(info.value)


@posix_only
def test_saving_never_overwrites_an_exposed_users_file(paths: config.Paths) -> None:
    data = b'username = "alice"\nfuture = 1\n'
    target = user_file(paths, data)
    target.chmod(0o666)
    with pytest.raises(config.UnsafeConfigFile):
        config.save_user(config.Config(language="en"), paths)
    assert target.read_bytes() == data


@posix_only
def test_a_system_layer_every_user_may_write_is_ignored_with_a_warning(
    paths: config.Paths, caplog: pytest.LogCaptureFixture
) -> None:
    system = system_file(paths, 'locked = ["server_url"]\nserver_url = "https://evil.example"\n')
    system.chmod(0o666)
    user_file(paths, b'server_url = "https://mine.example"\n')
    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        cfg = config.load(paths, environ={})
    assert cfg.server_url == "https://mine.example"  # neither its value nor its lock
    assert cfg.locked == frozenset()
    found = [w for w in warnings(caplog) if str(system) in w]
    assert len(found) == 1, warnings(caplog)
    assert "is ignored" in found[0] and f"IT runs: chmod o-w {system}" in found[0]
    # saving compares with the layers actually used, and never reads the exposed file
    config.save_user(cfg.with_changes(language="en"), paths)
    assert config.load(paths, environ={}).language == "en"


@posix_only
def test_a_system_folder_every_user_may_write_is_ignored_with_a_warning(
    paths: config.Paths, caplog: pytest.LogCaptureFixture
) -> None:
    system = system_file(paths, 'server_url = "https://evil.example"\n')
    system.parent.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        cfg = config.load(paths, environ={})
    assert cfg.server_url == ""
    assert any(f"chmod o-w {system.parent}" in w for w in warnings(caplog)), warnings(caplog)


@posix_only
def test_a_ca_bundle_every_user_may_write_is_refused(paths: config.Paths, tmp_path: Path) -> None:
    bundle = tmp_path / "corp-ca.pem"
    shutil.copyfile(certifi.where(), bundle)
    bundle.chmod(0o666)
    target = user_file(paths, f'[stream]\nca_bundle = "{bundle}"\n'.encode())
    with pytest.raises(config.ConfigError) as info:
        config.load(paths, environ={})
    message = str(info.value)
    assert str(target) in message and "stream.ca_bundle" in message
    assert f"chmod o-w {bundle}" in message


@root_only
def test_the_users_file_owned_by_another_user_is_refused(paths: config.Paths) -> None:
    target = user_file(paths, b'server_url = "https://evil.example"\n')
    os.chown(target, OTHER_UID, -1)
    with pytest.raises(config.UnsafeConfigFile) as info:
        config.load(paths, environ={})
    message = str(info.value)
    assert f"belongs to user id {OTHER_UID}" in message or f"(uid {OTHER_UID})" in message
    assert f"cp {target} {target}.mine && mv {target}.mine {target}" in message


@root_only
def test_a_file_of_another_user_in_a_sticky_folder_is_refused(tmp_path: Path) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    p = config.Paths(sticky, tmp_path / "d", tmp_path / "l", ())
    p.user_config_file.write_text('server_url = "https://evil.example"\n')
    os.chown(p.user_config_file, OTHER_UID, -1)
    with pytest.raises(config.UnsafeConfigFile, match="not to you or root"):
        config.load(p, environ={})


@root_only
def test_a_folder_owned_by_another_user_is_refused(paths: config.Paths) -> None:
    target = user_file(paths, b'username = "alice"\n')
    os.chown(paths.config_dir, OTHER_UID, -1)
    with pytest.raises(config.UnsafeConfigFile) as info:
        config.load(paths, environ={})
    assert f"its folder {paths.config_dir} belongs to" in str(info.value)
    assert str(target) in str(info.value)


@root_only
def test_a_system_layer_owned_by_another_user_is_ignored_with_a_warning(
    paths: config.Paths, caplog: pytest.LogCaptureFixture
) -> None:
    system = system_file(paths, 'server_url = "https://evil.example"\n')
    os.chown(system, OTHER_UID, -1)
    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        cfg = config.load(paths, environ={})
    assert cfg.server_url == ""
    assert any(f"sudo chown root {system}" in w for w in warnings(caplog)), warnings(caplog)
