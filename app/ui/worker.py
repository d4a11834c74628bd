"""The one worker: a thin bridge between an asyncio loop on one QThread and Qt signals.

The loop runs a :class:`~app.core.connection.Connection` (login, the stream into the history,
the receipts, logout: all Qt-free, in ``app/core``); the worker posts each call to it and turns
what it tells into signals. Every public method may be called from any thread (they post to the
loop with ``call_soon_threadsafe``). The worker only emits signals carrying frozen dataclasses
or strings; it never touches a widget and never imports a window. Commands run one after the
other; a command that fails is logged with its traceback and told as ``ConnState.ERROR``, like
a failed stream or receipt task (the connection supervises those).
"""

from __future__ import annotations

import asyncio
import logging
import webbrowser
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
from PySide6.QtCore import QObject, QThread, Signal

from app.core.auth import AuthSession
from app.core.config import Config
from app.core.connection import Connection, failure_status
from app.core.errors import TrayNotifierError, kind_of
from app.core.login_failure import LoginFailure, classify
from app.core.model import Announcement, Status
from app.core.oidc import (
    BrowserPrompt,
    OpenBrowser,
    Prompt,
    SignInError,
    SignInFailure,
    SignInOptions,
)
from app.core.proxy import ProxyCredentials, store_credentials
from app.core.receipts import BATCH_DELAY, RETRY
from app.core.secrets import SecretStore, SecretStoreUnavailable
from app.core.store import HistoryStore

log = logging.getLogger(__name__)


