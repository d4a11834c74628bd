"""What wraps every request and answer of the API: JSON error answers for bad input and an
unreachable backend with the connection guard's busy marks, CORS (preflights, and the headers of
an allowed origin) and the security headers of every answer.

Each is built from what it needs (:func:`create_app <app.server.application.create_app>` wires
them), so nothing here reads the application's state."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from app.server.connections import ConnectionGuard
from app.server.model import BrokerUnavailable
from app.server.validation import BadInput

log = logging.getLogger(__name__)

CORS_ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "Last-Event-ID",
    "Idempotency-Key",
    # what EventSourcePolyfill and fetch-based clients add
    "Accept",
    "Cache-Control",
    "X-Requested-With",
)
CORS_ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"  # PUT: drafts, templates
CORS_MAX_AGE = 600  # seconds a browser may cache a preflight
# every answer is JSON, an event stream or text: nothing may load, frame or run anything
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

OnPrepare = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


def error_answer(
    request: web.Request, exc: BadInput | BrokerUnavailable, *, retry_after: int
) -> web.Response:
    """The answer to bad input (400 ``{"error", "field"}``) or an unreachable backend (503
    ``{"error"}`` with ``Retry-After``), logging the latter: :func:`answer_errors`'s, and the
    stream handler's, which answers its own (see ``answers_itself`` there)."""
    if isinstance(exc, BadInput):
        return web.json_response(exc.to_json(), status=400)
    log.warning("%s %s refused: %s", request.method, request.path, exc)
    return web.json_response(
        {"error": str(exc)}, status=503, headers={"Retry-After": str(retry_after)}
    )


def answer_errors(
    *,
    retry_after: int,
    guard: ConnectionGuard | None = None,
    answers_itself: Handler | None = None,
) -> Middleware:
    """BadInput and BrokerUnavailable answered by :func:`error_answer`. With a connection
    ``guard``, also tells it a request is in progress on this connection meanwhile (a busy
    connection is never closed to make room for a new one): one middleware rather than two.

    A request routed to ``answers_itself`` (the stream: it does all this itself) goes
    straight on to its handler: every open stream would otherwise hold this middleware's
    frame for its life, and a fleet's opens would each pass through it."""

    async def answered(request: web.Request, handler: Handler) -> web.StreamResponse:
        protocol = request.protocol
        if guard is not None:
            guard.request_started(protocol)
        try:
            return await handler(request)
        except (BadInput, BrokerUnavailable) as exc:
            return error_answer(request, exc, retry_after=retry_after)
        finally:
            if guard is not None:
                guard.request_ended(protocol)

    @web.middleware
    def errors(request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]:
        # (not a coroutine: for the stream, the handler's own coroutine is what is awaited)
        if answers_itself is not None and request.match_info.handler == answers_itself:
            return handler(request)
        return answered(request, handler)

    return errors


def cors_preflight(origins: Collection[str]) -> Middleware:
    """Answers a CORS preflight (OPTIONS with ``Access-Control-Request-Method``) from one of
    ``origins``; anything else goes on (a disallowed origin's preflight gets the 405 of an
    OPTIONS, with no CORS header)."""

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if (
            request.method == hdrs.METH_OPTIONS
            and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
            and origin in origins
        ):
            return web.Response(
                status=204,
                headers={
                    hdrs.ACCESS_CONTROL_ALLOW_METHODS: CORS_ALLOW_METHODS,
                    hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ", ".join(CORS_ALLOW_HEADERS),
                    hdrs.ACCESS_CONTROL_MAX_AGE: str(CORS_MAX_AGE),
                },
            )
        return await handler(request)

    return preflight


def answer_headers(origins: Collection[str]) -> OnPrepare:
    """The ``on_response_prepare`` hook that sets the headers of every answer (errors and the
    stream included): CORS for one of ``origins``, ``nosniff``, the CSP, and ``no-store``
    (answers carry tokens or per-user data)."""

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        headers = response.headers
        origin = request.headers.get(hdrs.ORIGIN)
        if origins:
            headers.add(hdrs.VARY, "Origin")
            if origin is not None and origin in origins:
                headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
                headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
                headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = "Retry-After, WWW-Authenticate"
        # (names as aiohttp's istr constants: a plain str name costs every answer, every open
        # stream's included, a lower-cased copy of it)
        headers[hdrs.X_CONTENT_TYPE_OPTIONS] = "nosniff"
        headers.setdefault(hdrs.CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        headers.setdefault(hdrs.REFERRER_POLICY, "no-referrer")
        headers.setdefault(hdrs.CACHE_CONTROL, "no-store")

    return on_prepare
