"""The receipt queue without Qt, with the real AuthSession against a scripted server on
loopback: kept in the store until sent, retried while the server cannot be reached or refuses,
waiting (not retrying) when the login is gone, 404 settles it; batches of every kind through
``POST /receipts``, and one by one at the ack endpoint for a server without it.
(Against the real companion server: tests/core/test_connection.py.)"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from app.core.auth import AuthSession, Tokens
from app.core.config import Endpoints, StreamSettings
from app.core.model import Announcement, Priority
from app.core.receipts import ReceiptQueue
from app.core.secrets import MemorySecretStore, login_key
from app.core.store import HistoryStore
from tests.fixtures.scripted import Conn, ScriptedServer, status

WAIT = 5.0
Scripted = Callable[..., ScriptedServer]


async def drop(conn: Conn) -> None:
    """Close the connection without an answer: the server cannot be reached."""


def logged_in(secrets: MemorySecretStore, url: str) -> None:
    tokens = Tokens("access-1", "refresh-1", time.time() + 3600, "alice", time.time())
    secrets.set(login_key(url, "alice"), tokens.to_secret())


def acks(server: ScriptedServer) -> list[str]:
    """The announcement ids the server was sent receipts for, in order."""
    return [
        r.path.split("/")[2]
        for r in server.requests
        if r.method == "POST" and r.path.endswith("/ack")
    ]


@pytest.fixture
def secrets() -> MemorySecretStore:
    return MemorySecretStore()


@pytest.fixture
async def session_for(secrets: MemorySecretStore) -> AsyncIterator[Callable[[str], AuthSession]]:
    sessions: list[AuthSession] = []

    def make(url: str) -> AuthSession:
        logged_in(secrets, url)
        session = AuthSession(
            server_url=url,
            username="alice",
            endpoints=Endpoints(),
            secrets=secrets,
            settings=StreamSettings(),
        )
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        await session.aclose()


class Sent:
    """``on_sent``: records the ids; ``done`` is set once ``expected`` of them were sent."""

    def __init__(self, expected: int = 1) -> None:
        self.ids: list[str] = []
        self.expected = expected
        self.done = asyncio.Event()

    def __call__(self, ann_id: str) -> None:
        self.ids.append(ann_id)
        if len(self.ids) >= self.expected:
            self.done.set()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    with HistoryStore(tmp_path / "h.sqlite3") as s:
        for n in ("1", "2"):
            s.add(Announcement(id=n, title="t", body="b", priority=Priority.URGENT))
        yield s


async def run_until(
    queue: ReceiptQueue,
    done: asyncio.Event | None = None,
    *,
    seen: Callable[[], bool] | None = None,
) -> None:
    """Run the queue until ``done`` is set, or until ``seen()`` holds (checked every 10 ms,
    within WAIT) and then for a hundred more loop turns, in which a retry storm would show."""
    task = asyncio.ensure_future(queue.run())
    try:
        if done is not None:
            await asyncio.wait_for(done.wait(), WAIT)
        if seen is not None:
            deadline = asyncio.get_running_loop().time() + WAIT
            while not seen():
                assert asyncio.get_running_loop().time() < deadline, "not seen in time"
                await asyncio.sleep(0.01)
            for _ in range(100):
                await asyncio.sleep(0)
    finally:
        task.cancel()
        await asyncio.wait({task})


async def test_a_receipt_is_queued_in_the_store_sent_and_removed(
    store: HistoryStore, scripted: Scripted, session_for: Callable[[str], AuthSession]
) -> None:
    server = scripted(status(404), status(200))  # a server without POST /receipts
    sent = Sent()
    queue = ReceiptQueue(store, session_for(server.url), on_sent=sent, batch_delay=0.0)
    store.queue_ack("1")
    store.queue_ack("1")  # a second press: one receipt
    assert store.pending_acks() == ["1"]
    stored = store.get("1")
    assert stored is not None and stored.acked and stored.read
    await run_until(queue, sent.done)
    assert (acks(server), sent.ids, store.pending_acks()) == (["1"], ["1"], [])
    assert server.requests[0].headers["authorization"] == "Bearer access-1"


async def test_what_an_earlier_run_left_pending_is_sent_at_start(
    store: HistoryStore, scripted: Scripted, session_for: Callable[[str], AuthSession]
) -> None:
    store.queue_ack("1")
    store.queue_ack("2")
    server = scripted(status(404), status(200))
    sent = Sent(expected=2)
    queue = ReceiptQueue(store, session_for(server.url), on_sent=sent, batch_delay=0.0)
    await run_until(queue, sent.done)
    assert acks(server) == sent.ids == ["1", "2"] and store.pending_acks() == []


@pytest.mark.parametrize("failure", ["dropped", 500, 503])
async def test_unsent_receipts_stay_and_are_retried(
    store: HistoryStore,
    scripted: Scripted,
    session_for: Callable[[str], AuthSession],
    failure: int | str,
) -> None:
    first = drop if failure == "dropped" else status(int(failure), b"busy")
    server = scripted(status(404), first, status(200))
    sent = Sent()
    queue = ReceiptQueue(store, session_for(server.url), on_sent=sent, retry=0.01, batch_delay=0.0)
    store.queue_ack("1")
    await run_until(queue, sent.done)
    assert [r.path for r in server.requests] == ["/receipts"] + ["/announcements/1/ack"] * 2
    assert store.pending_acks() == []


async def test_a_gone_announcement_settles_its_receipt(
    store: HistoryStore, scripted: Scripted, session_for: Callable[[str], AuthSession]
) -> None:
    server = scripted(status(404))
    sent = Sent()
    queue = ReceiptQueue(store, session_for(server.url), on_sent=sent, batch_delay=0.0)
    store.queue_ack("1")
    await run_until(queue, sent.done)
    assert acks(server) == ["1"] and store.pending_acks() == []


async def test_without_a_login_it_waits_until_woken(
    store: HistoryStore,
    scripted: Scripted,
    session_for: Callable[[str], AuthSession],
    secrets: MemorySecretStore,
) -> None:
    # the receipt is refused (401) and so is the refresh: the login is gone
    server = scripted(status(401), status(401), status(200))
    session = session_for(server.url)
    sent = Sent()
    queue = ReceiptQueue(store, session, on_sent=sent, retry=0.0, batch_delay=0.0)
    store.queue_ack("1")
    await run_until(queue, seen=lambda: len(server.requests) >= 2)
    # no retry storm: one attempt (and the one refresh), then it waits for a wake
    assert [r.path for r in server.requests] == ["/receipts", "/auth/refresh"]
    assert sent.ids == [] and store.pending_acks() == ["1"]
    logged_in(secrets, server.url)  # logged in again, connected again: a wake
    queue.wake()
    await run_until(queue, sent.done)
    assert sent.ids == ["1"] and store.pending_acks() == []


async def test_a_failing_store_ends_the_run_with_its_error(
    store: HistoryStore, scripted: Scripted, session_for: Callable[[str], AuthSession]
) -> None:
    queue = ReceiptQueue(store, session_for(scripted(status(200)).url), batch_delay=0.0)
    store.close()
    with pytest.raises(Exception, match="closed"):
        await asyncio.wait_for(queue.run(), WAIT)


async def test_receipts_of_every_kind_go_in_one_batch(
    store: HistoryStore, scripted: Scripted, session_for: Callable[[str], AuthSession]
) -> None:
    server = scripted(status(200, b'{"recorded": 4, "ignored": 0}'))
    sent = Sent()
    store.mark_read("2")
    store.mark_read("2")  # read once: one receipt
    queue = ReceiptQueue(store, session_for(server.url), on_sent=sent, batch_delay=0.0)
    store.queue_ack("1")  # acknowledged
    await run_until(queue, sent.done)
    assert [(r.method, r.path) for r in server.requests] == [("POST", "/receipts")]
    body = json.loads(server.requests[0].body)
    assert body == {"delivered": ["1", "2"], "read": ["2"], "acknowledged": ["1"]}
    assert sent.ids == ["1"] and store.pending_receipts() == []


async def test_a_receipt_queued_from_another_thread_wakes_the_queue(
    store: HistoryStore, scripted: Scripted, session_for: Callable[[str], AuthSession]
) -> None:
    server = scripted(status(200))
    queue = ReceiptQueue(store, session_for(server.url), batch_delay=0.0)
    task = asyncio.ensure_future(queue.run())
    try:
        deadline = asyncio.get_running_loop().time() + WAIT
        while store.pending_receipts():  # the two delivered receipts go first
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        await asyncio.to_thread(store.mark_read, "1")  # as the GUI thread does
        while store.pending_receipts() or len(server.requests) < 2:
            assert asyncio.get_running_loop().time() < deadline, "not sent in time"
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.wait({task})
    assert json.loads(server.requests[-1].body)["read"] == ["1"]


async def test_without_post_receipts_delivered_and_read_are_dropped(
    store: HistoryStore, scripted: Scripted, session_for: Callable[[str], AuthSession]
) -> None:
    server = scripted(status(404), status(200))
    sent = Sent()
    store.mark_all_read()
    queue = ReceiptQueue(store, session_for(server.url), on_sent=sent, batch_delay=0.0)
    store.queue_ack("2")
    await run_until(queue, sent.done)
    assert acks(server) == ["2"] and store.pending_receipts() == []
    # later ones go straight to the ack endpoint: /receipts is not asked again
    sent.expected, sent.done = 2, asyncio.Event()
    store.queue_ack("1")
    await run_until(queue, sent.done)
    assert [r.path for r in server.requests].count("/receipts") == 1 and acks(server) == ["2", "1"]
