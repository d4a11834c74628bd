"""The one worker: an asyncio loop on one QThread running the auth session and the stream.

Every public method may be called from any thread (they post to the worker's loop with
``call_soon_threadsafe``). The worker only emits signals carrying frozen dataclasses or
strings; it never touches a widget and never imports a window. Each announcement and the
last event id are stored in the HistoryStore BEFORE anything is emitted, so a restart resumes
without loss or repeat, and an id already stored emits nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import httpx
from PySide6.QtCore import QObject, QThread, Signal

from app.config import Config
from app.core.auth import AuthSession
from app.core.errors import LoginRequired, TrayNotifierError
from app.core.login_failure import classify
from app.core.model import (
    Announcement,
    ConnState,
    ControlEvent,
    RawEvent,
    Revoke,
    Status,
    StreamEvent,
)
from app.core.secrets import MemorySecretStore, SecretStore, SecretStoreUnavailable
from app.core.store import HistoryStore
from app.core.stream import StreamEngine

log = logging.getLogger(__name__)

STOP_TIMEOUT = 1.0  # the stream ends within this after logout or quit
CLOSE_TIMEOUT = 2.0  # the close call on quit waits at most this


class StreamWorker(QObject):
    """Runs login, the stream, acknowledgements and logout on its own thread.

    Signals (all emitted on the worker thread; Qt queues them to GUI-thread receivers):
        statusChanged(Status): the connection state changed.
        announcementReceived(Announcement): a NEW announcement, already stored.
        revoked(str): an announcement was withdrawn (already removed from the store).
        loggedIn(str): a session started for this user name (login or stored login).
        loginFailed(LoginFailure): a login attempt failed; the kind says why.
        loggedOut(): logout finished (stream ended, close and logout called, tokens gone).
        ackSent(str): the acknowledgement of this announcement reached the server.
        catchUpStarted(): the server replays what was missed (the engine's ``catching_up``
            turned true): the announcements until catchUpFinished are one catch-up, told in
            one summary however many pages it takes.
        catchUpFinished(): the replay is complete (a ``sync`` without more), broken off, or the
            session ended. Always after a catchUpStarted, once.
        finished(): the worker's loop has ended (after :meth:`shutdown`).
    """

    statusChanged = Signal(object)
    announcementReceived = Signal(object)
    revoked = Signal(str)
    loggedIn = Signal(str)
    loginFailed = Signal(object)
    loggedOut = Signal()
    ackSent = Signal(str)
    catchUpStarted = Signal()
    catchUpFinished = Signal()
    finished = Signal()

    def __init__(
        self,
        *,
        config: Config,
        secrets: SecretStore,
        transport: httpx.AsyncBaseTransport | None = None,
        ack_retry: float = 30.0,
    ) -> None:
        super().__init__()
        self._config = config
        self._secrets = secrets
        self._transport = transport
        self._ack_retry = ack_retry
        self._loop = asyncio.new_event_loop()
        self._thread: QThread | None = None
        # state below is touched on the worker's loop only
        # made here, not in _main(): a quit or a command posted before _main() first runs (a
        # shutdown right after start) must not be lost (they bind to the loop on first use)
        self._quit = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: AuthSession | None = None
        self._store: HistoryStore | None = None
        self._engine: StreamEngine | None = None
        self._stream: asyncio.Task[object] | None = None
        self._ack_timer: asyncio.TimerHandle | None = None
        self._catching_up = False  # between catchUpStarted and catchUpFinished

    # ------------------------------------------------------------------ thread

    def start(self) -> QThread:
        """Move to a new QThread and start the loop there."""
        thread = QThread()
        thread.setObjectName("stream-worker")
        self.moveToThread(thread)
        thread.started.connect(self._run)
        self._thread = thread
        thread.start()
        return thread

    @property
    def thread_handle(self) -> QThread | None:
        return self._thread

    def shutdown(self, timeout_ms: int = 3000) -> bool:
        """Quit: end the stream (within a second), call the close endpoint, stop the loop and
        wait for the thread. True when the thread has finished."""
        thread = self._thread
        if thread is None:  # never started
            self._loop.close()
            return True
        self._post(self._request_quit)
        return thread.wait(timeout_ms)

    def _run(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self.finished.emit()
            QThread.currentThread().quit()

    async def _main(self) -> None:
        await self._quit.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._end_session(logout=False)

    def _post(self, fn: Callable[[], object]) -> None:
        if self._loop.is_closed():
            log.debug("worker already stopped; %s ignored", fn)
            return
        self._loop.call_soon_threadsafe(fn)

    def _request_quit(self) -> None:
        self._quit.set()

    def _command(self, make: Callable[[], Awaitable[None]]) -> None:
        """On the loop: run one command after the previous ones (login, logout...)."""

        async def serialized() -> None:
            async with self._lock:
                await make()

        task = asyncio.ensure_future(serialized())
        self._tasks.add(task)
        task.add_done_callback(self._command_done)

    def _command_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("worker command failed", exc_info=task.exception())

    # ------------------------------------------------------------------ public API

    def connect_stored(self, server_url: str, username: str, store: HistoryStore) -> None:
        """Connect with the login stored in the keyring; LOGIN_REQUIRED when there is none."""
        self._post(lambda: self._command(lambda: self._connect(server_url, username, store)))

    def login(
        self,
        server_url: str,
        username: str,
        password: str,
        store: HistoryStore,
        *,
        this_run_only: bool = False,
    ) -> None:
        """Log in (ending any current session) and connect. ``this_run_only`` keeps the tokens
        in memory instead of the keyring."""
        self._post(
            lambda: self._command(
                lambda: self._login(server_url, username, password, store, this_run_only)
            )
        )

    def logout(self) -> None:
        """End the stream, call the close and logout endpoints, forget the tokens."""
        self._post(lambda: self._command(self._logout))

    def acknowledge(self, ann_id: str) -> None:
        """Queue the acknowledgement in the store and send it (retried until it is sent)."""
        self._post(lambda: self._acknowledge(ann_id))

    def reconnect_now(self) -> None:
        """Drop the wait or the stream and reconnect at once (wake from sleep, network back)."""
        self._post(lambda: self._engine.reconnect_now() if self._engine is not None else None)

    # ------------------------------------------------------------------ session

    def _new_session(self, server_url: str, username: str, secrets: SecretStore) -> AuthSession:
        return AuthSession(
            server_url=server_url,
            username=username,
            endpoints=self._config.endpoints,
            secrets=secrets,
            settings=self._config.stream,
            transport=self._transport,
        )

    async def _connect(self, server_url: str, username: str, store: HistoryStore) -> None:
        await self._end_session(logout=False)
        session = self._new_session(server_url, username, self._secrets)
        try:
            stored = session.has_stored_login()
        except SecretStoreUnavailable as exc:
            log.warning("%s", exc)
            stored = False
        if not stored:
            await session.aclose()
            self.statusChanged.emit(Status(ConnState.LOGIN_REQUIRED))
            return
        self._begin(session, store)

    async def _login(
        self, server_url: str, username: str, password: str, store: HistoryStore, memory: bool
    ) -> None:
        await self._end_session(logout=False)
        if memory and not isinstance(self._secrets, MemorySecretStore):
            log.warning("keeping the login in memory for this run only (no keyring)")
            self._secrets = MemorySecretStore()
        session = self._new_session(server_url, username, self._secrets)
        self.statusChanged.emit(Status(ConnState.CONNECTING))
        try:
            await session.login(password)
        except (TrayNotifierError, OSError, ValueError) as exc:
            log.info("login as %s at %s failed: %s", username, server_url, exc)
            await session.aclose()
            self.statusChanged.emit(Status(ConnState.LOGIN_REQUIRED))
            self.loginFailed.emit(classify(exc, server_url=server_url, username=username))
            return
        self._begin(session, store)

    def _begin(self, session: AuthSession, store: HistoryStore) -> None:
        self._session, self._store = session, store
        self._engine = StreamEngine(
            url=session.stream_url(),
            settings=self._config.stream,
            token_source=session,
            on_event=self._on_event,
            on_status=self._on_status,
            last_event_id=store.last_event_id(),
            transport=self._transport,
        )
        self._stream = asyncio.ensure_future(self._engine.run())
        self.loggedIn.emit(session.username)
        log.info(
            "connecting as %s, resuming after event %r", session.username, store.last_event_id()
        )
        self._schedule_acks(0.0)

    async def _end_session(self, *, logout: bool) -> None:
        """Stop the stream (within STOP_TIMEOUT), then log out or just close the streams."""
        engine, stream, session = self._engine, self._stream, self._session
        self._engine = self._stream = self._session = None
        self._store = None
        self._end_catch_up()
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        if engine is not None and stream is not None:
            engine.stop()
            try:
                await asyncio.wait_for(asyncio.shield(stream), STOP_TIMEOUT)
            except TimeoutError:
                log.warning("the stream did not stop within %.1f s: cancelled", STOP_TIMEOUT)
                stream.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stream
            except (TrayNotifierError, httpx.HTTPError):
                log.warning("the stream ended with an error", exc_info=True)
        if session is None:
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
        self.statusChanged.emit(Status(ConnState.STOPPED))

    async def _logout(self) -> None:
        await self._end_session(logout=True)
        self.loggedOut.emit()

    # ------------------------------------------------------------------ engine callbacks

    def _on_event(self, raw: RawEvent, event: StreamEvent) -> None:
        store = self._store
        if store is None:
            return
        if isinstance(event, Announcement):
            if store.record(event, raw.id):
                self.announcementReceived.emit(event)
            return
        if raw.id:
            store.set_last_event_id(raw.id)
        if isinstance(event, Revoke):
            store.remove(event.id)
            self.revoked.emit(event.id)
        elif isinstance(event, ControlEvent):
            self._follow_catch_up()  # the engine updates it on connected and sync

    def _follow_catch_up(self) -> None:
        """Mirror the engine's catch-up state in catchUpStarted / catchUpFinished."""
        engine = self._engine
        now = engine is not None and engine.catching_up
        if now and not self._catching_up:
            self._catching_up = True
            self.catchUpStarted.emit()
        elif not now:
            self._end_catch_up()

    def _end_catch_up(self) -> None:
        if self._catching_up:
            self._catching_up = False
            self.catchUpFinished.emit()

    def _on_status(self, status: Status) -> None:
        self._follow_catch_up()  # a catch-up broken off ends before the status is told
        self.statusChanged.emit(status)
        if status.state is ConnState.CONNECTED:
            self._schedule_acks(0.0)

    # ------------------------------------------------------------------ acknowledgements

    def _acknowledge(self, ann_id: str) -> None:
        if self._store is None:
            log.warning("acknowledgement of %s while logged out: sent after the next login", ann_id)
            return
        self._store.queue_ack(ann_id)  # idempotent: the root may have queued it already
        self._schedule_acks(0.0)

    def _schedule_acks(self, delay: float) -> None:
        if self._ack_timer is not None:
            self._ack_timer.cancel()
        self._ack_timer = self._loop.call_later(delay, lambda: self._command(self._send_acks))

    async def _send_acks(self) -> None:
        self._ack_timer = None
        session, store = self._session, self._store
        if session is None or store is None:
            return
        for ann_id in store.pending_acks():
            try:
                response = await session.request("POST", session.endpoints.ack, id=ann_id)
            except LoginRequired:
                return
            except TrayNotifierError as exc:
                log.info(
                    "acknowledgement of %s not sent (%s): retry in %.0f s",
                    ann_id,
                    exc,
                    self._ack_retry,
                )
                self._schedule_acks(self._ack_retry)
                return
            if response.is_success or response.status_code == 404:
                store.ack_sent(ann_id)
                self.ackSent.emit(ann_id)
            else:
                log.warning(
                    "acknowledgement of %s: HTTP %d, retry in %.0f s",
                    ann_id,
                    response.status_code,
                    self._ack_retry,
                )
                self._schedule_acks(self._ack_retry)
                return
