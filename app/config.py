"""All configuration in one typed module.

Layers, later ones winning:

1. built-in defaults (the dataclasses below);
2. the system layers IT writes: ``config.toml`` next to the frozen binary, then the OS's site
   config folder (Linux ``/etc/xdg/tray-notifier/config.toml``). ``TRAY_NOTIFIER_SYSTEM_CONFIG``
   names other files instead (separated by ``os.pathsep``; empty: none), so that tests never
   read the real ``/etc``;
3. the user's file (``user_config_dir/config.toml``), written by the Settings window. It holds
   only what the user changed, the values that differ from layers 1 and 2, so that a later
   change by IT reaches everyone who did not change that setting themselves;
4. environment variables (``TRAY_NOTIFIER_SERVER``, ``SSE_HEARTBEAT_TIMEOUT``): for this run
   only, never written to the user's file.

A system layer may lock settings: ``locked = ["server_url", "stream.ca_bundle"]`` (a section
name such as ``"endpoints"`` locks the whole section). The user's value of a locked setting is
ignored with a warning, is never saved, and the Settings window shows it read-only. The
environment still applies to a locked setting: whoever launches the program sets it.

Every layer's file is read with care (issue 18): one that another local user could have written
(POSIX modes and owners, as ssh's StrictModes) stops the program when it is the user's own and
is ignored with a warning when it is a system layer; one that is not a settings file (binary,
huge, nested beyond tomllib's reach) is a :class:`ConfigError` naming the file, the line and the
key. Every number setting has a range (:data:`RANGES`).

``TRAY_NOTIFIER_HOME`` moves the user's folders (config, data, logs) under one directory; the
system layers still apply. Tokens never live here: only the keyring holds them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shlex
import ssl
import stat
import sys
import tomllib
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import platformdirs

from app import APP_ID
from app.core import pointer
from app.core.errors import ConfigError as ConfigError  # its home is the error tree
from app.core.files import write_private
from app.core.model import Priority

log = logging.getLogger(__name__)

#: the environment variables that set one setting each, for this run only (never saved)
ENVIRONMENT: Mapping[str, str] = {
    "TRAY_NOTIFIER_SERVER": "server_url",
    "SSE_HEARTBEAT_TIMEOUT": "stream.heartbeat_timeout",
}
#: moves the user's folders (config, data, logs) under one directory
HOME_VARIABLE = "TRAY_NOTIFIER_HOME"
#: names the system layers instead of the real ones (``os.pathsep`` between files; empty: none)
SYSTEM_CONFIG_VARIABLE = "TRAY_NOTIFIER_SYSTEM_CONFIG"
#: the key of the lock list in a system layer
LOCKED_KEY = "locked"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Server paths, as templates, so the tray works against an existing Spring-style backend."""

    login: str = "/auth/login"
    refresh: str = "/auth/refresh"
    logout: str = "/auth/logout"
    connect: str = "/sse/connect/{user_id}"
    close: str = "/sse/close/{user_id}"
    close_method: str = "POST"
    announcements: str = "/announcements"  # GET: catch-up and history; POST: publish
    ack: str = "/announcements/{id}/ack"


@dataclass(frozen=True, slots=True)
class StreamSettings:
    heartbeat_timeout: float = 45.0  # no byte for this long: drop and reconnect
    connect_timeout: float = 10.0
    max_event_bytes: int = 8 * 1024 * 1024  # data bytes of one event; larger ones are dropped
    send_last_event_id_query: bool = False  # also send lastEventId=... (event-source-polyfill)
    ca_bundle: str = ""  # PEM file of a private certificate authority; verification stays on


AUTH_STYLES = ("companion", "token")
BODY_FORMATS = ("text", "html")


@dataclass(frozen=True, slots=True)
class OkTest:
    """A login reply is a success only when the JSON Pointer ``pointer`` finds ``value``."""

    pointer: str
    value: Any


def _default_login_body() -> dict[str, Any]:
    return {"username": "{username}", "password": "{password}"}


