"""``tray-notifier --self-test``: prove, headless and on loopback only, that this build works.

Runs the real parts end to end, each step bounded by a timeout: the embedded announcement
server on a free loopback port in a temporary folder, a throw-away user, login through
:class:`~app.core.auth.AuthSession` with the token kept in and read back from a secret store
(the in-memory one: a self-test must never prompt to unlock the user's keyring), the
:class:`~app.core.stream.StreamEngine`, one published announcement received, recorded in a
history store and handed to the tray's own toast path (:class:`~app.ui.notifier.Notifier` with
its :class:`~app.core.toast_policy.ToastPolicy`; offscreen, so it pops up our own toast window).
It prints one line per step with its timing, then versions, and exits 0; the first failure ends
the run with exit 1 and the reason.

Works the same from a checkout (``python -m app --self-test``) and in the frozen binary, where it
also shows that the bundle carries what the app needs (aiohttp, PyJWT, httpx, keyring's
backends, Qt's offscreen platform).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from app import APP_NAME, __version__
from app.core.config import Endpoints, StreamSettings
from app.core.model import Announcement, ConnState, Priority, RawEvent, Status, StreamEvent
from app.exit_codes import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from app.core.auth import AuthSession, Tokens
    from app.core.secrets import MemorySecretStore
    from app.core.store import HistoryStore
    from app.core.stream import StreamEngine
    from app.server.embedded import EmbeddedServer
    from app.ui.notifier import Notifier, ToastRecord

log = logging.getLogger(__name__)

STEP_TIMEOUT = 10.0  # seconds for any one step
STOP_TIMEOUT = 5.0  # seconds for tearing down what was started
TITLE = "Self-test announcement"

_T = TypeVar("_T")


class SelfTestError(Exception):
    """A step found something wrong; the message says what."""


async def in_thread(fn: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking call on a daemon thread and await it, so a caller's timeout can give up
    on a call that hangs without keeping the process alive (unlike ``asyncio.to_thread``)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(result: _T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def deliver(result: _T | None, error: BaseException | None) -> None:
        # RuntimeError: the loop is closed, whoever waited gave up (timeout) and is gone
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, error)

    def work() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task as it is
            deliver(None, exc)
        else:
            deliver(result, None)

    threading.Thread(target=work, name="selftest-call", daemon=True).start()
    return await future


@dataclass
class _Run:
    """State shared by the steps of one self-test run."""

    workdir: Path
    out: TextIO
    username: str = field(default_factory=lambda: f"selftest-{secrets.token_hex(4)}")
    password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    server: EmbeddedServer | None = None
    secret_store: MemorySecretStore | None = None
    session: AuthSession | None = None
    tokens: Tokens | None = None
    engine: StreamEngine | None = None
    engine_task: asyncio.Task[Any] | None = None
    history: HistoryStore | None = None
    notifier: Notifier | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    received: dict[str, Announcement] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    toasts: list[ToastRecord] = field(default_factory=list)
    published_id: str = ""
    last_status: Status | None = None

    # -------------------------------------------------------------- engine callbacks

    def on_status(self, status: Status) -> None:
        self.last_status = status
        if status.state is ConnState.CONNECTED:
            self.connected.set()

    def on_event(self, raw: RawEvent, event: StreamEvent) -> None:
        """What the tray does with each event: record it, and a new one goes to the notifier."""
        if not isinstance(event, Announcement):
            return
        assert self.history is not None and self.notifier is not None
        if self.history.record(event, raw.id):
            self.received[event.id] = event
            self.notifier.announcement(event)
        self.arrived.set()

    # -------------------------------------------------------------- running steps

    async def step(self, name: str, action: Callable[[], Awaitable[str]]) -> None:
        start = time.perf_counter()
        try:
            detail = await asyncio.wait_for(action(), STEP_TIMEOUT)
        except TimeoutError:
            reason = f"no result within {STEP_TIMEOUT:.0f} s"
            self._print(False, start, name, reason)
            raise SelfTestError(f"{name}: {reason}") from None
        except SelfTestError as exc:
            self._print(False, start, name, str(exc))
            raise SelfTestError(f"{name}: {exc}") from exc
        except Exception as exc:
            # unexpected: the traceback goes to the log (stderr), the reason to the report
            log.error("self-test step %r failed", name, exc_info=exc)
            reason = f"{type(exc).__name__}: {exc}"
            self._print(False, start, name, reason)
            raise SelfTestError(f"{name}: {reason}") from exc
        self._print(True, start, name, detail)

    def _print(self, ok: bool, start: float, name: str, detail: str) -> None:
        mark = "OK  " if ok else "FAIL"
        seconds = time.perf_counter() - start
        print(f"  {mark} {seconds:6.2f} s  {name}: {detail}", file=self.out, flush=True)


# ------------------------------------------------------------------ the steps


async def _check_bundle(run: _Run) -> str:
    backends = metadata.entry_points(group="keyring.backends")
    if not backends:
        raise SelfTestError("keyring's backend list (package metadata) is missing from this build")
    if sys.platform.startswith("linux"):
        try:
            import secretstorage  # noqa: F401 (the Secret Service, spoken directly)
        except ImportError as exc:
            raise SelfTestError(f"secretstorage is missing from this build: {exc}") from exc
    from app.core.secrets import KeyringSecretStore

    backend = await in_thread(KeyringSecretStore.choose_backend)
    return f"keyring backends {len(backends)}, in use here: {_class_name(backend)}"


async def _start_qt(run: _Run) -> str:
    from PySide6 import __version__ as pyside_version
    from PySide6.QtWidgets import QApplication

    from app.core.toast_policy import ToastPolicy
    from app.ui.notifier import Notifier

    if QApplication.instance() is None:
        QApplication([sys.argv[0]])
    QApplication.setApplicationName(APP_NAME)
    # no tray and no session bus: the notifier uses our own toast window, as on a bare desktop
    run.notifier = Notifier(None, policy=ToastPolicy(settle=0.0), bus=None)
    run.notifier.delivered.connect(run.toasts.append)
    return f"PySide6 {pyside_version}, Qt platform {QApplication.platformName()}"


async def _check_fonts(run: _Run) -> str:
    """A font that shows Simplified Chinese: without one every Chinese announcement is a row of
    boxes, in the windows and the notifications. Said, not failed: the tray itself works."""
    from PySide6.QtGui import QFontDatabase

    families = QFontDatabase.families(QFontDatabase.WritingSystem.SimplifiedChinese)
    if families:
        return f"Chinese text shown with {families[0]} ({len(families)} families can)"
    return f"WARNING: {NO_CJK_FONT}"


#: what the self-test (and the Linux install) say when no font can show Chinese
NO_CJK_FONT = (
    "no font on this computer shows Chinese: Chinese announcements would appear as boxes."
    " Install one: sudo apt-get install fonts-noto-cjk (Debian, Ubuntu), sudo dnf install"
    " google-noto-sans-cjk-fonts (Fedora)"
)


async def _start_server(run: _Run) -> str:
    from app.server.embedded import EmbeddedServer

    run.server = EmbeddedServer(data_dir=run.workdir / "server", port=0, token_ttl=300.0)
    await in_thread(run.server.start)
    return run.server.url


async def _add_user(run: _Run) -> str:
    assert run.server is not None
    await in_thread(run.server.add_user, run.username, run.password)
    return run.username


async def _log_in(run: _Run) -> str:
    from app.core.auth import AuthSession
    from app.core.secrets import MemorySecretStore

    assert run.server is not None
    run.secret_store = MemorySecretStore()
    run.session = AuthSession(
        server_url=run.server.url,
        username=run.username,
        endpoints=Endpoints(),
        secrets=run.secret_store,
        settings=_settings(),
    )
    run.tokens = await run.session.login(run.password)
    return f"user id {run.tokens.user_id}"


async def _read_token(run: _Run) -> str:
    from app.core.auth import Tokens
    from app.core.secrets import login_key

    assert run.server is not None and run.secret_store is not None and run.tokens is not None
    stored = run.secret_store.get(login_key(run.server.url, run.username))
    read_back = Tokens.from_secret(stored) if stored else None
    if read_back is None:
        raise SelfTestError("the login was not kept in the secret store")
    if read_back.access_token != run.tokens.access_token:
        raise SelfTestError("the token read back from the secret store is not the one stored")
    return f"{type(run.secret_store).__name__} (in memory; the user's keyring is left alone)"


async def _connect(run: _Run) -> str:
    from app.core.store import HistoryStore
    from app.core.stream import StreamEngine

    assert run.server is not None and run.session is not None
    run.history = HistoryStore(run.workdir / "history.sqlite3")
    url = run.session.stream_url()
    run.engine = StreamEngine(
        url=url,
        settings=_settings(),
        token_source=run.session,
        on_event=run.on_event,
        on_status=run.on_status,
    )
    run.engine_task = asyncio.create_task(run.engine.run(), name="selftest-stream")
    waiter = asyncio.create_task(run.connected.wait())
    await asyncio.wait(
        {waiter, run.engine_task}, timeout=STEP_TIMEOUT / 2, return_when=asyncio.FIRST_COMPLETED
    )
    waiter.cancel()
    if run.engine_task.done():
        raise SelfTestError(f"the stream ended before connecting: {run.engine_task.result()}")
    if not run.connected.is_set():
        raise SelfTestError(f"not connected after {STEP_TIMEOUT / 2:.0f} s ({run.last_status})")
    return url


async def _publish(run: _Run) -> str:
    assert run.server is not None
    run.published_id = await in_thread(
        lambda: run.server.publish(  # type: ignore[union-attr]
            TITLE,
            f"Sent to {run.username} on loopback.",
            priority=Priority.HIGH.value,
            audience={"users": [run.username]},
        )
    )
    return f"id {run.published_id}"


async def _receive(run: _Run) -> str:
    while run.published_id not in run.received:
        run.arrived.clear()
        await run.arrived.wait()
    ann = run.received[run.published_id]
    if ann.title != TITLE or ann.priority is not Priority.HIGH:
        raise SelfTestError(f"received {ann.title!r} ({ann.priority}), expected {TITLE!r} (high)")
    return f"id {ann.id}, stored in the history"


async def _toast(run: _Run) -> str:
    shown = [t for t in run.toasts if t.announcement_id == run.published_id]
    if len(shown) != 1 or shown[0].title != TITLE:
        raise SelfTestError(f"expected one toast for the announcement, the notifier showed {shown}")
    return f"one toast, by {shown[0].method.value} (offscreen: no tray, no notification service)"


async def _disconnect(run: _Run) -> str:
    assert run.engine is not None and run.engine_task is not None and run.session is not None
    start = time.perf_counter()
    run.engine.stop()
    outcome = await run.engine_task
    await run.session.logout()
    return f"stream ended in {time.perf_counter() - start:.2f} s ({outcome.kind.value})"


Step = tuple[str, Callable[[_Run], Awaitable[str]]]

STEPS: tuple[Step, ...] = (
    ("bundled parts", _check_bundle),
    ("Qt and notifier", _start_qt),
    ("fonts", _check_fonts),
    ("start embedded server", _start_server),
    ("create throw-away user", _add_user),
    ("log in", _log_in),
    ("token through secret store", _read_token),
    ("connect stream", _connect),
    ("publish announcement", _publish),
    ("receive announcement", _receive),
    ("toast shown", _toast),
    ("log out and disconnect", _disconnect),
)


# ------------------------------------------------------------------ driver


def _settings() -> StreamSettings:
    return StreamSettings(heartbeat_timeout=STEP_TIMEOUT, connect_timeout=STEP_TIMEOUT / 2)


def _class_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__.removeprefix('keyring.backends.')}.{cls.__qualname__}"


async def _cleanup(run: _Run) -> None:
    if run.engine_task is not None and not run.engine_task.done():
        run.engine_task.cancel()
        await asyncio.wait({run.engine_task}, timeout=STOP_TIMEOUT)
    if run.session is not None:
        await asyncio.wait_for(run.session.aclose(), STOP_TIMEOUT)
    if run.history is not None:
        run.history.close()
    if run.notifier is not None:
        run.notifier.close()
    if run.server is not None:
        await asyncio.wait_for(in_thread(run.server.stop), STOP_TIMEOUT)


async def _run_steps(run: _Run, steps: tuple[Step, ...]) -> str:
    """Run the steps in order; returns "" when all passed, else the first failure's reason."""
    failure = ""
    try:
        for name, action in steps:
            await run.step(name, lambda action=action: action(run))  # type: ignore[misc]
    except SelfTestError as exc:
        failure = str(exc)
    try:
        await _cleanup(run)
    except Exception as exc:
        log.error("self-test clean-up failed", exc_info=exc)
        failure = failure or f"clean-up: {type(exc).__name__}: {exc}"
    return failure


