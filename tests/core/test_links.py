from __future__ import annotations

import pytest

from app.core.links import safe_link


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/news?id=1#top",
        "http://intranet.local:8080/a",
        "HTTPS://Example.org",
        "https://[::1]:8443/x",
    ],
)
def test_web_addresses_are_kept(url: str) -> None:
    assert safe_link(url) == url


def test_surrounding_blanks_are_dropped() -> None:
    assert safe_link("  https://example.org/a \n") == "https://example.org/a"


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,<b>x</b>",
        "/relative/path",
        "example.org/page",
        "//example.org/protocol-relative",
        "https://",
        "http:///no-host",
        "ftp://example.org/file",
        "https://bank.example@evil.example/",
        "https://exa mple.org/",
        "https://example.org/\x00x",
        "https://example.org:99999/",
        "mailto:someone@example.org",
    ],
)
def test_everything_else_is_refused(url: str | None) -> None:
    assert safe_link(url) is None
