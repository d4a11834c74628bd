"""Start at login: the XDG entry for real in a temporary folder, the macOS plist's content."""

from __future__ import annotations

import configparser
import plistlib
import shlex
from pathlib import Path

import pytest

from app.core.autostart import (
    LaunchAgentAutostart,
    WindowsRunAutostart,
    XdgAutostart,
    for_platform,
    launch_command,
)
from app.core.errors import AutostartError


def test_xdg_entry_written_and_removed(tmp_path: Path) -> None:
    command = ["/opt/Tray Notifier/tray-notifier", "--log-level", "INFO"]
    auto = XdgAutostart(command, config_home=tmp_path)
    assert not auto.is_enabled()
    auto.set_enabled(True)
    assert auto.is_enabled()
    assert auto.path == tmp_path / "autostart" / "tray-notifier.desktop"
    entry = configparser.ConfigParser(interpolation=None)
    entry.read(auto.path, encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Name"] == "Tray Notifier"
    assert shlex.split(section["Exec"]) == command  # quoted per the spec, spaces kept
    auto.set_enabled(True)  # idempotent
    auto.set_enabled(False)
    assert not auto.is_enabled()
    auto.set_enabled(False)  # idempotent
    assert not list((tmp_path / "autostart").iterdir())


def test_xdg_uses_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    auto = for_platform(["tray-notifier"], platform="linux")
    assert isinstance(auto, XdgAutostart)
    auto.set_enabled(True)
    assert (tmp_path / "cfg" / "autostart" / "tray-notifier.desktop").is_file()


def test_unwritable_folder_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    auto = XdgAutostart(["x"], config_home=blocker)
    with pytest.raises(AutostartError, match="cannot write") as info:
        auto.set_enabled(True)
    assert "turn off Start at login" in str(info.value)  # says what to do


def test_launch_agent_plist(tmp_path: Path) -> None:
    auto = LaunchAgentAutostart(["/Applications/Tray Notifier.app/x"], agents_dir=tmp_path)
    auto.set_enabled(True)
    data = plistlib.loads(auto.path.read_bytes())
    assert data["ProgramArguments"] == ["/Applications/Tray Notifier.app/x"]
    assert data["RunAtLoad"] is True
    assert data["Label"] == auto.label
    auto.set_enabled(False)
    assert not auto.is_enabled()


def test_platform_choice() -> None:
    assert isinstance(for_platform(["x"], platform="win32"), WindowsRunAutostart)
    assert isinstance(for_platform(["x"], platform="darwin"), LaunchAgentAutostart)
    assert launch_command()[-2:] == ["-m", "app"]