def _versions() -> str:
    """Versions of the parts that matter, from the modules (a frozen build has no metadata
    for most packages)."""
    found = []
    for name, module_name in (
        ("PySide6", "PySide6"),
        ("httpx", "httpx"),
        ("aiohttp", "aiohttp"),
        ("PyJWT", "jwt"),
        ("keyring", "keyring"),
    ):
        try:
            version = getattr(importlib.import_module(module_name), "__version__", None)
            version = version or metadata.version(name)
        except (ImportError, metadata.PackageNotFoundError):
            version = "missing"
        found.append(f"{name} {version}")
    return ", ".join(found)


def run(
    args: argparse.Namespace,
    *,
    out: TextIO | None = None,
    steps: tuple[Step, ...] = STEPS,
) -> int:
    """Run the self-test; prints the report to ``out`` (stdout) and returns the exit code."""
    del args  # no options: the self-test always runs the same checks
    out = out or sys.stdout
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    frozen = "frozen build" if getattr(sys, "frozen", False) else "from source"
    print(f"{APP_NAME} {__version__} self-test ({frozen})", file=out, flush=True)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="tray-notifier-selftest-") as tmp:
            failure = asyncio.run(_run_steps(_Run(workdir=Path(tmp), out=out), steps))
    except OSError as exc:
        failure = f"cannot use a temporary folder ({exc}): set TMPDIR to a writable folder"
    print(f"  Python {platform.python_version()} on {platform.platform()}", file=out)
    print(f"  {_versions()}", file=out)
    elapsed = time.perf_counter() - started
    if failure:
        print(f"RESULT: FAILED after {elapsed:.2f} s: {failure}", file=out, flush=True)
        return EXIT_FAILURE
    print(f"RESULT: OK in {elapsed:.2f} s", file=out, flush=True)
    return EXIT_OK
