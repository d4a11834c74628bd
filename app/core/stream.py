"""The stream engine: holds one Server-Sent Events subscription for ever, and loses nothing.

One :class:`StreamEngine` runs on one asyncio loop (the tray's worker thread, or ``listen``'s
main thread). It connects with httpx, decodes with our WHATWG decoder (:mod:`app.core.sse`),
hands every event to ``on_event`` at once, reports its state to ``on_status``, and reconnects
after drops, silences (heartbeat timeout) and failures with :class:`~app.core.backoff.Backoff`:
every wait is at least the server's ``retry:`` time, and never under a second. A stream that
ends at once (within :data:`STABLE_STREAM`, having delivered no event but control events)
counts as a failure: a server that answers and closes again and again is met with a backoff
that grows, not with a reconnect a second.

Catch-up: a server replays at most so many missed announcements per connection, then sends
``event: sync`` with ``{"more": true}``. The engine then ends that response and continues at once
from the last id (no wait, no backoff penalty, no connecting/connected status in between), until
a ``sync`` says no more; :attr:`StreamEngine.catching_up` is true meanwhile. A ``sync`` with more
on a response that delivered nothing is not followed at once: that would be a loop.

httpx-sse is not used here: its decoder, line splitter, Content-Type check and request headers
each fall short of the rules (see :mod:`app.core.sse`); what is left of it (``aconnect_sse``) is
``client.stream()`` with two headers, and ``Cache-Control: no-store`` instead of the
``no-cache`` browsers send. The benchmark compares the two on the same stream.

Stopping: :meth:`StreamEngine.stop` cancels the task that connects, reads or sleeps; httpx then
closes the connection, so the stream ends at once even when no byte is arriving.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import time
from collections.abc import Callable, Coroutine
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from app.core import http
from app.core.backoff import Backoff, failure_cap
from app.core.config import ConfigError, PayloadProfile, StreamSettings
from app.core.errors import (
    AccessDenied,
    ErrorKind,
    LoginRequired,
    NotAnnouncementServer,
    NotFound,
    ProtocolError,
    ServerError,
    ServerUnreachable,
    TrayNotifierError,
    kind_of,
    proxy_of,
)
from app.core.model import (
    ConnState,
    ControlEvent,
    RawEvent,
    Status,
    StreamEvent,
)
from app.core.payload import event_parser
from app.core.sse import SSEDecoder

log = logging.getLogger(__name__)

T = TypeVar("T")
EVENT_STREAM = "text/event-stream"
STABLE_STREAM = 5.0  # seconds: a stream that ends sooner having delivered nothing has failed
_TRANSIENT = (ServerUnreachable, ServerError)


class TokenSource(Protocol):
    """Where the engine gets its bearer token; AuthSession and StaticToken satisfy it."""

    async def access_token(self) -> str: ...

    async def refresh(self) -> str:
        """A new token after the server refused the current one; raises LoginRequired."""
        ...


class StaticToken:
    """A fixed token (``listen --token``): when the server refuses it, a login is required."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(...)"

    async def access_token(self) -> str:
        return self._token

    async def refresh(self) -> str:
        raise LoginRequired("the server refused the token (HTTP 401): get a new token.")


class OutcomeKind(enum.StrEnum):
    STOPPED = "stopped"  # stop() was called
    NO_CONTENT = "no_content_204"  # the server said: do not reconnect
    LOGIN_REQUIRED = "login_required"
    FATAL = "fatal"  # something a person must fix; see Outcome.error


@dataclass(frozen=True, slots=True)
class Outcome:
    """Why :meth:`StreamEngine.run` returned."""

    kind: OutcomeKind
    error: Exception | None = None


class _Continue(enum.Enum):
    CONTINUE = "continue"


_CONTINUE = _Continue.CONTINUE  # the server has more to replay: reconnect at once, quietly

# how one attempt ends: an Outcome (run() returns), None (reconnect at once), _CONTINUE (a
# catch-up goes on: reconnect at once without a status), or (delay, reason) (wait, reconnect)
_Step = Outcome | tuple[float, str] | _Continue | None


