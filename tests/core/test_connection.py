"""Connection without Qt, on the test's own asyncio loop, against the real companion server on
loopback (and scripted servers where a backend must misbehave or greet): login and logout, the
stored login (prepared ahead, missing, or behind a keyring that fails), store before tell, no
repeats, revokes, the catch-up in batches, reconnect now, the settings of the next session,
receipts, supervised tasks, connect greetings, and errors typed for the UI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import keyring.backends.fail
import pytest

from app.core.auth import Tokens
from app.core.config import Config, Endpoints, StreamSettings
from app.core.connection import CATCH_UP_BATCH, GREETING_WINDOW, STOP_TIMEOUT, Connection
from app.core.errors import ErrorKind
from app.core.login_failure import FailureKind, LoginFailure
from app.core.model import Announcement, ConnState, Priority, Status
from app.core.secrets import (
    KeyringSecretStore,
    MemorySecretStore,
    SecretStore,
    login_key,
)
from app.core.store import HistoryStore, HistoryStoreError
from app.server.embedded import EmbeddedServer
from tests.fixtures.keyring_backends import CountingBackend
from tests.fixtures.scripted import Conn, Script, ScriptedServer, status
from tests.fixtures.server import DEMO_PASSWORD, ManualClock, ServerFactory
from tests.fixtures.transport import RecordingTransport

WAIT = 15.0  # seconds: a generous bound for a shared 2-core machine
POLL = 0.02  # conditions on another thread (a server, a store) are checked this often


class Told:
    """The :class:`~app.core.connection.Listener`: records every call with the loop's time.

    ``probe(ann)``, when set, runs as each announcement is told (a batch: for each), at that
    moment: what the store holds then."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, float]] = []
        self.probed: list[Any] = []
        self.probe: Callable[[Announcement], Any] | None = None
        self._changed = asyncio.Event()

    def _note(self, name: str, value: Any = None) -> None:
        self.calls.append((name, value, asyncio.get_running_loop().time()))
        self._changed.set()

    def values(self, name: str) -> list[Any]:
        return [v for n, v, _ in self.calls if n == name]

    @property
    def statuses(self) -> list[Status]:
        return self.values("status")

    @property
    def states(self) -> list[ConnState]:
        return [s.state for s in self.statuses]

    @property
    def announced(self) -> list[Announcement]:
        """Every announcement told, one by one or in batches, in order."""
        anns: list[Announcement] = []
        for name, value, _ in self.calls:
            if name == "announcement":
                anns.append(value)
            elif name == "announcements":
                anns.extend(value)
        return anns

    def connected(self) -> bool:
        return ConnState.CONNECTED in self.states

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait until ``condition()`` holds: woken by each call told, and every POLL seconds
        for what changes on another thread; AssertionError after WAIT seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            self._changed.clear()
            if condition():
                return
            remaining = deadline - loop.time()
            assert remaining > 0, f"not within {WAIT:g} s: {what}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, POLL))

    # the Listener

    def status(self, status: Status) -> None:
        self._note("status", status)

    def announcement(self, ann: Announcement) -> None:
        if self.probe is not None:
            self.probed.append(self.probe(ann))
        self._note("announcement", ann)

    def announcements(self, anns: list[Announcement]) -> None:
        if self.probe is not None:
            self.probed.extend(self.probe(a) for a in anns)
        self._note("announcements", anns)

    def revoked(self, ann_id: str) -> None:
        self._note("revoked", ann_id)

    def updated(self, ann: Announcement) -> None:
        self._note("updated", ann)

    def reminded(self, ann: Announcement) -> None:
        self._note("reminded", ann)

    def logged_in(self, username: str) -> None:
        self._note("logged_in", username)

    def login_failed(self, failure: LoginFailure) -> None:
        self._note("login_failed", failure)

    def logged_out(self) -> None:
        self._note("logged_out")

    def receipt_sent(self, ann_id: str) -> None:
        self._note("receipt_sent", ann_id)

    def catch_up_started(self) -> None:
        self._note("catch_up_started")

    def catch_up_finished(self) -> None:
        self._note("catch_up_finished")


