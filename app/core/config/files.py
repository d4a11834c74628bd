"""One layer's file, read with care (issue 18), and the user's file written.

A file that another local user could have written (POSIX modes and owners, as ssh's StrictModes)
is :class:`~app.core.errors.UnsafeConfigFile`: it stops the program when it is the user's own
and is ignored with a warning when it is a system layer. One that is not a settings file
(binary, huge, nested beyond tomllib's reach) is a :class:`ConfigError` naming the file, the
line and the key. The CA bundle a setting names is checked the same way. The user's file is
written by tomli-w, under a comment that says what it is.
"""

from __future__ import annotations

import os
import re
import shlex
import ssl
import stat
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from app.core.config.values import Origin, show
from app.core.errors import ConfigError, UnsafeConfigFile

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


def read_toml(path: Path, *, system: bool = False) -> dict[str, Any]:
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
    trouble = beyond_limits(text)
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


def beyond_limits(text: str) -> str | None:
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


def check_ca_bundle(value: str, origin: Origin) -> None:
    """A private CA bundle (``stream.ca_bundle = value``, set by ``origin``) must be a readable
    PEM file that no other user could have written now, not a traceback at connect time."""
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
            f"{origin.where}: stream.ca_bundle = {show(value)} is not used: {exposed.reason}, "
            "so another user could add an authority of their own and read your password on the "
            f"way. Run {exposed.fix}, then start again."
        )
    if problem:
        raise ConfigError(
            f"{origin.where}: stream.ca_bundle = {show(value)} {problem}. Set it to the PEM "
            "file of your organisation's certificate authority (readable by this user), or "
            "remove the line to trust the standard authorities."
        )


# ---------------------------------------------------------------- writing the user's file

HEADER = (
    "# Tray Notifier: your own settings, written by the Settings window.\n"
    "# Only what you changed is kept here; everything else follows IT's settings and the defaults."
)


def dumps(data: Mapping[str, Any]) -> str:
    """``data`` as TOML (by tomli-w: settings first, then one ``[table]`` per section) under
    :data:`HEADER`."""
    body = tomli_w.dumps(data)
    return f"{HEADER}\n\n{body}" if body.startswith("[") else f"{HEADER}\n{body}"
