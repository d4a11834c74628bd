"""The API's error answers other than bad input (:class:`~app.server.validation.BadInput`,
400): a JSON ``{"error": ...}`` body, and on a 401 the ``WWW-Authenticate`` challenge."""

from __future__ import annotations

import json

from aiohttp import web


def http_error(
    cls: type[web.HTTPError], message: str, *, headers: dict[str, str] | None = None
) -> web.HTTPError:
    headers = dict(headers or {})
    if cls.status_code == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return cls(
        text=json.dumps({"error": message}), content_type="application/json", headers=headers
    )
