"""Secrets never reach a log line."""

from __future__ import annotations

import logging

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
