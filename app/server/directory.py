"""The organisation's directory: people and groups read from LDAP (Active Directory, OpenLDAP,
FreeIPA) and kept in the server's store, so that an audience by department reaches everyone in
it, signed in or not (DESIGN.md "Directory"; docs/directory.md for IT).

- :func:`read_directory` binds with the service account, reads the people under the user base
  and the groups under the group base (paged searches), and resolves nested groups: it blocks,
  and runs on a worker thread.
- :class:`DirectorySync` stores what was read through the :class:`~app.server.broker.Broker`
  (every process on the backend sees it), ends the sessions of the people who left, and keeps
  the last good sync when the directory cannot be read. It syncs at start, every
  ``sync_interval`` (once for all the processes on one backend), and on demand.

Nesting is resolved here, from the groups' member lists, for every kind of directory: one paged
search of the groups instead of one search per group (Active Directory's in-chain matching
rule would need that), and the same code for OpenLDAP, which has no such rule. Cycles (a group
inside itself, through others) are harmless: each group's members are collected with a set of
the groups already visited.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import ssl
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from app.server.broker import Broker
from app.server.config import LdapSettings, is_loopback_host
from app.server.model import BrokerUnavailable, DirectoryPerson, DirectoryStatus

log = logging.getLogger(__name__)

# a group's members, by the object class that lists them: DNs (groupOfNames, AD's group),
# DNs with an optional "#uid" (groupOfUniqueNames), or login names (posixGroup, nis schema)
_DN_MEMBERS = ("member", "uniqueMember")
_NAME_MEMBERS = "memberUid"


class DirectoryUnreachable(Exception):
    """The directory could not be read (not reached, TLS refused, bind refused, a search
    failed): the message says what, never the password. The last good sync stays."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one read of the directory found."""

    people: tuple[DirectoryPerson, ...]
    groups: int  # groups that have at least one person in them, nested ones resolved


Reader = Callable[[LdapSettings], Snapshot]


def load_ldap3() -> ModuleType:
    """The ``ldap3`` package (the optional ``ldap`` extra: only a server with ``--ldap-url``
    loads it). ldap3 2.9.1 imports names that pyasn1 0.6.1 deprecated (``tagMap``): that
    warning, at import only, is not ours to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="ldap3")
        warnings.filterwarnings("ignore", message=".*deprecated.*", category=DeprecationWarning)
        import ldap3
    return ldap3


def read_directory(settings: LdapSettings) -> Snapshot:
    """Bind and read the people and groups (blocking: run it on a worker thread). Raises
    :class:`DirectoryUnreachable`, or ValueError when the password file cannot be read."""
    load_ldap3()
    from ldap3.core.exceptions import LDAPException

    password = settings.read_password()
    conn = _connection(settings, password)
    try:
        _bind(conn, settings)
        users = list(
            _search(conn, settings, settings.user_base, settings.users, _user_attrs(settings))
        )
        groups = list(
            _search(conn, settings, settings.group_base, settings.groups, _group_attrs(settings))
        )
    except (LDAPException, OSError) as exc:
        raise DirectoryUnreachable(
            f"the directory at {settings.where} failed: {_reason(exc)}"
        ) from None
    finally:
        _close(conn)
    return resolve(users, groups, settings)


def _connection(settings: LdapSettings, password: str) -> Any:
    """A connection, not yet open: TLS from the start (``ldaps://``) or StartTLS (``ldap://``,
    except on a loopback address), the certificate verified against the system's trust store
    (``SSL_CERT_FILE`` honoured) and its host name checked."""
    ldap3 = load_ldap3()
    parts = urlsplit(settings.url)
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT)
    server = ldap3.Server(
        parts.hostname or "",
        port=parts.port,
        use_ssl=parts.scheme == "ldaps",
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=math.ceil(settings.timeout),  # ldap3 packs whole seconds
    )
    return ldap3.Connection(
        server,
        user=settings.bind_dn,
        password=password,
        auto_bind=ldap3.AUTO_BIND_NONE,
        read_only=True,
        receive_timeout=math.ceil(settings.timeout),
        raise_exceptions=True,
        auto_range=True,  # Active Directory hands a large group's members out in ranges
        auto_referrals=False,
    )


def _bind(conn: Any, settings: LdapSettings) -> None:
    conn.open()
    host = urlsplit(settings.url).hostname or ""
    if urlsplit(settings.url).scheme == "ldap" and not is_loopback_host(host):
        conn.start_tls()  # never a password in the clear over the network
    if not conn.bind():
        raise DirectoryUnreachable(
            f"the directory at {settings.where} refused the bind as {settings.bind_dn}"
            f" ({conn.result.get('description', 'refused')}): check --ldap-bind-dn and the"
            " password file"
        )


def _close(conn: Any) -> None:
    """Unbind and close the socket, whatever state the connection is in."""
    from ldap3.core.exceptions import LDAPException

    try:
        conn.unbind()
    except (LDAPException, OSError):
        log.debug("the directory connection did not close cleanly", exc_info=True)
    socket = getattr(conn, "socket", None)
    if socket is not None:
        socket.close()


def _search(
    conn: Any, settings: LdapSettings, base: str, search_filter: str, attributes: list[str]
) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """``(dn, {attribute: values})`` of each entry, page by page (the simple paged results
    control: a directory of tens of thousands answers in pages of ``page_size``)."""
    ldap3 = load_ldap3()

    entries = conn.extend.standard.paged_search(
        base,
        search_filter,
        search_scope=ldap3.SUBTREE,
        attributes=attributes,
        paged_size=settings.page_size,
        generator=True,
    )
    for entry in entries:
        if entry.get("type") != "searchResEntry":
            continue  # a referral (another directory's): not followed
        yield str(entry["dn"]), _texts(entry.get("raw_attributes", {}))


def _texts(raw: Mapping[str, Any]) -> dict[str, list[str]]:
    """The attributes by lower-case name (AD may answer ``member;range=0-*``), as text."""
    out: dict[str, list[str]] = {}
    for name, values in raw.items():
        key = name.split(";", 1)[0].lower()
        out.setdefault(key, []).extend(
            v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values
        )
    return out


def _user_attrs(settings: LdapSettings) -> list[str]:
    return [settings.login_attribute, "displayName", "cn"]


def _group_attrs(settings: LdapSettings) -> list[str]:
    names = ["cn", *_DN_MEMBERS, _NAME_MEMBERS]
    return [*names, "sAMAccountName"] if settings.active_directory else names


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.replace("\n", " ")[:300]


def normal_dn(dn: str) -> str:
    """A DN to compare with another: lower case, no blanks around the separators, a
    groupOfUniqueNames ``#uid`` suffix dropped."""
    head, sep, tail = dn.rpartition("#")
    if sep and tail.startswith("'") and tail.endswith("'B"):
        dn = head
    return ",".join("=".join(p.strip() for p in rdn.split("=", 1)) for rdn in dn.split(",")).lower()


