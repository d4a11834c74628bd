"""The in-process fan-out on its own: targeting by user, group and publisher; encoded once;
a stream that falls behind is closed; replayed records are not sent twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from app.core.model import Priority
from app.server import wire
from app.server.hub import CLOSED, OVERFLOW, Hub
from app.server.model import Audience, Delivery, Principal, Record, Revocation

ALICE = Principal("alice", frozenset({"it"}), session_id="s1")
BOB = Principal("bob", frozenset({"hr"}))
BOSS = Principal("boss", publisher=True)


def _record(ann_id: str, audience: Audience) -> Record:
    return Record(ann_id, "t", "b", Priority.NORMAL, audience, datetime.now(UTC))


async def test_a_delivery_reaches_only_its_audience_and_publishers() -> None:
    hub = Hub()
    subs = {
        p.user_id: hub.subscribe(p, queue_size=8, on_overflow=lambda: None)
        for p in (ALICE, BOB, BOSS)
    }
    assert len(hub) == 3
    assert hub.deliver(_record("1", Audience(groups=frozenset({"hr"})))) == 2
    assert hub.deliver(_record("2", Audience(users=frozenset({"alice"})))) == 2
    assert hub.deliver(Revocation("1", Audience(groups=frozenset({"hr"})))) == 2
    assert [item.id for item in subs["alice"].take()] == ["2"]
    assert [type(item).__name__ for item in subs["bob"].take()] == ["Record", "Revocation"]
    assert [item.id for item in subs["boss"].take()] == ["1", "2", "1"]
    hub.unsubscribe(subs["bob"])
    assert hub.deliver(_record("3", Audience(groups=frozenset({"hr"})))) == 1


async def test_a_sink_gets_the_encoded_bytes_and_replayed_records_are_skipped() -> None:
    hub = Hub()
    sub = hub.subscribe(ALICE, queue_size=8, on_overflow=lambda: None)
    written: list[bytes] = []

    def sink(item: Delivery, data: bytes) -> bool:
        written.append(data)
        return True

    first, second = _record("1", Audience(everyone=True)), _record("2", Audience(everyone=True))
    hub.deliver(first)  # queued before going live, and also in the replay
    sub.go_live(sink, replayed={"1"})
    assert sub.pending == 0
    hub.deliver(first)
    hub.deliver(second)
    assert written == [wire.record(second)]


async def test_falling_behind_closes_the_stream_and_calls_back() -> None:
    hub = Hub()
    dropped: list[bool] = []
    sub = hub.subscribe(ALICE, queue_size=2, on_overflow=lambda: dropped.append(True))
    for n in range(3):
        hub.deliver(_record(str(n), Audience(everyone=True)))
    assert sub.closed_reason == OVERFLOW and dropped == [True] and sub.take() == []


async def test_close_user_by_session() -> None:
    hub = Hub()
    mine = hub.subscribe(ALICE, queue_size=2, on_overflow=lambda: None)
    other = hub.subscribe(
        Principal("alice", session_id="s2"), queue_size=2, on_overflow=lambda: None
    )
    assert hub.close_user("alice", session_id="s1") == 1
    assert (mine.closed_reason, other.closed_reason) == (CLOSED, None)
    assert hub.close_user("alice", session_id=None) == 2
    await other.wait(5.0)  # returns at once: closed


async def test_a_wait_ends_when_woken_before_or_during_it_or_at_its_timeout() -> None:
    loop = asyncio.get_running_loop()
    hub = Hub()
    sub = hub.subscribe(ALICE, queue_size=2, on_overflow=lambda: None)
    sub.wake()
    await asyncio.wait_for(sub.wait(60.0), 5.0)  # woken before it: at once
    await asyncio.wait_for(sub.wait(60.0), 5.0)  # ... until the stream takes what woke it
    assert sub.take() == []
    loop.call_soon(sub.wake)
    await asyncio.wait_for(sub.wait(60.0), 5.0)  # woken while it waits
    sub.take()
    await asyncio.wait_for(sub.wait(0.0), 5.0)  # nothing: at its timeout
    assert sub.take() == []
