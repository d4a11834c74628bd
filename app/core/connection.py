"""One user's connection: the auth session, the stream, storing what arrives, the receipts.

No Qt here: :class:`Connection` runs on one asyncio loop and tells a :class:`Listener` what
happens (the UI's worker turns each call into a Qt signal). Rules it keeps:

- Each announcement and the last event id are stored in the history BEFORE the listener hears
  of it, so a restart resumes without loss or repeat; an id already stored is not told again.
  So are the changes, each in one transaction with its own position: a correction (told once
  per revision, ``updated``), a reminder (once per reminder event, ``reminded``), a revoke.
- During a catch-up (the replay after an absence) announcements are stored in batches, one
  transaction for up to :data:`CATCH_UP_BATCH` of them (or what one read brought, when the
  loop gets a turn), and told in one ``announcements`` call per batch, in order. What was
  received but not yet stored is stored before anything else is told or the session ends.
- Logout or quit ends the stream within :data:`STOP_TIMEOUT` even while it is blocked in a read.
- An event that carried no id is new each time it arrives, except a connect greeting: an
  event without any id that arrives within :data:`GREETING_WINDOW` of a connect and whose
  exact content (event name and data) was such a greeting before is not stored or told
  again. The first one is stored and told like any announcement; the store keeps the last few
  greetings' fingerprints, so a restart does not bring it back either.
- Its tasks (the stream, the receipts) are supervised: when one fails (the history cannot be
  written, a bug) the failure is logged with its traceback and told as ``ConnState.ERROR``
  with a detail, never silently dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import httpx

from app.core import http
from app.core.auth import AuthSession
from app.core.config import Config
from app.core.errors import TrayNotifierError, kind_of, proxy_of
from app.core.login_failure import LoginFailure, classify
from app.core.model import (
    Announcement,
    ConnState,
    ControlEvent,
    RawEvent,
    Remind,
    Revoke,
    Status,
    StreamEvent,
    Update,
)
from app.core.receipts import BATCH_DELAY, RETRY, ReceiptQueue
from app.core.secrets import MemorySecretStore, SecretStore, SecretStoreUnavailable, login_key
from app.core.store import HistoryStore, HistoryStoreError
from app.core.stream import StreamEngine

log = logging.getLogger(__name__)

STOP_TIMEOUT = 1.0  # the stream ends within this after logout or quit
CLOSE_TIMEOUT = 2.0  # the close call on quit waits at most this
GREETING_WINDOW = 10.0  # an id-less event this soon after a connect may be a greeting
CATCH_UP_BATCH = 200  # during a catch-up: announcements stored in one transaction, told at once


class Listener(Protocol):
    """What a :class:`Connection` tells; called on its loop."""

    def status(self, status: Status) -> None: ...
    def announcement(self, ann: Announcement) -> None: ...
    def announcements(self, anns: list[Announcement]) -> None:
        """Several new announcements of a catch-up, already stored, in order."""
        ...

    def revoked(self, ann_id: str) -> None: ...
    def updated(self, ann: Announcement) -> None:
        """A correction of one in the history, already stored (its new text): once per
        revision."""

    def reminded(self, ann: Announcement) -> None:
        """A reminder of one in the history (not withdrawn), already recorded: once per
        reminder event."""

    def logged_in(self, username: str) -> None: ...
    def login_failed(self, failure: LoginFailure) -> None: ...
    def logged_out(self) -> None: ...
    def receipt_sent(self, ann_id: str) -> None: ...
    def catch_up_started(self) -> None: ...
    def catch_up_finished(self) -> None: ...


def failure_detail(exc: BaseException) -> str:
    """A failed task in words for the log (our errors already say what to do)."""
    if isinstance(exc, TrayNotifierError | HistoryStoreError) and str(exc):
        return str(exc)
    return f"unexpected error ({type(exc).__name__}): see the log"


def failure_status(exc: BaseException) -> Status:
    """The ERROR status of a failed task or command: its kind (for the UI) and its words."""
    return Status(ConnState.ERROR, failure_detail(exc), error=kind_of(exc), proxy=proxy_of(exc))


class Connection:
    """Logs in (or uses the stored login), runs the stream into the history store, sends the
    receipts, and logs out. Coroutines and methods for ONE asyncio loop; commands are run one
    after the other by the caller (the worker serialises them).

    ``config`` is read at each session start (:meth:`use_config` hands a newer one);
    ``receipt_retry`` is the receipts' retry time, ``receipt_delay`` how long receipts are
    gathered into one batch (tests pass a short one).
    """

    def __init__(
        self,
        listener: Listener,
        *,
        config: Config,
        secrets: SecretStore,
        transport: httpx.AsyncBaseTransport | None = None,
        receipt_retry: float = RETRY,
        receipt_delay: float = BATCH_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._listener = listener
        self._clock = clock
        self._connected_at: float | None = None  # when the stream last connected
        self._config = config
        self._secrets = secrets
        self._transport = transport
        self._receipt_retry = receipt_retry
        self._receipt_delay = receipt_delay
        self._session: AuthSession | None = None
        self._store: HistoryStore | None = None
        self._engine: StreamEngine | None = None
        self._receipts: ReceiptQueue | None = None
        self._stream: asyncio.Task[Any] | None = None  # supervised: see _task_done
        self._sender: asyncio.Task[Any] | None = None  # the receipts' task, supervised too
        self._catching_up = False  # between catch_up_started and catch_up_finished
        self._batch: list[tuple[Announcement, str]] = []  # received in a catch-up, not stored
        self._flush_scheduled = False
        self._broken = False  # storing a batch failed: this session's stream is told no more

    def use_config(self, config: Config) -> None:
        """The settings changed: the next session uses ``config``."""
        self._config = config

    # ------------------------------------------------------------------ commands

    async def prepare(self, server_url: str, username: str) -> None:
        """Get ready to connect with the stored login while the GUI starts: read it from the
        keyring (the next read of it answers from memory) and load the HTTP stack."""
        self._secrets.prefetch(login_key(server_url, username))
        try:
            client = http.make_client(self._config.stream)
        except TrayNotifierError as exc:  # told when the stream makes its own
            log.debug("not prepared: %s", exc)
            return
        await client.aclose()

    async def connect_stored(self, server_url: str, username: str, store: HistoryStore) -> None:
        """Connect with the login stored in the keyring; LOGIN_REQUIRED when there is none."""
        await self.end(logout=False)
        session = self._new_session(server_url, username, self._secrets)
        try:
            stored = session.has_stored_login()
        except SecretStoreUnavailable as exc:
            log.warning("%s", exc)
            stored = False
        if not stored:
            await session.aclose()
            self._listener.status(Status(ConnState.LOGIN_REQUIRED))
            return
        self._begin(session, store)

    async def login(
        self,
        server_url: str,
        username: str,
        password: str,
        store: HistoryStore,
        *,
        this_run_only: bool = False,
    ) -> None:
        """Log in (ending any current session) and connect. ``this_run_only`` keeps the tokens
        in memory instead of the keyring, from now on."""
        await self.end(logout=False)
        if this_run_only and not isinstance(self._secrets, MemorySecretStore):
            log.warning("keeping the login in memory for this run only (no keyring)")
            self._secrets = MemorySecretStore()
        session = self._new_session(server_url, username, self._secrets)
        self._listener.status(Status(ConnState.CONNECTING))
        try:
            await session.login(password)
        except (TrayNotifierError, OSError, ValueError) as exc:
            log.info("login as %s at %s failed: %s", username, server_url, exc)
            await session.aclose()
            self._listener.status(Status(ConnState.LOGIN_REQUIRED))
            self._listener.login_failed(classify(exc, server_url=server_url, username=username))
            return
        self._begin(session, store)

    async def logout(self) -> None:
        """End the stream, call the close and logout endpoints, forget the tokens."""
        await self.end(logout=True)
        self._listener.logged_out()

    async def forget(self) -> None:
        """Logged out by the ``logout`` command, which makes the server calls and removes the
        stored login itself: end the stream and drop the session, making no call and keeping
        no token or password in memory (so nothing can log in again)."""
        await self.end(logout=True, calls=False)
        self._listener.logged_out()

    def reconnect_now(self) -> None:
        """Drop the wait or the stream and reconnect at once (wake from sleep, network back)."""
        if self._engine is not None:
            self._engine.reconnect_now()

    # ------------------------------------------------------------------ session

    def _new_session(self, server_url: str, username: str, secrets: SecretStore) -> AuthSession:
        return AuthSession(
            server_url=server_url,
            username=username,
            endpoints=self._config.endpoints,
            secrets=secrets,
            settings=self._config.stream,
            transport=self._transport,
            profile=self._config.auth,
        )

    def _begin(self, session: AuthSession, store: HistoryStore) -> None:
        self._session, self._store = session, store
        self._batch, self._broken = [], False
        self._engine = StreamEngine(
            url=session.stream_url(),
            settings=self._config.stream,
            token_source=session,
            on_event=self._on_event,
            on_status=self._on_status,
            last_event_id=store.last_event_id(),
            transport=self._transport,
            payload=self._config.payload,
            refusal_pointer=self._config.auth.refusal_pointer,
        )
        self._receipts = ReceiptQueue(
            store,
            session,
            on_sent=self._listener.receipt_sent,
            retry=self._receipt_retry,
            batch_delay=self._receipt_delay,
        )
        self._stream = self._supervise(self._engine.run(), "the stream")
        self._sender = self._supervise(self._receipts.run(), "sending receipts")
        self._listener.logged_in(session.username)
        log.info(
            "connecting as %s, resuming after event %r", session.username, store.last_event_id()
        )

    def _supervise(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(what)
        task.add_done_callback(lambda t: self._task_done(t, what))
        return task

    def _task_done(self, task: asyncio.Task[Any], what: str) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            return
        log.error("%s failed", what, exc_info=exc)
        self._listener.status(failure_status(exc))

    async def end(self, *, logout: bool, calls: bool = True) -> None:
        """Stop the stream (within STOP_TIMEOUT), then log out or just close the streams
        (``calls=False``: neither, someone else did)."""
        try:
            self._flush()  # what was received is stored (and told) before the session ends
        except (HistoryStoreError, OSError) as exc:  # not stored: replayed after the next connect
            log.warning("the last announcements received could not be stored: %s", exc)
        engine, session, stream, sender = self._engine, self._session, self._stream, self._sender
        self._engine = self._session = self._store = self._receipts = None
        self._stream = self._sender = None
        self._end_catch_up()
        if sender is not None:  # a receipt cut short is sent again: the server takes it once
            sender.cancel()
            await asyncio.wait({sender})
        if engine is not None and stream is not None:
            engine.stop()
            await self._stop(stream)
        if session is None:
            return
        if not calls:
            await session.aclose()
            self._listener.status(Status(ConnState.STOPPED))
            return
        try:
            if logout:
                await session.logout()
            else:
                await asyncio.wait_for(session.close_streams(), CLOSE_TIMEOUT)
        except SecretStoreUnavailable as exc:
            log.warning("logout: %s", exc)
        except (TimeoutError, TrayNotifierError) as exc:
            log.warning("the close call failed: %s", exc)
        finally:
            await session.aclose()
        self._listener.status(Status(ConnState.STOPPED))

    @staticmethod
    async def _stop(stream: asyncio.Task[Any]) -> None:
        """Let the stream end within STOP_TIMEOUT, else cancel it. A failure was already told
        by the supervisor."""
        await asyncio.wait({stream}, timeout=STOP_TIMEOUT)
        if not stream.done():
            log.warning("the stream did not stop within %.1f s: cancelled", STOP_TIMEOUT)
            stream.cancel()
            await asyncio.wait({stream})

    # ------------------------------------------------------------------ engine callbacks

    def _on_event(self, raw: RawEvent, event: StreamEvent) -> None:
        store = self._store
        if store is None or self._broken:
            return
        if isinstance(event, Announcement) and self._catching_up and not event.anonymous:
            self._batch.append((event, raw.id))
            if len(self._batch) >= CATCH_UP_BATCH:
                self._flush()
            elif not self._flush_scheduled:  # the rest of this read first, then store them
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush_soon)
            return
        self._flush()  # in order: the batch before anything else
        if isinstance(event, Announcement):
            if event.anonymous and self._repeated_greeting(store, raw):
                log.info("the connect greeting came again: not shown again")
                if raw.id:
                    store.set_last_event_id(raw.id)
                return
            if store.record(event, raw.id):
                self._listener.announcement(event)
            return
        # a change and the stream's position (its own id) are stored in one transaction
        if isinstance(event, Revoke):
            store.withdraw(event.id, raw.id)  # kept, marked withdrawn
            self._listener.revoked(event.id)
        elif isinstance(event, Update):
            stored = store.apply_update(event, raw.id)
            if stored is not None:  # a newer revision of one that is here: told once
                self._listener.updated(stored.announcement)
        elif isinstance(event, Remind):
            reminded = store.record_remind(event.id, raw.event_id, raw.id)
            if reminded is not None:  # once per reminder event
                self._listener.reminded(reminded.announcement)
        else:
            if raw.id:
                store.set_last_event_id(raw.id)
            if isinstance(event, ControlEvent):
                self._follow_catch_up()  # the engine updates it on connected and sync

    def _flush(self) -> None:
        """Store the catch-up's batch in one transaction, then tell what was new."""
        batch, self._batch = self._batch, []
        store = self._store
        if not batch or store is None:
            return
        # their delivered receipts go after the catch-up: the server replays faster meanwhile
        new = store.record_many(batch, notify=False)
        if new:
            self._listener.announcements(new)

    def _flush_soon(self) -> None:
        """The loop's turn after a read: store the batch. A failure ends the stream as one in
        the stream task would (logged, told as ERROR)."""
        self._flush_scheduled = False
        try:
            self._flush()
        except Exception as exc:
            log.error("the stream failed", exc_info=exc)
            self._broken = True  # the engine's STOPPED that follows is not told over it
            self._listener.status(failure_status(exc))
            if self._engine is not None:
                self._engine.stop()

    def _repeated_greeting(self, store: HistoryStore, raw: RawEvent) -> bool:
        """True for a connect greeting seen before; remembers a new one (then False)."""
        at = self._connected_at
        if at is None or self._clock() - at > GREETING_WINDOW:
            return False
        content = f"{raw.event}\n{raw.data}".encode("utf-8", "replace")
        fingerprint = hashlib.sha256(content).hexdigest()
        if store.is_known_greeting(fingerprint):
            return True
        store.remember_greeting(fingerprint)
        return False

    def _follow_catch_up(self) -> None:
        """Mirror the engine's catch-up state in catch_up_started / catch_up_finished."""
        engine = self._engine
        now = engine is not None and engine.catching_up
        if now and not self._catching_up:
            self._catching_up = True
            self._listener.catch_up_started()
        elif not now:
            self._end_catch_up()

    def _end_catch_up(self) -> None:
        if self._catching_up:
            self._catching_up = False
            if self._receipts is not None:  # the catch-up's delivered receipts, now
                self._receipts.wake()
            self._listener.catch_up_finished()

    def _on_status(self, status: Status) -> None:
        if self._broken:
            self._follow_catch_up()
            return
        self._flush()  # what arrived is stored and told before the state changes
        self._follow_catch_up()  # a catch-up broken off ends before the status is told
        if status.state is ConnState.CONNECTED:
            self._connected_at = self._clock()
        self._listener.status(status)
        if status.state is ConnState.CONNECTED and self._receipts is not None:
            self._receipts.wake()