def no_keyring() -> KeyringSecretStore:
    """The keyring as on a machine with none (keyring's own fail backend): every use raises."""
    return KeyringSecretStore(backend=keyring.backends.fail.Keyring())


@dataclass
class Harness:
    """One Connection and what it told; ended at teardown."""

    connection: Connection
    told: Told
    transport: RecordingTransport
    secrets: SecretStore
    stores: list[HistoryStore] = field(default_factory=list)


MakeHarness = Callable[..., Harness]


@pytest.fixture
async def make_connection() -> AsyncIterator[MakeHarness]:
    """``make_connection(secrets=..., config=..., receipt_retry=..., clock=...)``."""
    made: list[Harness] = []

    def make(
        *,
        secrets: SecretStore | None = None,
        config: Config | None = None,
        **options: Any,
    ) -> Harness:
        # the connection's clients (the session's, the stream's) share one transport here, where
        # each would have its own: it keeps no idle connection, so that stopping the stream
        # (cancelling its read) never has to close another client's connection on the way
        told = Told()
        transport = RecordingTransport(limits=httpx.Limits(max_keepalive_connections=0))
        secrets = MemorySecretStore() if secrets is None else secrets
        connection = Connection(
            told, config=config or Config(), secrets=secrets, transport=transport, **options
        )
        harness = Harness(connection, told, transport, secrets)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        await harness.connection.end(logout=False)
        await harness.transport.aclose()


def history(tmp_path: Path, server_url: str, name: str = "alice") -> HistoryStore:
    return HistoryStore(HistoryStore.path_for(tmp_path / "data", server_url, name))


async def log_in(h: Harness, server: EmbeddedServer, store: HistoryStore) -> None:
    await h.connection.login(server.url, "alice", DEMO_PASSWORD, store)
    await h.told.until(h.told.connected, "connected")


async def publish(server: EmbeddedServer, title: str, body: str = "b", **options: Any) -> str:
    """Publish from another thread: this loop goes on reading the stream meanwhile."""
    return await asyncio.to_thread(server.publish, title, body, **options)


@dataclass
class Alice:
    """alice logged in to the companion server, connected."""

    h: Harness
    server: EmbeddedServer
    store: HistoryStore

    @property
    def connection(self) -> Connection:
        return self.h.connection

    @property
    def told(self) -> Told:
        return self.h.told


@pytest.fixture
async def alice(
    make_connection: MakeHarness, companion_server: EmbeddedServer, tmp_path: Path
) -> Alice:
    h = make_connection()
    store = history(tmp_path, companion_server.url)
    await log_in(h, companion_server, store)
    return Alice(h, companion_server, store)


# ---------------------------------------------------------------------- login and logout


async def test_login_connects_and_keeps_the_tokens(alice: Alice) -> None:
    told = alice.told
    assert told.states[0] is ConnState.CONNECTING
    assert told.states[-1] is ConnState.CONNECTED
    assert told.values("logged_in") == ["alice"]
    assert told.values("login_failed") == []
    assert alice.h.secrets.get(login_key(alice.server.url, "alice")) is not None
    assert alice.h.transport.paths("GET") == ["/sse/connect/alice"]


async def test_a_wrong_password_is_a_typed_failure_and_login_required(
    make_connection: MakeHarness, companion_server: EmbeddedServer, tmp_path: Path
) -> None:
    h = make_connection()
    store = history(tmp_path, companion_server.url)
    await h.connection.login(companion_server.url, "alice", "nope", store)
    (failure,) = h.told.values("login_failed")
    assert failure.kind is FailureKind.WRONG_CREDENTIALS
    assert (failure.server_url, failure.username) == (companion_server.url, "alice")
    assert h.told.states == [ConnState.CONNECTING, ConnState.LOGIN_REQUIRED]
    assert h.told.values("logged_in") == []
    assert h.transport.paths("GET") == []  # no stream without a session