class StreamWorker(QObject):
    """Runs login, the stream, the receipts and logout on its own thread. (Acknowledgements
    are written to the history on the GUI thread, :class:`~app.core.attention.Attention`: the
    history store wakes the receipt sender here.)

    Signals (all emitted on the worker thread; Qt queues them to GUI-thread receivers):
        statusChanged(Status): the connection state changed; ``ConnState.ERROR`` with a detail
            and an error kind also when a task failed (the traceback is in the log).
        announcementReceived(Announcement): a NEW announcement, already stored.
        announcementsReceived(list[Announcement]): several NEW announcements of a catch-up,
            already stored (one transaction), in order: handle them at once (one history
            update, one unread count). Each announcement comes once, by one of the two.
        revoked(str): an announcement was withdrawn (already marked so in the store).
        updated(Announcement): an announcement in the history was corrected (already stored:
            its new text), once per revision.
        reminded(Announcement): its publisher reminds of an announcement in the history (not
            withdrawn), once per reminder event.
        loggedIn(str): a session started for this user name (login or stored login).
        loginFailed(LoginFailure): a login attempt failed; the kind says why.
        loggedOut(): logout finished (stream ended, close and logout called, tokens gone).
        ackSent(str): the acknowledgement of this announcement reached the server.
        catchUpStarted(): the server replays what was missed (the engine's ``catching_up``
            turned true): the announcements until catchUpFinished are one catch-up, told in
            one summary however many pages it takes.
        catchUpFinished(): the replay is complete (a ``sync`` without more), broken off, or the
            session ended. Always after a catchUpStarted, once.
        signInOptions(SignInOptions): how a server signs people in (:meth:`fetch_sign_in_options`;
            passwords only when it could not be asked).
        signInWaiting(BrowserPrompt): a sign-in opened the provider's page in the browser and
            waits for it.
        signedIn(str server_url, str username): a sign-in with the organisation account stored
            this user's login (connect with :meth:`connect_stored`).
        signInFailed(SignInFailure): a sign-in ended without a login (cancelled, timed out,
            refused...); nothing stored changed.
        proxyCredentialsStored(): the proxy credentials given to
            :meth:`store_proxy_credentials` are in the keyring (connect again to use them).
        proxyCredentialsNotStored(str): they could not be kept: the keyring's error, in words.
        finished(): the worker's loop has ended (after :meth:`shutdown`).

    ``config`` is the one the first session uses; :meth:`use_config` hands newer ones.
    """

    statusChanged = Signal(Status)
    announcementReceived = Signal(Announcement)
    announcementsReceived = Signal(list)  # list[Announcement]
    revoked = Signal(str)
    updated = Signal(Announcement)
    reminded = Signal(Announcement)
    loggedIn = Signal(str)
    loginFailed = Signal(LoginFailure)
    loggedOut = Signal()
    ackSent = Signal(str)
    catchUpStarted = Signal()
    catchUpFinished = Signal()
    signInOptions = Signal(SignInOptions)
    signInWaiting = Signal(BrowserPrompt)
    signedIn = Signal(str, str)
    signInFailed = Signal(SignInFailure)
    proxyCredentialsStored = Signal()
    proxyCredentialsNotStored = Signal(str)
    finished = Signal()

    def __init__(
        self,
        *,
        config: Config,
        secrets: SecretStore,
        transport: httpx.AsyncBaseTransport | None = None,
        ack_retry: float = RETRY,
        receipt_delay: float = BATCH_DELAY,
        open_browser: OpenBrowser = webbrowser.open,
    ) -> None:
        """``open_browser(url)`` opens the identity provider's page for a sign-in (the system
        browser by default; called on a helper thread)."""
        super().__init__()
        self._loop = asyncio.new_event_loop()
        self._thread: QThread | None = None
        # state below is touched on the worker's loop only
        # made here, not in _main(): a quit or a command posted before _main() first runs (a
        # shutdown right after start) must not be lost (they bind to the loop on first use)
        self._quit = asyncio.Event()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._config = config  # for the sign-in's sessions
        self._secrets = secrets
        self._transport = transport
        self._open_browser = open_browser
        self._sign_in_cancel: asyncio.Event | None = None  # of the sign-in in progress
        self._connection = Connection(
            _Signals(self),
            config=config,
            secrets=secrets,
            transport=transport,
            receipt_retry=ack_retry,
            receipt_delay=receipt_delay,
        )

    # ------------------------------------------------------------------ thread

    def start(self) -> QThread:
        """Move to a new QThread and start the loop there (once: later calls return it)."""
        if self._thread is not None:
            return self._thread
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
        await self._connection.end(logout=False)

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

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """On the loop: run ``coro`` now, beside the commands (a sign-in waits minutes for the
        person: logout or quit must not wait behind it); cancelled on quit."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._command_done)

    def _command_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.error("worker command failed", exc_info=exc)
        assert exc is not None
        self.statusChanged.emit(failure_status(exc))

    # ------------------------------------------------------------------ public API

    def use_config(self, config: Config) -> None:
        """The settings changed: the next session (login, stored login) uses ``config``."""
        self._post(lambda: self._use_config(config))

    def _use_config(self, config: Config) -> None:
        self._config = config
        self._connection.use_config(config)

    def prepare(self, server_url: str, username: str) -> None:
        """Get ready to connect with the stored login while the GUI starts
        (:meth:`Connection.prepare`)."""
        c = self._connection
        self._post(lambda: self._command(lambda: c.prepare(server_url, username)))

    def connect_stored(self, server_url: str, username: str, store: HistoryStore) -> None:
        """Connect with the login stored in the keyring; LOGIN_REQUIRED when there is none."""
        c = self._connection
        self._post(lambda: self._command(lambda: c.connect_stored(server_url, username, store)))

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
        c = self._connection
        self._post(
            lambda: self._command(
                lambda: c.login(server_url, username, password, store, this_run_only=this_run_only)
            )
        )

    def logout(self) -> None:
        """End the stream, call the close and logout endpoints, forget the tokens."""
        self._post(lambda: self._command(self._connection.logout))

    def forget(self) -> None:
        """Logged out by the command line: stop and forget, with no call (thread-safe)."""
        self._post(lambda: self._command(self._connection.forget))

    def reconnect_now(self) -> None:
        """Drop the wait or the stream and reconnect at once (wake from sleep, network back)."""
        self._post(self._connection.reconnect_now)

    def store_proxy_credentials(self, credentials: ProxyCredentials) -> None:
        """Keep the proxy's Basic credentials in the keyring, as ``proxy-login`` does (off the
        GUI thread: the keyring may ask to be unlocked); ``proxyCredentialsStored`` or
        ``proxyCredentialsNotStored`` tells. The clients made from then on send them."""
        self._post(lambda: self._command(lambda: self._store_proxy_credentials(credentials)))

    async def _store_proxy_credentials(self, credentials: ProxyCredentials) -> None:
        try:
            await asyncio.to_thread(
                store_credentials, self._secrets, credentials.user, credentials.password
            )
        except SecretStoreUnavailable as exc:
            log.warning("the proxy credentials could not be stored: %s", exc)
            self.proxyCredentialsNotStored.emit(str(exc))
            return
        log.info("proxy credentials stored for %s", credentials.user)
        self.proxyCredentialsStored.emit()

    # ------------------------------------------------------------------ single sign-on

    def fetch_sign_in_options(self, server_url: str) -> None:
        """Ask how ``server_url`` signs people in (``/auth/config``, or the ``[auth]``
        settings), off the GUI thread; ``signInOptions`` tells."""
        self._post(lambda: self._spawn(self._fetch_options(server_url)))

    def sign_in(self, server_url: str) -> None:
        """Sign in with the organisation account at ``server_url`` (a sign-in in progress is
        cancelled first): ``signInWaiting``, then ``signedIn`` or ``signInFailed``."""
        self._post(lambda: self._spawn(self._sign_in(server_url)))

    def cancel_sign_in(self) -> None:
        """Stop the sign-in in progress (``signInFailed`` says it was cancelled)."""
        self._post(self._cancel_sign_in)

    def _cancel_sign_in(self) -> None:
        if self._sign_in_cancel is not None:
            self._sign_in_cancel.set()

    def _sign_in_session(self, server_url: str) -> AuthSession:
        config = self._config
        return AuthSession(
            server_url=server_url,
            username="",  # the sign-in names the user
            endpoints=config.endpoints,
            secrets=self._secrets,
            settings=config.stream,
            transport=self._transport,
            profile=config.auth,
        )

    async def _fetch_options(self, server_url: str) -> None:
        session = self._sign_in_session(server_url)
        try:
            options = await session.sign_in_options()
        except (TrayNotifierError, OSError, ValueError) as exc:
            log.info("how %s signs people in is not known (%s): passwords only", server_url, exc)
            options = SignInOptions(server_url.rstrip("/"))
        finally:
            await session.aclose()
        self.signInOptions.emit(options)

    async def _sign_in(self, server_url: str) -> None:
        self._cancel_sign_in()
        cancel = self._sign_in_cancel = asyncio.Event()
        session = self._sign_in_session(server_url)
        try:
            await session.sign_in(
                on_prompt=self._prompted, open_browser=self._open_browser, cancel=cancel
            )
        except SignInError as exc:
            log.info("the sign-in at %s ended: %s", server_url, exc)
            failure = classify(exc, server_url=server_url)
            self.signInFailed.emit(SignInFailure(server_url, exc.kind, failure, exc.reason))
            return
        except (TrayNotifierError, OSError, ValueError) as exc:
            log.info("the sign-in at %s failed: %s", server_url, exc)
            failure = classify(exc, server_url=server_url)
            self.signInFailed.emit(SignInFailure(server_url, kind_of(exc), failure))
            return
        finally:
            await session.aclose()
            if self._sign_in_cancel is cancel:
                self._sign_in_cancel = None
        log.info("signed in as %s at %s", session.username, server_url)
        self.signedIn.emit(server_url, session.username)

    def _prompted(self, prompt: Prompt) -> None:
        if isinstance(prompt, BrowserPrompt):
            self.signInWaiting.emit(prompt)


class _Signals:
    """The :class:`~app.core.connection.Listener` of the worker's connection: each call
    becomes the worker's signal (emitted on the worker thread)."""

    def __init__(self, worker: StreamWorker) -> None:
        self._w = worker

    def status(self, status: Status) -> None:
        self._w.statusChanged.emit(status)

    def announcement(self, ann: Announcement) -> None:
        self._w.announcementReceived.emit(ann)

    def announcements(self, anns: list[Announcement]) -> None:
        self._w.announcementsReceived.emit(anns)

    def revoked(self, ann_id: str) -> None:
        self._w.revoked.emit(ann_id)

    def updated(self, ann: Announcement) -> None:
        self._w.updated.emit(ann)

    def reminded(self, ann: Announcement) -> None:
        self._w.reminded.emit(ann)

    def logged_in(self, username: str) -> None:
        self._w.loggedIn.emit(username)

    def login_failed(self, failure: LoginFailure) -> None:
        self._w.loginFailed.emit(failure)

    def logged_out(self) -> None:
        self._w.loggedOut.emit()

    def receipt_sent(self, ann_id: str) -> None:
        self._w.ackSent.emit(ann_id)

    def catch_up_started(self) -> None:
        self._w.catchUpStarted.emit()

    def catch_up_finished(self) -> None:
        self._w.catchUpFinished.emit()