def resolve(
    users: Iterable[tuple[str, Mapping[str, list[str]]]],
    groups: Iterable[tuple[str, Mapping[str, list[str]]]],
    settings: LdapSettings,
) -> Snapshot:
    """People with every group they are in, directly or through groups inside groups (any
    depth, cycles included). An entry without the login attribute is skipped; a login name
    found twice keeps its first entry (both are logged)."""
    login = settings.login_attribute.lower()
    people: dict[str, DirectoryPerson] = {}
    by_dn: dict[str, str] = {}
    skipped = 0
    for dn, attrs in users:
        names = attrs.get(login) or []
        if not names or not names[0].strip():
            skipped += 1
            continue
        name = names[0].strip()
        if name in people:
            log.warning("the directory has two people with the %s %r: kept the first", login, name)
            continue
        shown = (attrs.get("displayname") or attrs.get("cn") or [name])[0]
        people[name] = DirectoryPerson(name, shown)
        by_dn[normal_dn(dn)] = name
    if skipped:
        log.warning("%d directory entries have no %s: left out", skipped, settings.login_attribute)

    group_name: dict[str, str] = {}
    direct_people: dict[str, set[str]] = {}
    inner: dict[str, set[str]] = {}
    listed: list[tuple[str, Mapping[str, list[str]]]] = []
    for dn, attrs in groups:
        key = normal_dn(dn)
        title = (
            (attrs.get("samaccountname") if settings.active_directory else None)
            or attrs.get("cn")
            or []
        )
        if not title:
            continue
        group_name[key] = title[0].strip()
        listed.append((key, attrs))
    for key, attrs in listed:
        mine: set[str] = set()
        nested: set[str] = set()
        for attr in _DN_MEMBERS:
            for member in attrs.get(attr.lower(), []):
                target = normal_dn(member)
                if target in by_dn:
                    mine.add(by_dn[target])
                elif target in group_name:
                    nested.add(target)
        mine.update(n.strip() for n in attrs.get(_NAME_MEMBERS.lower(), []) if n.strip() in people)
        direct_people[key] = mine
        inner[key] = nested

    members: dict[str, set[str]] = {}
    for key in group_name:
        seen = {key}
        todo = [key]
        everyone: set[str] = set()
        while todo:
            here = todo.pop()
            everyone |= direct_people.get(here, set())
            for child in inner.get(here, ()):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        members.setdefault(group_name[key], set()).update(everyone)

    groups_of: dict[str, set[str]] = {name: set() for name in people}
    for group, who in members.items():
        for name in who:
            groups_of[name].add(group)
    result = tuple(
        dataclasses.replace(person, groups=frozenset(groups_of[name]))
        for name, person in sorted(people.items())
    )
    return Snapshot(result, sum(1 for who in members.values() if who))


