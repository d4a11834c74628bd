"""The SQLite backend on its own (no HTTP): expiry, cursors, revocation, a restart."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.model import Priority
from app.server.hub import FANNED_KEPT, Fanned
from app.server.model import (
    NOTHING_YET,
    AlreadyRevoked,
    Audience,
    Change,
    Correction,
    Draft,
    InvalidCursor,
    NameTaken,
    Principal,
    Receipt,
)
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
        items = sub.take()
        assert [type(item).__name__ for item in items] == ["Record", "Change"]
        revoke_position = items[1].position  # the revoke is a stream position of its own
    finally:
        await broker.close()
    again = SqliteBroker(tmp_path / "s.db")
    try:
        stored = await again.get(record.id)
        assert stored is not None and stored.revoked and stored.priority is Priority.HIGH
        assert stored == dataclasses.replace(record, revoked=True)
        horizon = again.subscribe(ALICE, queue_size=1, on_overflow=lambda: None).horizon
        assert horizon == revoke_position and int(revoke_position) > int(record.id)
    finally:
        await again.close()


# the tables of a database written before the displayed receipt, revoked_by and the identity
# provider's people (as released)
_OLD_SCHEMA = """
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    groups TEXT NOT NULL,
    publisher INTEGER NOT NULL
);
INSERT INTO users VALUES ('p', 'scrypt$16384$8$1$c2FsdA$aGFzaA', '["comms"]', 1);
CREATE TABLE announcements (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    priority TEXT NOT NULL,
    url TEXT,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    expires_ts REAL,
    audience TEXT NOT NULL,
    author TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE audience (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    kind TEXT NOT NULL CHECK (kind IN ('all', 'group', 'user')),
    value TEXT NOT NULL,
    PRIMARY KEY (announcement_id, kind, value)
);
CREATE TABLE acks (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    user_id TEXT NOT NULL,
    acked_at TEXT NOT NULL,
    PRIMARY KEY (announcement_id, user_id)
);
CREATE TABLE recipients (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    user_id TEXT NOT NULL,
    PRIMARY KEY (announcement_id, user_id)
);
CREATE TABLE receipts (
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('delivered', 'read')),
    at TEXT NOT NULL,
    PRIMARY KEY (announcement_id, user_id, kind)
);
INSERT INTO announcements (title, body, priority, created_at, audience, author)
    VALUES ('kept', 'b', 'normal', '2030-01-31T17:00:00Z', '{"all": true}', 'p');
INSERT INTO announcements (title, body, priority, created_at, audience, author, revoked_at)
    VALUES ('gone', 'b', 'normal', '2030-01-31T17:00:00Z', '{"all": true}', 'p',
            '2030-02-01T09:30:00+00:00');
INSERT INTO audience VALUES (1, 'all', ''), (2, 'all', '');
INSERT INTO recipients VALUES (1, 'alice'), (2, 'alice');
INSERT INTO receipts VALUES (1, 'alice', 'delivered', '2030-01-31T17:00:01Z'),
                            (1, 'alice', 'read', '2030-01-31T17:05:00Z');