async def test_an_unreachable_server_is_a_typed_failure(
    make_connection: MakeHarness, server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory()
    url = server.url
    await asyncio.to_thread(server.stop)  # nothing listens on that port now
    h = make_connection()
    await h.connection.login(url, "alice", DEMO_PASSWORD, HistoryStore(tmp_path / "h.sqlite3"))
    assert [f.kind for f in h.told.values("login_failed")] == [FailureKind.UNREACHABLE]


async def test_a_keyring_that_cannot_keep_the_login_is_a_typed_failure_unless_this_run_only(
    make_connection: MakeHarness, companion_server: EmbeddedServer, tmp_path: Path
) -> None:
    broken = no_keyring()
    h = make_connection(secrets=broken)
    store = history(tmp_path, companion_server.url)
    await h.connection.login(companion_server.url, "alice", DEMO_PASSWORD, store)
    assert [f.kind for f in h.told.values("login_failed")] == [FailureKind.KEYRING]
    # asked again for this run only: the tokens stay in memory, the keyring is not asked
    await h.connection.login(
        companion_server.url, "alice", DEMO_PASSWORD, store, this_run_only=True
    )
    await h.told.until(h.told.connected, "connected")
    assert h.told.values("logged_in") == ["alice"]


async def test_logout_ends_the_idle_stream_within_a_second_calls_close_and_forgets(
    alice: Alice,
) -> None:
    told, transport = alice.told, alice.h.transport
    loop = asyncio.get_running_loop()
    asked = loop.time()
    await alice.connection.logout()
    # the stream was idle, blocked in a read: it ended at once, before the close calls
    stopped_at = next(t for n, v, t in told.calls if n == "status" and v.state is ConnState.STOPPED)
    assert stopped_at - asked < STOP_TIMEOUT
    assert told.states[-1] is ConnState.STOPPED
    assert told.calls[-1][0] == "logged_out"
    assert "/sse/close/alice" in transport.paths("POST")
    assert "/auth/logout" in transport.paths("POST")
    assert alice.h.secrets.get(login_key(alice.server.url, "alice")) is None


async def test_quit_calls_close_and_keeps_the_login(alice: Alice) -> None:
    await alice.connection.end(logout=False)
    assert alice.told.states[-1] is ConnState.STOPPED
    assert alice.told.values("logged_out") == []
    assert "/sse/close/alice" in alice.h.transport.paths("POST")
    assert "/auth/logout" not in alice.h.transport.paths("POST")
    assert alice.h.secrets.get(login_key(alice.server.url, "alice")) is not None


# ---------------------------------------------------------------------- the stored login


async def test_without_a_stored_login_login_is_required_and_nothing_is_sent(
    make_connection: MakeHarness, companion_server: EmbeddedServer, tmp_path: Path
) -> None:
    h = make_connection()
    await h.connection.connect_stored(
        companion_server.url, "alice", history(tmp_path, companion_server.url)
    )
    assert h.told.states == [ConnState.LOGIN_REQUIRED]
    assert h.told.values("logged_in") == [] and h.transport.requests == []


async def test_a_keyring_that_cannot_be_read_means_login_required(
    make_connection: MakeHarness,
    companion_server: EmbeddedServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    h = make_connection(secrets=no_keyring())
    await h.connection.connect_stored(
        companion_server.url, "alice", history(tmp_path, companion_server.url)
    )
    assert h.told.states == [ConnState.LOGIN_REQUIRED]
    assert "no system keyring is available" in caplog.text


async def test_the_stored_login_resumes_after_the_stored_id_without_repeats(
    alice: Alice, make_connection: MakeHarness
) -> None:
    first = await publish(alice.server, "One")
    await alice.told.until(lambda: len(alice.told.announced) == 1, "the first one")
    await alice.connection.end(logout=False)  # quit
    missed = await publish(alice.server, "Two", "published while the tray was closed")

    again = make_connection(secrets=alice.h.secrets)  # the stored login: no password
    await again.connection.connect_stored(alice.server.url, "alice", alice.store)
    await again.told.until(lambda: [a.id for a in again.told.announced] == [missed], "missed")
    assert again.told.values("logged_in") == ["alice"]
    live = await publish(alice.server, "Three", "live")
    await again.told.until(
        lambda: [a.id for a in again.told.announced] == [missed, live], "the live one"
    )
    assert alice.store.last_event_id() == live
    assert [s.announcement.id for s in alice.store.list()] == [live, missed, first]


async def test_prepare_reads_the_stored_login_once_ahead_of_the_connect(
    make_connection: MakeHarness, companion_server: EmbeddedServer, tmp_path: Path
) -> None:
    backend = CountingBackend()
    store = history(tmp_path, companion_server.url)
    first = make_connection(secrets=KeyringSecretStore(backend=backend))
    await log_in(first, companion_server, store)
    await first.connection.end(logout=False)

    backend.reads = 0
    second = make_connection(secrets=KeyringSecretStore(backend=backend))
    await second.connection.prepare(companion_server.url + "/", "alice")
    assert backend.reads == 1
    await second.connection.connect_stored(companion_server.url, "alice", store)
    await second.told.until(second.told.connected, "connected")
    assert backend.reads == 1  # the connect took it from memory


async def test_prepare_with_settings_that_cannot_make_a_client_leaves_it_to_the_stream(
    make_connection: MakeHarness, tmp_path: Path
) -> None:
    settings = StreamSettings(ca_bundle=str(tmp_path / "missing.pem"))
    h = make_connection(config=Config().with_changes(stream=settings))
    await h.connection.prepare("http://127.0.0.1:9", "alice")  # does not raise
    assert h.told.calls == []


# ---------------------------------------------------------------------- the stream


async def test_an_announcement_is_stored_before_it_is_told(alice: Alice) -> None:
    store = alice.store
    alice.told.probe = lambda a: (store.get(a.id) is not None, store.last_event_id())
    ann_id = await publish(alice.server, "Fire drill", "At 3 pm today.", priority="high")
    await alice.told.until(lambda: len(alice.told.announced) == 1, "told")
    (ann,) = alice.told.announced
    assert (ann.id, ann.title, ann.body, ann.priority) == (
        ann_id,
        "Fire drill",
        "At 3 pm today.",
        Priority.HIGH,
    )
    assert alice.told.probed == [(True, ann_id)]


async def test_a_revoke_marks_it_withdrawn_in_the_history_before_it_is_told(
    alice: Alice,
) -> None:
    ann_id = await publish(alice.server, "Wrong alarm", priority="urgent")
    await alice.told.until(lambda: len(alice.told.announced) == 1, "told")
    assert await asyncio.to_thread(alice.server.revoke, ann_id)
    await alice.told.until(lambda: alice.told.values("revoked") == [ann_id], "revoked")
    stored = alice.store.get(ann_id)
    assert stored is not None and stored.withdrawn  # kept, never deleted silently
    assert alice.store.unread_count() == 0


async def test_a_catch_up_in_pages_is_one_catch_up_told_in_stored_batches(
    make_connection: MakeHarness, server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, replay_limit=300)
    store = history(tmp_path, server.url)
    first = make_connection()
    await log_in(first, server, store)
    await publish(server, "Before", "the resume point")
    await first.told.until(lambda: len(first.told.announced) == 1, "the resume point")
    await first.connection.end(logout=False)
    missed = [await publish(server, f"Missed {n}", "while away") for n in range(700)]

    h = make_connection(secrets=first.secrets)
    h.told.probe = lambda a: store.get(a.id) is not None
    await h.connection.connect_stored(server.url, "alice", store)
    await h.told.until(lambda: bool(h.told.values("catch_up_finished")), "the catch-up's end")
    names = [n for n, _, _ in h.told.calls if n not in ("status", "logged_in")]
    assert names[0] == "catch_up_started" and names[-1] == "catch_up_finished"
    assert set(names[1:-1]) == {"announcements"}  # batches only, between the two
    assert [a.id for a in h.told.announced] == missed
    assert all(h.told.probed)  # each stored before it was told
    assert max(len(b) for b in h.told.values("announcements")) <= CATCH_UP_BATCH
    live = await publish(server, "Live", "after the catch-up")
    await h.told.until(lambda: h.told.calls[-1][0] == "announcement", "the live one")
    assert h.told.calls[-1][1].id == live
    assert len(h.told.values("catch_up_started")) == len(h.told.values("catch_up_finished")) == 1


async def test_reconnect_now_drops_the_stream_and_connects_at_once(alice: Alice) -> None:
    told, transport = alice.told, alice.h.transport
    before = len(told.calls)
    alice.connection.reconnect_now()
    await told.until(
        lambda: (
            [s.state for s in told.values("status")[-2:]]
            == [ConnState.CONNECTING, ConnState.CONNECTED]
            and len(told.calls) > before
        ),
        "connected again",
    )
    assert transport.paths("GET") == ["/sse/connect/alice"] * 2
    assert ConnState.OFFLINE not in told.states  # no wait in between
    ann_id = await publish(alice.server, "Still here")
    await told.until(lambda: [a.id for a in told.announced] == [ann_id], "told")


async def test_new_settings_are_used_by_the_next_session_and_a_stream_error_is_typed(
    alice: Alice,
) -> None:
    wrong = Config().with_changes(endpoints=Endpoints(connect="/nowhere/{user_id}"))
    alice.connection.use_config(wrong)
    assert alice.h.transport.paths("GET") == ["/sse/connect/alice"]  # this session goes on
    await alice.connection.connect_stored(alice.server.url, "alice", alice.store)
    told = alice.told
    await told.until(lambda: told.states[-1] is ConnState.ERROR, "the error")
    assert alice.h.transport.paths("GET")[-1] == "/nowhere/alice"
    error = told.statuses[-1]
    assert error.error is ErrorKind.NOT_FOUND  # the UI words it
    assert "HTTP 404" in error.detail  # the log keeps the English details


# ---------------------------------------------------------------------- receipts


async def test_an_acknowledgement_queued_in_the_store_is_sent_once(alice: Alice) -> None:
    """Acknowledge writes the store on the GUI thread (Attention): the store wakes the
    connection's receipt sender, which posts it once."""
    told, store = alice.told, alice.store
    ann_id = await publish(alice.server, "Evacuate", "Now", priority="urgent")
    await told.until(lambda: len(told.announced) == 1, "told")
    assert await asyncio.to_thread(store.queue_ack, ann_id)  # as the GUI thread does
    await told.until(lambda: told.values("receipt_sent") == [ann_id], "sent")
    assert store.pending_acks() == []
    async with httpx.AsyncClient(base_url=alice.server.url, timeout=10) as client:
        reply = await client.post(
            "/auth/login", json={"username": "publisher", "password": DEMO_PASSWORD}
        )
        token = reply.json()["access_token"]
        acks = (
            await client.get(
                f"/announcements/{ann_id}/acks", headers={"Authorization": f"Bearer {token}"}
            )
        ).json()
    assert [a["username"] for a in acks] == ["alice"]


async def test_an_acknowledgement_made_offline_is_sent_when_back_online(
    make_connection: MakeHarness, server_factory: ServerFactory, tmp_path: Path
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100)
    h = make_connection(receipt_retry=0.2)
    store = history(tmp_path, server.url)
    await log_in(h, server, store)
    ann_id = await publish(server, "Evacuate", "Now", priority="urgent")
    await h.told.until(lambda: len(h.told.announced) == 1, "told")
    await asyncio.to_thread(server.stop)
    await asyncio.to_thread(store.queue_ack, ann_id)
    await h.told.until(lambda: ConnState.OFFLINE in h.told.states, "offline")
    assert store.pending_acks() == [ann_id] and h.told.values("receipt_sent") == []
    await asyncio.to_thread(
        server_factory,
        data_dir=server.data_dir,
        port=server.port,
        retry_ms=100,
        ping_interval=0.5,
    )
    await h.told.until(lambda: h.told.values("receipt_sent") == [ann_id], "sent")
    assert store.pending_acks() == []


# ---------------------------------------------------------------------- supervised tasks


class DiskFullStore(HistoryStore):
    """A history that stops taking announcements, as on a full disk."""

    full = False

    def record(self, ann: Announcement | None, last_event_id: str) -> bool:
        if self.full and ann is not None:
            raise HistoryStoreError(f"cannot write the history file {self.path}: disk full")
        return super().record(ann, last_event_id)


class BatchFullStore(HistoryStore):
    """A history that cannot take a catch-up's batch, as on a full disk."""

    full = False

    def record_many(self, received: Any, *, notify: bool = True) -> list[Announcement]:
        if self.full:
            raise HistoryStoreError(f"cannot write the history file {self.path}: disk full")
        return super().record_many(received, notify=notify)


async def test_a_store_failing_while_connected_is_a_typed_error_state_and_logged(
    make_connection: MakeHarness,
    companion_server: EmbeddedServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The stream task is supervised: its failure is never silent (no more "connected" with
    nothing arriving and nothing in the log)."""
    caplog.set_level(logging.ERROR)
    h = make_connection()
    store = DiskFullStore(HistoryStore.path_for(tmp_path / "data", companion_server.url, "alice"))
    await log_in(h, companion_server, store)
    before = len(h.told.statuses)
    store.full = True
    await publish(companion_server, "Lost?", "the history cannot take it")
    await h.told.until(lambda: len(h.told.statuses) > before, "a status")
    detail = f"cannot write the history file {store.path}: disk full"
    assert h.told.statuses[before:] == [Status(ConnState.ERROR, detail, error=ErrorKind.HISTORY)]
    assert h.told.announced == []  # never told as if it were stored
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage() == "the stream failed"
    assert record.exc_info is not None and isinstance(record.exc_info[1], HistoryStoreError)
    await h.connection.logout()  # a logout still ends cleanly
    assert h.told.states[-1] is ConnState.STOPPED
    assert h.told.calls[-1][0] == "logged_out"


async def test_a_catch_up_batch_failing_to_store_is_a_typed_error_state_and_logged(
    make_connection: MakeHarness,
    companion_server: EmbeddedServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    store = BatchFullStore(HistoryStore.path_for(tmp_path / "data", companion_server.url, "alice"))
    first = make_connection()
    await log_in(first, companion_server, store)
    await publish(companion_server, "Before", "the resume point")
    await first.told.until(lambda: len(first.told.announced) == 1, "the resume point")
    await first.connection.end(logout=False)
    resume_point = store.last_event_id()
    for n in range(5):
        await publish(companion_server, f"Missed {n}", "while away")
    store.full = True
    h = make_connection(secrets=first.secrets)
    await h.connection.connect_stored(companion_server.url, "alice", store)
    await h.told.until(lambda: ConnState.ERROR in h.told.states, "the error")
    await h.connection.end(logout=False)  # the stream's end is not told over the error
    detail = f"cannot write the history file {store.path}: disk full"
    error = Status(ConnState.ERROR, detail, error=ErrorKind.HISTORY)
    assert [s for s in h.told.statuses if s.state is not ConnState.STOPPED][-1] == error
    assert h.told.announced == []  # never told as if it were stored
    assert store.last_event_id() == resume_point  # replayed after the next connect
    assert any(r.getMessage() == "the stream failed" for r in caplog.records)


# ---------------------------------------------------------------------- connect greetings

GREETING = b"data: connected successfully\n\n"  # a legacy backend's: no id of its own


def stored_login(secrets: MemorySecretStore, url: str) -> None:
    tokens = Tokens("access-1", "refresh-1", time.time() + 3600, "alice", time.time())
    secrets.set(login_key(url, "alice"), tokens.to_secret())


def greeting_then(marker: str, gate: threading.Event) -> Script:
    """A stream that, once ``gate`` is set, greets, then sends announcement ``marker`` (told
    after the greeting was dealt with, in order), then stalls."""
    event = json.dumps({"type": "announcement", "id": marker, "title": marker, "body": "b"})

    async def script(conn: Conn) -> None:
        await conn.head(200)
        assert await asyncio.to_thread(gate.wait, WAIT), "the test never opened the gate"
        await conn.send(GREETING + f"id: {marker}\ndata: {event}\n\n".encode())
        await conn.stall()

    return script


async def test_a_connect_greeting_is_told_once_when_it_comes_again_soon_after_a_connect(
    make_connection: MakeHarness,
    scripted: Callable[..., ScriptedServer],
    tmp_path: Path,
) -> None:
    markers = ["m1", "m2", "m3"]
    gates = {m: threading.Event() for m in markers}
    # each session: its stream, then the close call when the next one begins
    server = scripted(*[s for m in markers for s in (greeting_then(m, gates[m]), status(200))])
    secrets, clock = MemorySecretStore(), ManualClock(1000.0)
    stored_login(secrets, server.url)
    h = make_connection(secrets=secrets, clock=clock)
    store = HistoryStore(tmp_path / "h.sqlite3")
    told = h.told

    async def session(marker: str, *, later: float = 0.0) -> list[str]:
        """Connect; ``later`` seconds after it, the greeting and the marker arrive: the bodies
        of what was told in this session."""
        start = len(told.announced)
        connected = told.states.count(ConnState.CONNECTED) + 1
        await h.connection.connect_stored(server.url, "alice", store)
        await told.until(lambda: told.states.count(ConnState.CONNECTED) == connected, "connect")
        clock.advance(later)
        gates[marker].set()
        await told.until(lambda: marker in [a.id for a in told.announced], marker)
        return [a.body if a.legacy else a.id for a in told.announced[start:]]

    assert await session("m1") == ["connected successfully", "m1"]
    assert await session("m2") == ["m2"]  # the same greeting right after a connect: not again
    # long after a connect, the same words are news
    assert await session("m3", later=GREETING_WINDOW + 1) == ["connected successfully", "m3"]
    assert [r.method for r in server.requests].count("GET") == 3


async def test_changes_are_stored_with_their_positions_and_told_once(
    alice: Alice, make_connection: MakeHarness
) -> None:
    """Issue 25: a correction is told once per revision and a reminder once per reminder
    event, live and after an absence; a revoke sent while the tray was away reaches it; each
    change's position is the stored resume point, so a later start repeats none of it."""
    server, store = alice.server, alice.store
    drill = await publish(server, "Drill at 10", "in the yard", audience={"users": ["alice"]})
    cake = await publish(server, "Cake", "in the kitchen")
    await alice.told.until(lambda: len(alice.told.announced) == 2, "both told")

    assert await asyncio.to_thread(server.correct, drill, title="Drill at 11") == 1
    await alice.told.until(lambda: len(alice.told.values("updated")) == 1, "the correction")
    (told,) = alice.told.values("updated")
    assert (told.id, told.title, told.body) == (drill, "Drill at 11", "in the yard")
    stored = store.get(drill)
    assert stored is not None and stored.updated and stored.revision == 1
    assert stored.announcement.title == "Drill at 11" and stored.updated_at is not None
    assert store.last_event_id() not in ("", drill, cake)  # the correction's own position
    assert await asyncio.to_thread(server.remind, drill) == 1
    await alice.told.until(lambda: len(alice.told.values("reminded")) == 1, "the reminder")
    assert alice.told.values("reminded")[0].title == "Drill at 11"

    # away: a second correction, a reminder and a revoke
    await alice.connection.end(logout=False)
    assert await asyncio.to_thread(server.correct, drill, body="at the front gate") == 2
    assert await asyncio.to_thread(server.remind, drill) == 1
    assert await asyncio.to_thread(server.revoke, cake)
    back = make_connection(secrets=alice.h.secrets)
    await back.connection.connect_stored(server.url, "alice", store)
    await back.told.until(lambda: bool(back.told.values("revoked")), "the revoke")
    names = [n for n, _, _ in back.told.calls if n in ("updated", "reminded", "revoked")]
    assert names == ["updated", "reminded", "revoked"]  # in order, once each
    assert back.told.values("updated")[0].body == "at the front gate"
    assert back.told.announced == []
    withdrawn = store.get(cake)
    assert withdrawn is not None and withdrawn.withdrawn
    resume = store.last_event_id()
    await back.connection.end(logout=False)

    # the next start: nothing again
    again = make_connection(secrets=alice.h.secrets)
    await again.connection.connect_stored(server.url, "alice", store)
    await again.told.until(again.told.connected, "connected")
    await again.told.until(lambda: store.last_event_id() == resume, "the same position")
    late = await publish(server, "After", "the changes")
    await again.told.until(lambda: len(again.told.announced) == 1, "the next one")
    assert again.told.announced[0].id == late
    assert [n for n, _, _ in again.told.calls if n in ("updated", "reminded", "revoked")] == []
