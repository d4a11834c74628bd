"""Users and the organisation's directory on SQLite (:class:`SqlitePeople`, a part of
:class:`~app.server.sqlite_broker.SqliteBroker`): the users' rows, the people of the last
directory sync and the group index that finds an audience's members, in tables of the same
database:

- ``users``: one row per user (local account, or a person of the identity provider: subject);
- ``directory_people``: the people of the last directory sync, replaced whole by each sync;
- ``user_groups`` and ``person_groups``: the groups of each row of those two, one row each,
  found by group (schema version 4; ``user_groups`` is kept by triggers on ``users``,
  ``person_groups`` by :func:`index_people`);
- ``directory_status``: the last sync's time, counts and problem;
- ``connected``: who ever signed in, and when first.

Their DDL (:data:`PEOPLE_SCHEMA`) opens the broker's schema, and the broker's one migration
brings an older database to it (with :data:`SUBJECT_INDEX` and :func:`index_people`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from app.server.model import (
    Audience,
    AudienceMembers,
    DirectoryPerson,
    DirectoryStatus,
    NameTaken,
    User,
    person_names,
    with_directory,
)

# the people's tables: the start of the broker's schema (sqlite_broker._SCHEMA), created there
PEOPLE_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,        -- '': a person of the identity provider
    groups TEXT NOT NULL,               -- JSON list
    publisher INTEGER NOT NULL,
    subject TEXT                        -- the provider person (subject_key); NULL: local
);
CREATE TABLE IF NOT EXISTS directory_people ( -- the last directory sync (docs/directory.md)
    name TEXT PRIMARY KEY,              -- the login attribute's value: the user id
    display_name TEXT NOT NULL,
    groups TEXT NOT NULL                -- JSON list, nested groups resolved
);
-- the groups of each row of users and of directory_people, one row each, found by group (an
-- audience's members: audience_members). user_groups is kept by the triggers below, whatever
-- program writes a user; person_groups by replace_directory, which writes the people whole
-- (row triggers made storing a sync of 10,000 people four times as long: 0.12 s, not 0.03 s,
-- on the event loop)
CREATE TABLE IF NOT EXISTS user_groups (
    grp TEXT NOT NULL,
    name TEXT NOT NULL,                 -- users.name
    PRIMARY KEY (grp, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_groups_name ON user_groups (name);
CREATE TABLE IF NOT EXISTS person_groups (
    grp TEXT NOT NULL,
    name TEXT NOT NULL,                 -- directory_people.name
    PRIMARY KEY (grp, name)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS users_groups_insert AFTER INSERT ON users BEGIN
    DELETE FROM user_groups WHERE name = NEW.name;  -- a REPLACE fires no delete trigger
    INSERT OR IGNORE INTO user_groups (grp, name)
        SELECT value, NEW.name FROM json_each(NEW.groups);
END;
CREATE TRIGGER IF NOT EXISTS users_groups_update AFTER UPDATE OF name, groups ON users BEGIN
    DELETE FROM user_groups WHERE name = OLD.name;
    INSERT OR IGNORE INTO user_groups (grp, name)
        SELECT value, NEW.name FROM json_each(NEW.groups);
END;
CREATE TRIGGER IF NOT EXISTS users_groups_delete AFTER DELETE ON users BEGIN
    DELETE FROM user_groups WHERE name = OLD.name;
END;
CREATE TABLE IF NOT EXISTS directory_status (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    status TEXT NOT NULL                -- JSON (DirectoryStatus)
);
CREATE TABLE IF NOT EXISTS connected (   -- who ever signed in: the first time
    user_id TEXT PRIMARY KEY,
    first_at REAL NOT NULL
);
"""
# users' subjects, unique: made by the broker's migration, once it has added the column to the
# users table of an older database (its CREATE TABLE IF NOT EXISTS above leaves that one as is)
SUBJECT_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS users_subject ON users (subject)"

# the (group, name) pairs of the members of the groups {groups} (SQL giving group names), as
# list_users merges the users (with_directory): a users row's own groups for a local account and
# for a person of the provider who is not in the directory; the directory's groups for a
# directory person, unless their name is a local account's (left out)
_MEMBERS = """
SELECT g.grp, g.name FROM user_groups g JOIN users u ON u.name = g.name
WHERE g.grp IN ({groups})
  AND (COALESCE(u.subject, '') = ''
       OR NOT EXISTS (SELECT 1 FROM directory_people d WHERE d.name = g.name))
UNION ALL
SELECT g.grp, g.name FROM person_groups g
WHERE g.grp IN ({groups})
  AND NOT EXISTS (SELECT 1 FROM users u WHERE u.name = g.name AND COALESCE(u.subject, '') = '')
"""