INSERT INTO acks VALUES (1, 'bob', '2030-01-31T17:06:00Z');
"""


async def test_a_database_of_an_older_version_takes_displayed_receipts(tmp_path: Path) -> None:
    """Issue 22, point 10: the receipts table's CHECK constraint allowed delivered and read
    only; the server opens databases created by older versions and migrates them, keeping
    every receipt (and revocations gain who revoked, unknown for the old ones; issue 24: the
    users' groups are indexed for an audience's lookup)."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript(_OLD_SCHEMA)
    old.close()
    now = datetime(2030, 2, 2, tzinfo=UTC)
    for opening in range(2):  # the second one finds nothing left to migrate
        broker = SqliteBroker(path)
        try:
            await broker.record_receipts("alice", [("1", "displayed")], now=now)
            await broker.record_receipts("bob", [("1", "displayed")], now=now)
            receipts = {r.user_id: r for r in await broker.receipts("1")}
            assert receipts["alice"] == Receipt(
                "alice",
                delivered_at=datetime(2030, 1, 31, 17, 0, 1, tzinfo=UTC),
                read_at=datetime(2030, 1, 31, 17, 5, tzinfo=UTC),
                displayed_at=now,
            )
            assert receipts["bob"].displayed_at == now and receipts["bob"].acked_at
            gone = await broker.get("2")
            assert gone is not None and gone.revoked and gone.revoked_by == ""
            assert gone.revoked_at == datetime(2030, 2, 1, 9, 30, tzinfo=UTC)
            listed = await broker.list_visible(
                Principal("p", publisher=True), after=None, limit=9, now=now, include_revoked=True
            )
            assert [(r.id, r.revoked, r.revoked_by) for r in listed] == [
                ("1", opening == 1, "carol" if opening else ""),
                ("2", True, ""),
            ]
            if not opening:
                revoked = await broker.revoke("1", by="carol", now=now)
                assert revoked is not None and (revoked.revoked_at, revoked.revoked_by) == (
                    now,
                    "carol",
                )
            local = await broker.get_user("p")
            assert local is not None and local.publisher and local.subject == ""
            comms = await broker.audience_members(Audience(groups=frozenset({"comms"})))
            assert comms.recipients == ("p",)  # its groups indexed (version 4)
            with pytest.raises(NameTaken):  # a local account is never given to a provider person
                await broker.sign_in_person('["i","s"]', "p", groups=frozenset(), publisher=False)
        finally:
            await broker.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    db.close()


