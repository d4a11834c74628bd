"""The server's values: who an audience includes, its JSON form, a record's liveness."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from app.core.model import Priority
from app.server.model import PUBLISHER_ROLE, Audience, Principal, Record, User

ALICE = Principal("alice", frozenset({"it"}))


def test_an_audience_includes_listed_users_groups_and_every_publisher() -> None:
    assert Audience(everyone=True).includes(ALICE)
    assert Audience(groups=frozenset({"it"})).includes(ALICE)
    assert Audience(users=frozenset({"alice"})).includes(ALICE)
    assert not Audience(groups=frozenset({"hr"}), users=frozenset({"bob"})).includes(ALICE)
    assert Audience(users=frozenset({"bob"})).includes(Principal("boss", publisher=True))


def test_audience_json_round_trips_sorted() -> None:
    mixed = Audience(groups=frozenset({"it", "hr"}), users=frozenset({"zoe", "al"}))
    assert mixed.to_json() == {"groups": ["hr", "it"], "users": ["al", "zoe"]}
    assert Audience(everyone=True).to_json() == {"all": True}
    for audience in (mixed, Audience(everyone=True), Audience(users=frozenset({"x"}))):
        assert Audience.from_json(audience.to_json()) == audience


def test_a_record_is_live_until_it_expires_or_is_revoked() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    record = Record(
        "1", "t", "b", Priority.HIGH, Audience(everyone=True), now, expires_at=now + timedelta(1)
    )
    assert record.live(now) and not record.live(now + timedelta(days=1))
    assert not dataclasses.replace(record, revoked=True).live(now)
    assert dataclasses.replace(record, expires_at=None).live(now + timedelta(days=9999))


def test_a_publishers_role() -> None:
    assert User("p", "h", publisher=True).roles == [PUBLISHER_ROLE]
    assert User("a", "h").roles == []