# Broker.audience_members: every name (everyone), the members of the groups, the users named
# that exist; then the groups with no member, the users named that do not exist
_AUDIENCE_NAMES = """
SELECT name FROM users WHERE :everyone
UNION SELECT name FROM directory_people WHERE :everyone
UNION SELECT name FROM ({members})
UNION SELECT name FROM users WHERE name IN (SELECT value FROM json_each(:users))
UNION SELECT name FROM directory_people WHERE name IN (SELECT value FROM json_each(:users))
"""
_UNKNOWN_GROUPS = """
SELECT w.value FROM json_each(:groups) w WHERE NOT EXISTS ({members})
"""
_UNKNOWN_USERS = """
SELECT w.value FROM json_each(:users) w
WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.name = w.value)
  AND NOT EXISTS (SELECT 1 FROM directory_people d WHERE d.name = w.value)
"""

# Broker.users_named: the users row and the directory person of each name given (JSON list,
# no name twice) that has either, by primary key
_USERS_NAMED = """
SELECT w.value AS name, u.name AS stored, u.password_hash, u.groups, u.publisher, u.subject,
       d.name AS listed, d.display_name, d.groups AS person_groups
FROM json_each(:names) w
LEFT JOIN users u ON u.name = w.value
LEFT JOIN directory_people d ON d.name = w.value
WHERE u.name IS NOT NULL OR d.name IS NOT NULL
"""