async def test_an_upgraded_database_continues_its_ids_with_the_changes(tmp_path: Path) -> None:
    """Issue 25: a database with announcements only (ids 1 and 2) is upgraded; a correction,
    a reminder and a revoke take the next positions of the same sequence, and the next
    announcement's id comes after them: a tray that stored the newest id (2) resumes with
    exactly what came after it, and one at the newest position with nothing."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:
        old.executescript(_OLD_SCHEMA)
    old.close()
    now = datetime(2030, 2, 2, tzinfo=UTC)
    broker = SqliteBroker(path)
    try:
        assert await broker.replay(ALICE, after="2", limit=9, now=now) == []  # nothing repeats
        correction = Correction(frozenset({"title"}), title="kept, corrected")
        corrected = await broker.correct("1", correction, by="p", now=now)
        assert corrected is not None and corrected.revision == 1
        reminder = await broker.remind("1", ["alice"], by="p", now=now)
        assert reminder is not None and reminder.position == "4"
        draft = Draft("new", "b", Priority.NORMAL, Audience(everyone=True))
        record = await broker.publish(draft, author="p", now=now)
        assert record.id == "5"
        revoked = await broker.revoke("5", by="p", now=now)
        assert revoked is not None
        replayed = await broker.replay(ALICE, after="2", limit=9, now=now)
        assert [(type(i).__name__, i.position) for i in replayed] == [
            ("Change", "3"),
            ("Change", "4"),
            ("Change", "6"),  # the revoked announcement 5 is not replayed, its revoke is
        ]
        assert [i.data["type"] for i in replayed if isinstance(i, Change)] == [
            "update",
            "remind",
            "revoke",
        ]
        assert await broker.replay(ALICE, after="6", limit=9, now=now) == []
        bob = Principal("bob", frozenset({"hr"}))  # also addressed (everyone), not reminded
        assert [i.position for i in await broker.replay(bob, after="2", limit=9, now=now)] == [
            "3",
            "6",
        ]
        # a new stream starts at the newest announcement alice may see (2 and 5 are revoked)
        assert await broker.newest_visible_id(ALICE, upto="6", now=now) == "1"
        with pytest.raises(AlreadyRevoked):
            await broker.correct("5", correction, by="p", now=now)
        assert await broker.correct("99", correction, by="p", now=now) is None
    finally:
        await broker.close()
    again = SqliteBroker(path)  # kept across a restart; the sequence goes on
    try:
        record = await again.publish(draft, author="p", now=now)
        assert record.id == "7"
        stored = await again.get("1")
        assert stored is not None and (stored.title, stored.revision) == ("kept, corrected", 1)
        (alice,) = [r for r in await again.receipts("1") if r.user_id == "alice"]
        assert alice.reminders == 1 and alice.reminded_at == now
    finally:
        await again.close()


_VIEWERS = (
    Principal("alice", frozenset({"it"})),
    Principal("bob", frozenset({"hr"})),
    Principal("carol"),  # in no group
    Principal("dave", frozenset({"it", "hr"})),
    Principal("boss", publisher=True),
)
_AUDIENCES = (
    Audience(everyone=True),
    Audience(groups=frozenset({"it"})),
    Audience(groups=frozenset({"hr"})),
    Audience(groups=frozenset({"it", "hr"})),
    Audience(users=frozenset({"carol"})),
    Audience(groups=frozenset({"ops"}), users=frozenset({"bob"})),
    Audience(groups=frozenset({"ops"})),  # nobody but publishers
)


@pytest.mark.parametrize("kept", [FANNED_KEPT, 4], ids=["kept-default", "kept-4"])
async def test_a_new_streams_start_position_from_memory_is_the_databases(
    tmp_path: Path, kept: int
) -> None:
    """What the hub keeps of what it fanned out answers ``newest_visible_id`` without a query:
    the same answer as the database's, whatever was published to whom, revoked, corrected
    (expiry), reminded, expired by then, and across restarts (what was stored before is
    asked of the database until the hub knows better). The oracle is a second broker on the
    same file whose hub never fanned anything out, so it always asks the database."""
    rng = random.Random(24)
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    expiries = (None, t0 + timedelta(hours=1), t0 + timedelta(days=1), t0 + timedelta(days=3))
    nows = (t0, t0 + timedelta(hours=2), t0 + timedelta(days=2), t0 + timedelta(days=4))
    path = tmp_path / "s.db"

    def opened() -> SqliteBroker:
        broker = SqliteBroker(path)
        broker._hub.fanned = Fanned(kept=kept)
        return broker

    broker, oracle = opened(), SqliteBroker(path)
    ids: list[str] = []
    horizons: list[str] = []
    answered = asked = 0
    try:
        for _ in range(160):
            op = rng.random()
            if op < 0.5 or not ids:
                audience, expires_at = rng.choice(_AUDIENCES), rng.choice(expiries)
                draft = Draft("t", "b", Priority.NORMAL, audience, expires_at=expires_at)
                ids.append((await broker.publish(draft, author="p", now=t0)).id)
            elif op < 0.65:
                await broker.revoke(rng.choice(ids), by="p", now=t0)
            elif op < 0.8:
                fix = Correction(frozenset({"expires_at"}), expires_at=rng.choice(expiries))
                with contextlib.suppress(AlreadyRevoked):
                    await broker.correct(rng.choice(ids), fix, by="p", now=t0)
            elif op < 0.93:
                with contextlib.suppress(AlreadyRevoked):
                    await broker.remind(rng.choice(ids), {"alice", "bob"}, by="p", now=t0)
            else:  # a restart: what was stored before is the database's to say
                await broker.close()
                broker = opened()
            with contextlib.closing(sqlite3.connect(path)) as db:  # the newest position stored
                (stored,) = db.execute(
                    "SELECT MAX(COALESCE((SELECT MAX(id) FROM announcements), 0),"
                    " COALESCE((SELECT MAX(position) FROM changes), 0))"
                ).fetchone()
            for viewer in _VIEWERS:
                sub = broker.subscribe(viewer, queue_size=1, on_overflow=lambda: None)
                assert sub.horizon == str(stored)
                horizons.append(sub.horizon)
                broker.unsubscribe(sub)
            for upto in {*horizons[-3:], rng.choice(horizons)}:
                for viewer in _VIEWERS:
                    for now in nows:
                        expected = await oracle.newest_visible_id(viewer, upto=upto, now=now)
                        known = broker._hub.fanned.newest_visible(viewer, upto=upto, now=now)
                        if known is None:
                            asked += 1
                        else:
                            answered += 1
                            assert known == (expected or NOTHING_YET), (viewer, upto, now)
                        got = await broker.newest_visible_id(viewer, upto=upto, now=now)
                        assert got == expected, (viewer, upto, now)
    finally:
        await broker.close()
        await oracle.close()
    print(f"\nanswered from memory {answered}, asked of the database {asked}")
    assert answered > 1000  # the memory is what is tested here
