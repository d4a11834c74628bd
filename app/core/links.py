"""Which links from the server may be opened: web addresses only.

Server text is untrusted. A link is offered only when it is an absolute ``http`` or ``https``
address with a host; ``javascript:``, ``file:``, ``data:``, relative paths and anything holding
spaces or control characters are refused. Addresses with a user name part
(``https://bank.example@evil.example``) are refused too: they exist to mislead the reader. So
are the other ways of showing one address while meaning another: bidirectional controls (a
right-to-left override turns ``moc.evil`` around), zero-width and other invisible characters
(Unicode category Cf and the blank fillers), a host that has no IDNA form, and addresses longer
than :data:`MAX_LINK_LENGTH` characters (the host scrolled out of sight).

Before a link is opened it is shown with its host in ASCII (:func:`link_for_display`): a
look-alike host such as ``ex\u0430mple.com`` (a Cyrillic ``\u0430``) is shown as
``xn--exmple-4nf.com``.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import SplitResult, urlsplit

import idna

_SCHEMES = frozenset({"http", "https"})
MAX_LINK_LENGTH = 2048  # characters: longer addresses are refused
# control, format (the bidi controls, zero-width characters, U+FEFF...), surrogate, private-use
# and unassigned characters: none has a visible shape of its own
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
# letters and symbols that show as nothing at all (the Hangul fillers, the blank Braille pattern)
_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def safe_link(url: str | None) -> str | None:
    """The URL (without surrounding blanks) when it may be opened, else None."""
    checked = _checked(url)
    return checked[0] if checked is not None else None


def display_host(host: str) -> str | None:
    """``host`` as it is looked up: lower case, each non-ASCII label as its IDNA A-label
    (``bücher.de`` as ``xn--bcher-kva.de``); None when it has no IDNA form."""
    if host.isascii():
        return host.lower()
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def link_for_display(url: str | None) -> str | None:
    """The safe link ``url`` with its host as :func:`display_host` gives it, for the
    confirmation before it is opened; None when the link is not safe."""
    checked = _checked(url)
    if checked is None:
        return None
    parts = checked[1]
    host = display_host(parts.hostname or "")
    if host is None:  # (not reached: _checked refuses such a host)
        return None
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _checked(url: str | None) -> tuple[str, SplitResult] | None:
    """The link without surrounding blanks and its parts, when it may be opened."""
    if not url:
        return None
    candidate = url.strip()
    if len(candidate) > MAX_LINK_LENGTH:
        return None
    if any(_hidden(ch) for ch in candidate):
        return None
    try:
        parts = urlsplit(candidate)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in _SCHEMES or not host or "@" in parts.netloc:
        return None
    if display_host(host) is None:
        return None
    return candidate, parts


def _hidden(ch: str) -> bool:
    """A blank, a control, or a character that shows nothing (or reorders what follows)."""
    return ch.isspace() or ch in _BLANKS or unicodedata.category(ch) in _HIDDEN_CATEGORIES
