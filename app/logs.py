"""Logging, set up once per process, with tokens and passwords redacted from every record."""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer <token>
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1[REDACTED]"),
    # JSON or query style secrets: "access_token": "...", refresh_token=..., password: ...
    (
        re.compile(
            r"(?i)(\"?(?:access_token|refresh_token|token|password|secret)\"?\s*[:=]\s*\"?)"
            r"[^\"&\s,}]+"
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


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments merged) with secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        clean = redact(message)
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


def add_file(log_file: Path) -> None:
    """Also log to a rotating file (1 MB x 5), after :func:`setup` (the tray's log folder)."""
    root = logging.getLogger()
    target = str(log_file.resolve())
    for h in root.handlers:
        if isinstance(h, logging.handlers.RotatingFileHandler) and h.baseFilename == target:
            return
    log_file.parent.mkdir(parents=True, exist_ok=True)
    _attach(
        logging.handlers.RotatingFileHandler(
            log_file, maxBytes=1_000_000, backupCount=5, encoding="utf-8"
        )
    )


def _attach(handler: logging.Handler) -> None:
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(RedactingFilter())
    logging.getLogger().addHandler(handler)
