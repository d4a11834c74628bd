"""All configuration in one typed module.

Sources, later ones winning:
1. built-in defaults (the dataclasses below);
2. the system-wide file IT pre-sets: ``config.toml`` next to the frozen binary, then the OS's
   site config folder (Linux ``/etc/xdg/tray-notifier/config.toml``);
3. the user's file, written by the Settings window (``user_config_dir/config.toml``);
4. environment variables (``TRAY_NOTIFIER_SERVER``, ``SSE_HEARTBEAT_TIMEOUT``).

``TRAY_NOTIFIER_HOME`` moves every folder (config, data, logs) under one directory: tests and the
self-test use it so they never touch the real profile. Tokens never live here: only the keyring
holds them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any

import platformdirs

from app import APP_ID
from app.core.model import Priority

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A configuration file or variable holds a value we cannot use; the message says which."""


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Server paths, as templates, so the tray works against an existing Spring-style backend."""

    login: str = "/auth/login"
    refresh: str = "/auth/refresh"
    logout: str = "/auth/logout"
    connect: str = "/sse/connect/{user_id}"
    close: str = "/sse/close/{user_id}"
    close_method: str = "POST"
    announcements: str = "/announcements"
    ack: str = "/announcements/{id}/ack"


@dataclass(frozen=True, slots=True)
class StreamSettings:
    heartbeat_timeout: float = 45.0  # no byte for this long: drop and reconnect
    connect_timeout: float = 10.0
    max_event_bytes: int = 1024 * 1024
    send_last_event_id_query: bool = False  # also send lastEventId=... (event-source-polyfill)
    ca_bundle: str = ""  # PEM file of a private certificate authority; verification stays on


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # spans midnight


@dataclass(frozen=True, slots=True)
class Config:
    server_url: str = ""
    username: str = ""
    endpoints: Endpoints = field(default_factory=Endpoints)
    stream: StreamSettings = field(default_factory=StreamSettings)
    # tray
    start_at_login: bool = False
    do_not_disturb: bool = False
    quiet_hours: QuietHours | None = None
    toast_min_priority: Priority = Priority.LOW  # priorities below this do not pop up
    language: str = ""  # "" follows the system; "en" or "zh_CN"
    retention_days: int = 90
    log_level: str = "INFO"

    def with_changes(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------- folders


@dataclass(frozen=True, slots=True)
class Paths:
    config_dir: Path
    data_dir: Path
    log_dir: Path
    system_config_files: tuple[Path, ...]

    @property
    def user_config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @classmethod
    def default(cls) -> Paths:
        home = os.environ.get("TRAY_NOTIFIER_HOME")
        if home:
            root = Path(home)
            return cls(root / "config", root / "data", root / "logs", (root / "system.toml",))
        dirs = platformdirs.PlatformDirs(APP_ID, appauthor=False)
        system: list[Path] = []
        if getattr(sys, "frozen", False):
            system.append(Path(sys.executable).resolve().parent / "config.toml")
        system.append(Path(dirs.site_config_dir) / "config.toml")
        return cls(
            Path(dirs.user_config_dir),
            Path(dirs.user_data_dir),
            Path(dirs.user_log_dir),
            tuple(system),
        )


# ---------------------------------------------------------------- loading and saving


def load(paths: Paths | None = None, *, environ: dict[str, str] | None = None) -> Config:
    paths = paths or Paths.default()
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    for f in (*paths.system_config_files, paths.user_config_file):
        _deep_update(merged, _read_toml(f))
    if env.get("TRAY_NOTIFIER_SERVER"):
        merged["server_url"] = env["TRAY_NOTIFIER_SERVER"]
    if env.get("SSE_HEARTBEAT_TIMEOUT"):
        merged.setdefault("stream", {})["heartbeat_timeout"] = env["SSE_HEARTBEAT_TIMEOUT"]
    return from_dict(merged)


def save_user(config: Config, paths: Paths | None = None) -> Path:
    """Write the user's settings (atomically). Returns the file written."""
    paths = paths or Paths.default()
    target = paths.user_config_file
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(dumps(to_dict(config)), encoding="utf-8")
    tmp.replace(target)
    return target


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}. Fix or remove it.") from exc


def _deep_update(into: dict[str, Any], new: dict[str, Any]) -> None:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _deep_update(into[k], v)
        else:
            into[k] = v


def _coerce(name: str, typ: Any, value: Any) -> Any:
    try:
        if typ is bool or typ == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is float or typ == "float":
            v = float(value)
            if not v > 0:
                raise ValueError(value)
            return v
        if typ is int or typ == "int":
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if typ is str or typ == "str":
            if not isinstance(value, str):
                raise ValueError(value)
            return value
    except (TypeError, ValueError):
        raise ConfigError(f"config value {name} = {value!r} is not a valid {typ}") from None
    raise ConfigError(f"config value {name}: unsupported type {typ}")


def _section(cls: Any, name: str, data: Any) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section [{name}] must be a table")
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in data.items():
        if k not in known:
            log.warning("unknown config key %s.%s ignored", name, k)
            continue
        kwargs[k] = _coerce(f"{name}.{k}", known[k].type, v)
    return cls(**kwargs)


def _parse_hhmm(name: str, value: Any) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"config value {name} = {value!r} must be a time like 22:00") from None


def from_dict(data: dict[str, Any]) -> Config:
    kwargs: dict[str, Any] = {}
    simple = {
        "server_url",
        "username",
        "start_at_login",
        "do_not_disturb",
        "language",
        "retention_days",
        "log_level",
    }
    types = {f.name: f.type for f in dataclasses.fields(Config)}
    for k, v in data.items():
        if k in simple:
            kwargs[k] = _coerce(k, types[k], v)
        elif k == "endpoints":
            kwargs[k] = _section(Endpoints, k, v)
        elif k == "stream":
            kwargs[k] = _section(StreamSettings, k, v)
        elif k == "quiet_hours":
            if v in ({}, None, ""):
                continue
            if not isinstance(v, dict) or "start" not in v or "end" not in v:
                raise ConfigError('[quiet_hours] needs start and end, like start = "22:00"')
            kwargs[k] = QuietHours(
                _parse_hhmm("quiet_hours.start", v["start"]),
                _parse_hhmm("quiet_hours.end", v["end"]),
            )
        elif k == "toast_min_priority":
            try:
                kwargs[k] = Priority.parse(v)
            except ValueError as exc:
                raise ConfigError(f"config value toast_min_priority: {exc}") from None
        else:
            log.warning("unknown config key %s ignored", k)
    cfg = Config(**kwargs)
    if cfg.retention_days < 1:
        raise ConfigError("config value retention_days must be at least 1")
    if cfg.server_url and not cfg.server_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"server_url {cfg.server_url!r} must start with https:// (or http:// on loopback)"
        )
    return cfg


def to_dict(config: Config) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        if isinstance(v, Endpoints | StreamSettings):
            out[f.name] = dataclasses.asdict(v)
        elif isinstance(v, QuietHours):
            out[f.name] = {"start": v.start.strftime("%H:%M"), "end": v.end.strftime("%H:%M")}
        elif isinstance(v, Priority):
            out[f.name] = v.value
        elif v is not None:
            out[f.name] = v
    return out


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dumps(data: dict[str, Any]) -> str:
    """A small TOML writer for our flat settings (scalars and one level of tables)."""
    lines = ["# Tray Notifier user settings (written by the Settings window)"]
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for k, v in data.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {_toml_value(v)}")
    for name, table in tables.items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"
