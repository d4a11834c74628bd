"""What a request may carry, checked before a handler reads it: the JSON body (size, arrival
time, encoding, nesting, strings), the ``Idempotency-Key`` header and whole-number queries.
Every refusal is :class:`~app.server.validation.BadInput` (400) or an HTTP error (408, 413)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from app.server.config import HttpSettings
from app.server.errors import http_error
from app.server.validation import BadInput

MAX_JSON_DEPTH = 32  # no request of this API nests deeper than 3
RECEIPTS_MAX = 3000  # receipts in one POST /receipts
IDEMPOTENCY_KEY_MAX = 200


async def json_body(request: web.Request, settings: HttpSettings) -> Any:
    """The request's JSON body, within ``settings.max_body`` bytes and ``body_timeout``."""
    length = request.content_length
    if length is not None and length > settings.max_body:
        raise too_large(settings.max_body)  # at once: the body is not waited for
    try:
        async with asyncio.timeout(settings.body_timeout):
            raw = await request.read()
    except TimeoutError:
        error = http_error(
            web.HTTPRequestTimeout,
            f"the request body did not arrive within {settings.body_timeout:g} s",
        )
        error.force_close()  # then close: the rest of the body is not waited for
        raise error from None
    except web.HTTPRequestEntityTooLarge:
        raise too_large(settings.max_body) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the request body is not UTF-8") from None
    if nesting(text) > MAX_JSON_DEPTH:
        raise BadInput(f"the request body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        payload = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise BadInput("the request body is not valid JSON") from None
    check_strings(payload)
    return payload


def too_large(max_body: int) -> web.HTTPError:
    """413, and the connection closed after it: the rest of the body is never read."""
    problem = BadInput(f"the request body is over {max_body // 1024} KiB")  # its JSON shape
    error = web.HTTPRequestEntityTooLarge(
        max_size=max_body, text=json.dumps(problem.to_json()), content_type="application/json"
    )
    error.force_close()
    return error


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json reads NaN and Infinity


# a string, or an unclosed one to the end (which json.loads refuses anyway): with the closing
# quote required, each '"' of '"\\"\\"...' would scan to the end again, quadratic in the body
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?', re.DOTALL)


def nesting(text: str) -> int:
    """How deep ``[`` and ``{`` nest in JSON text, outside its strings (a title may hold any
    number of brackets); it never recurses, so it runs before the parser that would."""
    depth = deepest = 0
    for char in _JSON_STRING.sub('""', text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def check_strings(payload: Any) -> None:
    """BadInput for a string (or key) that is not valid Unicode text: a lone surrogate
    (``"\\ud800"``) parses, but can be neither stored nor sent."""
    todo = [payload]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo += item.keys()
            todo += item.values()
        elif isinstance(item, list):
            todo += item
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadInput(
                    "the request body holds a lone surrogate (\\ud800-\\udfff): not valid"
                    " Unicode text"
                ) from None


def idempotency_key(request: web.Request) -> str | None:
    """The ``Idempotency-Key`` header: 1 to 200 visible ASCII characters, or none."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key.strip()
    if not (0 < len(key) <= IDEMPOTENCY_KEY_MAX and key.isascii() and key.isprintable()):
        raise BadInput(
            f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters",
            "Idempotency-Key",
        )
    return key


def int_query(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """The query parameter ``name``: a whole number from ``low`` to ``high``, or ``default``."""
    text = request.query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise BadInput(f"{name} must be a whole number from {low} to {high}", name)
    return int(text)
