"""Who an audience names (issue 24): ``Broker.audience_members`` finds the recipients and the
unknown names by group and by name, on both backends, and answers exactly what reading every
user (``list_users``) and filtering them gave before, whatever the population: local
accounts, people of the identity provider (``name~2`` too), directory people, a directory
person who is also a provider person, a directory person with a local account's name, people
removed from the directory, groups that only a hidden row names. The same for
``Broker.local_accounts``, which a directory sync asks instead of reading every user, and for
``Broker.users_named``, which the reach asks for its rows' users."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
import redis

from app.server.broker import Broker
from app.server.config import RedisSettings
from app.server.model import (
    Audience,
    AudienceMembers,
    DirectoryPerson,
    DirectoryStatus,
    User,
)
from app.server.redis_broker import RedisBroker
from app.server.sqlite_broker import SqliteBroker

STATUS = DirectoryStatus(synced_at=1.0, checked_at=1.0)


def reference(audience: Audience, users: Iterable[User]) -> AudienceMembers:
    """The rule as the server applied it before the lookup, over every user read whole (the
    former ``reach.recipients`` and ``reach.unknown_names``): the test's oracle."""
    users = list(users)
    names = {u.name for u in users}
    groups = {g for u in users for g in u.groups}
    return AudienceMembers(
        recipients=tuple(
            sorted(
                u.name
                for u in users
                if audience.everyone
                or u.name in audience.users
                or not audience.groups.isdisjoint(u.groups)
            )
        ),
        unknown_groups=tuple(sorted(audience.groups - groups)),
        unknown_users=tuple(sorted(audience.users - names)),
    )


@pytest.fixture(params=["sqlite", "redis"])
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Broker]:
    backend: Broker
    if request.param == "sqlite":
        backend = SqliteBroker(tmp_path / "s.db")
    else:
        backend = RedisBroker(RedisSettings(url=request.getfixturevalue("redis_url"), prefix="t:"))
    await backend.start()
    yield backend
    await backend.close()


def _person(name: str, *groups: str) -> DirectoryPerson:
    return DirectoryPerson(name, name.title(), frozenset(groups))


async def _names(broker: Broker) -> set[str]:
    """Every user's name, and names that are a user's only at another step of the test or
    never (a case apart, a ``~n`` no one has)."""
    return {u.name for u in await broker.list_users()} | {
        "carol",
        "frank",
        "heidi",
        "ivy",
        "nobody",
        "gina~9",
        "Gina",
    }


async def _audiences(broker: Broker) -> list[Audience]:
    """Every group and every user anyone has (in any stored row, hidden or not) alone, names
    that exist nowhere, and mixes."""
    users = await broker.list_users()
    names = await _names(broker)
    groups = {g for u in users for g in u.groups} | {
        "shadow",
        "claim-only",
        "dept-2",
        "nope",
        "ALL-STAFF",
        "",
    }
    return [
        Audience(everyone=True),
        Audience(everyone=True, groups=frozenset({"nope", "sales"}), users=frozenset({"nobody"})),
        *(Audience(groups=frozenset({g})) for g in sorted(groups)),
        *(Audience(users=frozenset({n})) for n in sorted(names)),
        Audience(groups=frozenset(groups)),
        Audience(users=frozenset(names)),
        Audience(groups=frozenset(groups), users=frozenset(names)),
        Audience(groups=frozenset({"sales", "it"}), users=frozenset({"alice", "dan", "nobody"})),
        Audience(groups=frozenset({"shadow", "claim-only"}), users=frozenset({"carol"})),
        Audience(groups=frozenset({"all-staff", "dept-1"}), users=frozenset({"frank", "zoë"})),
    ]


async def _agrees(broker: Broker) -> None:
    users = await broker.list_users()
    for audience in await _audiences(broker):
        assert await broker.audience_members(audience) == reference(audience, users), audience
    # and the local accounts a directory sync leaves the people of the same name out for
    assert await broker.local_accounts() == {u.name for u in users if u.local}
    # and the users the reach reads by name: each name alone, all at once, none, a name twice
    names = await _names(broker)
    for wanted in (names, *([n] for n in sorted(names)), [], ["nobody"], ["dan", "dan", "zoë"]):
        expected = {u.name: u for u in users if u.name in wanted}
        assert await broker.users_named(wanted) == expected, wanted


