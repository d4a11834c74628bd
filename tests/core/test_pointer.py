"""JSON Pointer (RFC 6901), with the examples of its section 5."""

from __future__ import annotations

from typing import Any

import pytest

from app.core import pointer

RFC: dict[str, Any] = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(
    ("ptr", "expected"),
    [
        ("", RFC),
        ("/foo", ["bar", "baz"]),
        ("/foo/0", "bar"),
        ("/", 0),
        ("/a~1b", 1),
        ("/c%d", 2),
        ("/e^f", 3),
        ("/g|h", 4),
        ("/i\\j", 5),
        ('/k"l', 6),
        ("/ ", 7),
        ("/m~0n", 8),
    ],
)
def test_the_examples_of_rfc_6901(ptr: str, expected: Any) -> None:
    assert pointer.resolve(RFC, ptr) == expected


def test_tilde_escapes_decode_in_order() -> None:
    assert pointer.parse("/~01") == ("~1",)  # not "/": ~0 is decoded after ~1
    assert pointer.resolve({"~1": "x", "/": "y"}, "/~01") == "x"


@pytest.mark.parametrize("ptr", ["/foo/2", "/foo/-", "/foo/01", "/foo/x", "/nope", "/foo/0/x"])
def test_what_is_not_there_is_missing(ptr: str) -> None:
    assert pointer.resolve(RFC, ptr) is pointer.MISSING


def test_null_is_a_value_not_missing() -> None:
    assert pointer.resolve({"a": None}, "/a") is None


@pytest.mark.parametrize("bad", ["token", "/a~2", "/a~", "data/title"])
def test_text_that_is_not_a_pointer_is_refused(bad: str) -> None:
    assert not pointer.is_pointer(bad)
    with pytest.raises(ValueError, match="not a JSON Pointer"):
        pointer.parse(bad)


@pytest.mark.parametrize(
    ("written", "hint"),
    [("user.userId", '"/user/userId"'), ("token", '"/token"'), ("data/id", '"/data/id"')],
)
def test_a_pointer_without_its_slash_says_how_to_write_it(written: str, hint: str) -> None:
    """An administrator wrote ``user_id = "user.userId"``: the hint once said "/user.userId",
    which finds nothing in RuoYi's reply (issue 21)."""
    with pytest.raises(ValueError, match="is not a JSON Pointer") as caught:
        pointer.parse(written)
    assert f"like {hint}" in str(caught.value)
