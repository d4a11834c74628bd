"""Markup from a backend (a rich-text notice editor's HTML) turned into readable plain text.

Never rendered: the result is plain text, shown as plain text. Block elements and ``<br>`` end
lines, list items start with a bullet, entities are decoded, ``<script>``, ``<style>`` and other
non-content elements are dropped with their content, and runs of blank space are collapsed the
way a browser would show them (``<pre>`` keeps its own).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    }
)

_DROPPED = frozenset({"script", "style", "head", "title", "template", "noscript", "iframe"})
_CELLS = frozenset({"td", "th"})
_SPACE = re.compile(r"[ \t\r\n\f\u200b]+")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping: list[str] = []
        self._pre = 0
        self._cell = False

    def _newline(self) -> None:
        self.parts.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED:
            self._dropping.append(tag)
        elif self._dropping:
            return
        elif tag == "br":
            self._newline()
        elif tag in _CELLS:
            if self._cell:
                self.parts.append("\t")
            self._cell = True
        elif tag in _BLOCKS:
            self._newline()
            if tag == "tr":
                self._cell = False
            if tag == "li":
                self.parts.append("• ")
            if tag == "pre":
                self._pre += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if (tag == "br" and not self._dropping) or (tag in _BLOCKS and not self._dropping):
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED:
            if tag in self._dropping:
                while self._dropping and self._dropping.pop() != tag:
                    pass
        elif not self._dropping and tag in _BLOCKS:
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self._newline()

    def handle_data(self, data: str) -> None:
        if self._dropping:
            return
        if self._pre:
            self.parts.append(data.replace("\n", "\x00"))  # kept through the collapsing below
        else:
            self.parts.append(_SPACE.sub(" ", data))


def to_text(markup: str) -> str:
    """Readable plain text of an HTML fragment (or of plain text, which stays as it is)."""
    if "<" not in markup and "&" not in markup:
        return markup.strip()
    parser = _Text()
    parser.feed(markup)
    parser.close()
    lines = []
    for line in "".join(parser.parts).split("\n"):
        line = line.strip(" ").replace("\x00", "\n")
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\n{2,}", "\n", text)  # blocks end lines; empty ones add nothing
    return text.replace("\u00a0", " ").strip()
