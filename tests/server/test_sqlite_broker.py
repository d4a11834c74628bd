"""The SQLite backend on its own (no HTTP): expiry, cursors, revocation, a restart."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.model import Priority
from app.server.model import NOTHING_YET, Audience, Draft, InvalidCursor, Principal
from app.server.sqlite_broker import SqliteBroker

ALICE = Principal("alice", frozenset({"it"}))


async def test_sqlite_broker_hides_expired_and_rejects_bad_cursors(tmp_path: Path) -> None:
    broker = SqliteBroker(tmp_path / "s.db")
    try:
        now = datetime.now(UTC)
        soon = now + timedelta(minutes=5)
        draft = Draft("t", "b", Priority.NORMAL, Audience(everyone=True), expires_at=soon)
        record = await broker.publish(draft, author="p", now=now)
        viewer = Principal("alice", frozenset({"it"}))
        assert [r.id for r in await broker.list_visible(viewer, after="0", limit=10, now=now)] == [
            record.id
        ]
        later = soon + timedelta(seconds=1)
        assert await broker.list_visible(viewer, after="0", limit=10, now=later) == []
        with pytest.raises(InvalidCursor):
            await broker.list_visible(viewer, after="1-0", limit=10, now=now)
        assert await broker.get("nope") is None
    finally:
        await broker.close()


async def test_records_survive_a_reopen_and_revoking_twice_fans_out_once(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    broker = SqliteBroker(tmp_path / "s.db")
    try:
        sub = broker.subscribe(ALICE, queue_size=8, on_overflow=lambda: None)
        assert sub.horizon == NOTHING_YET
        draft = Draft(
            "t", "b", Priority.HIGH, Audience(groups=frozenset({"it"})), url="https://x.org"
        )
        record = await broker.publish(draft, author="boss", now=now)
        assert (await broker.revoke(record.id)) == (await broker.revoke(record.id))
        assert [type(item).__name__ for item in sub.take()] == ["Record", "Revocation"]
    finally:
        await broker.close()
    again = SqliteBroker(tmp_path / "s.db")
    try:
        stored = await again.get(record.id)
        assert stored is not None and stored.revoked and stored.priority is Priority.HIGH
        assert stored == dataclasses.replace(record, revoked=True)
        assert again.subscribe(ALICE, queue_size=1, on_overflow=lambda: None).horizon == record.id
    finally:
        await again.close()
