"""The stream worker against the companion server: what its connection tells becomes signals
emitted on the worker's thread (store before emit, no repeats, a catch-up in batches, token
expiry, typed login failures), commands posted from the GUI thread (login, stored login,
logout), and the thread ends on quit within a second. The connection's own rules, receipts and
supervised tasks are tested without Qt in tests/core/test_connection.py."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytestqt.qtbot import QtBot

from app.core.auth import Tokens
from app.core.config import Config
from app.core.connection import CATCH_UP_BATCH
from app.core.errors import ErrorKind
from app.core.login_failure import FailureKind, LoginFailure
from app.core.model import Announcement, ConnState, Priority, Status
from app.core.secrets import MemorySecretStore, login_key
from app.core.store import HistoryStore
from app.server.embedded import EmbeddedServer
from app.ui.worker import StreamWorker
from tests.fixtures.qt import Spy
from tests.fixtures.server import DEMO_PASSWORD, OffsetClock, ServerFactory
from tests.fixtures.transport import RecordingTransport

WAIT = 15_000  # ms: generous bound for a shared 2-core machine


class Arrived(Spy):
    """Every announcement the worker tells, one by one (announcementReceived) or in a
    catch-up's batches (announcementsReceived), flattened in order of arrival."""

    def __init__(
        self, worker: StreamWorker, *, log: list[tuple[str, Any]] | None = None, name: str = ""
    ) -> None:
        super().__init__(worker.announcementReceived, log=log, name=name)
        self.batches: list[int] = []
        worker.announcementsReceived.connect(self._record_batch)

    def _record_batch(self, anns: list[Announcement]) -> None:
        self.batches.append(len(anns))
        for ann in anns:
            self._record(ann)


def open_store(tmp_path: Path, server: EmbeddedServer) -> HistoryStore:
    return HistoryStore(HistoryStore.path_for(tmp_path / "data", server.url, "alice"))


def login(qtbot: QtBot, worker: StreamWorker, server: EmbeddedServer, store: HistoryStore) -> None:
    statuses = Spy(worker.statusChanged)
    worker.login(server.url, "alice", DEMO_PASSWORD, store)
    qtbot.waitUntil(lambda: connected(statuses), timeout=WAIT)


def connected(statuses: Spy) -> bool:
    return any(s.state is ConnState.CONNECTED for s in statuses.values)


@dataclass
class Session:
    """A started worker with alice logged in to ``server``, connected."""

    worker: StreamWorker
    store: HistoryStore
    server: EmbeddedServer
    secrets: MemorySecretStore


@pytest.fixture
def log_in(
    qtbot: QtBot, make_worker: Callable[..., Any], tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., Session]:
    """``log_in(server=None, secrets=None, **worker_options)``: a worker made and started,
    alice logged in (to the companion server by default) with a fresh history, connected."""

    def make(
        server: EmbeddedServer | None = None,
        *,
        secrets: MemorySecretStore | None = None,
        **options: Any,
    ) -> Session:
        if server is None:
            server = request.getfixturevalue("companion_server")
        secrets = MemorySecretStore() if secrets is None else secrets
        worker = make_worker(secrets=secrets, **options)
        store = open_store(tmp_path, server)
        login(qtbot, worker, server, store)
        return Session(worker, store, server, secrets)

    return make


def test_announcement_is_stored_before_it_is_emitted(
    qtbot: QtBot, log_in: Callable[..., Session]
) -> None:
    alice = log_in()
    worker, store = alice.worker, alice.store
    seen: list[tuple[Announcement, bool, str]] = []
    # a direct connection runs on the worker thread at the moment of emission
    worker.announcementReceived.connect(
        lambda a: seen.append((a, store.get(a.id) is not None, store.last_event_id()))
    )
    ann_id = alice.server.publish("Fire drill", "At 3 pm today.", priority="high")
    qtbot.waitUntil(lambda: len(seen) == 1, timeout=WAIT)
    ann = seen[0][0]
    assert (ann.id, ann.title, ann.body, ann.priority) == (
        ann_id,
        "Fire drill",
        "At 3 pm today.",
        Priority.HIGH,
    )
    assert seen == [(ann, True, ann_id)]


