"""``GET /console/``: the publisher console's static files, from ``app/server/console``
(docs/console.md), with the page's own CSP: its own script and style files only, nothing
inline, nothing from elsewhere; with single sign-on, connections to the identity provider's
origin too (its discovery document and token endpoint, fetched by the page itself).
``/console/events`` is the API's (``app/server/api.py``)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from app.server.api import API
from app.server.errors import http_error

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
# scheme://host[:port] and nothing else: no character that could end a CSP source or directive
_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
CONSOLE_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def issuer_origin(issuer: str) -> str:
    """The origin (``scheme://host[:port]``) of an OpenID issuer URL, for a CSP source;
    ValueError when it is not one."""
    parts = urlsplit(issuer)
    origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
    if parts.username is not None or parts.password is not None or not _ORIGIN.fullmatch(origin):
        raise ValueError(f"the OpenID issuer {issuer!r} has no plain http(s) origin")
    return origin


@functools.lru_cache(maxsize=4)
def console_csp(sso_issuer: str | None = None) -> str:
    """The console's Content-Security-Policy: :data:`CONSOLE_CSP`, and with ``sso_issuer``
    (the provider the console signs people in with) ``connect-src`` to that issuer's origin as
    well, nothing broader (its discovery document and token endpoint; an issuer with no plain
    origin gets nothing, and the page says it cannot reach the provider). The page leaves for
    the provider with ``location.assign`` and comes back by the provider's redirect: top-level
    navigations, which no directive here limits, so ``form-action`` stays ``'none'``."""
    if sso_issuer is None:
        return CONSOLE_CSP
    try:
        origin = issuer_origin(sso_issuer)
    except ValueError:
        return CONSOLE_CSP
    return CONSOLE_CSP.replace("connect-src 'self';", f"connect-src 'self' {origin};")


def console_sso_issuer(app: web.Application) -> str | None:
    """The OpenID issuer the console signs people in with: the server's provider when it has
    a client id for the console (``--oidc-console-client-id``), else None."""
    api = app.get(API)
    oidc = api.oidc if api is not None else None
    if oidc is None or not oidc.settings.console_client_id:
        return None
    return oidc.settings.issuer


async def _console_file(request: web.Request) -> web.Response:
    path = CONSOLE_DIR / request.match_info.get("name", "index.html")
    content_type = CONSOLE_TYPES.get(path.suffix)
    if content_type is None or not path.is_file():
        raise http_error(web.HTTPNotFound, "no such file")
    return web.Response(
        body=path.read_bytes(),
        content_type=content_type,
        charset=None if content_type == "image/png" else "utf-8",
        headers={"Content-Security-Policy": console_csp(console_sso_issuer(request.app))},
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
