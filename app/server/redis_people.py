"""Users and the organisation's directory on Redis (:class:`RedisPeople`, a part of
:class:`~app.server.redis_broker.RedisBroker`), shared by every process: the users' rows, the
people of the last directory sync, and the group index that finds an audience's members. Keys,
under the backend's prefix:

=====================  ===========  ==========================================================
key                    type         holds
=====================  ===========  ==========================================================
``users``              hash         user name -> JSON (password hash, groups, publisher,
                                    subject: the identity provider's person, "" if local)
``identities``         hash         provider subject -> user name
``directory``          hash         login name -> JSON (display name, groups): the people of
                                    the last directory sync (replaced whole by each sync)
``directory-groups``   hash         group -> JSON list of the names of the directory people in
                                    it: ``directory`` by group, replaced with it
``user-group:{g}``     set          the names of the users whose ``users`` row lists group g
``local-accounts``     set          the names of the local accounts (``users`` rows whose
                                    subject is ""); these two kept with every ``users`` write
``group-index``        string       the version of these indexes, built once from ``users`` and
                                    ``directory`` by the first process of this version
``directory-status``   string       JSON: the last sync's time, counts and problem
``connected``          hash         user id -> when they first signed in
=====================  ===========  ==========================================================

Every script that writes the ``users`` hash keeps the group index in the same script
(:data:`_REINDEX_USER`); :meth:`RedisPeople._index_groups_once` builds it for a store written by
a version without it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from redis.typing import EncodableT, FieldT

from app.server.config import RedisSettings
from app.server.model import (
    Audience,
    AudienceMembers,
    DirectoryPerson,
    DirectoryStatus,
    NameTaken,
    User,
    with_directory,
)

log = logging.getLogger(__name__)

_GROUP_INDEX_VERSION = "1"  # of the group index (directory-groups, user-group:{g}, local-accounts)

# The group index of one row of the users hash (a Lua function for every script that writes
# that hash): ``name`` leaves the sets of the groups of its ``old`` row (JSON, or false: none)
# and joins those of its ``new`` row; it is in the set of local accounts when its subject is "".
_REINDEX_USER = """
local function reindex(prefix, locals, name, old, new)
  if old then
    for _, g in ipairs(cjson.decode(old)['groups']) do redis.call('SREM', prefix .. g, name) end
  end
  local row = cjson.decode(new)
  for _, g in ipairs(row['groups']) do redis.call('SADD', prefix .. g, name) end
  local subject = row['subject']
  if subject == nil or subject == cjson.null or subject == '' then
    redis.call('SADD', locals, name)
  else
    redis.call('SREM', locals, name)
  end
end
"""

# Save a user's row with its group index (Broker.save_user). KEYS: the users hash, the local
# accounts set; ARGV: the group set prefix, the name, the JSON row, and the row it must replace
# ('' for any). Returns 1, or 0 when the stored row was not that one (nothing written).
_SAVE_USER = (
    _REINDEX_USER
    + """
local old = redis.call('HGET', KEYS[1], ARGV[2])
if ARGV[4] ~= '' and old ~= ARGV[4] then return 0 end
reindex(ARGV[1], KEYS[2], ARGV[2], old, ARGV[3])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
"""
)

# The group index built from the users and directory hashes, once (a store written by a
# version without it). KEYS: users, directory, directory-groups, local accounts, the index's
# version key; ARGV: the group set prefix, the version. Returns 1 when it built it.
_INDEX_GROUPS = (
    _REINDEX_USER
    + """
