from __future__ import annotations

import pytest

from app.core.links import MAX_LINK_LENGTH, display_host, link_for_display, safe_link


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


@pytest.mark.parametrize(
    "url",
    [
        "https://example.org/\u202egnp.exe",  # right-to-left override: shows "exe.png"
        "https://example.org/\u2066x\u2069",  # an isolate
        "https://example.org/\u200ex",  # a left-to-right mark
        "https://exa\u200bmple.org/",  # zero-width space in the host
        "https://exa\u200dmple.org/",  # zero-width joiner
        "https://example.org/\u2060x",  # word joiner
        "https://\ufeffexample.org/",  # byte order mark
        "https://example.org/\u00adx",  # soft hyphen
        "https://example.org/\x9bx",  # a C1 control
        "https://example.org/\u3164",  # a letter that shows as nothing
        "https://example.org/" + "a" * 2100,  # the host scrolled out of sight
        "https://a_b.\u00fc.example/",  # no IDNA form
        "https://" + "\u00e4" * 70 + ".example/",  # a label too long for DNS
    ],
)
def test_deceptive_addresses_are_refused(url: str) -> None:
    assert safe_link(url) is None
    assert link_for_display(url) is None


def test_the_length_limit_is_two_thousand_and_forty_eight_characters() -> None:
    base = "https://example.org/"
    assert safe_link(base + "a" * (MAX_LINK_LENGTH - len(base))) is not None
    assert safe_link(base + "a" * (MAX_LINK_LENGTH - len(base) + 1)) is None
    assert MAX_LINK_LENGTH == 2048


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("example.org", "example.org"),
        ("Example.ORG", "example.org"),
        ("ex\u0430mple.com", "xn--exmple-4nf.com"),  # a Cyrillic а among Latin letters
        ("b\u00fccher.de", "xn--bcher-kva.de"),
        ("\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "xn--e1afmkfd.xn--p1ai"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
    ],
)
def test_display_host_is_the_ascii_form(host: str, shown: str) -> None:
    assert display_host(host) == shown


def test_display_host_without_an_idna_form_is_none() -> None:
    assert display_host("a\u200db.example") is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://ex\u0430mple.com/login?next=/a#b", "https://xn--exmple-4nf.com/login?next=/a#b"),
        ("http://B\u00fccher.de:8080/x", "http://xn--bcher-kva.de:8080/x"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
        ("  https://example.org/caf\u00e9 ", "https://example.org/caf\u00e9"),
    ],
)
def test_link_for_display_shows_the_host_in_ascii(url: str, shown: str) -> None:
    assert link_for_display(url) == shown
    assert safe_link(url) == url.strip()  # what is opened is the address as given
