"""The stream worker against the companion server: store before emit, no repeats, token expiry,
acknowledgements, logout and quit within a second."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytestqt.qtbot import QtBot

from app.config import Config
from app.core.connection import CATCH_UP_BATCH
from app.core.login_failure import FailureKind, LoginFailure
from app.core.model import Announcement, ConnState, Priority, Status
from app.core.secrets import MemorySecretStore, login_key
from app.core.store import HistoryStore, HistoryStoreError
from app.server.embedded import EmbeddedServer
from app.ui.worker import StreamWorker
from tests.fixtures.qt import RecordingTransport, Spy
from tests.fixtures.server import DEMO_PASSWORD, ServerFactory

WAIT = 15_000  # ms: generous bound for a shared 2-core machine


def open_streams(server: EmbeddedServer) -> int:
    """The server's gauge of SSE streams open now."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    match = re.search(r"^(?:\w+_)?connections (\d+)", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


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


def test_announcement_is_stored_before_it_is_emitted(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    worker = make_worker()
    store = open_store(tmp_path, companion_server)
    login(qtbot, worker, companion_server, store)
    seen: list[tuple[Announcement, bool, str]] = []
    # a direct connection runs on the worker thread at the moment of emission
    worker.announcementReceived.connect(
        lambda a: seen.append((a, store.get(a.id) is not None, store.last_event_id()))
    )
    ann_id = companion_server.publish("Fire drill", "At 3 pm today.", priority="high")
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
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    secrets = MemorySecretStore()
    store = open_store(tmp_path, companion_server)
    first = make_worker(secrets=secrets)
    login(qtbot, first, companion_server, store)
    got = Arrived(first)
    first_id = companion_server.publish("One", "first")
    qtbot.waitUntil(lambda: len(got.calls) == 1, timeout=WAIT)
    assert first.shutdown(5000)
    missed = companion_server.publish("Two", "published while the tray was closed")

    second = make_worker(secrets=secrets)  # the stored login: no password
    received = Arrived(second)
    logged_in = Spy(second.loggedIn)
    second.connect_stored(companion_server.url, "alice", store)
    qtbot.waitUntil(lambda: [a.id for a in received.values] == [missed], timeout=WAIT)
    assert logged_in.values == ["alice"]
    third = companion_server.publish("Three", "live")
    qtbot.waitUntil(lambda: [a.id for a in received.values] == [missed, third], timeout=WAIT)
    assert store.last_event_id() == third
    assert [s.announcement.id for s in store.list()] == [third, missed, first_id]


def test_server_restart_loses_and_repeats_nothing(
    qtbot: QtBot,
    server_factory: ServerFactory,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100)
    store = open_store(tmp_path, server)
    worker = make_worker()
    spy = Arrived(worker)
    login(qtbot, worker, server, store)
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


class ServerClock:
    """The server's clock (epoch seconds), moved on by the test: tokens expire at once."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_an_expired_token_is_refreshed_and_the_stream_continues(
    qtbot: QtBot,
    server_factory: ServerFactory,
    make_worker: Callable[..., Any],
    tmp_path: Path,
    recording_transport: RecordingTransport,
) -> None:
    clock = ServerClock()
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100, clock=clock)
    store = open_store(tmp_path, server)
    worker = make_worker()
    login(qtbot, worker, server, store)
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


def test_acknowledgement_is_posted_and_leaves_the_queue(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    worker = make_worker()
    store = open_store(tmp_path, companion_server)
    login(qtbot, worker, companion_server, store)
    got, sent = Arrived(worker), Spy(worker.ackSent)
    ann_id = companion_server.publish("Evacuate", "Now", priority="urgent")
    qtbot.waitUntil(lambda: len(got.calls) == 1, timeout=WAIT)
    worker.acknowledge(ann_id)
    qtbot.waitUntil(lambda: sent.values == [ann_id], timeout=WAIT)
    assert store.pending_acks() == []
    # the publisher sees alice's receipt
    with httpx.Client(base_url=companion_server.url, timeout=10) as client:
        token = client.post(
            "/auth/login", json={"username": "publisher", "password": DEMO_PASSWORD}
        ).json()["access_token"]
        acks = client.get(
            f"/announcements/{ann_id}/acks", headers={"Authorization": f"Bearer {token}"}
        ).json()
    assert [a["username"] for a in acks] == ["alice"]


def test_logout_ends_the_stream_within_a_second_and_calls_close(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_worker: Callable[..., Any],
    tmp_path: Path,
    recording_transport: RecordingTransport,
) -> None:
    secrets = MemorySecretStore()
    worker = make_worker(secrets=secrets)
    store = open_store(tmp_path, companion_server)
    login(qtbot, worker, companion_server, store)
    assert secrets.get(login_key(companion_server.url, "alice")) is not None
    stopped = threading.Event()
    worker.statusChanged.connect(lambda s: stopped.set() if s.state is ConnState.STOPPED else None)
    logged_out = Spy(worker.loggedOut)
    worker.logout()
    # the stream was idle, blocked in a read: it ends within a second
    assert stopped.wait(1.0)
    qtbot.waitUntil(lambda: len(logged_out.calls) == 1, timeout=WAIT)
    assert "/sse/close/alice" in recording_transport.paths("POST")
    assert "/auth/logout" in recording_transport.paths("POST")
    assert secrets.get(login_key(companion_server.url, "alice")) is None
    thread = worker.thread_handle
    assert worker.shutdown(1000)  # quit: the thread has finished within a second
    assert thread is not None and thread.isFinished()


def test_acknowledgement_made_offline_is_sent_when_back_online(
    qtbot: QtBot,
    server_factory: ServerFactory,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100)
    worker = make_worker(ack_retry=0.2)
    store = open_store(tmp_path, server)
    login(qtbot, worker, server, store)
    got, sent = Arrived(worker), Spy(worker.ackSent)
    ann_id = server.publish("Evacuate", "Now", priority="urgent")
    qtbot.waitUntil(lambda: len(got.calls) == 1, timeout=WAIT)
    server.stop()
    worker.acknowledge(ann_id)
    qtbot.waitUntil(lambda: store.pending_acks() == [ann_id], timeout=WAIT)
    assert sent.calls == []
    server = server_factory(
        data_dir=server.data_dir, port=server.port, retry_ms=100, ping_interval=0.5
    )
    qtbot.waitUntil(lambda: sent.values == [ann_id], timeout=WAIT)
    assert store.pending_acks() == []


def test_a_catch_up_in_pages_is_one_catch_up(
    qtbot: QtBot,
    server_factory: ServerFactory,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """2,500 missed announcements replayed 1,000 at a time: one catchUpStarted, every
    announcement, then one catchUpFinished."""
    server = server_factory(demo_users=True, ping_interval=0.5, replay_limit=1000)
    secrets = MemorySecretStore()
    store = open_store(tmp_path, server)
    first = make_worker(secrets=secrets)
    login(qtbot, first, server, store)
    got = Arrived(first)
    server.publish("Before", "the resume point")
    qtbot.waitUntil(lambda: len(got.calls) == 1, timeout=WAIT)
    assert first.shutdown(5000)
    missed = [server.publish(f"Missed {n}", "while away") for n in range(2500)]

    second = make_worker(secrets=secrets)
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


class DiskFullStore(HistoryStore):
    """A history that stops taking announcements, as on a full disk."""

    full = False

    def record(self, ann: Announcement | None, last_event_id: str) -> bool:
        if self.full and ann is not None:
            raise HistoryStoreError(f"cannot write the history file {self.path}: disk full")
        return super().record(ann, last_event_id)


def test_a_store_failing_while_connected_is_an_error_state_and_logged(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_worker: Callable[..., Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The stream task is supervised: its failure is never silent (no more "connected" with
    nothing arriving and nothing in the log)."""
    caplog.set_level(logging.ERROR)
    worker = make_worker()
    store = DiskFullStore(HistoryStore.path_for(tmp_path / "data", companion_server.url, "alice"))
    login(qtbot, worker, companion_server, store)
    statuses, got = Spy(worker.statusChanged), Arrived(worker)
    store.full = True
    companion_server.publish("Lost?", "the history cannot take it")
    qtbot.waitUntil(lambda: bool(statuses.values), timeout=WAIT)
    assert [(s.state, s.detail) for s in statuses.values] == [
        (ConnState.ERROR, f"cannot write the history file {store.path}: disk full")
    ]
    assert got.calls == []  # never told as if it were stored
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == "the stream failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], HistoryStoreError)
    # a logout still ends cleanly
    logged_out = Spy(worker.loggedOut)
    worker.logout()
    qtbot.waitUntil(lambda: len(logged_out.calls) == 1, timeout=WAIT)
    assert statuses.values[-1].state is ConnState.STOPPED


class BatchFullStore(HistoryStore):
    """A history that cannot take a catch-up's batch, as on a full disk."""

    full = False

    def record_many(self, received: Any, *, notify: bool = True) -> list[Announcement]:
        if self.full:
            raise HistoryStoreError(f"cannot write the history file {self.path}: disk full")
        return super().record_many(received, notify=notify)


def test_a_catch_up_batch_failing_to_store_is_an_error_state_and_logged(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_worker: Callable[..., Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    secrets = MemorySecretStore()
    store = BatchFullStore(HistoryStore.path_for(tmp_path / "data", companion_server.url, "alice"))
    first = make_worker(secrets=secrets)
    login(qtbot, first, companion_server, store)
    got = Arrived(first)
    companion_server.publish("Before", "the resume point")
    qtbot.waitUntil(lambda: len(got.calls) == 1, timeout=WAIT)
    assert first.shutdown(5000)
    resume_point = store.last_event_id()
    for n in range(5):
        companion_server.publish(f"Missed {n}", "while away")
    store.full = True
    second = make_worker(secrets=secrets)
    statuses, told = Spy(second.statusChanged), Arrived(second)
    second.connect_stored(companion_server.url, "alice", store)
    detail = f"cannot write the history file {store.path}: disk full"
    qtbot.waitUntil(lambda: any(s.state is ConnState.ERROR for s in statuses.values), timeout=WAIT)
    # the stream's end that follows (the server sees it closed) is not told over the error
    qtbot.waitUntil(lambda: open_streams(companion_server) == 0, timeout=WAIT)
    assert statuses.values[-1] == Status(ConnState.ERROR, detail)
    assert told.calls == []  # never told as if it were stored
    assert store.last_event_id() == resume_point  # replayed after the next connect
    assert any(r.getMessage() == "the stream failed" for r in caplog.records)
