"""Markup from a backend turned into readable plain text, never rendered."""

from __future__ import annotations

from app.core.htmltext import to_text


def test_blocks_end_lines_and_entities_are_decoded() -> None:
    html = "<p>系统将于&nbsp;<b>今晚 22:00</b> 维护</p><p>请提前保存 &amp; 退出</p>"
    assert to_text(html) == "系统将于 今晚 22:00 维护\n请提前保存 & 退出"


def test_scripts_and_styles_are_dropped_with_their_content() -> None:
    html = "<style>p{color:red}</style><p>a</p><script>alert('x')</script><p>b</p>"
    assert to_text(html) == "a\nb"


def test_lists_breaks_and_tables_stay_readable() -> None:
    html = "<ul><li>one</li><li>two</li></ul>x<br>y<table><tr><td>k</td><td>v</td></tr></table>"
    assert to_text(html) == "• one\n• two\nx\ny\nk\tv"


def test_markup_is_never_kept_as_markup() -> None:
    text = to_text('<a href="https://x.example" onclick="evil()">link</a> <img src=x onerror=y>')
    assert text == "link"
    assert "<" not in text


def test_plain_text_and_escaped_angle_brackets() -> None:
    assert to_text("plain  text") == "plain  text"
    assert to_text("1 &lt; 2") == "1 < 2"


def test_pre_keeps_its_lines() -> None:
    assert to_text("<pre>a\n  b</pre>") == "a\n  b"