async def test_the_lookup_names_whom_every_user_read_whole_names(broker: Broker) -> None:
    # local accounts; carol is one, and also a directory person (left out: never merged)
    for user in (
        User("alice", "h", frozenset({"it"})),
        User("bob", "h", frozenset({"hr", "it"})),
        User("publisher", "h", frozenset({"comms"}), publisher=True),
        User("zoë", "h", frozenset({"équipe", "グループ"})),
        User("empty", "h"),
        User("carol", "h", frozenset({"ops"})),
    ):
        await broker.save_user(user)
    # people of the provider: frank and heidi also in the directory (its groups count, not the
    # claim's); two named gina (the second gina~2), not in it
    await broker.sign_in_person(
        "s-frank", "frank", groups=frozenset({"claim-only", "it"}), publisher=False
    )
    await broker.sign_in_person("s-heidi", "heidi", groups=frozenset({"claim"}), publisher=False)
    await broker.sign_in_person(
        "s-gina", "gina", groups=frozenset({"contractors"}), publisher=False
    )
    second = await broker.sign_in_person(
        "s-gina-2", "gina", groups=frozenset({"contractors", "x-only"}), publisher=True
    )
    assert second.name == "gina~2"
    people = [
        _person("dan", "sales", "all-staff", "dept-1"),
        _person("erin", "all-staff", "dept-2"),
        _person("ivy", "all-staff", "dept-2"),
        _person("frank", "sales", "all-staff"),
        _person("heidi", "all-staff", "dept-1"),
        _person("carol", "sales", "all-staff", "shadow"),
        _person("Ünal", "all-staff", "グループ"),
        _person("gina~2", "all-staff"),  # a directory person with a provider person's name
        _person("nogroups"),
    ]
    await broker.replace_directory(people, status=STATUS)
    await _agrees(broker)
    first = await broker.audience_members(
        Audience(groups=frozenset({"sales", "shadow", "claim-only", "x-only"}))
    )
    # carol is in sales as a local account's name only; frank by the directory, not his claim;
    # gina~2's own groups give way to the directory's
    assert first == AudienceMembers(("dan", "frank"), ("claim-only", "shadow", "x-only"), ())
    frank = await broker.get_user("frank")
    assert frank is not None and frank.groups == frozenset({"sales", "all-staff"})

    # a second sync: ivy (directory only) and heidi (also a provider person) leave, erin
    # moves, jo arrives, a name comes twice (the last one counts, as it is stored)
    await broker.replace_directory(
        [
            _person("dan", "sales", "all-staff", "dept-1"),
            _person("erin", "all-staff", "dept-1"),
            _person("frank", "sales", "all-staff"),
            _person("carol", "sales", "all-staff", "shadow"),
            _person("jo", "dept-2"),
            _person("jo", "dept-3", "all-staff"),
            _person("Ünal", "all-staff", "グループ"),
            _person("gina~2", "all-staff"),
        ],
        status=STATUS,
    )
    await _agrees(broker)
    gone = await broker.audience_members(
        Audience(groups=frozenset({"dept-2", "claim"}), users=frozenset({"ivy", "heidi"}))
    )
    assert gone == AudienceMembers(("heidi",), ("claim", "dept-2"), ("ivy",))

    # users change: groups replaced, a provider person signs in again with other groups
    await broker.save_user(User("alice", "h", frozenset({"sales"})))
    await broker.save_user(User("carol", "h", frozenset({"ops", "dept-3"})))
    await broker.save_user(User("bob", "h"))
    await broker.sign_in_person("s-gina", "gina", groups=frozenset({"x-only"}), publisher=False)
    await broker.sign_in_person("s-gina-2", "gina", groups=frozenset(), publisher=False)
    await broker.sign_in_person("s-frank", "frank", groups=frozenset({"other"}), publisher=False)
    await _agrees(broker)
    assert (await broker.audience_members(Audience(groups=frozenset({"hr"})))).unknown == [
        "group hr"
    ]

    # the directory emptied: its people go; frank and gina~2 stay as provider people
    await broker.replace_directory([], status=STATUS)
    await _agrees(broker)
    everyone = await broker.audience_members(Audience(everyone=True))
    assert everyone.recipients == tuple(sorted(u.name for u in await broker.list_users()))
    assert everyone.recipients == (
        "alice",
        "bob",
        "carol",
        "empty",
        "frank",
        "gina",
        "gina~2",
        "heidi",
        "publisher",
        "zoë",
    )


