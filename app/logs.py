"""Logging, set up once per process: tokens and passwords redacted from every record, each
record's message on one line (server text cannot forge a line), log files owner-only."""

from __future__ import annotations

import contextlib
import io
import logging
import logging.handlers
import os
import re
from pathlib import Path

from app.core.files import FILE_MODE, private_dir

_SECRET_NAMES = r"(?:access_token|refresh_token|id_token|token|password|secret)"  # noqa: S105 - names
# values, never prose: "the server refused the token: logging in again" stays as it is
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token> (a token, not the word: "the Bearer token /metrics needs")
    (
        re.compile(r"(?i)(bearer\s+)(?=[A-Za-z]{16}|[A-Za-z0-9\-._~+/]*[^A-Za-z\s])[\w\-.~+/]+=*"),
        r"\1[REDACTED]",
    ),
    # JSON: "access_token": "..." (the whole string, escapes included)
    (re.compile(rf'(?i)("{_SECRET_NAMES}"\s*:\s*")(?:[^"\\]|\\.)*'), r"\1[REDACTED]"),
    # a query, a form or code: refresh_token=..., password=...
    (re.compile(rf"(?i)(\b{_SECRET_NAMES}=)[^\"&\s,}}]+"), r"\1[REDACTED]"),
    # a header or a dump: "password: hunter2", "'token': 'a1b2'": only a value that is no plain
    # word (it holds a digit or a symbol, or is 16 letters long), so a sentence about a token is
    # left alone
    (
        re.compile(
            rf"(?i)(\b{_SECRET_NAMES}\b[\"']?\s*:\s*[\"']?)"
            r"(?=[A-Za-z]{16}|[^\s\"'&,}]*[^A-Za-z\s\"'&,}.;!?])[^\"'&\s,}]+"
        ),
        r"\1[REDACTED]",
    ),
    # bare JWTs
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), "[REDACTED-JWT]"),
)


def redact(text: str) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


# line breaks and other control characters (tab excepted), C1 controls and the Unicode line and
# paragraph separators: anything an editor or `str.splitlines` would start a new line at
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape_one(match: re.Match[str]) -> str:
    ch = match.group()
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


def escape_controls(text: str) -> str:
    """``text`` on one line: CR, LF and other control characters (not tab) as visible escapes
    like ``\\n``, so that text from a server can never forge a log line of its own."""
    return _CONTROL.sub(_escape_one, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged) with secrets replaced and control
    characters escaped: one record, one line. Tracebacks (``exc_text``) stay multi-line."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = escape_controls(redact(message))
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            # exception text goes through the formatter; cache a redacted copy of it
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            del exc
        return True


_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_configured = False


def setup(level: str | int = "INFO", *, log_file: Path | None = None, stream: bool = True) -> None:
    """Configure the root logger once: stderr and, when given, a rotating file (1 MB x 5)."""
    global _configured
    root = logging.getLogger()
    if _configured:
        root.setLevel(level)
        return
    _configured = True
    root.setLevel(level)
    if stream:
        _attach(logging.StreamHandler())
    if log_file is not None:
        add_file(log_file)
    # httpx logs every request URL at INFO; keep it at WARNING
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def add_file(log_file: Path, *, max_bytes: int = 1_000_000, backups: int = 5) -> None:
    """Also log to a rotating file (1 MB x 5), after :func:`setup` (the tray's log folder).

    The folder is made 0700 and every log file, the rotated ones too, 0600 (whatever the umask):
    the log names the user, the server and announcement titles.
    """
    root = logging.getLogger()
    target = str(log_file.resolve())
    for h in root.handlers:
        if isinstance(h, logging.handlers.RotatingFileHandler) and h.baseFilename == target:
            return
    private_dir(log_file.parent)
    handler = PrivateRotatingFileHandler(
        log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.tighten()  # files an older version left readable by everyone
    _attach(handler)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler whose files are created 0600: opened with that mode (so no umask
    can widen it) and tightened when they already exist. Rotation renames files, keeping it."""

    def _open(self) -> io.TextIOWrapper:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        fd = os.open(self.baseFilename, flags, FILE_MODE)
        if hasattr(os, "fchmod"):
            with contextlib.suppress(OSError):
                os.fchmod(fd, FILE_MODE)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def doRollover(self) -> None:
        super().doRollover()
        self.tighten()

    def tighten(self) -> None:
        """Make the log file and its rotated copies owner-only (POSIX; Windows ignores it)."""
        base = Path(self.baseFilename)
        names = [base, *(Path(f"{base}.{i}") for i in range(1, self.backupCount + 1))]
        for name in names:
            with contextlib.suppress(OSError):  # not there (yet)
                name.chmod(FILE_MODE)


def _attach(handler: logging.Handler) -> None:
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    logging.getLogger().addHandler(handler)
