"""The Redis backend on its own (no HTTP): settings, token rules, the fan-out loop's resilience."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from app.core.model import Priority
from app.server.config import RedisSettings
from app.server.model import Audience, BrokerUnavailable, Draft, Principal, Record
from app.server.redis_broker import RedisBroker

ALICE = Principal("alice", frozenset({"it"}))


@pytest.fixture
async def broker(redis_url: str) -> AsyncIterator[RedisBroker]:
    broker = RedisBroker(RedisSettings(url=redis_url, prefix="t:"))
    await broker.start()
    yield broker
    await broker.close()


def _draft(title: str = "T", expires_at: datetime | None = None) -> Draft:
    everyone = Audience(everyone=True)
    return Draft(title, "B", Priority.NORMAL, everyone, expires_at=expires_at)


def test_settings_from_url_keep_the_password_out_of_messages() -> None:
    s = RedisSettings.from_url("redis://:s3cret@db.example:6380/2?maxlen=500&prefix=x:&max_age=60")
    assert (s.maxlen, s.prefix, s.max_age) == (500, "x:", 60.0)
    assert s.url == "redis://:s3cret@db.example:6380/2" and s.where == "db.example:6380"
    assert RedisSettings.from_url("redis://h/0?health_check_interval=3").url.endswith("=3")
    for bad in ("http://h/0", "redis://h/0?maxlen=many", "redis://h/0?maxlen=0"):
        with pytest.raises(ValueError, match="Redis URL"):
            RedisSettings.from_url(bad)
    with pytest.raises(ValueError, match="block_ms"):
        RedisSettings(block_ms=5000, timeout=5.0)


async def test_start_fails_clearly_when_redis_is_unreachable() -> None:
    broker = RedisBroker(RedisSettings(url="redis://:pw@127.0.0.1:1/0", timeout=2.0))
    with pytest.raises(BrokerUnavailable, match=r"Redis at 127\.0\.0\.1:1\) cannot be reached"):
        await broker.start()
    await broker.close()


async def test_close_does_not_wait_out_the_blocking_read(redis_url: str) -> None:
    """A stop right after the fan-out loop delivered something (any busy process) must not
    wait out the loop's next ``XREAD BLOCK``: a cancel alone did not end it, and such a stop
    took ``block_ms`` longer."""
    settings = RedisSettings(url=redis_url, prefix="blk:", block_ms=4000, timeout=5.0)
    broker, publisher = RedisBroker(settings), RedisBroker(settings)
    await broker.start()
    await publisher.start()
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []

    def sink(item: object, data: bytes) -> bool:  # the loop's delivery starts the stop
        closing.append(loop.create_task(broker.close()))
        return True

    sub = broker.subscribe(ALICE, queue_size=8, on_overflow=lambda: None)
    sub.go_live(sink, ())
    try:  # published by another process: only the fan-out loop delivers it here
        await publisher.publish(_draft(), author="", now=datetime.now(UTC))
        deadline = loop.time() + 5.0
        while not closing:
            assert loop.time() < deadline, "the fan-out loop never delivered"
            await asyncio.sleep(0.01)
        await asyncio.wait_for(closing[0], timeout=2.0)  # half the block
    finally:
        await publisher.close()


async def test_publish_returns_once_fanned_out_locally(broker: RedisBroker) -> None:
    sub = broker.subscribe(ALICE, queue_size=8, on_overflow=lambda: None)
    record = await broker.publish(_draft(), author="boss", now=datetime.now(UTC))
    assert [r.id for r in sub.take() if isinstance(r, Record)] == [record.id]
    assert (await broker.get(record.id)) == record


async def test_refresh_tokens_expire_and_are_single_use(broker: RedisBroker) -> None:
    await broker.add_refresh_token("h1", user_id="alice", session_id="s", expires_at=2e9)
    await broker.add_refresh_token("h2", user_id="alice", session_id="s", expires_at=2e9)
    assert (await broker.use_refresh_token("h1", now=1e9)) is not None
    assert (await broker.use_refresh_token("h1", now=1e9)) is None  # reuse: session revoked
    assert (await broker.use_refresh_token("h2", now=1e9)) is None
    await broker.add_refresh_token("h3", user_id="alice", session_id="t", expires_at=2e9)
    assert (await broker.use_refresh_token("h3", now=3e9)) is None  # expired


async def test_expired_and_revoked_are_not_listed(broker: RedisBroker) -> None:
    now = datetime.now(UTC)
    gone = await broker.publish(
        _draft("gone", expires_at=now + timedelta(seconds=1)), author="", now=now
    )
    revoked = await broker.publish(_draft("revoked"), author="", now=now)
    kept = await broker.publish(_draft("kept"), author="", now=now)
    await broker.revoke(revoked.id)
    later = now + timedelta(seconds=2)
    assert [r.id for r in await broker.list_visible(ALICE, after=None, limit=10, now=later)] == [
        kept.id
    ]
    assert [r.id for r in await broker.list_visible(ALICE, after="0", limit=10, now=later)] == [
        kept.id
    ]
    assert (await broker.get(gone.id)) is not None
    assert (await broker.get(revoked.id)) == dataclasses.replace(revoked, revoked=True)


async def test_a_malformed_entry_is_skipped_and_the_loop_goes_on(
    broker: RedisBroker, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    sub = broker.subscribe(ALICE, queue_size=8, on_overflow=lambda: None)
    async with aioredis.Redis.from_url(redis_url) as raw:
        await raw.xadd("t:announcements", {"data": "{not json"})
    with caplog.at_level(logging.ERROR, logger="app.server.redis_broker"):
        good = await broker.publish(_draft(), author="", now=datetime.now(UTC))
    assert [r.id for r in sub.take() if isinstance(r, Record)] == [good.id]
    assert "malformed stream entry" in caplog.text
    assert broker.stats().healthy


async def test_displayed_receipts_are_stored_like_the_others(
    broker: RedisBroker, redis_url: str
) -> None:
    """Issue 22, point 10: ``displays:{id}``, user -> the first time, beside ``deliveries``,
    ``reads`` and ``acks``."""
    record = await broker.publish(_draft(), author="", now=datetime.now(UTC))
    first = datetime(2030, 1, 1, tzinfo=UTC)
    assert await broker.record_receipts("alice", [(record.id, "displayed")], now=first) == [
        record.id
    ]
    later = first + timedelta(minutes=1)
    assert await broker.record_receipts("alice", [(record.id, "displayed")], now=later) == []
    async with aioredis.Redis.from_url(redis_url, decode_responses=True) as raw:
        assert await raw.hgetall(f"t:displays:{record.id}") == {
            "alice": "2030-01-01T00:00:00+00:00"
        }
        assert await raw.hgetall(f"t:deliveries:{record.id}") == {
            "alice": "2030-01-01T00:00:00+00:00"
        }
        assert not await raw.exists(f"t:reads:{record.id}")
    (receipt,) = await broker.receipts(record.id)
    assert (receipt.displayed_at, receipt.delivered_at, receipt.read_at) == (first, first, None)


async def test_revoked_is_kept_with_when_and_who(broker: RedisBroker) -> None:
    record = await broker.publish(_draft(), author="boss", now=datetime.now(UTC))
    when = datetime(2030, 1, 1, 12, tzinfo=UTC)
    revoked = await broker.revoke(record.id, by="carol", now=when)
    assert revoked is not None and (revoked.revoked_at, revoked.revoked_by) == (when, "carol")
    again = await broker.revoke(record.id, by="dave", now=when + timedelta(hours=1))
    assert again is not None and (again.revoked_at, again.revoked_by) == (when, "carol")
    boss = Principal("boss", publisher=True)
    now = datetime.now(UTC)
    assert await broker.list_visible(boss, after=None, limit=5, now=now) == []
    (listed,) = await broker.list_visible(boss, after=None, limit=5, now=now, include_revoked=True)
    assert listed.revoked and (listed.revoked_at, listed.revoked_by) == (when, "carol")
    assert await broker.list_visible(ALICE, after="0", limit=5, now=now) == []