def test_restart_resumes_from_the_stored_id_without_repeats(
    qtbot: QtBot, log_in: Callable[..., Session], make_worker: Callable[..., Any]
) -> None:
    first = log_in()
    server, store = first.server, first.store
    got = Arrived(first.worker)
    first_id = server.publish("One", "first")
    qtbot.waitUntil(lambda: len(got.calls) == 1, timeout=WAIT)
    assert first.worker.shutdown(5000)
    missed = server.publish("Two", "published while the tray was closed")

    second = make_worker(secrets=first.secrets)  # the stored login: no password
    received = Arrived(second)
    logged_in = Spy(second.loggedIn)
    second.connect_stored(server.url, "alice", store)
    qtbot.waitUntil(lambda: [a.id for a in received.values] == [missed], timeout=WAIT)
    assert logged_in.values == ["alice"]
    third = server.publish("Three", "live")
    qtbot.waitUntil(lambda: [a.id for a in received.values] == [missed, third], timeout=WAIT)
    assert store.last_event_id() == third
    assert [s.announcement.id for s in store.list()] == [third, missed, first_id]


def test_server_restart_loses_and_repeats_nothing(
    qtbot: QtBot, server_factory: ServerFactory, log_in: Callable[..., Session]
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100)
    alice = log_in(server)
    store = alice.store
    spy = Arrived(alice.worker)
    published = [server.publish(f"Before {n}", "x") for n in range(3)]
    qtbot.waitUntil(lambda: [a.id for a in spy.values] == published, timeout=WAIT)
    server.stop()
    server = server_factory(
        data_dir=server.data_dir, port=server.port, retry_ms=100, ping_interval=0.5
    )
    published += [server.publish(f"After {n}", "y") for n in range(3)]
    qtbot.waitUntil(lambda: [a.id for a in spy.values] == published, timeout=WAIT)
    assert store.last_event_id() == published[-1]
    assert len(store.list()) == 6


def test_an_expired_token_is_refreshed_and_the_stream_continues(
    qtbot: QtBot,
    server_factory: ServerFactory,
    log_in: Callable[..., Session],
    recording_transport: RecordingTransport,
) -> None:
    clock = OffsetClock()
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100, clock=clock)
    worker = log_in(server).worker
    statuses = Spy(worker.statusChanged)
    assert recording_transport.paths("POST").count("/auth/refresh") == 0
    clock.offset += 901.0  # past the 900 s token: the server ends the stream (event: close)
    # refreshed and connected again, with no user action
    qtbot.waitUntil(
        lambda: (
            recording_transport.paths("POST").count("/auth/refresh") == 1
            and statuses.values[-1:] == [Status(ConnState.CONNECTED)]
        ),
        timeout=WAIT,
    )
    assert recording_transport.paths("GET").count("/sse/connect/alice") >= 2
    spy = Arrived(worker)
    server.publish("After expiry", "still here")
    qtbot.waitUntil(lambda: [a.title for a in spy.values] == ["After expiry"], timeout=WAIT)
    assert not [s for s in statuses.values if s.state is ConnState.LOGIN_REQUIRED]


