"""JSON Pointer (RFC 6901): the paths a backend profile uses to find values in JSON replies.

``"/noticeTitle"``, ``"/user/userId"``, ``"/data/0/title"``; ``~1`` stands for ``/`` and ``~0``
for ``~`` inside a name (``"/a~1b"`` is the member ``a/b``), decoded in that order. The empty
pointer ``""`` is the whole document. Array members are addressed by decimal indices without
leading zeros; ``-`` (the end of an array) never holds a value.
"""

from __future__ import annotations

import re
from typing import Any, Final

#: what :func:`resolve` returns when the pointer finds nothing (``None`` is a JSON value: null)
MISSING: Final = object()

_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE = re.compile(r"~(?![01])")


def parse(pointer: str) -> tuple[str, ...]:
    """The reference tokens of ``pointer``, unescaped; ValueError says what is wrong."""
    if not isinstance(pointer, str):
        raise ValueError('must be a JSON Pointer in quotes, like "/data/title"')
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        # "user.userId" (a dotted path, as JavaScript writes it) means "/user/userId"
        like = "/" + (pointer.replace(".", "/") if "/" not in pointer else pointer)
        raise ValueError(
            f'is not a JSON Pointer: it starts with "/" and a "/" before each member, like "{like}"'
        )
    if _BAD_ESCAPE.search(pointer):
        raise ValueError(
            'is not a JSON Pointer: "~" must be followed by 0 or 1 (~0 is "~", ~1 "/")'
        )
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/"))


def is_pointer(text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def resolve(document: Any, pointer: str) -> Any:
    """The value ``pointer`` refers to in ``document``, or :data:`MISSING`."""
    value = document
    for token in parse(pointer):
        if isinstance(value, dict):
            if token not in value:
                return MISSING
            value = value[token]
        elif isinstance(value, list):
            if not _INDEX.fullmatch(token) or int(token) >= len(value):
                return MISSING
            value = value[int(token)]
        else:
            return MISSING
    return value
