"""The settings by dotted key (``server_url``, ``stream.ca_bundle``): each one's parser, its
range (numbers: :data:`RANGES`) and its own check, derived from the dataclasses of
:mod:`app.core.config.schema`; and the error that names where a bad value came from.

A new field of a type nobody taught this module, or a number without a range, fails at import:
a setting is never dropped silently.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from app.core import pointer
from app.core.config.schema import (
    AUTH_STYLES,
    BEARERS,
    BODY_FORMATS,
    LOG_LEVELS,
    PAC_AUTO,
    PROXY_MODES,
    Config,
    OkTest,
    QuietHours,
)
from app.core.errors import ConfigError
from app.core.model import Priority


@dataclass(frozen=True, slots=True)
class Setting:
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
class Range:
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
RANGES: Mapping[str, Range] = {
    "stream.heartbeat_timeout": Range(1, 86_400, "seconds: up to a day"),
    "stream.connect_timeout": Range(1, 300, "seconds"),
    "stream.max_event_bytes": Range(1024, 64 * 1024 * 1024, "bytes: 1 KiB to 64 MiB"),
    "toast_settle_ms": Range(0, 10_000, "milliseconds"),
    "retention_days": Range(1, 3650, "days: up to ten years"),
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


def _parse_urls(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(u, str) and u.strip() for u in v):
        raise ValueError('must be a list of addresses, like ["https://old.example.org/prod-api"]')
    urls = tuple(u.strip() for u in v)
    for url in urls:
        _check_server_url(url)
    return urls


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this computer: 127.0.0.0/8, ::1, localhost."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def https_problem(url: str, *, query: bool = False) -> str:
    """What is wrong with ``url`` as an identity provider's address (its issuer, an endpoint),
    in words; "" when nothing: ``https://`` (``http://`` only on this computer), a host, no
    fragment, and no query unless ``query``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "is not an address, like https://login.example.org/realms/staff"
    if parts.scheme not in ("https", "http") or not host:
        return "must be an https:// address, like https://login.example.org/realms/staff"
    if parts.scheme == "http" and not is_loopback(host):
        return "must be an https:// address (http:// only on this computer: 127.0.0.1, localhost)"
    if parts.fragment or "#" in url or (not query and (parts.query or "?" in url)):
        return "must not hold a query or a fragment (? or #)"
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        return "must not hold spaces"
    return ""


def _check_issuer(v: str) -> str:
    problem = https_problem(v) if v else ""
    if problem:
        raise ValueError(problem)
    return v


def parse_ports(text: str) -> range:
    """The ports ``[auth] redirect_ports`` allows: "0" (any free one: ``range(0, 1)``), one
    port "53100", or a range "53100-53109". ValueError says what is wrong."""
    match = re.fullmatch(r"\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?", text)
    if match is None:
        raise ValueError(
            'must be "0" (any free port), a port like "53100" or a range like "53100-53109"'
        )
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) else first
    if first == last == 0:
        return range(0, 1)
    if not 1 <= first <= last <= 65535:
        raise ValueError("must hold ports from 1 to 65535, the first no larger than the last")
    return range(first, last + 1)


def _check_ports(v: str) -> str:
    parse_ports(v)
    return v.strip()


def _parse_scopes(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = v.split()
    if not isinstance(v, list) or not all(
        isinstance(s, str) and s and not any(c.isspace() for c in s) for s in v
    ):
        raise ValueError('must be a list of scopes, like ["openid", "profile", "offline_access"]')
    if "openid" not in v:
        raise ValueError('must hold "openid" (the sign-in needs an ID token)')
    return tuple(dict.fromkeys(v))


def _check_proxy(v: str) -> str:
    """``[network] proxy``: "system", "none", or a proxy's URL (http://, https://)."""
    text = v.strip()
    if text.lower() in PROXY_MODES:
        return text.lower()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            'must be "system", "none", or a proxy\'s address like "http://proxy.example.org:3128"'
        )
    if parts.username or parts.password:
        raise ValueError(
            "must not hold a user name or password: store them with "
            "`python -m app proxy-login --user NAME --password-stdin` (the keyring keeps them)"
        )
    return text


def _check_pac_url(v: str) -> str:
    """``[network] pac_url``: "", "auto" (WPAD), or the PAC file's URL (http://, https://)."""
    text = v.strip()
    if text in ("", PAC_AUTO):
        return text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "file") or not (parts.hostname or parts.path):
        raise ValueError(
            'must be "", "auto" (WPAD discovery), or a PAC file\'s address like '
            '"http://wpad.example.org/proxy.pac"'
        )
    return text


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
    "auth.issuer": _check_issuer,
    "auth.redirect_ports": _check_ports,
    "auth.bearer": _one_of(*BEARERS),
    "payload.id": _check_pointer,
    "payload.title": _check_pointer,
    "payload.body": _check_pointer,
    "payload.priority": _check_pointer,
    "payload.url": _check_pointer,
    "payload.body_format": _one_of(*BODY_FORMATS),
    "network.proxy": _check_proxy,
    "network.pac_url": _check_pac_url,
}


#: settings whose parser is their own, not their type's
_PARSERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "auth.scopes": (_parse_scopes, list),
}


def converters(key: str, typ: Any) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """The parser and the dumper of the setting ``key`` of type ``typ``; TypeError for a type
    nobody taught this module, or a number without its range in :data:`RANGES`."""
    if key in _PARSERS:
        return _PARSERS[key]
    if typ is bool:
        return _parse_bool, _same
    if typ in (float, int) and key not in RANGES:
        raise TypeError(
            f"config setting {key}: a number needs its range in RANGES (app/core/config/values.py)"
        )
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
    if typ == tuple[str, ...]:
        return _parse_urls, list
    if typ == dict[str, Priority]:
        return _parse_priorities, lambda m: {k: p.value for k, p in m.items()}
    # a new field of a type nobody taught us: fail at import, never drop the setting silently
    raise TypeError(
        f"config setting {key}: no parser for {typ!r}; add one in app/core/config/values.py"
    )


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


def _derive() -> tuple[dict[str, Setting], dict[str, type[Any]]]:
    """Every setting, derived from the dataclasses: a field whose type is a dataclass with a
    default is a ``[section]``, every other field one setting."""
    settings: dict[str, Setting] = {}
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
                parse, dump = converters(key, section_hints[sf.name])
                settings[key] = Setting(key, _with_check(key, parse), dump)
        else:
            parse, dump = converters(f.name, typ)
            settings[f.name] = Setting(f.name, _with_check(f.name, parse), dump)
    return settings, sections


SETTINGS, SECTIONS = _derive()


def setting_keys() -> tuple[str, ...]:
    """Every setting's dotted key (``server_url``, ``stream.ca_bundle``), in file order."""
    return tuple(SETTINGS)


# ---------------------------------------------------------------- where a value came from


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value came from, for the message about a bad one."""

    where: str  # "/etc/xdg/tray-notifier/config.toml", "environment variable X"
    fix: str  # what to do about a bad value


def file_origin(path: Path) -> Origin:
    return Origin(str(path), f"Fix the value in {path}, or remove the line to use the default.")


def env_origin(variable: str) -> Origin:
    return Origin(f"environment variable {variable}", f"Fix or unset {variable}.")


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_value(key: str, value: Any, origin: Origin) -> Any:
    try:
        return SETTINGS[key].parse(value)
    except ValueError as exc:
        raise ConfigError(f"{origin.where}: {key} = {show(value)} {exc}. {origin.fix}") from None