class StreamEngine:
    """One SSE subscription with reconnection. Not thread-safe: use it on its own loop.

    ``on_event(raw, typed)`` is called synchronously for each dispatched event, before the
    engine does anything else, so the caller can store the event and ``raw.id`` (the last event
    id) at once. ``on_status(Status)`` reports connecting / connected / offline (with
    ``retry_in``) / login_required / error / stopped. Both run on the engine's loop; an
    exception raised by ``on_event`` ends run() with that exception (it is a bug to fix, not a
    network condition to retry).

    The control events ``connected``, ``sync`` and ``close`` reach ``on_event`` too (as
    :class:`~app.core.model.ControlEvent`), with ``raw.id`` the position the stream is at: store
    it like an announcement's. :attr:`catching_up` changes just before such an event is handed
    over, so ``on_event`` sees the new value (and ``on_status`` when a catch-up breaks off).

    ``sleep`` waits before a reconnect (tests pass one that records the wait); ``monotonic``
    measures how long a stream lasted. ``payload`` is the backend profile that reads an event's
    data (:mod:`app.core.payload`).
    """

    def __init__(
        self,
        *,
        url: str,
        settings: StreamSettings,
        token_source: TokenSource | None,
        on_event: Callable[[RawEvent, StreamEvent], None],
        on_status: Callable[[Status], None],
        last_event_id: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Coroutine[Any, Any, None]] = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        payload: PayloadProfile | None = None,
        refusal_pointer: str = "/code",
    ) -> None:
        if any(c in last_event_id for c in "\r\n\0"):
            raise ValueError("a last event id cannot hold CR, LF or NUL")
        self.url = url
        self.settings = settings
        self._source = token_source
        self._on_event = on_event
        self._on_status = on_status
        self._transport = transport
        self._payload = payload
        self._refusal_pointer = refusal_pointer  # where a 200 JSON answer says 401
        self._decoder = SSEDecoder(max_event_bytes=settings.max_event_bytes)
        # the failure cap keeps connect timeout + cap within 30 s of a server's return
        cap = failure_cap(settings.connect_timeout)
        self._backoff = Backoff(cap=cap, rng=rng, clock=clock)
        self._sleep = sleep
        self._monotonic = monotonic
        self._last_event_id = last_event_id
        self._stopping = False
        self._catching_up = False
        self._continuing = False  # this attempt continues a catch-up: no status flicker
        self._current: asyncio.Task[Any] | None = None
        self._rejected: set[str] = set()  # tokens the server refused: never sent again
        self._refreshed_after_401 = False

    @property
    def last_event_id(self) -> str:
        """The id of the last event handed to ``on_event`` (or given at start)."""
        return self._last_event_id

    @property
    def catching_up(self) -> bool:
        """True while missed announcements are being replayed: from a ``connected`` event that
        says a replay follows (``{"replay": true}``), across the immediate reconnects after each
        ``sync`` with ``{"more": true}``, until a ``sync`` without more or the end of the
        connection. A UI can gather what arrives meanwhile into one summary."""
        return self._catching_up

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """End run() soon: cancels the connect, read or wait in progress. Call on the loop."""
        self._stopping = True
        self._cancel_current()

    def reconnect_now(self) -> None:
        """Drop the wait (or the stream) and connect at once: wake from sleep, network back."""
        self._backoff.reset()
        self._cancel_current()

    def _cancel_current(self) -> None:
        if self._current is not None:
            self._current.cancel()

    # ------------------------------------------------------------------ main loop

    async def run(self) -> Outcome:
        """Connect and reconnect until stopped, HTTP 204, login required, or a fatal error."""
        try:
            client = http.make_client(self.settings, transport=self._transport)
        except ConfigError as exc:
            return self._finish(Outcome(OutcomeKind.FATAL, exc))
        try:
            return self._finish(await self._loop(client))
        except asyncio.CancelledError:
            self._catching_up = self._continuing = False
            self._status(ConnState.STOPPED)
            raise
        finally:
            await client.aclose()

    async def _loop(self, client: httpx.AsyncClient) -> Outcome:
        while not self._stopping:
            if not self._continuing:
                self._status(ConnState.CONNECTING)
            step = await self._guarded(self._attempt(client))
            self._continuing = step is _CONTINUE and not self._stopping
            if not self._continuing:
                self._catching_up = False
            if isinstance(step, Outcome):
                return step
            if step is None or step is _CONTINUE or self._stopping:
                continue  # at once: after a refresh, reconnect_now() or a sync with more
            delay, reason = step
            self._status(ConnState.OFFLINE, reason, retry_in=delay)
            await self._guarded(self._sleep(delay))
        return Outcome(OutcomeKind.STOPPED)

    async def _guarded(self, coro: Coroutine[Any, Any, T]) -> T | None:
        """Run one step as a task that stop()/reconnect_now() may cancel; None if cancelled."""
        if self._stopping:
            coro.close()
            return None
        task = asyncio.ensure_future(coro)
        self._current = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # run() itself was cancelled: take the step down too
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            raise
        finally:
            self._current = None
        return None if task.cancelled() else task.result()

    def _finish(self, outcome: Outcome) -> Outcome:
        error = outcome.error
        detail = str(error) if error else ""
        kind = kind_of(error) if error else None
        if outcome.kind is OutcomeKind.LOGIN_REQUIRED:
            self._status(ConnState.LOGIN_REQUIRED, detail, error=kind)
        elif outcome.kind is OutcomeKind.FATAL:
            log.error("stream stopped: %s", detail)
            self._status(ConnState.ERROR, detail, error=kind, proxy=proxy_of(error))
        else:
            if outcome.kind is OutcomeKind.NO_CONTENT:
                detail = "the server asked not to reconnect (HTTP 204)"
            self._status(ConnState.STOPPED, detail)
        return outcome

    def _status(
        self,
        state: ConnState,
        detail: str = "",
        retry_in: float | None = None,
        *,
        error: ErrorKind | None = None,
        proxy: str = "",
    ) -> None:
        self._on_status(Status(state, detail, retry_in, error, proxy))

    # ------------------------------------------------------------------ one attempt

    async def _attempt(self, client: httpx.AsyncClient) -> _Step:
        try:
            token = await self._token()
            response = await http.send(client, self._request(client, token), stream=True)
        except LoginRequired as exc:
            return Outcome(OutcomeKind.LOGIN_REQUIRED, exc)
        except _TRANSIENT as exc:
            return self._backoff.after_failure(), str(exc)
        except TrayNotifierError as exc:
            return Outcome(OutcomeKind.FATAL, exc)
        try:
            return await self._handle(response, token)
        finally:
            await response.aclose()

    async def _token(self) -> str | None:
        if self._source is None:
            return None
        token = await self._source.access_token()
        if token in self._rejected:
            token = await self._source.refresh()
            if token in self._rejected:
                raise LoginRequired("the server keeps refusing the token: log in again.")
        return token

    def _request(self, client: httpx.AsyncClient, token: str | None) -> httpx.Request:
        headers = [(b"Accept", EVENT_STREAM.encode()), (b"Cache-Control", b"no-cache")]
        if token is not None:
            headers.append((b"Authorization", f"Bearer {token}".encode()))
        url = httpx.URL(self.url)
        if self._last_event_id:
            headers.append((b"Last-Event-ID", self._last_event_id.encode("utf-8")))
            if self.settings.send_last_event_id_query:
                url = url.copy_merge_params({"lastEventId": self._last_event_id})
        return client.build_request("GET", url, headers=headers)

    async def _handle(self, response: httpx.Response, token: str | None) -> _Step:
        status = response.status_code
        if status == 200:
            content_type = response.headers.get("content-type", "")
            media = content_type.partition(";")[0].strip().lower()
            if media != EVENT_STREAM:
                refused = media == "application/json" and await _json_says_401(
                    response, self._refusal_pointer
                )
                if refused:
                    return self._unauthorized(token)  # RuoYi answers an expired token so
                return Outcome(OutcomeKind.FATAL, _not_event_stream(response.url, content_type))
            return await self._stream(response)
        if status == 204:
            return Outcome(OutcomeKind.NO_CONTENT)
        if status == 401:
            return self._unauthorized(token)
        if status == 403:
            return Outcome(OutcomeKind.FATAL, _denied(response.url))
        if status == 404:
            return Outcome(OutcomeKind.FATAL, _not_found(response.url))
        if status in (429, 503) or status >= 500:
            delay = self._backoff.after_failure(response.headers.get("retry-after"))
            return delay, f"the server answered HTTP {status}"
        return Outcome(
            OutcomeKind.FATAL,
            ProtocolError(f"the stream answered HTTP {status}: check the stream URL."),
        )

    def _unauthorized(self, token: str | None) -> _Step:
        if token is None:
            return Outcome(
                OutcomeKind.LOGIN_REQUIRED,
                LoginRequired("the server requires a login (HTTP 401): give a token."),
            )
        self._rejected.add(token)
        if self._refreshed_after_401:
            return Outcome(
                OutcomeKind.LOGIN_REQUIRED,
                LoginRequired("the server refused the refreshed token too: log in again."),
            )
        self._refreshed_after_401 = True
        log.info("the server refused the token (HTTP 401): refreshing it once")
        return None

    async def _stream(self, response: httpx.Response) -> _Step:
        if not self._continuing:
            self._status(ConnState.CONNECTED)
        self._refreshed_after_401 = False
        self._rejected.clear()
        decoder = self._decoder
        decoder.start_stream(self._last_event_id)
        parse, on_event = event_parser(self._payload), self._on_event
        reason = "the server ended the stream"
        more = delivered = False
        started = self._monotonic()
        try:
            async for chunk in response.aiter_bytes():
                for raw in decoder.feed(chunk):
                    if self._stopping:
                        return Outcome(OutcomeKind.STOPPED)
                    self._last_event_id = raw.id
                    typed = parse(raw)
                    if type(typed) is ControlEvent:
                        more = self._control(typed)
                    else:
                        delivered = True
                    on_event(raw, typed)
                    if more:
                        break  # nothing after it: a live event would leap over the rest
                if more:
                    break
                self._last_event_id = decoder.last_event_id
        except httpx.ReadTimeout:
            reason = f"no data for {self.settings.heartbeat_timeout:g} s"
        except httpx.RequestError as exc:
            reason = f"the stream broke ({type(exc).__name__})"
        if decoder.retry is not None:
            self._backoff.set_retry_ms(decoder.retry)
        if more and delivered:
            self._backoff.reset()
            log.info(
                "catching up: more to replay after %r, continuing at once", self._last_event_id
            )
            return _CONTINUE
        if delivered or self._monotonic() - started >= STABLE_STREAM:
            return self._backoff.after_success(), reason
        log.info("the stream ended at once, with nothing delivered: counted as a failure")
        return self._backoff.after_failure(), reason

    def _control(self, event: ControlEvent) -> bool:
        """Track the catch-up state from ``connected`` and ``sync``; True for "sync, more"."""
        if event.name == "connected":
            self._catching_up = _flag(event.data, "replay")
        elif event.name == "sync":
            self._catching_up = _flag(event.data, "more")
            return self._catching_up
        return False


