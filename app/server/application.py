"""The aiohttp application of the companion server: the API's handlers (``app/server/api.py``),
the publisher console's files, the middleware and the hooks of its life, wired in one place."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware

from app.server.api import API, Api
from app.server.auth import TokenIssuer
from app.server.broker import Broker
from app.server.config import HttpSettings
from app.server.connections import ConnectionGuard
from app.server.console_files import console_routes
from app.server.directory import DirectorySync
from app.server.middleware import answer_errors, answer_headers, cors_preflight
from app.server.officer import OfficerApi
from app.server.oidc import IdTokenVerifier


def create_app(
    broker: Broker,
    issuer: TokenIssuer,
    settings: HttpSettings,
    *,
    clock: Callable[[], float] = time.time,
    cors_origins: Iterable[str] = (),
    metrics_token: str | None = None,
    guard: ConnectionGuard | None = None,
    oidc: IdTokenVerifier | None = None,
    directory: DirectorySync | None = None,
) -> web.Application:
    """The aiohttp application; its :class:`Api` is reachable as ``app[API]``. ``clock``
    (epoch seconds) is the one the token issuer uses: token expiry is measured on it.
    ``cors_origins``: web origins allowed to call it from a browser; ``metrics_token``: the
    Bearer token ``/metrics`` then requires; ``guard``: the connection guard of the socket it
    will be served on (it counts the streams and knows the busy connections), built before
    the application and attached to the runner's server after it (see
    :class:`~app.server.connections.ConnectionGuard`); none: no connection limits. ``oidc``:
    the organisation's identity provider (``POST /auth/oidc``); none: passwords only.
    ``directory``: the organisation's directory (``POST /directory/sync``); none: accounts
    only."""
    api = Api(
        broker,
        issuer,
        settings,
        clock=clock,
        cors_origins=cors_origins,
        metrics_token=metrics_token,
        guard=guard,
        oidc=oidc,
        directory=directory,
    )
    # each middleware is a frame that every open stream holds for its life: only those
    # that have something to do (the stream answers its own errors: the error middleware
    # passes it by, and holds no frame of it)
    middlewares: list[Middleware] = [
        answer_errors(retry_after=settings.retry_after, guard=guard, answers_itself=api.connect)
    ]
    if api.cors_origins:
        middlewares.append(cors_preflight(api.cors_origins))
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body)
    app.add_routes(api.routes())
    app.add_routes(OfficerApi(api).routes())  # audit log, schedules, drafts, templates
    app.add_routes(console_routes())
    app.on_response_prepare.append(answer_headers(api.cors_origins))
    app.on_shutdown.append(api.on_shutdown)
    app.cleanup_ctx.append(api.stream_context.direct.keepalive)
    app[API] = api
    return app