if redis.call('GET', KEYS[5]) == ARGV[2] then return 0 end
local rows = redis.call('HGETALL', KEYS[1])
for i = 1, #rows, 2 do reindex(ARGV[1], KEYS[4], rows[i], false, rows[i + 1]) end
local members = {}
local people = redis.call('HGETALL', KEYS[2])
for i = 1, #people, 2 do
  for _, g in ipairs(cjson.decode(people[i + 1])['groups']) do
    local names = members[g]
    if not names then
      names = {}
      members[g] = names
    end
    names[#names + 1] = people[i]
  end
end
redis.call('DEL', KEYS[3])
for g, names in pairs(members) do redis.call('HSET', KEYS[3], g, cjson.encode(names)) end
redis.call('SET', KEYS[5], ARGV[2])
return 1
"""
)

# Who an audience names (Broker.audience_members), as list_users merges the users
# (with_directory): a directory person is in the directory's groups unless their name is a
# local account's; a users row's own groups count for a local account and for a person of the
# provider who is not in the directory. KEYS: users, directory, directory-groups, local
# accounts; ARGV: the group set prefix, everyone ('1'/'0'), the number of groups, the groups,
# then the users. Returns {the names as one JSON list (unsorted; "{}" for none: one string
# parses far faster than ten thousand replies), groups with no member, users that do not exist}.
_AUDIENCE = """
local locals = {}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[4])) do locals[n] = true end
local named, names, no_group, no_user = {}, {}, {}, {}
local function add(n)
  if not named[n] then
    named[n] = true
    names[#names + 1] = n
  end
end
if ARGV[2] == '1' then
  for _, n in ipairs(redis.call('HKEYS', KEYS[1])) do add(n) end
  for _, n in ipairs(redis.call('HKEYS', KEYS[2])) do add(n) end
end
local last = 3 + tonumber(ARGV[3])
for i = 4, last do
  local g, found = ARGV[i], false
  local listed = redis.call('HGET', KEYS[3], g)
  if listed then
    for _, n in ipairs(cjson.decode(listed)) do
      if not locals[n] then
        found = true
        add(n)
      end
    end
  end
  for _, n in ipairs(redis.call('SMEMBERS', ARGV[1] .. g)) do
    if locals[n] or redis.call('HEXISTS', KEYS[2], n) == 0 then
      found = true
      add(n)
    end
  end
  if not found then no_group[#no_group + 1] = g end
end
for i = last + 1, #ARGV do
  local n = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], n) == 1 or redis.call('HEXISTS', KEYS[2], n) == 1 then
    add(n)
  else
    no_user[#no_user + 1] = n
  end
end
return {cjson.encode(names), no_group, no_user}
"""

# A person of the identity provider signs in (Broker.sign_in_person), atomically. KEYS: the
# users hash, the identities hash (subject -> user name), the local accounts set; ARGV:
# subject, username, the user's JSON row, the group set prefix. Returns {'ok', name} or
# {'taken'} (the username is a local account's).
_SIGN_IN_PERSON = (
    _REINDEX_USER
    + """
local name = redis.call('HGET', KEYS[2], ARGV[1])
if not name then
  local raw = redis.call('HGET', KEYS[1], ARGV[2])
  if raw and (cjson.decode(raw)['subject'] or '') == '' then return {'taken'} end
  name = ARGV[2]
  local n = 1
  while redis.call('HEXISTS', KEYS[1], name) == 1 do
    n = n + 1
    name = ARGV[2] .. '~' .. n
  end
  redis.call('HSET', KEYS[2], ARGV[1], name)
end
reindex(ARGV[4], KEYS[3], name, redis.call('HGET', KEYS[1], name), ARGV[3])
redis.call('HSET', KEYS[1], name, ARGV[3])
return {'ok', name}
"""
)


class RedisPeople:
    """Users and the directory of :class:`~app.server.redis_broker.RedisBroker`, which provides
    the connection and the settings."""

    _redis: aioredis.Redis
    _settings: RedisSettings

    if TYPE_CHECKING:

        def _unavailable(self) -> contextlib.AbstractContextManager[None]: ...

    def _open_people(self) -> None:
        """The keys of this part, under the prefix, and its scripts."""
        prefix = self._settings.prefix
        self._k_users = prefix + "users"
        self._k_identities = prefix + "identities"  # provider subject -> user name
        self._k_directory = prefix + "directory"  # login name -> JSON person
        self._k_directory_status = prefix + "directory-status"
        self._k_directory_groups = prefix + "directory-groups"  # group -> JSON list of names
        self._k_user_group = prefix + "user-group:"  # + group: names whose users row lists it
        self._k_local = prefix + "local-accounts"  # names of the users rows with no subject
        self._k_group_index = prefix + "group-index"  # the version of these three
        self._k_connected = prefix + "connected"  # user id -> first sign-in
        self._sign_in_person = self._redis.register_script(_SIGN_IN_PERSON)
        self._save_user = self._redis.register_script(_SAVE_USER)
        self._index_groups = self._redis.register_script(_INDEX_GROUPS)
        self._audience = self._redis.register_script(_AUDIENCE)

    async def _index_groups_once(self) -> None:
        """Build the group index (``directory-groups``, ``user-group:{g}``, ``local-accounts``)
        of a store written by a version without it; every later write keeps it."""
        built = await self._index_groups(
            keys=[
                self._k_users,
                self._k_directory,
                self._k_directory_groups,
                self._k_local,
                self._k_group_index,
            ],
            args=[self._k_user_group, _GROUP_INDEX_VERSION],
        )
        if built:
            log.info("the users and the directory in Redis are now indexed by group")

    # users ------------------------------------------------------------------------------
    async def save_user(self, user: User) -> None:
        await self._write_user(user.name, _user_row(user))

    async def _write_user(self, name: str, row: str, *, replacing: str = "") -> bool:
        """Store ``row`` as ``name``'s, with the group index; only in place of ``replacing``
        when given (False: the stored row was another, nothing written)."""
        with self._unavailable():
            written = await self._save_user(
                keys=[self._k_users, self._k_local], args=[self._k_user_group, name, row, replacing]
            )
        return bool(written)

    async def get_user(self, name: str) -> User | None:
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hget(self._k_users, name)
                pipe.hget(self._k_directory, name)
                raw, person = await pipe.execute()
        return with_directory(
            None if raw is None else _user(name, raw),
            None if person is None else _person(name, person),
        )

    async def list_users(self) -> list[User]:
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._k_users)
                pipe.hgetall(self._k_directory)
                rows, people = await pipe.execute()
        stored = {str(n): _user(str(n), raw) for n, raw in rows.items()}
        listed = {str(n): _person(str(n), raw) for n, raw in people.items()}
        merged = (with_directory(stored.get(n), listed.get(n)) for n in {*stored, *listed})
        return sorted((u for u in merged if u is not None), key=lambda u: u.name)

    async def audience_members(self, audience: Audience) -> AudienceMembers:
        groups, users = sorted(audience.groups), sorted(audience.users)
        with self._unavailable():
            names, no_group, no_user = await self._audience(
                keys=[self._k_users, self._k_directory, self._k_directory_groups, self._k_local],
                args=[
                    self._k_user_group,
                    "1" if audience.everyone else "0",
                    len(groups),
                    *groups,
                    *users,
                ],
            )
        return AudienceMembers(
            tuple(sorted(json.loads(names) or ())),
            tuple(sorted(map(str, no_group))),
            tuple(sorted(map(str, no_user))),
        )

    async def users_named(self, names: Collection[str]) -> dict[str, User]:
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        # two HMGETs in one round trip, as list_users's two HGETALLs (a script joining the rows
        # into one JSON reply took 77 ms instead of 86 for 10,000 names: not worth one)
        with self._unavailable():
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hmget(self._k_users, wanted)
                pipe.hmget(self._k_directory, wanted)
                rows, people = await pipe.execute()
        out: dict[str, User] = {}
        for name, raw, person in zip(wanted, rows, people, strict=True):
            user = with_directory(
                None if raw is None else _user(name, raw),
                None if person is None else _person(name, person),
            )
            if user is not None:
                out[name] = user
        return out

    async def local_accounts(self) -> set[str]:
        with self._unavailable():
            return {str(name) for name in await self._redis.smembers(self._k_local)}

    async def sign_in_person(
        self, subject: str, username: str, *, groups: frozenset[str], publisher: bool
    ) -> User:
        row = _user_row(User(username, "", groups, publisher, subject))
        with self._unavailable():
            reply = await self._sign_in_person(
                keys=[self._k_users, self._k_identities, self._k_local],
                args=[subject, username, row, self._k_user_group],
            )
        if reply[0] == "taken":
            raise NameTaken(username)
        user = User(str(reply[1]), "", groups, publisher, subject)
        with self._unavailable():
            person = await self._redis.hget(self._k_directory, user.name)
        return with_directory(user, None if person is None else _person(user.name, person)) or user

    # the organisation's directory ---------------------------------------------------------
    async def replace_directory(
        self, people: Collection[DirectoryPerson], *, status: DirectoryStatus
    ) -> list[str]:
        """The new people, and their groups' index, go into keys of their own, then RENAME
        them over ``directory`` and ``directory-groups`` in one transaction with reading the
        old names: every process sees the old set or the new."""
        by_name = {p.name: p for p in people}  # a name given twice: the last, as HSET keeps
        members: dict[str, list[str]] = {}
        for person in by_name.values():
            for group in person.groups:
                members.setdefault(group, []).append(person.name)
        unique = uuid.uuid4().hex
        staging = f"{self._k_directory}:new:{unique}"
        staging_groups = f"{self._k_directory_groups}:new:{unique}"
        rows: dict[FieldT, EncodableT] = {n: _person_row(p) for n, p in by_name.items()}
        index: dict[FieldT, EncodableT] = {g: json.dumps(sorted(n)) for g, n in members.items()}
        with self._unavailable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hkeys(self._k_directory)
                for key, staged, mapping in (
                    (self._k_directory, staging, rows),
                    (self._k_directory_groups, staging_groups, index),
                ):
                    if mapping:
                        pipe.hset(staged, mapping=mapping)
                        pipe.rename(staged, key)
                    else:
                        pipe.delete(key)
                pipe.set(self._k_directory_status, json.dumps(status.to_json()))
                old, *_ = await pipe.execute()
            removed = sorted(str(n) for n in old if str(n) not in by_name)
            for name in removed:  # a person of the provider keeps no groups of theirs
                raw = await self._redis.hget(self._k_users, name)
                if raw is not None and _user(name, raw).subject:
                    user = dataclasses.replace(_user(name, raw), groups=frozenset())
                    # unless they signed in again meanwhile (their row is then the new one)
                    await self._write_user(name, _user_row(user), replacing=str(raw))
        return removed

    async def directory_status(self) -> DirectoryStatus | None:
        with self._unavailable():
            raw = await self._redis.get(self._k_directory_status)
        return None if raw is None else DirectoryStatus.from_json(json.loads(raw))

    async def set_directory_status(self, status: DirectoryStatus) -> None:
        with self._unavailable():
            await self._redis.set(self._k_directory_status, json.dumps(status.to_json()))

    async def mark_connected(self, user_id: str, *, now: float) -> None:
        with self._unavailable():
            await self._redis.hsetnx(self._k_connected, user_id, repr(now))

    async def never_connected(self, user_ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(user_ids))
        if not wanted:
            return set()
        with self._unavailable():
            seen = await self._redis.hmget(self._k_connected, wanted)
        return {user for user, first in zip(wanted, seen, strict=True) if first is None}


def _user(name: str, raw: str | bytes) -> User:
    row = json.loads(raw)
    return User(
        name,
        row["password_hash"],
        frozenset(row["groups"]),
        bool(row["publisher"]),
        str(row.get("subject") or ""),
    )


def _person(name: str, raw: str | bytes) -> DirectoryPerson:
    row = json.loads(raw)
    return DirectoryPerson(name, str(row["display_name"]), frozenset(row["groups"]))


def _person_row(person: DirectoryPerson) -> str:
    return json.dumps({"display_name": person.display_name, "groups": sorted(person.groups)})


def _user_row(user: User) -> str:
    """The ``users`` hash's JSON for ``user`` (the name is the hash's field)."""
    row = {
        "password_hash": user.password_hash,
        "groups": sorted(user.groups),
        "publisher": user.publisher,
        "subject": user.subject,
    }
    return json.dumps(row)
