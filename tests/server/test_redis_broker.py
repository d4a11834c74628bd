"""The Redis backend on its own (no HTTP): settings, token rules, the fan-out loop's resilience."""

from __future__ import annotations

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