@dataclass(frozen=True, slots=True, eq=True)
class AuthProfile:
    """``[auth]``: how to log in. ``companion`` (our ``/auth/*`` API, the ``[endpoints]``
    login, refresh and logout paths) or ``token``: any login endpoint that answers JSON with a
    token, read with JSON Pointers (see docs/existing-backend.md)."""

    style: str = "companion"
    login_path: str = "/login"
    login_body: dict[str, Any] = field(default_factory=_default_login_body)
    token: str = "/token"  # noqa: S105 - a JSON Pointer to the access token, not a secret
    ok: OkTest | None = None  # the reply is a success only when this holds
    message: str = ""  # JSON Pointer to the backend's own words when login fails
    user_info_path: str = ""  # a GET with the token whose reply holds the user id
    user_id: str = ""  # JSON Pointer to the user id; empty: the user name
    relogin: bool = False  # on 401 log in again with the password kept in the keyring

    __hash__ = None  # type: ignore[assignment]  # holds a table

    def describe(self) -> str:
        """One line for people: which server type is configured."""
        if self.style == "token":
            return f"token login ({self.login_path})"
        return "companion"


@dataclass(frozen=True, slots=True)
class PayloadProfile:
    """``[payload]``: JSON Pointers into an event's data; all empty: the companion format."""

    id: str = ""
    title: str = ""
    body: str = ""
    priority: str = ""
    priorities: dict[str, Priority] = field(default_factory=dict)  # backend value -> ours
    url: str = ""
    body_format: str = "text"  # "text" or "html": turned into plain text, never rendered

    __hash__ = None  # type: ignore[assignment]  # holds a table

    @property
    def is_set(self) -> bool:
        """True when any pointer is set (or HTML bodies): the profile reads the data."""
        pointers = (self.id, self.title, self.body, self.priority, self.url)
        return any(pointers) or self.body_format != "text"


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
    """The settings. Each field is a setting, except those marked ``origin`` in their metadata:
    they say where values came from and are never written to a file."""

    server_url: str = ""
    username: str = ""
    endpoints: Endpoints = field(default_factory=Endpoints)
    stream: StreamSettings = field(default_factory=StreamSettings)
    auth: AuthProfile = field(default_factory=AuthProfile)
    payload: PayloadProfile = field(default_factory=PayloadProfile)
    # tray
    start_at_login: bool = False
    do_not_disturb: bool = False
    quiet_hours: QuietHours | None = None
    toast_min_priority: Priority = Priority.LOW  # priorities below this do not pop up
    # a toast waits this long for more arrivals, so a burst gives one summary (urgent: never)
    toast_settle_ms: int = 300
    language: str = ""  # "" follows the system; "en" or "zh_CN"
    retention_days: int = 90
    log_level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR or CRITICAL
    # where values came from
    locked: frozenset[str] = field(default=frozenset(), metadata={"origin": True})
    """Settings IT locked in a system layer: dotted keys (``stream.ca_bundle``) or sections."""
    environment: frozenset[str] = field(default=frozenset(), metadata={"origin": True})
    """Settings an environment variable set for this run (dotted keys)."""

    def with_changes(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def is_locked(self, key: str) -> bool:
        """True when IT locked the setting ``key`` (like ``stream.ca_bundle``) or its section."""
        return _lock_for(self.locked, key) is not None

    def set_by_environment(self, key: str) -> str | None:
        """The environment variable that set ``key`` for this run, or None."""
        if key not in self.environment:
            return None
        return next((var for var, k in ENVIRONMENT.items() if k == key), None)


# ---------------------------------------------------------------- folders


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


# ---------------------------------------------------------------- the settings, by dotted key


@dataclass(frozen=True, slots=True)
class _Setting:
    key: str  # "server_url", "stream.ca_bundle"
    parse: Callable[[Any], Any]  # a file's or variable's value -> typed; ValueError says why
    dump: Callable[[Any], Any]  # typed -> a TOML value


def _same(v: Any) -> Any:
    return v


def _parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    text = str(v).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _parse_float(v: Any) -> float:
    try:
        if isinstance(v, bool):
            raise ValueError
        number = float(v)
    except OverflowError:  # an integer beyond any float: its range check says so
        return float("inf")
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None
    return number


def _parse_int(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and re.fullmatch(r"\s*[+-]?\d{1,30}\s*", v):
        return int(v)
    raise ValueError("must be a whole number")


@dataclass(frozen=True, slots=True)
class _Range:
    """The values a number setting may take: ``low`` to ``high``, both included."""

    low: int
    high: int
    unit: str  # what the number counts, for the message

    def check(self, v: float) -> float:
        # NaN fails every comparison, infinity the upper one
        if not self.low <= v <= self.high:
            raise ValueError(f"must be from {self.low} to {self.high} ({self.unit})")
        return v


#: every number setting's range: a number setting missing here fails at import. Zero,
#: negative, NaN, infinite and absurdly large values make no sense for any of them (a huge
#: max_event_bytes once meant "no limit").
RANGES: Mapping[str, _Range] = {
    "stream.heartbeat_timeout": _Range(1, 86_400, "seconds: up to a day"),
    "stream.connect_timeout": _Range(1, 300, "seconds"),
    "stream.max_event_bytes": _Range(1024, 64 * 1024 * 1024, "bytes: 1 KiB to 64 MiB"),
    "toast_settle_ms": _Range(0, 10_000, "milliseconds"),
    "retention_days": _Range(1, 3650, "days: up to ten years"),
}


def _parse_str(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError('must be text in quotes, like "value"')
    return v


def _parse_priority(v: Any) -> Priority:
    try:
        return Priority.parse(v)
    except ValueError:
        names = ", ".join(p.value for p in Priority)
        raise ValueError(f"is not a priority: use one of {names}") from None


def _parse_time(name: str, v: Any) -> time:
    try:
        return time.fromisoformat(str(v))
    except ValueError:
        raise ValueError(f"{name} = {v!r} must be a time like 22:00") from None


def _parse_quiet(v: Any) -> QuietHours | None:
    if v in ({}, None, ""):
        return None  # off (a user who turned off the quiet hours IT set)
    if not isinstance(v, dict) or "start" not in v or "end" not in v:
        raise ValueError('needs start and end, like start = "22:00" and end = "07:00"')
    return QuietHours(
        _parse_time("quiet_hours.start", v["start"]), _parse_time("quiet_hours.end", v["end"])
    )


def _dump_quiet(v: QuietHours | None) -> dict[str, str]:
    if v is None:
        return {}
    return {"start": v.start.strftime("%H:%M"), "end": v.end.strftime("%H:%M")}


def _parse_table(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise ValueError('must be a table, like { username = "{username}" }')
    return dict(v)


def _parse_ok(v: Any) -> OkTest | None:
    if v in ({}, None, ""):
        return None
    if not isinstance(v, dict) or set(v) != {"pointer", "value"}:
        raise ValueError(
            'must be a table of pointer and value, like { pointer = "/code", value = 200 }'
        )
    try:
        pointer.parse(v["pointer"])
    except ValueError as exc:
        raise ValueError(f"has a pointer that {exc}") from None
    return OkTest(v["pointer"], v["value"])


def _dump_ok(v: OkTest | None) -> dict[str, Any]:
    return {} if v is None else {"pointer": v.pointer, "value": v.value}


def _parse_priorities(v: Any) -> dict[str, Priority]:
    if not isinstance(v, dict):
        raise ValueError('must be a table of the backend\'s values, like { "1" = "urgent" }')
    return {str(k): _parse_priority(p) for k, p in v.items()}


def _check_pointer(v: str) -> str:
    pointer.parse(v)
    return v


def _check_token_pointer(v: str) -> str:
    if not v:
        raise ValueError('must name where the token is, like "/token"')
    return _check_pointer(v)


def _check_path(v: str) -> str:
    if v and not v.startswith("/"):
        raise ValueError(f'must be a path starting with "/", like "/{v}"')
    return v


def _one_of(*allowed: str) -> Callable[[str], str]:
    def check(v: str) -> str:
        if v not in allowed:
            raise ValueError(f"is not known: use one of {', '.join(allowed)}")
        return v

    return check


def _check_server_url(v: str) -> str:
    if v and not v.startswith(("http://", "https://")):
        raise ValueError("must start with https:// (or http:// on loopback)")
    return v


def _check_log_level(v: str) -> str:
    level = v.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"is not a log level: use one of {', '.join(LOG_LEVELS)}")
    return level


#: checks on one setting after its type's parser
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "server_url": _check_server_url,
    "log_level": _check_log_level,
    "auth.style": _one_of(*AUTH_STYLES),
    "auth.login_path": _check_path,
    "auth.token": _check_token_pointer,
    "auth.message": _check_pointer,
    "auth.user_info_path": _check_path,
    "auth.user_id": _check_pointer,
    "payload.id": _check_pointer,
    "payload.title": _check_pointer,
    "payload.body": _check_pointer,
    "payload.priority": _check_pointer,
    "payload.url": _check_pointer,
    "payload.body_format": _one_of(*BODY_FORMATS),
}
#: sections IT writes as a profile: an unknown key there stops (a misspelt pointer would
#: otherwise lose every announcement's title silently)
_STRICT_SECTIONS = frozenset({"auth", "payload"})


def _kind(key: str, typ: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    if typ is bool:
        return _parse_bool, _same
    if typ in (float, int) and key not in RANGES:
        raise TypeError(f"config setting {key}: a number needs its range in RANGES (app/config.py)")
    if typ is float:
        return _parse_float, _same
    if typ is int:
        return _parse_int, _same
    if typ is str:
        return _parse_str, _same
    if typ is Priority:
        return _parse_priority, lambda p: p.value
    if typ == QuietHours | None:
        return _parse_quiet, _dump_quiet
    if typ == dict[str, Any]:
        return _parse_table, _same
    if typ == OkTest | None:
        return _parse_ok, _dump_ok
    if typ == dict[str, Priority]:
        return _parse_priorities, lambda m: {k: p.value for k, p in m.items()}
    # a new field of a type nobody taught us: fail at import, never drop the setting silently
    raise TypeError(f"config setting {key}: no parser for {typ!r}; add one in app/config.py")


def _with_check(key: str, parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The parser of ``key`` followed by its range (numbers) and its own check, if any."""
    steps = [parse]
    if key in RANGES:
        steps.append(RANGES[key].check)
    if key in _CHECKS:
        steps.append(_CHECKS[key])
    if len(steps) == 1:
        return parse

    def parse_and_check(v: Any) -> Any:
        for step in steps:
            v = step(v)
        return v

    return parse_and_check


def _derive() -> tuple[dict[str, _Setting], dict[str, type[Any]]]:
    """Every setting, derived from the dataclasses: a field whose type is a dataclass with a
    default is a ``[section]``, every other field one setting."""
    settings: dict[str, _Setting] = {}
    sections: dict[str, type[Any]] = {}
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if f.metadata.get("origin"):
            continue
        typ = hints[f.name]
        if isinstance(typ, type) and dataclasses.is_dataclass(typ):
            sections[f.name] = typ
            section_hints = typing.get_type_hints(typ)
            for sf in dataclasses.fields(typ):
                key = f"{f.name}.{sf.name}"
                parse, dump = _kind(key, section_hints[sf.name])
                settings[key] = _Setting(key, _with_check(key, parse), dump)
        else:
            parse, dump = _kind(f.name, typ)
            settings[f.name] = _Setting(f.name, _with_check(f.name, parse), dump)
    return settings, sections


_SETTINGS, _SECTIONS = _derive()


def setting_keys() -> tuple[str, ...]:
    """Every setting's dotted key (``server_url``, ``stream.ca_bundle``), in file order."""
    return tuple(_SETTINGS)


def _lock_for(locked: frozenset[str], key: str) -> str | None:
    """The lock entry covering ``key`` (the key itself or its section), or None."""
    if key in locked:
        return key
    section = key.partition(".")[0]
    return section if section in locked else None


# ---------------------------------------------------------------- one layer


@dataclass(frozen=True, slots=True)
class _Origin:
    where: str  # "/etc/xdg/tray-notifier/config.toml", "environment variable X"
    fix: str  # what to do about a bad value


def _file_origin(path: Path) -> _Origin:
    return _Origin(str(path), f"Fix the value in {path}, or remove the line to use the default.")


def _env_origin(variable: str) -> _Origin:
    return _Origin(f"environment variable {variable}", f"Fix or unset {variable}.")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _parse_value(key: str, value: Any, origin: _Origin) -> Any:
    try:
        return _SETTINGS[key].parse(value)
    except ValueError as exc:
        raise ConfigError(f"{origin.where}: {key} = {_show(value)} {exc}. {origin.fix}") from None


def _walk(raw: Mapping[str, Any], origin: _Origin, *, warn: bool) -> Iterator[tuple[str, Any]]:
    """The known settings of one layer as (dotted key, value as written); warns about unknown
    keys (naming the file), skips the lock list (the caller reads it)."""
    for k, v in raw.items():
        if k == LOCKED_KEY:
            continue
        if k in _SECTIONS:
            if not isinstance(v, dict):
                raise ConfigError(
                    f"{origin.where}: {k} must be a table: write [{k}] on a line of its own, "
                    f"with its settings below it. {origin.fix}"
                )
            items = [(f"{k}.{sk}", sv) for sk, sv in v.items()]
        else:
            items = [(k, v)]
        for key, value in items:
            if key not in _SETTINGS and k in _STRICT_SECTIONS:
                known = ", ".join(n.partition(".")[2] for n in _SETTINGS if n.startswith(k + "."))
                raise ConfigError(
                    f"{origin.where}: unknown setting {key} in the [{k}] profile (known: "
                    f"{known}). {origin.fix}"
                )
            if key not in _SETTINGS:
                if warn:
                    log.warning(
                        "%s: unknown setting %s ignored (misspelt? The README lists them)",
                        origin.where,
                        key,
                    )
                continue
            if key == "quiet_hours" and isinstance(value, dict) and warn:
                for extra in value.keys() - {"start", "end"}:
                    log.warning("%s: unknown setting quiet_hours.%s ignored", origin.where, extra)
            yield key, value


def _parse_locks(value: Any, origin: _Origin, *, warn: bool) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"{origin.where}: {LOCKED_KEY} must be a list of setting names, like "
            f'{LOCKED_KEY} = ["server_url", "stream.ca_bundle"]. {origin.fix}'
        )
    known = set()
    for name in value:
        if name in _SETTINGS or name in _SECTIONS:
            known.add(name)
        elif warn:
            log.warning(
                "%s: %s names an unknown setting %s; ignored", origin.where, LOCKED_KEY, name
            )
    return frozenset(known)


# ---------------------------------------------------------------- reading a layer's file

#: a settings file is a few KiB: a larger file is not one (and is not read into memory)
MAX_FILE_BYTES = 1024 * 1024
#: lists and tables nest at most this deep, and a dotted key has at most this many parts:
#: tomllib recurses once per level (RecursionError) and needs memory quadratic in the parts
MAX_NESTING = 32
#: opening never blocks (a FIFO planted as config.toml) nor takes a terminal
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)


class UnsafeConfigFile(ConfigError):
    """A layer's file that another local user could have written (POSIX): it is never read.
    The user's own file stops the program; a system layer is ignored with a warning."""


def _read_toml(path: Path, *, system: bool = False) -> dict[str, Any]:
    """The table in the TOML file ``path``; {} when there is no such file.

    Raises :class:`UnsafeConfigFile` when another user could have written it, and ConfigError,
    naming the file (and the key, when there is one), for what is not a settings file: not a
    regular file, too large, not UTF-8, not TOML, nested too deeply, a number too long.
    ``system``: IT's file (the messages say how IT fixes it).
    """
    data = _read_file(path, system=system)
    if data is None:
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _unreadable(
            path, f"line {line} holds bytes that are not UTF-8 text (is it a binary file?)"
        ) from None
    trouble = _beyond_limits(text)
    if trouble:
        raise _unreadable(path, trouble)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _unreadable(path, str(exc)) from None
    except (RecursionError, ValueError):  # the scan above catches these first
        raise _unreadable(path, "it is nested too deeply or holds a number too long") from None


def _unreadable(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"cannot read the config file {path}: {why}. Fix it (settings are UTF-8 text in TOML "
        "format, as the README shows), or move it aside to do without its settings."
    )


def _read_file(path: Path, *, system: bool) -> bytes | None:
    """The bytes of ``path`` (None: no such file), once it is known to be a regular file, of
    a settings file's size, that no other user could have written."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        _refuse_exposed(path, st, system=system)
        if not stat.S_ISREG(st.st_mode):
            raise _unreadable(path, "it is not a regular file")
        data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _unreadable(
            path, f"it is larger than {MAX_FILE_BYTES // 1024} KiB, far more than settings take"
        )
    return data


@dataclass(frozen=True, slots=True)
class _Exposure:
    """Why another local user could have written a file, and the fix."""

    reason: str  # "every user of this computer may change it"
    fix: str  # a command: "chmod o-w /etc/xdg/tray-notifier/config.toml"
    foreign_file: bool  # the file itself belongs to another user


def _exposure(path: Path, st: os.stat_result) -> _Exposure | None:
    """Why a user other than us and root could have written ``path`` (``st``: its status), or
    None. As ssh's StrictModes: the file must belong to us or root and not be writable by
    others, and so must every folder above it (as written and as resolved), except that a
    sticky folder (``/tmp``) is fine, its entry (checked too) belonging to us or root. Group
    write is allowed (IT may share a folder with an admin group). POSIX only."""
    if os.name != "posix":
        return None
    trusted = {0, os.geteuid()}
    quoted = shlex.quote(str(path))
    if st.st_uid not in trusted:
        return _Exposure(
            f"it belongs to {_user_name(st.st_uid)}, not to you or root",
            f"sudo chown root {quoted}",
            foreign_file=True,
        )
    if st.st_mode & stat.S_IWOTH:
        return _Exposure("every user of this computer may change it", f"chmod o-w {quoted}", False)
    folders = dict.fromkeys([*path.absolute().parents, *path.resolve().parents])
    for folder in folders:
        try:
            fst = folder.stat()
        except OSError as exc:
            return _Exposure(
                f"its folder {folder} cannot be checked ({exc.strerror or exc})",
                f"ls -ld {shlex.quote(str(folder))}",
                False,
            )
        if fst.st_uid not in trusted:
            return _Exposure(
                f"its folder {folder} belongs to {_user_name(fst.st_uid)}, who may replace it",
                f"sudo chown root {shlex.quote(str(folder))}",
                False,
            )
        if fst.st_mode & stat.S_IWOTH and not fst.st_mode & stat.S_ISVTX:
            return _Exposure(
                f"every user of this computer may replace it: its folder {folder} is writable "
                "by all",
                f"chmod o-w {shlex.quote(str(folder))}",
                False,
            )
    return None


def _user_name(uid: int) -> str:
    try:
        import pwd  # POSIX only

        return f"user {pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"user id {uid}"


def _refuse_exposed(path: Path, st: os.stat_result, *, system: bool) -> None:
    exposed = _exposure(path, st)
    if exposed is None:
        return
    if system:
        raise UnsafeConfigFile(
            f"{path} is ignored: {exposed.reason}, so another user could change everyone's "
            "settings (and collect their passwords). Its settings and locks do not apply until "
            f"IT runs: {exposed.fix}"
        )
    fix = f"Run {exposed.fix}"
    if exposed.foreign_file:
        mine = shlex.quote(f"{path}.mine")
        quoted = shlex.quote(str(path))
        fix = f"Check what it holds, then make it yours: cp {quoted} {mine} && mv {mine} {quoted}"
    raise UnsafeConfigFile(
        f"{path} is not used: {exposed.reason}, so another user could change your settings "
        f"(and collect your password). {fix}, then start again."
    )


_TOKEN = re.compile(
    r"""(?P<space>[ \t\r]+)
      |(?P<newline>\n)
      |(?P<comment>\#[^\n]*)
      |(?P<string>\"\"\"(?:\\.|[^\\])*?\"\"\"(?!\")|'''.*?'''(?!')|"(?:\\.|[^"\\\n])*"|'[^'\n]*')
      |(?P<bare>[A-Za-z0-9_+\-.:]+)
      |(?P<open>[\[{])
      |(?P<close>[\]}])
      |(?P<equals>=)
    """,
    re.VERBOSE | re.DOTALL,
)
_DECIMAL = re.compile(r"[+-]?[0-9][0-9_]*")


def _beyond_limits(text: str) -> str | None:
    """Where a TOML text goes beyond what tomllib reads safely, in words, or None: lists and
    tables nested more than MAX_NESTING deep, a dotted key of more parts, a whole number longer
    than Python converts. A scan of the tokens (strings and comments skipped) before tomllib."""
    digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
    depth, line, pos = 0, 1, 0
    table, key, header = "", "", False
    chain: list[str] = []  # the key (or value) being read: its tokens
    parts = 0
    line_start = True
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:  # not TOML: tomllib says where
            pos, chain, parts = pos + 1, [], 0
            continue
        kind, token, pos = match.lastgroup, match.group(), match.end()
        if kind == "space":
            continue
        if kind in ("string", "bare"):
            chain.append(token)
            parts += token.count(".") if kind == "bare" else 0
            if parts >= MAX_NESTING:
                name = _clip("".join(chain))
                return f"line {line}: the key {name} has more than {MAX_NESTING} parts"
            too_long = kind == "bare" and digits and _DECIMAL.fullmatch(token)
            if too_long and sum(c.isdigit() for c in token) > digits:
                name = _dotted(table, key)
                return f"line {line}: {name} holds a number of more than {digits} digits"
            line += token.count("\n")
            line_start = False
            continue
        if kind == "open":
            header = header or (depth == 0 and line_start)
            depth += 1
            if depth > MAX_NESTING:
                return (
                    f"line {line}: {_dotted(table, key)} nests lists or tables more than "
                    f"{MAX_NESTING} deep"
                )
        elif kind == "close":
            depth = max(depth - 1, 0)
            if header and chain:
                table, key = "".join(chain), ""
            header = header and depth > 0
        elif kind == "equals" and depth == 0:
            key = "".join(chain)
        elif kind == "newline":
            line += 1
        chain, parts = [], 0
        line_start = kind == "newline" and depth == 0
    return None


def _dotted(table: str, key: str) -> str:
    """The setting a scan is in, for a message: ``auth.login_body``."""
    name = ".".join(n for n in (table, key) if n)
    return _clip(name) if name else "a value"


def _clip(name: str) -> str:
    return name if len(name) <= 60 else name[:57] + "..."


@dataclass(slots=True)
class _Stack:
    """Typed values by dotted key, with the origin of each and the locks met so far."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, _Origin] = field(default_factory=dict)
    locked: frozenset[str] = frozenset()
    lock_files: dict[str, Path] = field(default_factory=dict)

    def put(self, key: str, value: Any, origin: _Origin) -> None:
        self.values[key] = value
        self.origins[key] = origin


def _system_stack(paths: Paths, *, warn: bool) -> _Stack:
    stack = _Stack()
    for path in paths.system_config_files:
        try:
            raw = _read_toml(path, system=True)
        except UnsafeConfigFile as exc:  # IT's file: the user cannot fix it; never read it
            if warn:
                log.warning("%s", exc)
            continue
        origin = _file_origin(path)
        for key, value in _walk(raw, origin, warn=warn):
            stack.put(key, _parse_value(key, value, origin), origin)
        if LOCKED_KEY in raw:
            locks = _parse_locks(raw[LOCKED_KEY], origin, warn=warn)
            stack.locked |= locks
            for name in locks:
                stack.lock_files.setdefault(name, path)
    return stack


def _check_ca_bundle(stack: _Stack) -> None:
    """A private CA bundle must be a readable PEM file now, not a traceback at connect time."""
    value = stack.values.get("stream.ca_bundle")
    if not value:
        return
    origin = stack.origins["stream.ca_bundle"]
    path = Path(value).expanduser()
    problem = ""
    exposed: _Exposure | None = None
    if not path.exists():
        problem = "does not exist"
    elif not path.is_file():
        problem = "is not a file"
    else:
        try:
            with path.open("rb") as fh:
                exposed = _exposure(path, os.fstat(fh.fileno()))
                fh.read(1)
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(path))
        except ssl.SSLError:  # an OSError too: first
            problem = "holds no PEM certificate"
        except OSError as exc:
            problem = f"cannot be read ({exc.strerror or exc})"
    if not problem and exposed is not None:  # another user could add their own authority
        raise ConfigError(
            f"{origin.where}: stream.ca_bundle = {_show(value)} is not used: {exposed.reason}, "
            "so another user could add an authority of their own and read your password on the "
            f"way. Run {exposed.fix}, then start again."
        )
    if problem:
        raise ConfigError(
            f"{origin.where}: stream.ca_bundle = {_show(value)} {problem}. Set it to the PEM "
            "file of your organisation's certificate authority (readable by this user), or "
            "remove the line to trust the standard authorities."
        )


def _build(
    values: Mapping[str, Any],
    *,
    locked: frozenset[str] = frozenset(),
    environment: frozenset[str] = frozenset(),
) -> Config:
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    for key, value in values.items():
        section, _, name = key.partition(".")
        if name:
            sections[section][name] = value
        else:
            top[key] = value
    for name, cls in _SECTIONS.items():
        top[name] = cls(**sections[name])
    return Config(**top, locked=locked, environment=environment)


def _flatten(config: Config) -> dict[str, Any]:
    """Every setting's typed value by dotted key."""
    out: dict[str, Any] = {}
    for key in _SETTINGS:
        section, _, name = key.partition(".")
        value = getattr(config, section)
        out[key] = getattr(value, name) if name else value
    return out


# ---------------------------------------------------------------- loading and saving


def load(paths: Paths | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """The settings: defaults, system layers, the user's file, then the environment.

    Raises ConfigError, naming the file (or variable) and the setting, for a value we cannot
    use; warns, naming the file, about unknown keys and about user values of locked settings.
    """
    paths = paths or Paths.default()
    env = os.environ if environ is None else environ
    stack = _system_stack(paths, warn=True)
    user_file = paths.user_config_file
    raw = _read_toml(user_file)
    origin = _file_origin(user_file)
    if LOCKED_KEY in raw:
        log.warning(
            "%s: %s only counts in a system-wide config file; ignored here", user_file, LOCKED_KEY
        )
    for key, value in _walk(raw, origin, warn=True):
        lock = _lock_for(stack.locked, key)
        if lock is not None:
            log.warning(
                "%s: %s is locked by IT (in %s); the value here is ignored",
                user_file,
                key,
                stack.lock_files[lock],
            )
            continue
        stack.put(key, _parse_value(key, value, origin), origin)
    environment = set()
    for variable, key in ENVIRONMENT.items():
        text = env.get(variable)
        if text:  # the environment wins even over a lock: whoever launches us set it
            env_origin = _env_origin(variable)
            stack.put(key, _parse_value(key, text, env_origin), env_origin)
            environment.add(key)
    _check_ca_bundle(stack)
    return _build(stack.values, locked=stack.locked, environment=frozenset(environment))


def save_user(config: Config, paths: Paths | None = None) -> Path:
    """Write the user's file (atomically, mode 0600 in a 0700 folder); returns it.

    The file holds only the settings of ``config`` that differ from the layers below it
    (defaults and system layers, read again now): never a locked setting, never a value the
    environment set for this run (the file keeps its own value for that setting). Keys we do
    not know are kept as they are.
    """
    paths = paths or Paths.default()
    below_stack = _system_stack(paths, warn=False)
    below = _flatten(_build(below_stack.values))
    locked = below_stack.locked | config.locked
    target = paths.user_config_file
    existing = _read_toml(target)
    mine = _flatten(config)
    out: dict[str, Any] = {}
    for key in _SETTINGS:
        if _lock_for(locked, key) is not None:
            continue
        if key in config.environment:  # keep the file's own value, if it still differs
            raw = _raw_get(existing, key)
            if raw is not None and _differs(key, raw, below[key]):
                _raw_set(out, key, raw)
        elif mine[key] != below[key]:
            _raw_set(out, key, _SETTINGS[key].dump(mine[key]))
    for k, v in existing.items():  # keys we do not know (a newer version's, a typo) stay
        if k == LOCKED_KEY:
            continue
        if k in _SECTIONS and isinstance(v, dict):
            for sk, sv in v.items():
                if f"{k}.{sk}" not in _SETTINGS:
                    out.setdefault(k, {})[sk] = sv
        elif k not in _SETTINGS and k not in _SECTIONS:
            out[k] = v
    return write_private(target, dumps(out))


def _raw_get(raw: Mapping[str, Any], key: str) -> Any:
    section, _, name = key.partition(".")
    if not name:
        return raw.get(key)
    table = raw.get(section)
    return table.get(name) if isinstance(table, dict) else None


def _raw_set(out: dict[str, Any], key: str, value: Any) -> None:
    section, _, name = key.partition(".")
    if name:
        out.setdefault(section, {})[name] = value
    else:
        out[key] = value


def _differs(key: str, raw: Any, below: Any) -> bool:
    try:
        return bool(_SETTINGS[key].parse(raw) != below)
    except ValueError:
        return True


def from_dict(data: Mapping[str, Any], *, source: str = "the settings") -> Config:
    """One layer of settings (as read from a TOML file) over the defaults; ``source`` names it
    in errors and warnings."""
    origin = _Origin(source, f"Fix the value in {source}.")
    values = {key: _parse_value(key, v, origin) for key, v in _walk(data, origin, warn=True)}
    return _build(values)


def to_dict(config: Config) -> dict[str, Any]:
    """Every setting as TOML values (sections as tables; no quiet hours: left out)."""
    out: dict[str, Any] = {}
    for key, value in _flatten(config).items():
        if value is not None:
            _raw_set(out, key, _SETTINGS[key].dump(value))
    return out


# ---------------------------------------------------------------- a small TOML writer

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b"}


def _toml_key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _toml_string(k)


def _toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, datetime | date | time):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    return _toml_string(str(v))


_HEADER = (
    "# Tray Notifier: your own settings, written by the Settings window.\n"
    "# Only what you changed is kept here; everything else follows IT's settings and the defaults."
)


def dumps(data: Mapping[str, Any]) -> str:
    """A small TOML writer: scalars and empty tables first, then one ``[table]`` per section."""
    lines = [_HEADER]
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and v}
    lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if k not in tables)
    for name, table in tables.items():
        lines.append(f"\n[{_toml_key(name)}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"
