"""The companion server in a background thread: for the demo, the self-test and the tests.

::

    with EmbeddedServer(data_dir=tmp / "server", demo_users=True) as server:
        server.publish("Fire drill", "At 3 pm.", audience={"groups": ["it"]})
        ...  # talk HTTP to server.url

Restarting means ``stop()`` and a new ``EmbeddedServer`` on the same ``data_dir`` and ``port``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from app.server.config import HttpSettings, ServerConfig
from app.server.metrics import Metrics
from app.server.model import PUBLISHER_ROLE, DirectoryStatus
from app.server.runtime import Runtime, save_user

log = logging.getLogger(__name__)

T = TypeVar("T")
_START_TIMEOUT = 30.0  # seconds for start-up, and for the thread to end on stop()
_CALL_TIMEOUT = 30.0  # seconds for one in-process call (publish, add_user...)
_CONFIG_OPTIONS = frozenset(f.name for f in dataclasses.fields(ServerConfig)) - {"data_dir", "http"}
_HTTP_OPTIONS = frozenset(f.name for f in dataclasses.fields(HttpSettings))


class EmbeddedServer:
    """An announcement server on its own daemon thread and asyncio loop.

    Every public method is thread-safe and may be called from any thread except the server's
    own. ``publish`` and ``add_user`` go straight to the backend (no HTTP, no token).
    """

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int = 0,
        demo_users: bool = False,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        """``port`` 0 (the default here) picks a free port. ``options`` are fields of
        :class:`~app.server.config.ServerConfig` (``host``, ``db_path``, ``redis_url``, ``oidc``,
        ``ldap``: a :class:`~app.server.config.LdapSettings`) and of
        :class:`~app.server.config.HttpSettings` (``token_ttl``, ``ping_interval``,
        ``retry_ms``, ``queue_size``, ``replay_limit``...); the others keep their defaults.
        ``clock`` (epoch seconds) issues and checks tokens: tests move it on by hand."""
        unknown = set(options) - _CONFIG_OPTIONS - _HTTP_OPTIONS
        if unknown:
            raise TypeError(f"EmbeddedServer got unknown options: {', '.join(sorted(unknown))}")
        http = HttpSettings(**{k: v for k, v in options.items() if k in _HTTP_OPTIONS})
        self.config = ServerConfig(
            data_dir=data_dir,
            port=port,
            http=http,
            **{k: v for k, v in options.items() if k in _CONFIG_OPTIONS},
        )
        self._clock = clock
        self._demo_users = demo_users
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runtime: Runtime | None = None
        self._stopped = threading.Event()

    # lifecycle --------------------------------------------------------------------------
    def start(self) -> EmbeddedServer:
        """Start listening; returns once the port is open (raises what start-up raised)."""
        if self._thread is not None:
            raise RuntimeError("this EmbeddedServer was already started; make a new one")
        started: concurrent.futures.Future[Runtime] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(started,), name="embedded-server", daemon=True
        )
        self._thread.start()
        self._runtime = started.result(timeout=_START_TIMEOUT)
        return self

    def stop(self) -> None:
        """Close every stream and the socket, and join the thread. Idempotent."""
        if self._thread is None or self._stopped.is_set():
            return
        self._stopped.set()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=_START_TIMEOUT)
        if self._thread.is_alive():
            log.error("the embedded server thread did not stop within %.0f s", _START_TIMEOUT)

    def _main(self, started: concurrent.futures.Future[Runtime]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                runtime = loop.run_until_complete(self._start())
            except BaseException as exc:  # noqa: BLE001 - handed to start(), which raises it
                started.set_exception(exc)
                return
            started.set_result(runtime)
            if not self._stopped.is_set():
                loop.run_forever()
            loop.run_until_complete(runtime.stop())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _start(self) -> Runtime:
        return await Runtime.start(self.config, clock=self._clock, demo_users=self._demo_users)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # properties -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash); still known after stop()."""
        return self._started().url

    @property
    def port(self) -> int:
        """The port it listens (or listened) on: pass it to a new server to restart."""
        return self._started().port

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def metrics(self) -> Metrics:
        """This process's counters (what its ``/metrics`` shows), read from any thread."""
        return self._started().api.metrics

    # in-process calls -------------------------------------------------------------------
    def add_user(
        self, name: str, password: str, groups: Iterable[str] = (), publisher: bool = False
    ) -> None:
        runtime = self._running()
        self._call(save_user(runtime.broker, name, password, tuple(groups), publisher))

    def publish(
        self,
        title: str,
        body: str,
        *,
        priority: str = "normal",
        audience: dict[str, Any] | None = None,
        url: str | None = None,
        expires_at: str | None = None,
    ) -> str:
        """Publish as the built-in publisher; returns the new id. ``audience`` is the API's
        JSON form (``{"groups": ["it"]}``; None means everyone). Bad input raises
        :class:`app.server.validation.BadInput` (a ValueError)."""
        runtime = self._running()
        payload = {
            "title": title,
            "body": body,
            "priority": priority,
            "url": url,
            "expires_at": expires_at,
            "audience": audience if audience is not None else {"all": True},
        }

        async def publish() -> str:
            return (await runtime.api.publish_payload(payload, author=PUBLISHER_ROLE)).id

        return self._call(publish())

    def revoke(self, ann_id: str) -> bool:
        """Withdraw an announcement (its audience gets the revoke event); False if unknown."""
        runtime = self._running()
        return self._call(runtime.api.revoke_id(ann_id, by=PUBLISHER_ROLE))

    def correct(self, ann_id: str, **fields: Any) -> int:
        """Correct an announcement as the built-in publisher (``fields``: the ``PATCH`` body's,
        e.g. ``title="..."``); returns its new revision. Unknown raises KeyError; bad input
        BadInput; a revoked one :class:`~app.server.model.AlreadyRevoked`."""
        runtime = self._running()
        record = self._call(runtime.api.correct_payload(ann_id, fields, by=PUBLISHER_ROLE))
        if record is None:
            raise KeyError(ann_id)
        return record.revision

    def remind(self, ann_id: str, who: str = "unread") -> int:
        """Remind as the built-in publisher (``who``: "unread" or "unacknowledged"); returns
        how many were reminded. Unknown raises KeyError."""
        runtime = self._running()
        count = self._call(runtime.api.remind_who(ann_id, who, by=PUBLISHER_ROLE))
        if count is None:
            raise KeyError(ann_id)
        return count

    def sync_directory(self) -> DirectoryStatus:
        """Read the organisation's directory now (``ldap=``), as ``POST /directory/sync``
        does; raises :class:`~app.server.directory.DirectoryUnreachable` when it cannot."""
        runtime = self._running()
        if runtime.api.directory is None:
            raise RuntimeError("this server reads no directory: start it with ldap=")
        return self._call(runtime.api.directory.sync())

    def run_schedule(self) -> list[str]:
        """Send the scheduled announcements due now on the server's clock, as its scheduler
        does every ``schedule_interval``: the ids published (tests move the clock, then call
        this rather than wait for the next look)."""
        scheduler = self._running().scheduler
        assert scheduler is not None
        return self._call(scheduler.tick())

    def close_streams(self, user_id: str) -> None:
        """End every stream of ``user_id`` with ``event: close`` (as the close endpoint does)."""
        runtime = self._running()
        self._call(runtime.broker.close_streams(user_id, session_id=None))

    def _started(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("the embedded server was not started: call start() first")
        return self._runtime

    def _running(self) -> Runtime:
        if self._runtime is None or self._stopped.is_set():
            raise RuntimeError("the embedded server is not running: call start() first")
        return self._runtime

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("EmbeddedServer methods cannot be called from its own thread")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=_CALL_TIMEOUT)