class SqlitePeople:
    """Users and the directory of :class:`~app.server.sqlite_broker.SqliteBroker`, which
    provides the connection and its transactions."""

    _db: sqlite3.Connection

    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

    # users ------------------------------------------------------------------------------
    async def save_user(self, user: User) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO users (name, password_hash, groups, publisher, subject)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash,"
                " groups = excluded.groups, publisher = excluded.publisher,"
                " subject = excluded.subject",
                (
                    user.name,
                    user.password_hash,
                    json.dumps(sorted(user.groups)),
                    user.publisher,
                    user.subject or None,
                ),
            )

    async def get_user(self, name: str) -> User | None:
        row = self._db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone()
        return with_directory(None if row is None else _user(row), self._person(name))

    def _person(self, name: str) -> DirectoryPerson | None:
        row = self._db.execute("SELECT * FROM directory_people WHERE name = ?", (name,)).fetchone()
        return None if row is None else _person(row)

    async def list_users(self) -> list[User]:
        stored = {row["name"]: _user(row) for row in self._db.execute("SELECT * FROM users")}
        people = {
            row["name"]: _person(row) for row in self._db.execute("SELECT * FROM directory_people")
        }
        merged = (with_directory(stored.get(n), people.get(n)) for n in {*stored, *people})
        return sorted((u for u in merged if u is not None), key=lambda u: u.name)

    async def audience_members(self, audience: Audience) -> AudienceMembers:
        params = {
            "everyone": audience.everyone,
            "groups": json.dumps(sorted(audience.groups)),
            "users": json.dumps(sorted(audience.users)),
        }
        members = _MEMBERS.format(groups="SELECT value FROM json_each(:groups)")
        names = self._names(_AUDIENCE_NAMES.format(members=members), params)
        no_group: tuple[str, ...] = ()
        no_user: tuple[str, ...] = ()
        if audience.groups:
            members = _MEMBERS.format(groups="w.value")
            no_group = self._names(_UNKNOWN_GROUPS.format(members=members), params)
        if audience.users:
            no_user = self._names(_UNKNOWN_USERS, params)
        return AudienceMembers(names, no_group, no_user)

    async def users_named(self, names: Collection[str]) -> dict[str, User]:
        if not names:
            return {}
        out: dict[str, User] = {}
        # the directory's people share a few sets of groups (a department's people, one):
        # each set parsed once (10,000 people of 100 departments: 35 ms instead of 54)
        groups_of: dict[str, frozenset[str]] = {}
        params = {"names": json.dumps(list(dict.fromkeys(names)))}
        for row in self._db.execute(_USERS_NAMED, params):
            person = None
            if row["listed"] is not None:
                listed = row["person_groups"]
                groups = groups_of.get(listed)
                if groups is None:
                    groups = groups_of[listed] = frozenset(json.loads(listed))
                person = DirectoryPerson(row["name"], row["display_name"], groups)
            user = with_directory(None if row["stored"] is None else _user(row), person)
            if user is not None:
                out[user.name] = user
        return out

    async def local_accounts(self) -> set[str]:
        rows = self._db.execute("SELECT name FROM users WHERE COALESCE(subject, '') = ''")
        return {row[0] for row in rows}

    def _names(self, sql: str, params: dict[str, Any]) -> tuple[str, ...]:
        """The first column of each row of ``sql``, sorted (as Python sorts: by code point)."""
        return tuple(sorted(row[0] for row in self._db.execute(sql, params)))

    async def sign_in_person(
        self, subject: str, username: str, *, groups: frozenset[str], publisher: bool
    ) -> User:
        with self._tx() as db:
            row = db.execute("SELECT name FROM users WHERE subject = ?", (subject,)).fetchone()
            if row is not None:
                name = row["name"]
            else:
                owner = db.execute(
                    "SELECT subject FROM users WHERE name = ?", (username,)
                ).fetchone()
                if owner is not None and owner["subject"] is None:
                    raise NameTaken(username)
                name = next(
                    candidate
                    for candidate in person_names(username)
                    if db.execute("SELECT 1 FROM users WHERE name = ?", (candidate,)).fetchone()
                    is None
                )
            user = User(name, "", groups, publisher, subject)
            db.execute(
                "INSERT INTO users (name, password_hash, groups, publisher, subject)"
                " VALUES (?, '', ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " groups = excluded.groups, publisher = excluded.publisher",
                (name, json.dumps(sorted(groups)), publisher, subject),
            )
        return with_directory(user, self._person(user.name)) or user

    # the organisation's directory ---------------------------------------------------------
    async def replace_directory(
        self, people: Collection[DirectoryPerson], *, status: DirectoryStatus
    ) -> list[str]:
        names = {p.name for p in people}
        with self._tx() as db:
            removed = [
                row["name"]
                for row in db.execute("SELECT name FROM directory_people ORDER BY name")
                if row["name"] not in names
            ]
            db.execute("DELETE FROM directory_people")
            db.executemany(
                "INSERT OR REPLACE INTO directory_people (name, display_name, groups)"
                " VALUES (?, ?, ?)",
                [(p.name, p.display_name, json.dumps(sorted(p.groups))) for p in people],
            )
            index_people(db)
            db.executemany(
                "UPDATE users SET groups = '[]' WHERE name = ? AND subject IS NOT NULL",
                [(name,) for name in removed],
            )
            self._save_status(db, status)
        return removed

    async def directory_status(self) -> DirectoryStatus | None:
        row = self._db.execute("SELECT status FROM directory_status WHERE id = 1").fetchone()
        return None if row is None else DirectoryStatus.from_json(json.loads(row["status"]))

    async def set_directory_status(self, status: DirectoryStatus) -> None:
        with self._tx() as db:
            self._save_status(db, status)

    def _save_status(self, db: sqlite3.Connection, status: DirectoryStatus) -> None:
        db.execute(
            "INSERT OR REPLACE INTO directory_status (id, status) VALUES (1, ?)",
            (json.dumps(status.to_json()),),
        )

    async def mark_connected(self, user_id: str, *, now: float) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO connected (user_id, first_at) VALUES (?, ?)",
                (user_id, now),
            )

    async def never_connected(self, user_ids: Iterable[str]) -> set[str]:
        wanted = set(user_ids)
        seen = {
            row["user_id"]
            for row in self._db.execute(
                "SELECT user_id FROM connected WHERE user_id IN (SELECT value FROM json_each(?))",
                (json.dumps(sorted(wanted)),),
            )
        }
        return wanted - seen


def index_people(db: sqlite3.Connection) -> None:
    """person_groups from directory_people, whole (in the caller's transaction)."""
    db.execute("DELETE FROM person_groups")
    db.execute(
        "INSERT OR IGNORE INTO person_groups (grp, name)"
        " SELECT j.value, p.name FROM directory_people p, json_each(p.groups) j"
    )


def _person(row: sqlite3.Row) -> DirectoryPerson:
    return DirectoryPerson(row["name"], row["display_name"], frozenset(json.loads(row["groups"])))


def _user(row: sqlite3.Row) -> User:
    return User(
        name=row["name"],
        password_hash=row["password_hash"],
        groups=frozenset(json.loads(row["groups"])),
        publisher=bool(row["publisher"]),
        subject=row["subject"] or "",
    )
