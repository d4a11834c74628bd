"""The layers of settings, later ones winning, and the user's file written back.

1. built-in defaults (the dataclasses of :mod:`app.core.config.schema`);
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
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.config.files import check_ca_bundle, dumps, read_toml
from app.core.config.paths import Paths
from app.core.config.schema import ENVIRONMENT, Config, lock_for
from app.core.config.values import (
    SECTIONS,
    SETTINGS,
    Origin,
    env_origin,
    file_origin,
    parse_value,
)
from app.core.errors import ConfigError
from app.core.files import write_private

log = logging.getLogger(__name__)

#: the key of the lock list in a system layer
LOCKED_KEY = "locked"
#: sections IT writes as a profile: an unknown key there stops (a misspelt pointer would
#: otherwise lose every announcement's title silently)
STRICT_SECTIONS = frozenset({"auth", "payload"})


# ---------------------------------------------------------------- one layer


def _walk(raw: Mapping[str, Any], origin: Origin, *, warn: bool) -> Iterator[tuple[str, Any]]:
    """The known settings of one layer as (dotted key, value as written); warns about unknown
    keys (naming the file), skips the lock list (the caller reads it)."""
    for k, v in raw.items():
        if k == LOCKED_KEY:
            continue
        if k in SECTIONS:
            if not isinstance(v, dict):
                raise ConfigError(
                    f"{origin.where}: {k} must be a table: write [{k}] on a line of its own, "
                    f"with its settings below it. {origin.fix}"
                )
            items = [(f"{k}.{sk}", sv) for sk, sv in v.items()]
        else:
            items = [(k, v)]
        for key, value in items:
            if key not in SETTINGS and k in STRICT_SECTIONS:
                known = ", ".join(n.partition(".")[2] for n in SETTINGS if n.startswith(k + "."))
                raise ConfigError(
                    f"{origin.where}: unknown setting {key} in the [{k}] profile (known: "
                    f"{known}). {origin.fix}"
                )
            if key not in SETTINGS:
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


def _parse_locks(value: Any, origin: Origin, *, warn: bool) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(
            f"{origin.where}: {LOCKED_KEY} must be a list of setting names, like "
            f'{LOCKED_KEY} = ["server_url", "stream.ca_bundle"]. {origin.fix}'
        )
    known = set()
    for name in value:
        if name in SETTINGS or name in SECTIONS:
            known.add(name)
        elif warn:
            log.warning(
                "%s: %s names an unknown setting %s; ignored", origin.where, LOCKED_KEY, name
            )
    return frozenset(known)


# ---------------------------------------------------------------- the stack


@dataclass(slots=True)
class _Stack:
    """Typed values by dotted key, with the origin of each and the locks met so far."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    locked: frozenset[str] = frozenset()
    lock_files: dict[str, Path] = field(default_factory=dict)

    problems: list[str] = field(default_factory=list)

    def put(self, key: str, value: Any, origin: Origin) -> None:
        self.values[key] = value
        self.origins[key] = origin

    def problem(self, text: str, *, warn: bool) -> None:
        self.problems.append(text)
        if warn:
            log.warning("IT's settings: %s", text)


def _system_stack(paths: Paths, *, warn: bool) -> _Stack:
    """The system layers. What cannot be used in one of them (a file that cannot be read, a
    bad value, a bad lock list) is IT's to fix, not the person's: that file, or that setting,
    is left out (the layers below apply), and the problem is kept in ``problems`` (and logged
    once when ``warn``), so the tray keeps running and says so."""
    stack = _Stack()
    for path in paths.system_config_files:
        origin = file_origin(path)
        try:
            raw = read_toml(path, system=True)
            items = list(_walk(raw, origin, warn=warn))
        except ConfigError as exc:  # unsafe or unreadable: never read, IT's to fix
            stack.problem(str(exc), warn=warn)
            continue
        for key, value in items:
            try:
                stack.put(key, parse_value(key, value, origin), origin)
            except ConfigError as exc:
                stack.problem(f"{exc} Until then {key} comes from the layers below.", warn=warn)
        if LOCKED_KEY in raw:
            try:
                locks = _parse_locks(raw[LOCKED_KEY], origin, warn=warn)
            except ConfigError as exc:
                # IT meant to lock something: every setting this file names stays locked
                locks = frozenset(key for key, _ in items)
                stack.problem(f"{exc} Until then every setting it names is locked.", warn=warn)
            stack.locked |= locks
            for name in locks:
                stack.lock_files.setdefault(name, path)
    return stack