class DirectorySync:
    """Keeps the server's copy of the directory current; one per server process.

    ``clock`` (epoch seconds) says when a sync is due; ``reader`` reads the directory (tests
    may pass another). :meth:`run` is the schedule; :meth:`sync` a sync now.
    """

    def __init__(
        self,
        broker: Broker,
        settings: LdapSettings,
        *,
        clock: Callable[[], float] = time.time,
        reader: Reader = read_directory,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self._clock = clock
        self._reader = reader
        self._lock = asyncio.Lock()

    async def sync(self) -> DirectoryStatus:
        """Read the directory now and store it; the status stored. When the directory cannot
        be read, the last good sync stays, the status says why (``/healthz`` warns), and this
        raises :class:`DirectoryUnreachable`."""
        async with self._lock:
            return await self._sync()

    async def _sync(self) -> DirectoryStatus:
        settings = self.settings
        now = self._clock()
        loop = asyncio.get_running_loop()
        last = await self.broker.directory_status() or DirectoryStatus()
        try:
            snapshot = await loop.run_in_executor(None, self._reader, settings)
            if not snapshot.people and last.people:
                raise DirectoryUnreachable(
                    f"the directory at {settings.where} listed nobody under"
                    f" {settings.user_base} with {settings.users} (there were {last.people}):"
                    " check the base and the filter; nobody was removed"
                )
        except (DirectoryUnreachable, ValueError) as exc:
            failed = dataclasses.replace(last, checked_at=now, problem=str(exc))
            await self.broker.set_directory_status(failed)
            since = _when(last.synced_at)
            log.warning("%s; keeping the directory as last read (%s)", exc, since)
            raise DirectoryUnreachable(str(exc)) from None
        local = await self.broker.local_accounts()
        conflicts = tuple(p.name for p in snapshot.people if p.name in local)
        status = DirectoryStatus(
            synced_at=now,
            checked_at=now,
            people=len(snapshot.people) - len(conflicts),
            groups=snapshot.groups,
            conflicts=conflicts,
        )
        removed = [
            name
            for name in await self.broker.replace_directory(snapshot.people, status=status)
            if name not in local
        ]
        for name in removed:  # a leaver: every session ends, on every process
            await self.broker.end_user_sessions(name, now=now)
        if conflicts:
            log.warning(
                "%d directory people have the name of a local account, which stays as it is"
                " (never merged): %s. Rename or remove those local accounts"
                " (docs/directory.md)",
                len(conflicts),
                ", ".join(conflicts[:20]) + (" ..." if len(conflicts) > 20 else ""),
            )
        log.info(
            "directory synced from %s: %d people, %d groups%s (%.2f s)",
            settings.where,
            status.people,
            status.groups,
            f"; {len(removed)} left, their sessions ended" if removed else "",
            self._clock() - now,
        )
        return status

    async def due(self) -> bool:
        """Whether this process should sync now: no process on this backend did within the
        interval, and no other claimed this interval's turn first (processes on one Redis
        sync once between them)."""
        now = self._clock()
        interval = self.settings.sync_interval
        status = await self.broker.directory_status()
        checked = status.checked_at if status is not None else None
        if checked is not None and now - checked < interval * 0.9:
            return False
        turn = int(now // interval)
        return await self.broker.use_once(
            f"directory-sync:{turn}", until=(turn + 1) * interval, now=now
        )

    async def tick(self) -> DirectoryStatus | None:
        """Sync if :meth:`due`; the new status, or None when it was not this process's turn or
        the directory could not be read (logged; the status says so)."""
        try:
            if not await self.due():
                return None
            return await self.sync()
        except DirectoryUnreachable:
            return None

    async def run(self, *, wait: Callable[[float], Any] = asyncio.sleep) -> None:
        """The schedule, until cancelled: a :meth:`tick` each ``sync_interval``."""
        while True:
            await wait(self.settings.sync_interval)
            try:
                await self.tick()
            except BrokerUnavailable as exc:
                log.warning("directory sync skipped: %s", exc)
            except Exception:  # the schedule must outlive one bad sync (traceback logged)
                log.exception("the directory sync failed; trying again in an interval")


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never read yet"
    return time.strftime("read at %Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
