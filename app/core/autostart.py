"""Start at login, behind one small interface, for Linux, Windows and macOS.

- Linux (and other XDG desktops): ``$XDG_CONFIG_HOME/autostart/tray-notifier.desktop``.
- Windows: the ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`` value.
- macOS: ``~/Library/LaunchAgents/<app id>.plist`` with ``RunAtLoad``.

:func:`for_platform` picks the one for this system; each takes the command to start as a list.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Protocol

from app import APP_ID, APP_NAME
from app.core.errors import AutostartError as AutostartError  # its home is the error tree

_FIX = "Check that you may write there, or turn off Start at login in the settings."


class Autostart(Protocol):
    def is_enabled(self) -> bool: ...
    def set_enabled(self, enabled: bool) -> None: ...


def launch_command() -> list[str]:
    """The command that starts this program: the frozen binary, or ``python -m app``."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "app"]


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise AutostartError(f"cannot write {path}: {exc.strerror or exc}. {_FIX}") from exc


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        raise AutostartError(
            f"cannot remove {path}: {exc.strerror or exc}. Check that you may change that "
            "folder, or remove the file yourself."
        ) from exc


class XdgAutostart:
    """An XDG autostart entry (freedesktop Desktop Application Autostart specification)."""

    def __init__(self, command: list[str], *, config_home: Path | None = None) -> None:
        if config_home is None:
            env = os.environ.get("XDG_CONFIG_HOME", "")
            config_home = Path(env) if env else Path.home() / ".config"
        self.path = config_home / "autostart" / f"{APP_ID}.desktop"
        self._command = command

    def is_enabled(self) -> bool:
        return self.path.is_file()

    def set_enabled(self, enabled: bool) -> None:
        if not enabled:
            _remove(self.path)
            return
        exec_line = " ".join(_desktop_quote(arg) for arg in self._command)
        text = (
            "[Desktop Entry]\n"
            "Type=Application\n"
            f"Name={APP_NAME}\n"
            "Comment=Organisation announcements in the system tray\n"
            f"Exec={exec_line}\n"
            f"Icon={APP_ID}\n"
            "Terminal=false\n"
            "X-GNOME-Autostart-enabled=true\n"
        )
        _write(self.path, text.encode("utf-8"))


def _desktop_quote(arg: str) -> str:
    """Quote one Exec argument per the Desktop Entry specification."""
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`%"):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`").replace("$", "\\$")
    return '"' + escaped.replace("%", "%%") + '"'


class LaunchAgentAutostart:
    """A per-user launchd agent that runs the program at login (macOS)."""

    def __init__(self, command: list[str], *, agents_dir: Path | None = None) -> None:
        agents_dir = agents_dir or Path.home() / "Library" / "LaunchAgents"
        self.label = f"org.{APP_ID.replace('-', '')}.{APP_ID}"
        self.path = agents_dir / f"{self.label}.plist"
        self._command = command

    def is_enabled(self) -> bool:
        return self.path.is_file()

    def set_enabled(self, enabled: bool) -> None:
        if not enabled:
            _remove(self.path)
            return
        import plistlib  # macOS only: not loaded (with the XML parser) elsewhere

        plist = {
            "Label": self.label,
            "ProgramArguments": self._command,
            "RunAtLoad": True,
            "ProcessType": "Interactive",
        }
        _write(self.path, plistlib.dumps(plist))


def _winreg() -> Any:
    """The Windows registry module (imported lazily: it exists on Windows only)."""
    return importlib.import_module("winreg")


class WindowsRunAutostart:
    """The current user's ``Run`` registry value (Windows)."""

    KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"

    def __init__(self, command: list[str]) -> None:
        self._value = " ".join(f'"{a}"' if " " in a else a for a in command)

    def is_enabled(self) -> bool:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, self.KEY) as key:
                winreg.QueryValueEx(key, APP_NAME)
        except FileNotFoundError:
            return False
        return True

    def set_enabled(self, enabled: bool) -> None:
        winreg = _winreg()
        try:
            with winreg.CreateKey(winreg.HKEY_CURRENT_USER, self.KEY) as key:
                if enabled:
                    winreg.SetValueEx(key, APP_NAME, 0, winreg.REG_SZ, self._value)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        winreg.DeleteValue(key, APP_NAME)
        except OSError as exc:
            raise AutostartError(f"cannot change HKCU\\{self.KEY}: {exc}. {_FIX}") from exc


def for_platform(command: list[str] | None = None, *, platform: str = sys.platform) -> Autostart:
    """The start-at-login mechanism of this system, for ``command`` (default: this program)."""
    cmd = command or launch_command()
    if platform == "win32":
        return WindowsRunAutostart(cmd)
    if platform == "darwin":
        return LaunchAgentAutostart(cmd)
    return XdgAutostart(cmd)
