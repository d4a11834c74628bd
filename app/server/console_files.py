"""``GET /console/``: the publisher console's static files, from ``app/server/console``
(docs/console.md), with the page's own CSP: its own script and style files only, nothing
inline, nothing from elsewhere. ``/console/events`` is the API's (``app/server/api.py``)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from app.server.errors import http_error

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
CONSOLE_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


async def _console_file(request: web.Request) -> web.Response:
    path = CONSOLE_DIR / request.match_info.get("name", "index.html")
    content_type = CONSOLE_TYPES.get(path.suffix)
    if content_type is None or not path.is_file():
        raise http_error(web.HTTPNotFound, "no such file")
    return web.Response(
        body=path.read_bytes(),
        content_type=content_type,
        charset=None if content_type == "image/png" else "utf-8",
        headers={"Content-Security-Policy": CONSOLE_CSP},
    )


async def _console_redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("console/")  # relative: works behind a path prefix too


def console_routes() -> list[web.RouteDef]:
    """``/console`` -> ``/console/``, the page and its files (one name with an extension:
    no sub-folder, no ``..``; ``/console/events`` is the API's)."""
    return [
        web.get("/console", _console_redirect),
        web.get("/console/", _console_file),
        web.get(r"/console/{name:[A-Za-z0-9_-]+\.[a-z]+}", _console_file),
    ]
