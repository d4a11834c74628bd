"""The in-process fan-out on its own: targeting by user, group and publisher; encoded once;
a stream that falls behind is closed; replayed records are not sent twice; what it fanned out
lately answers a new stream's start position, or says to ask the store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from app.core.model import Priority
from app.server import wire
from app.server.hub import CLOSED, OVERFLOW, Fanned, Hub
from app.server.model import (
    NOTHING_YET,
    REMIND,
    REVOKE,
    UPDATE,
    Audience,
    Change,
    Delivery,
    Principal,
    Record,
    Revocation,
)

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


# the positions a hub fanned out: a new stream's start position without asking the store -----
T0 = datetime(2030, 1, 1, tzinfo=UTC)
CAROL = Principal("carol")  # in no group


def _expiring(ann_id: str, audience: Audience, expires_at: datetime | None) -> Record:
    return Record(ann_id, "t", "b", Priority.NORMAL, audience, T0, expires_at=expires_at)


def _update(position: str, ann_id: str, expires_at: object) -> Change:
    return Change(position, UPDATE, ann_id, EVERYONE, {"type": UPDATE, "expires_at": expires_at})


EVERYONE = Audience(everyone=True)
IT = Audience(groups=frozenset({"it"}))


def test_the_newest_visible_announcement_up_to_a_position() -> None:
    fanned = Fanned()
    fanned.begin(NOTHING_YET)  # an empty store: the positions kept are all there ever were
    fanned.note(_record("1", EVERYONE))
    fanned.note(_record("2", IT))
    fanned.note(Change("3", REMIND, "2", IT, {"type": REMIND, "id": "2"}, frozenset({"alice"})))
    fanned.note(_record("4", Audience(users=frozenset({"carol"}))))
    assert fanned.head == "4"
    assert fanned.newest_visible(ALICE, upto="4", now=T0) == "2"
    assert fanned.newest_visible(CAROL, upto="4", now=T0) == "4"
    assert fanned.newest_visible(CAROL, upto="3", now=T0) == "1"  # 4 came after the position
    assert fanned.newest_visible(BOB, upto="4", now=T0) == "1"
    assert fanned.newest_visible(BOSS, upto="4", now=T0) == "4"  # publishers see everything
    assert fanned.newest_visible(ALICE, upto=NOTHING_YET, now=T0) == NOTHING_YET
    fanned.note(Change("5", REVOKE, "1", EVERYONE, {"type": REVOKE, "id": "1"}))
    assert fanned.newest_visible(BOB, upto="5", now=T0) == NOTHING_YET  # none left, none older
    assert fanned.newest_visible(BOB, upto="4", now=T0) == NOTHING_YET  # revoked is revoked now
    assert fanned.newest_visible(ALICE, upto="99", now=T0) is None  # a position never seen


def test_expiry_is_read_at_now_and_a_correction_moves_it() -> None:
    fanned = Fanned()
    fanned.begin(NOTHING_YET)
    soon = T0 + timedelta(hours=1)
    fanned.note(_expiring("1", EVERYONE, None))
    fanned.note(_expiring("2", EVERYONE, soon))
    assert fanned.newest_visible(BOB, upto="2", now=T0) == "2"
    assert fanned.newest_visible(BOB, upto="2", now=soon) == "1"  # expired at its expiry
    fanned.note(_update("3", "2", (soon + timedelta(days=1)).isoformat().replace("+00:00", "Z")))
    assert fanned.newest_visible(BOB, upto="3", now=soon) == "2"  # corrected: later
    fanned.note(_update("4", "2", None))  # the expiry removed
    assert fanned.newest_visible(BOB, upto="4", now=soon + timedelta(days=9)) == "2"
    fanned.note(_update("5", "2", "not a time"))
    assert fanned.newest_visible(BOB, upto="5", now=T0) is None  # unreadable: ask the store
    assert fanned.newest_visible(BOB, upto="5", now=T0) is None


def test_what_the_hub_did_not_see_is_asked_of_the_store() -> None:
    fanned = Fanned()
    fanned.begin("7")  # the store held up to 7 before anything was fanned out here
    assert fanned.head == "7"
    assert fanned.newest_visible(ALICE, upto="7", now=T0) is None
    fanned.note(_record("8", IT))
    fanned.begin("5")  # too late: the hub has fanned out since
    assert fanned.head == "8"
    assert fanned.newest_visible(ALICE, upto="8", now=T0) == "8"
    assert fanned.newest_visible(BOB, upto="8", now=T0) is None  # 7 or older may be his
    started_late = Fanned()  # fanned out before the store said what it held
    started_late.note(_record("3", IT))
    assert started_late.newest_visible(BOB, upto="3", now=T0) is None


def test_only_the_newest_positions_are_kept() -> None:
    fanned = Fanned(kept=3)
    fanned.begin(NOTHING_YET)
    fanned.note(_record("1", EVERYONE))
    fanned.note(_record("2", IT))
    fanned.note(_record("3", IT))
    assert fanned.newest_visible(BOB, upto="3", now=T0) == "1"
    fanned.note(_record("4", IT))  # 1 is forgotten: what bob may see is then unknown
    assert fanned.newest_visible(BOB, upto="4", now=T0) is None
    assert fanned.newest_visible(ALICE, upto="4", now=T0) == "4"
    fanned.note(Change("5", REVOKE, "1", EVERYONE, {"type": REVOKE, "id": "1"}))  # forgotten
    assert fanned.newest_visible(ALICE, upto="2", now=T0) is None


def test_a_hub_remembers_what_it_delivers_before_offering_it() -> None:
    hub = Hub()
    hub.fanned.begin(NOTHING_YET)
    hub.deliver(_record("1", IT))
    hub.deliver(Revocation("1", IT))  # as servers before corrections fanned it out
    assert hub.fanned.head == "1"
    assert hub.fanned.newest_visible(ALICE, upto="1", now=T0) == NOTHING_YET