def _build(
    values: Mapping[str, Any],
    *,
    locked: frozenset[str] = frozenset(),
    environment: frozenset[str] = frozenset(),
    problems: tuple[str, ...] = (),
) -> Config:
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    for key, value in values.items():
        section, _, name = key.partition(".")
        if name:
            sections[section][name] = value
        else:
            top[key] = value
    for name, cls in SECTIONS.items():
        top[name] = cls(**sections[name])
    return Config(**top, locked=locked, environment=environment, problems=problems)


def _flatten(config: Config) -> dict[str, Any]:
    """Every setting's typed value by dotted key."""
    out: dict[str, Any] = {}
    for key in SETTINGS:
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
    raw = read_toml(user_file)
    origin = file_origin(user_file)
    if LOCKED_KEY in raw:
        log.warning(
            "%s: %s only counts in a system-wide config file; ignored here", user_file, LOCKED_KEY
        )
    for key, value in _walk(raw, origin, warn=True):
        lock = lock_for(stack.locked, key)
        if lock is not None:
            log.warning(
                "%s: %s is locked by IT (in %s); the value here is ignored",
                user_file,
                key,
                stack.lock_files[lock],
            )
            continue
        stack.put(key, parse_value(key, value, origin), origin)
    environment = set()
    for variable, key in ENVIRONMENT.items():
        text = env.get(variable)
        if text:  # the environment wins even over a lock: whoever launches us set it
            by_variable = env_origin(variable)
            stack.put(key, parse_value(key, text, by_variable), by_variable)
            environment.add(key)
    ca_bundle = stack.values.get("stream.ca_bundle")
    if ca_bundle:
        origin = stack.origins["stream.ca_bundle"]
        try:
            check_ca_bundle(ca_bundle, origin)
        except ConfigError as exc:
            if origin.where not in {str(p) for p in paths.system_config_files}:
                raise  # the person's own (or the environment's): shown to them
            stack.problem(
                f"{exc} Until then the system's certificate authorities apply.", warn=True
            )
            del stack.values["stream.ca_bundle"]
    return _build(
        stack.values,
        locked=stack.locked,
        environment=frozenset(environment),
        problems=tuple(stack.problems),
    )


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
    existing = read_toml(target)
    mine = _flatten(config)
    out: dict[str, Any] = {}
    for key in SETTINGS:
        if lock_for(locked, key) is not None:
            continue
        if key in config.environment:  # keep the file's own value, if it still differs
            raw = _raw_get(existing, key)
            if raw is not None and _differs(key, raw, below[key]):
                _raw_set(out, key, raw)
        elif mine[key] != below[key]:
            _raw_set(out, key, SETTINGS[key].dump(mine[key]))
    for k, v in existing.items():  # keys we do not know (a newer version's, a typo) stay
        if k == LOCKED_KEY:
            continue
        if k in SECTIONS and isinstance(v, dict):
            for sk, sv in v.items():
                if f"{k}.{sk}" not in SETTINGS:
                    out.setdefault(k, {})[sk] = sv
        elif k not in SETTINGS and k not in SECTIONS:
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
        return bool(SETTINGS[key].parse(raw) != below)
    except ValueError:
        return True


def from_dict(data: Mapping[str, Any], *, source: str = "the settings") -> Config:
    """One layer of settings (as read from a TOML file) over the defaults; ``source`` names it
    in errors and warnings."""
    origin = Origin(source, f"Fix the value in {source}.")
    values = {key: parse_value(key, v, origin) for key, v in _walk(data, origin, warn=True)}
    return _build(values)


def to_dict(config: Config) -> dict[str, Any]:
    """Every setting as TOML values (sections as tables; no quiet hours: left out)."""
    out: dict[str, Any] = {}
    for key, value in _flatten(config).items():
        if value is not None:
            _raw_set(out, key, SETTINGS[key].dump(value))
    return out


def sources(
    paths: Paths | None = None, *, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Where each setting that is not a default came from, by dotted key: a file's path or
    ``environment variable X`` (what :func:`load` read; for the doctor). Nothing is logged;
    a value that cannot be used is left out (``load`` says why)."""
    paths = paths or Paths.default()
    env = os.environ if environ is None else environ
    stack = _system_stack(paths, warn=False)
    user_file = paths.user_config_file
    try:
        raw = read_toml(user_file)
        items = list(_walk(raw, file_origin(user_file), warn=False))
    except ConfigError:
        items = []
    for key, _value in items:
        if lock_for(stack.locked, key) is None:
            stack.origins[key] = file_origin(user_file)
    for variable, key in ENVIRONMENT.items():
        if env.get(variable):
            stack.origins[key] = env_origin(variable)
    return {key: origin.where for key, origin in stack.origins.items()}
