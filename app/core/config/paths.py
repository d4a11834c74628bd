"""Where the tray keeps its files: the user's folders and the system layers' files.

``TRAY_NOTIFIER_HOME`` moves the user's folders (config, data, logs) under one directory; the
system layers still apply. ``TRAY_NOTIFIER_SYSTEM_CONFIG`` names the system layers instead of
the real ones, so that tests never read the real ``/etc``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app import APP_ID

#: moves the user's folders (config, data, logs) under one directory
HOME_VARIABLE = "TRAY_NOTIFIER_HOME"
#: names the system layers instead of the real ones (``os.pathsep`` between files; empty: none)
SYSTEM_CONFIG_VARIABLE = "TRAY_NOTIFIER_SYSTEM_CONFIG"


@dataclass(frozen=True, slots=True)
class Paths:
    """Where the tray keeps its files. Tests build one directly under ``tmp_path`` (an empty
    ``system_config_files`` reads no system layer), or set ``TRAY_NOTIFIER_HOME`` and
    ``TRAY_NOTIFIER_SYSTEM_CONFIG`` before :meth:`default`."""

    config_dir: Path
    data_dir: Path
    log_dir: Path
    system_config_files: tuple[Path, ...]  # the system layers, lowest first

    @property
    def user_config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @classmethod
    def default(cls, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        home = env.get(HOME_VARIABLE)
        if home:
            root = Path(home)
            config_dir, data_dir, log_dir = root / "config", root / "data", root / "logs"
        else:
            dirs = platformdirs.PlatformDirs(APP_ID, appauthor=False)
            config_dir = Path(dirs.user_config_dir)
            data_dir = Path(dirs.user_data_dir)
            log_dir = Path(dirs.user_log_dir)
        return cls(config_dir, data_dir, log_dir, system_config_files(env))


def system_config_files(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The system layers, lowest first: ``config.toml`` next to the frozen binary, then the
    site config folder; or the files ``TRAY_NOTIFIER_SYSTEM_CONFIG`` names when it is set."""
    env = os.environ if environ is None else environ
    named = env.get(SYSTEM_CONFIG_VARIABLE)
    if named is not None:
        return tuple(Path(p) for p in named.split(os.pathsep) if p.strip())
    system: list[Path] = []
    if getattr(sys, "frozen", False):
        system.append(Path(sys.executable).resolve().parent / "config.toml")
    system.append(Path(platformdirs.site_config_dir(APP_ID, appauthor=False)) / "config.toml")
    return tuple(system)
