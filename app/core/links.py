"""Which links from the server may be opened: web addresses only.

Server text is untrusted. A link is offered only when it is an absolute ``http`` or ``https``
address with a host; ``javascript:``, ``file:``, ``data:``, relative paths and anything holding
spaces or control characters are refused. Addresses with a user name part
(``https://bank.example@evil.example``) are refused too: they exist to mislead the reader.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_SCHEMES = frozenset({"http", "https"})


def safe_link(url: str | None) -> str | None:
    """The URL (without surrounding blanks) when it may be opened, else None."""
    if not url:
        return None
    candidate = url.strip()
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate):
        return None
    try:
        parts = urlsplit(candidate)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not host or "@" in parts.netloc:
        return None
    return candidate
