"""Secrets never reach a log line; server text cannot forge one; log files are private."""

from __future__ import annotations

import ast
import logging
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app import logs

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    "line",
    [
        f"Authorization: Bearer {JWT}",
        f"sending headers {{'authorization': 'Bearer abc.def-ghi'}} to {JWT}",
        '{"access_token": "s3cr3t-token", "refresh_token": "r3fr3sh"}',
        "password=hunter2&user=alice",
    ],
)
def test_redact_removes_secrets(line: str) -> None:
    out = logs.redact(line)
    for secret in (JWT, "abc.def-ghi", "s3cr3t-token", "r3fr3sh", "hunter2"):
        assert secret not in out
    assert "REDACTED" in out


def test_filter_redacts_arguments_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redaction")
    logger.addFilter(logs.RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="test.redaction"):
            logger.info("token is %s", f"Bearer {JWT}")
            try:
                raise RuntimeError(f"refresh failed for refresh_token={JWT}")
            except RuntimeError:
                logger.exception("refresh failed")
    finally:
        logger.filters.clear()
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert JWT not in text
    assert "token is Bearer [REDACTED]" in caplog.text


# ---------------------------------------------------------------- one record, one line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("title\n2026-01-01 ERROR forged", "title\\n2026-01-01 ERROR forged"),
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("nul\x00 del\x7f nel\x85", "nul\\x00 del\\x7f nel\\x85"),
        ("line\u2028sep\u2029par", "line\\u2028sep\\u2029par"),
        ("tab\tstays, 中文 too", "tab\tstays, 中文 too"),
    ],
)
def test_escape_controls(text: str, expected: str) -> None:
    assert logs.escape_controls(text) == expected
    assert len(logs.escape_controls(text).splitlines()) == 1


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """A log file under tmp_path; the handlers added to the root logger go at teardown."""
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    root.setLevel(logging.INFO)
    yield tmp_path / "state" / "log" / "tray-notifier.log"
    for handler in root.handlers[:]:
        if handler not in before:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_server_text_cannot_forge_a_log_line(log_file: Path) -> None:
    logs.add_file(log_file)
    logger = logging.getLogger("test.logs.forge")
    logger.info("announcement %s: %s", "42", "Hello\n2026-01-01 ERROR forged\rline")
    logger.info("Bearer %s\nnext", JWT)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed for %r", "x\ny")
    flush()
    lines = log_file.read_text(encoding="utf-8").splitlines()
    assert lines[0].endswith("announcement 42: Hello\\n2026-01-01 ERROR forged\\rline")
    assert lines[1].endswith("Bearer [REDACTED]\\nnext")
    assert lines[2].endswith("failed for 'x\\ny'")
    assert lines[3] == "Traceback (most recent call last):"  # a traceback stays multi-line
    assert lines[-1] == "RuntimeError: boom"
    assert not any(line.startswith("2026-01-01 ERROR") for line in lines)
    assert JWT not in log_file.read_text(encoding="utf-8")


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_log_files_are_private_even_rotated(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, mode=0o755)
    log_file.parent.chmod(0o755)
    old_copy = log_file.with_name(log_file.name + ".2")
    old_copy.write_text("from an older version\n")
    old_copy.chmod(0o644)
    umask = os.umask(0)
    try:
        logs.add_file(log_file, max_bytes=300, backups=3)
        logger = logging.getLogger("test.logs.private")
        for i in range(20):
            logger.warning("line %d of the log, long enough to rotate soon", i)
        flush()
    finally:
        os.umask(umask)
    assert stat.S_IMODE(log_file.parent.stat().st_mode) == 0o700
    files = sorted(log_file.parent.iterdir())
    assert [f.name for f in files] == [
        "tray-notifier.log",
        "tray-notifier.log.1",
        "tray-notifier.log.2",
        "tray-notifier.log.3",
    ]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_an_existing_log_file_is_tightened(log_file: Path) -> None:
    log_file.parent.mkdir(parents=True)
    log_file.write_text("old\n")
    log_file.chmod(0o644)
    logs.add_file(log_file)
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("password: hunter2", "hunter2"),
        ("{'token': 'abc123', 'user': 'alice'}", "abc123"),
        ('{"password": "two words \\" and a quote"}', "two words"),
        ("token: s3cr3t.value, then", "s3cr3t"),
    ],
)
def test_values_are_redacted_whatever_their_shape(line: str, kept: str) -> None:
    out = logs.redact(line)
    assert kept not in out and "[REDACTED]" in out


def _own_texts() -> list[str]:
    """Every string the project writes in app/ that names a token, a password or a secret: its
    log lines and messages, literal parts of f-strings included."""
    texts = []
    for path in Path(logs.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if re.search(r"(?i)(token|password|secret)\W*[:=]", text) and " " in text:
                    texts.append(text)
    return texts


def test_the_project_s_own_words_are_prose_not_secrets() -> None:
    """Redact values, not prose (issue 21): "the server refused the token: logging in again"
    once read "the server refused the token: [REDACTED] in again"."""
    texts = _own_texts()
    assert "the server refused the token: logging in again as %s" in texts
    assert [t for t in texts if logs.redact(t) != t] == []