def test_wrong_password_is_a_typed_failure(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    worker = make_worker()
    failed = Spy(worker.loginFailed)
    worker.login(companion_server.url, "alice", "nope", open_store(tmp_path, companion_server))
    qtbot.waitUntil(lambda: len(failed.calls) == 1, timeout=WAIT)
    failure: LoginFailure = failed.values[0]
    assert failure.kind is FailureKind.WRONG_CREDENTIALS


def test_unreachable_server_is_a_typed_failure(
    qtbot: QtBot,
    server_factory: ServerFactory,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    server = server_factory()
    url = server.url
    server.stop()  # nothing listens on that port now
    worker = make_worker()
    store = HistoryStore(tmp_path / "h.sqlite3")
    failed = Spy(worker.loginFailed)
    worker.login(url, "alice", "demo", store)
    qtbot.waitUntil(lambda: len(failed.calls) == 1, timeout=WAIT)
    assert failed.values[0].kind is FailureKind.UNREACHABLE


def test_logout_ends_the_stream_within_a_second_and_calls_close(
    qtbot: QtBot, log_in: Callable[..., Session], recording_transport: RecordingTransport
) -> None:
    alice = log_in()
    worker, secrets, url = alice.worker, alice.secrets, alice.server.url
    assert secrets.get(login_key(url, "alice")) is not None
    stopped = threading.Event()
    worker.statusChanged.connect(lambda s: stopped.set() if s.state is ConnState.STOPPED else None)
    logged_out = Spy(worker.loggedOut)
    worker.logout()
    # the stream was idle, blocked in a read: it ends within a second
    assert stopped.wait(1.0)
    qtbot.waitUntil(lambda: len(logged_out.calls) == 1, timeout=WAIT)
    assert "/sse/close/alice" in recording_transport.paths("POST")
    assert "/auth/logout" in recording_transport.paths("POST")
    assert secrets.get(login_key(url, "alice")) is None
    thread = worker.thread_handle
    assert worker.shutdown(1000)  # quit: the thread has finished within a second
    assert thread is not None and thread.isFinished()


def test_a_catch_up_in_pages_is_one_catch_up(
    qtbot: QtBot,
    server_factory: ServerFactory,
    log_in: Callable[..., Session],
    make_worker: Callable[..., Any],
) -> None:
    """2,500 missed announcements replayed 1,000 at a time: one catchUpStarted, every
    announcement, then one catchUpFinished."""
    server = server_factory(demo_users=True, ping_interval=0.5, replay_limit=1000)
    first = log_in(server)
    store = first.store
    got = Arrived(first.worker)
    server.publish("Before", "the resume point")
    qtbot.waitUntil(lambda: len(got.calls) == 1, timeout=WAIT)
    assert first.worker.shutdown(5000)
    missed = [server.publish(f"Missed {n}", "while away") for n in range(2500)]

    second = make_worker(secrets=first.secrets)
    log: list[tuple[str, Any]] = []
    arrived = Arrived(second, log=log, name="announcement")
    spies = [
        Spy(second.catchUpStarted, log=log, name="started"),
        arrived,
        Spy(second.catchUpFinished, log=log, name="finished"),
    ]
    # a direct connection runs on the worker thread as it emits: each batch is stored already
    stored_when_told: list[bool] = []
    second.announcementsReceived.connect(
        lambda anns: stored_when_told.append(all(store.get(a.id) is not None for a in anns))
    )
    second.connect_stored(server.url, "alice", store)
    qtbot.waitUntil(lambda: len(spies[2].calls) == 1, timeout=40_000)
    assert [name for name, _ in log] == ["started"] + ["announcement"] * 2500 + ["finished"]
    assert [a.id for _, a in log[1:-1]] == missed
    # told in batches (one transaction each), each stored before it was told
    assert stored_when_told and all(stored_when_told)
    assert 1 < max(arrived.batches) <= CATCH_UP_BATCH
    # live ones after the catch-up are not part of it
    live = server.publish("Live", "after the catch-up")
    qtbot.waitUntil(lambda: log[-1][0] == "announcement", timeout=WAIT)
    assert log[-1][1].id == live
    assert (len(spies[0].calls), len(spies[2].calls)) == (1, 1)


def test_quit_right_after_start_ends_the_thread(qapp: Any, tmp_path: Path) -> None:
    """A quit posted before the worker's loop has begun is not lost (it used to be: the
    thread then ran for ever)."""
    store = HistoryStore(tmp_path / "h.sqlite3")
    for _ in range(50):
        worker = StreamWorker(config=Config(), secrets=MemorySecretStore())
        worker.start()
        worker.connect_stored("http://127.0.0.1:9", "alice", store)
        assert worker.shutdown(5000)
    store.close()


def test_a_failing_command_is_a_typed_error_state_and_logged(
    qtbot: QtBot,
    make_worker: Callable[..., Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A command that raises is never silent: logged with its traceback, told as ERROR with the
    error's kind (the tray words it) and its English detail (the log's)."""
    caplog.set_level(logging.ERROR)
    url, secrets = "http://127.0.0.1:9", MemorySecretStore()
    tokens = Tokens("access-1", "refresh-1", time.time() + 3600, "alice", time.time())
    secrets.set(login_key(url, "alice"), tokens.to_secret())
    store = HistoryStore(tmp_path / "h.sqlite3")
    store.close()  # the stored login is there; the history cannot be read
    worker = make_worker(secrets=secrets)
    statuses = Spy(worker.statusChanged)
    worker.connect_stored(url, "alice", store)
    qtbot.waitUntil(lambda: bool(statuses.values), timeout=WAIT)
    status = statuses.values[0]
    assert (status.state, status.error) == (ConnState.ERROR, ErrorKind.HISTORY)
    assert status.detail == f"the history {store.path} is closed"
    assert any(r.getMessage() == "worker command failed" and r.exc_info for r in caplog.records)