_JSON_401_LIMIT = 64 * 1024  # a refusal's JSON body is small: read no more than this


async def _json_says_401(response: httpx.Response, pointer: str) -> bool:
    """Whether a 200 JSON answer to the stream request is a refused token in disguise:
    ``{"code": 401, ...}`` at ``pointer``, as Spring/RuoYi security filters answer an expired
    token: read as every authorised call reads one (:meth:`~app.core.http.Reply.refused`)."""
    try:
        body = await http.read_bounded(response, _JSON_401_LIMIT)
    except (httpx.HTTPError, TrayNotifierError):
        return False
    return http.Reply.parse(response.status_code, body).refused(pointer)


def _flag(data: str, key: str) -> bool:
    """Whether the JSON object ``data`` holds ``key: true`` (plain text: no)."""
    try:
        obj = json.loads(data)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get(key) is True


def _where(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"


def _not_event_stream(url: httpx.URL, content_type: str) -> NotAnnouncementServer:
    shown = content_type or "none"
    return NotAnnouncementServer(
        f"{_where(url)} answered with Content-Type {shown!r}, not an event stream. A proxy or "
        "a login page may be in the way, or the URL is not the stream URL: check the server URL."
    )


def _denied(url: httpx.URL) -> AccessDenied:
    return AccessDenied(
        f"{_where(url)} refused access (HTTP 403): the token belongs to another user or lacks "
        "the right; check the user name in the stream URL."
    )


def _not_found(url: httpx.URL) -> NotFound:
    return NotFound(
        f"{_where(url)} does not exist (HTTP 404): check the server URL and the connect "
        "endpoint setting."
    )