async def test_an_audience_of_nothing_known_names_nobody(broker: Broker) -> None:
    empty = await broker.audience_members(
        Audience(groups=frozenset({"it"}), users=frozenset({"alice"}))
    )
    assert empty == AudienceMembers((), ("it",), ("alice",))
    assert empty.unknown == ["group it", "user alice"]
    assert await broker.audience_members(Audience(everyone=True)) == AudienceMembers()
    assert await broker.users_named(["alice"]) == {}
    assert await broker.users_named([]) == {}


async def test_a_sqlite_database_of_version_3_gets_its_groups_indexed(tmp_path: Path) -> None:
    """The index tables (and the triggers of user_groups) are new in version 4: a database
    written before them is indexed when opened, and kept so."""
    path = tmp_path / "s.db"
    broker = SqliteBroker(path)
    await broker.save_user(User("alice", "h", frozenset({"it"})))
    await broker.sign_in_person("s-f", "frank", groups=frozenset({"claim"}), publisher=False)
    await broker.replace_directory(
        [_person("dan", "sales"), _person("frank", "sales")], status=STATUS
    )
    await broker.close()
    with sqlite3.connect(path) as db:  # as version 3 left it
        for event in ("insert", "update", "delete"):
            db.execute(f"DROP TRIGGER users_groups_{event}")
        db.execute("DROP TABLE user_groups")
        db.execute("DROP TABLE person_groups")
        db.execute("PRAGMA user_version = 3")
    db.close()
    broker = SqliteBroker(path)
    try:
        audience = Audience(groups=frozenset({"it", "sales", "claim"}))
        members = await broker.audience_members(audience)
        assert members == AudienceMembers(("alice", "dan", "frank"), ("claim",), ())
        await broker.save_user(User("bob", "h", frozenset({"sales"})))
        assert (await broker.audience_members(audience)).recipients == (
            "alice",
            "bob",
            "dan",
            "frank",
        )
    finally:
        await broker.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 4
    db.close()


async def test_a_redis_store_written_without_the_index_is_indexed_at_start(
    redis_url: str,
) -> None:
    """The group index (``directory-groups``, ``user-group:{g}``, ``local-accounts``) is new:
    the first process of this version builds it from the stored users and directory, once."""
    first = RedisBroker(RedisSettings(url=redis_url, prefix="t:"))
    await first.start()
    try:
        await first.save_user(User("alice", "h", frozenset({"it"})))
        await first.sign_in_person("s-f", "frank", groups=frozenset({"claim"}), publisher=False)
        await first.replace_directory(
            [_person("dan", "sales"), _person("frank", "sales")], status=STATUS
        )
        await first.save_user(User("dan", "h", frozenset({"it"})))  # a local account's name
    finally:
        await first.close()
    with redis.Redis.from_url(redis_url) as client:  # as a version without the index left it
        client.delete(
            "t:directory-groups",
            "t:local-accounts",
            "t:group-index",
            *client.keys("t:user-group:*"),
        )
    again = RedisBroker(RedisSettings(url=redis_url, prefix="t:"))
    await again.start()
    try:
        audience = Audience(groups=frozenset({"it", "sales", "claim"}))
        assert await again.audience_members(audience) == AudienceMembers(
            ("alice", "dan", "frank"), ("claim",), ()
        )
        assert await again.audience_members(audience) == reference(
            audience, await again.list_users()
        )
    finally:
        await again.close()
