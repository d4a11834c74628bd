"""The receipt queue without Qt: kept in the store until sent, retried while the server cannot
be reached or refuses, waiting (not retrying) when the login is gone, 404 settles it.
(Against the real companion server: tests/ui/test_worker.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Endpoints
from app.core.errors import LoginRequired, ServerUnreachable
from app.core.http import Reply
from app.core.model import Announcement, Priority
from app.core.receipts import ReceiptQueue
from app.core.store import HistoryStore

WAIT = 5.0


class FakeSession:
    """Answers each POST with the next of ``replies`` (an exception is raised), then 200."""

    endpoints = Endpoints()

    def __init__(self, *replies: int | Exception) -> None:
        self.replies = list(replies)
        self.posted: list[str] = []
        self.called = asyncio.Event()

    async def request(
        self,
        method: str,
        template: str,
        *,
        json: object = None,
        headers: dict[str, str] | None = None,
        **values: str,
    ) -> Reply:
        assert (method, template) == ("POST", "/announcements/{id}/ack")
        self.posted.append(values["id"])
        self.called.set()
        reply = self.replies.pop(0) if self.replies else 200
        if isinstance(reply, Exception):
            raise reply
        return Reply(reply)


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


async def run_until(queue: ReceiptQueue, done: asyncio.Event | None = None) -> None:
    task = asyncio.ensure_future(queue.run())
    try:
        if done is not None:
            await asyncio.wait_for(done.wait(), WAIT)
        else:
            for _ in range(100):  # a few loop turns: the queue sends without waiting
                await asyncio.sleep(0)
    finally:
        task.cancel()
        await asyncio.wait({task})


async def test_a_receipt_is_queued_in_the_store_sent_and_removed(store: HistoryStore) -> None:
    session, sent = FakeSession(), Sent()
    queue = ReceiptQueue(store, session, on_sent=sent)
    queue.add("1")
    queue.add("1")  # a second press: one receipt
    assert store.pending_acks() == ["1"]
    stored = store.get("1")
    assert stored is not None and stored.acked and stored.read
    await run_until(queue, sent.done)
    assert (session.posted, sent.ids, store.pending_acks()) == (["1"], ["1"], [])


async def test_what_an_earlier_run_left_pending_is_sent_at_start(store: HistoryStore) -> None:
    store.queue_ack("1")
    store.queue_ack("2")
    sent = Sent(expected=2)
    queue = ReceiptQueue(store, FakeSession(), on_sent=sent)
    await run_until(queue, sent.done)
    assert sent.ids == ["1", "2"] and store.pending_acks() == []


@pytest.mark.parametrize("failure", [ServerUnreachable("offline"), 500, 503])
async def test_unsent_receipts_stay_and_are_retried(
    store: HistoryStore, failure: int | Exception
) -> None:
    session, sent = FakeSession(failure), Sent()
    queue = ReceiptQueue(store, session, on_sent=sent, retry=0.01)
    queue.add("1")
    await run_until(queue, sent.done)
    assert session.posted == ["1", "1"]
    assert store.pending_acks() == []


async def test_a_gone_announcement_settles_its_receipt(store: HistoryStore) -> None:
    sent = Sent()
    queue = ReceiptQueue(store, FakeSession(404), on_sent=sent)
    queue.add("1")
    await run_until(queue, sent.done)
    assert store.pending_acks() == []


async def test_without_a_login_it_waits_until_woken(store: HistoryStore) -> None:
    session = FakeSession(LoginRequired("log in again"))
    sent = Sent()
    queue = ReceiptQueue(store, session, on_sent=sent, retry=0.0)
    queue.add("1")
    await run_until(queue)
    # no retry storm: one attempt, then it waits for a wake (connected again)
    assert session.posted == ["1"] and sent.ids == [] and store.pending_acks() == ["1"]
    queue.wake()
    await run_until(queue)
    assert sent.ids == ["1"] and store.pending_acks() == []


async def test_a_failing_store_ends_the_run_with_its_error(store: HistoryStore) -> None:
    queue = ReceiptQueue(store, FakeSession())
    store.close()
    with pytest.raises(Exception, match="closed"):
        await asyncio.wait_for(queue.run(), WAIT)
