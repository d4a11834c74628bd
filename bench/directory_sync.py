"""The organisation's directory at size (issue 25): one full sync of ``--people`` people (default
10,000) from a real OpenLDAP into the server's store, on SQLite and on Redis, against a bare
paged search of the same entries in the same run.

A throw-away ``slapd`` (``tests/fixtures/ldap.py``: Debian's slapd on loopback, loaded with
``slapadd``) holds a generated organisation: ``--people`` people in departments of
``--per-department`` inside divisions of ``--per-division`` departments inside ``all-staff``,
every tenth person without a ``displayName``, plus the fixture's extra groups (a cycle of two
groups, a ``groupOfUniqueNames``, a ``posixGroup``). Each measurement runs in a fresh Python
process of its own (so that its memory figures are its own), alternated, ``--repetitions``
times:

- ``bare``: ldap3 binds and pages through the same people and groups with the same filters,
  attributes and page size as the server, and only counts the entries: what the directory
  costs to read at all;
- ``sqlite`` / ``redis``: the server's :class:`~app.server.directory.DirectorySync` on the
  backend the server opens (``open_broker``; Redis: a throw-away ``redis-server`` as the tests
  start it, emptied before each process): a first sync into an empty store (read + resolve the
  nested groups + store), timed, with the part spent reading the directory; then a second sync
  of the unchanged directory (what the schedule does every ``--ldap-sync-interval``).

Every process tunes the garbage collector as ``python -m app server`` does once started
(``app.server.main._collect_less``: its scheduled and on-demand syncs run so; ``--default-gc``:
Python's thresholds, as for the sync at start, which runs before the tuning).

Memory: the growth of the process's peak RSS over its RSS just before the sync (the kernel's
high-water mark, reset through ``/proc/self/clear_refs``), and the peak of Python's heap
(``tracemalloc``) over one more sync, or over one more bare search; the stored size is
SQLite's pages of the ``directory_people`` table, its index and its group index
``person_groups`` (``dbstat``), or Redis's ``MEMORY USAGE`` of the directory hash and of its
group index ``directory-groups``. "people read" is ``broker.list_users()`` (``GET /directory``
reads every user); "audience looked up" is ``broker.audience_members()``, which a publish calls
to check the audience and name the recipients (issue 24; before it, every publish read every
user), for ``all-staff`` and for one department, the median of 5 each; "users read by name" is
``broker.users_named()`` of those recipients, which the reach calls for its rows' users (before
it, every reach read every user), the median of 5 in a row each. Then, on an :class:`EmbeddedServer`
over the store the syncs filled, a publish to ``all-staff`` (everyone) and one to a department
of ``--per-department``, 5 of each alternated, the median, against a publish to a group on a
server of the same backend without a directory; and the reach of the last of each (``GET
/announcements/{id}/reach`` over HTTP on loopback, as a publisher's console asks it, its JSON
read), 5 of each in a row (one department's first), the median.

    .venv/bin/python -m bench.directory_sync                     # 10,000 people, 3 repetitions
    .venv/bin/python -m bench.directory_sync --people 20000 --backends sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

KINDS = ("bare", "sqlite", "redis")
GIVEN = ("Ana", "Bram", "Chloé", "Dmitri", "Eun-ji", "Farid", "Greta", "Hiro", "Ines", "Jonas")
FAMILY = ("Okafor", "Müller", "Nakamura", "Silva", "Novak", "O'Brien", "Larsen", "Zhang")
MIB = 1024 * 1024


# ---------------------------------------------------------------- the directory (parent)


def generated_organisation(people: int, per_department: int, per_division: int) -> Any:
    """``people`` people ``p0001``... in departments of ``per_department``, in divisions of
    ``per_division`` departments (the test fixture's :class:`Organisation`, at size)."""
    from tests.fixtures.ldap import Organisation

    org = Organisation()
    number = 0
    while number < people:
        names = []
        for _ in range(min(per_department, people - number)):
            number += 1
            name = f"p{number:04d}"
            shown = f"{GIVEN[number % len(GIVEN)]} {FAMILY[number % len(FAMILY)]} {number}"
            org.people[name] = None if number % 10 == 0 else shown
            names.append(name)
        org.departments[f"dept-{len(org.departments) + 1:03d}"] = names
    departments = list(org.departments)
    org.divisions = {
        f"div-{start // per_division + 1:02d}": tuple(departments[start : start + per_division])
        for start in range(0, len(departments), per_division)
    }
    return org


# ---------------------------------------------------------------- measurements (child)


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    assert match is not None
    return int(match.group(1))


@contextlib.contextmanager
def _peak_rss() -> Iterator[dict[str, float]]:
    """The growth of this process's peak RSS (MiB) over its RSS at the start of the block."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status_kib("VmRSS")
    out: dict[str, float] = {}
    yield out
    out["peak_rss_mib"] = (_status_kib("VmHWM") - before) / 1024


def _heap_peak(run: Callable[[], Any]) -> float:
    """Python's heap peak (MiB, tracemalloc) above what was allocated before ``run``."""
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return (peak - base) / MIB


def _settings(spec: dict[str, Any]) -> Any:
    from app.server.config import LdapSettings

    return LdapSettings(
        url=spec["url"],
        bind_dn=spec["bind_dn"],
        bind_password_file=Path(spec["password_file"]),
        user_base=spec["user_base"],
        group_base=spec["group_base"],
        page_size=spec["page_size"],
        timeout=60.0,
    )


def _bare_read(settings: Any) -> int:
    """A plain ldap3 paged search of the people and the groups, entries counted, nothing kept."""
    from app.server.directory import load_ldap3

    ldap3 = load_ldap3()
    server = ldap3.Server(settings.url, get_info=ldap3.NONE)
    conn = ldap3.Connection(
        server,
        user=settings.bind_dn,
        password=settings.read_password(),
        auto_bind=ldap3.AUTO_BIND_NO_TLS,
        read_only=True,
        raise_exceptions=True,
    )
    count = 0
    try:
        for base, search_filter, attributes in (
            (settings.user_base, settings.users, [settings.login_attribute, "displayName", "cn"]),
            (settings.group_base, settings.groups, ["cn", "member", "uniqueMember", "memberUid"]),
        ):
            for entry in conn.extend.standard.paged_search(
                base,
                search_filter,
                search_scope=ldap3.SUBTREE,
                attributes=attributes,
                paged_size=settings.page_size,
                generator=True,
            ):
                count += entry.get("type") == "searchResEntry"
    finally:
        conn.unbind()
    return count


def _server_gc(spec: dict[str, Any]) -> None:
    """The garbage collector as ``python -m app server`` tunes it once started (its scheduled
    and on-demand syncs run so; the sync at start, before it, with Python's defaults)."""
    if not spec["default_gc"]:
        from app.server.main import _collect_less

        _collect_less()


def _child_bare(spec: dict[str, Any]) -> dict[str, Any]:
    settings = _settings(spec)
    _bare_read(settings)  # imports, and slapd's caches as warm as for the others
    _server_gc(spec)
    with _peak_rss() as memory:
        started = time.perf_counter()
        entries = _bare_read(settings)
        elapsed = time.perf_counter() - started
    return {
        "sync_s": elapsed,
        "read_s": elapsed,
        "entries": entries,
        "heap_peak_mib": _heap_peak(lambda: _bare_read(settings)),
        **memory,
    }


def _child_sync(spec: dict[str, Any]) -> dict[str, Any]:
    return {**asyncio.run(_sync(spec)), **_publishes(spec)}


def _publishes(spec: dict[str, Any], rounds: int = 5) -> dict[str, Any]:
    """A publish to ``all-staff`` (every person of the directory) and to one department, each
    ``rounds`` times alternated, on a server over the store the syncs filled; and, the
    baseline, a publish to a group on a server of the same backend without a directory (its
    demo accounts only): the median ms of each."""
    from app.server.embedded import EmbeddedServer

    redis_url = spec.get("redis_url")
    plain_dir = Path(spec["data_dir"]) / "no-directory"
    plain: dict[str, Any] = {"redis_url": f"{redis_url}?prefix=no-directory:"} if redis_url else {}
    times: dict[str, list[float]] = {"all-staff": [], "dept-001": [], "it": []}
    with EmbeddedServer(data_dir=plain_dir, demo_users=True, **plain) as server:
        for n in range(rounds):
            started = time.perf_counter()
            server.publish(f"Notice {n}", "To the group.", audience={"groups": ["it"]})
            times["it"].append(time.perf_counter() - started)
    options: dict[str, Any] = {"redis_url": redis_url} if redis_url else {}
    published: dict[str, str] = {}
    with EmbeddedServer(data_dir=Path(spec["data_dir"]), ldap=_settings(spec), **options) as server:
        for n in range(rounds):
            for group in ("all-staff", "dept-001"):
                started = time.perf_counter()
                published[group] = server.publish(
                    f"Notice {n}", "To the group.", audience={"groups": [group]}
                )
                times[group].append(time.perf_counter() - started)
        reaches = _reaches(server, published, rounds)
    return {
        "publish_all_ms": statistics.median(times["all-staff"]) * 1000,
        "publish_dept_ms": statistics.median(times["dept-001"]) * 1000,
        "publish_plain_ms": statistics.median(times["it"]) * 1000,
        "reach_all_ms": statistics.median(reaches["all-staff"]) * 1000,
        "reach_dept_ms": statistics.median(reaches["dept-001"]) * 1000,
    }


def _reaches(server: Any, published: dict[str, str], rounds: int) -> dict[str, list[float]]:
    """``GET /announcements/{id}/reach`` of each announcement of ``published`` (group -> id) as
    a publisher's console asks it (a local publisher account added for it, over HTTP on
    loopback, the JSON read), ``rounds`` times in a row, all-staff's last: the seconds of each.
    Not alternated: the request after an all-staff reach collects its garbage (at 50,000
    people, a department's reach then took 20 ms instead of 3, most of it the collector)."""
    import httpx

    server.add_user("bench-publisher", "bench-password", publisher=True)
    times: dict[str, list[float]] = {group: [] for group in published}
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        login = client.post(
            "/auth/login", json={"username": "bench-publisher", "password": "bench-password"}
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        for group in sorted(published, key=lambda g: g == "all-staff"):
            for _ in range(rounds):
                started = time.perf_counter()
                reply = client.get(f"/announcements/{published[group]}/reach", headers=headers)
                reply.raise_for_status()
                body = reply.json()
                times[group].append(time.perf_counter() - started)
                assert len(body["users"]) == body["recipients"] > 0, group
    return times


async def _sync(spec: dict[str, Any]) -> dict[str, Any]:
    from app.server.config import ServerConfig
    from app.server.directory import DirectorySync, read_directory
    from app.server.model import Audience
    from app.server.runtime import open_broker

    settings = _settings(spec)
    read_directory(settings)  # imports, and slapd's caches as warm as for the bare search
    reads: list[float] = []

    def reader(s: Any) -> Any:
        started = time.perf_counter()
        snapshot = read_directory(s)
        reads.append(time.perf_counter() - started)
        return snapshot

    data_dir = Path(spec["data_dir"])
    config = ServerConfig(data_dir=data_dir, redis_url=spec.get("redis_url"))
    broker = open_broker(config)
    await broker.start()
    _server_gc(spec)
    try:
        sync = DirectorySync(broker, settings, reader=reader)
        with _peak_rss() as memory:
            started = time.perf_counter()
            status = await sync.sync()
            first = time.perf_counter() - started
        started = time.perf_counter()
        again = await sync.sync()
        resync = time.perf_counter() - started
        assert again.people == status.people
        started = time.perf_counter()
        users = await broker.list_users()
        list_users = time.perf_counter() - started
        lookups: dict[str, list[float]] = {"all-staff": [], "dept-001": []}
        members: dict[str, tuple[str, ...]] = {}
        for _ in range(5):
            for group, times in lookups.items():
                started = time.perf_counter()
                found = await broker.audience_members(Audience(groups=frozenset({group})))
                times.append(time.perf_counter() - started)
                members[group] = found.recipients
        named: dict[str, list[float]] = {group: [] for group in members}
        for group in ("dept-001", "all-staff"):  # in a row, as the reaches below (_reaches)
            for _ in range(5):
                started = time.perf_counter()
                users_named = await broker.users_named(members[group])
                named[group].append(time.perf_counter() - started)
                assert len(users_named) == len(members[group]), group
        loop = asyncio.get_running_loop()
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        await sync.sync()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        stored = await loop.run_in_executor(None, _stored_bytes, config)
    finally:
        await broker.close()
    return {
        "sync_s": first,
        "read_s": reads[0],  # the first sync's (the warm-up read above was not through it)
        "resync_s": resync,
        "list_users_ms": list_users * 1000,
        "lookup_all_ms": statistics.median(lookups["all-staff"]) * 1000,
        "lookup_dept_ms": statistics.median(lookups["dept-001"]) * 1000,
        "named_all_ms": statistics.median(named["all-staff"]) * 1000,
        "named_dept_ms": statistics.median(named["dept-001"]) * 1000,
        "people": status.people,
        "groups": status.groups,
        "users_listed": len(users),
        "heap_peak_mib": (peak - base) / MIB,
        "stored_mib": stored / MIB,
        **memory,
    }


def _stored_bytes(config: Any) -> int:
    """The stored copy of the directory: SQLite pages of its table, its index and its group
    index, or Redis's memory for its hash and its group index."""
    if config.redis_url is None:
        db = sqlite3.connect(config.database)
        try:
            row = db.execute(
                "SELECT SUM(pgsize) FROM dbstat WHERE name IN"
                " ('directory_people', 'sqlite_autoindex_directory_people_1', 'person_groups')"
            ).fetchone()
        finally:
            db.close()
        return int(row[0] or 0)
    import redis

    with redis.Redis.from_url(config.redis_url) as client:
        return sum(
            int(client.memory_usage(f"tray-notifier:{key}", samples=0) or 0)
            for key in ("directory", "directory-groups")
        )


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["kind"] == "bare":
        return _child_bare(spec)
    return _child_sync(spec)


# ---------------------------------------------------------------- the run (parent)


def _measure(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.directory_sync", "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the {spec['kind']} measurement failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _flush_redis(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as client:
        client.flushall()


def _row(label: str, values: list[str]) -> str:
    return f"| {label} | " + " | ".join(values) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--per-department", type=int, default=100)
    parser.add_argument("--per-division", type=int, default=10, help="departments per division")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=500, help="the server's default: 500")
    parser.add_argument(
        "--backends", default="sqlite,redis", help="comma-separated: sqlite, redis (both)"
    )
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="Python's collector thresholds (the sync at start) instead of the running server's",
    )
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="also print every result as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0

    from bench._common import redis_server
    from tests.fixtures.ldap import GROUPS, PEOPLE, READER_DN, Slapd, slapd_binary

    backends = [b for b in args.backends.split(",") if b]
    kinds = ["bare", *(b for b in KINDS if b in backends)]
    org = generated_organisation(args.people, args.per_department, args.per_division)
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {len(org.people):,} people in"
        f" {len(org.departments)} departments of {args.per_department} in"
        f" {len(org.divisions)} divisions, page size {args.page_size},"
        f" {args.repetitions} repetitions, garbage collector:"
        f" {'Python defaults' if args.default_gc else 'as the running server'}",
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="directory-sync-") as tmp, contextlib.ExitStack() as st:
        root = Path(tmp) / "slapd"
        root.mkdir()
        started = time.perf_counter()
        directory = Slapd(slapd_binary(), root, org)
        directory.start()
        st.callback(directory.stop)
        print(f"slapd loaded (slapadd) and started in {time.perf_counter() - started:.1f} s")
        redis_url = st.enter_context(redis_server(Path(tmp) / "redis")) if "redis" in kinds else ""
        base = {
            "url": directory.url,
            "bind_dn": READER_DN,
            "password_file": str(directory.password_file),
            "user_base": PEOPLE,
            "group_base": GROUPS,
            "page_size": args.page_size,
            "default_gc": args.default_gc,
        }
        print(
            f"{'rep':<4}{'kind':<8}{'sync s':>8}{'read s':>8}{'resync s':>9}{'RSS peak+':>11}"
            f"{'heap peak':>11}{'stored':>9}{'people read':>12}{'lookup all/dept':>18}"
            f"{'publish all/dept':>18}{'reach all/dept':>18}"
            f"{'load':>6}",
            flush=True,
        )
        for rep in range(args.repetitions):
            order = kinds if rep % 2 == 0 else kinds[::-1]
            for kind in order:
                spec = {**base, "kind": kind, "data_dir": str(Path(tmp) / f"{kind}-{rep}")}
                if kind == "redis":
                    _flush_redis(redis_url)
                    spec["redis_url"] = redis_url
                r = _measure(spec)
                results[kind].append(r)
                if kind == "bare":
                    assert (
                        r["entries"]
                        == len(org.people) + len(org.departments) + len(org.divisions) + 5
                    ), r  # all-staff, ring-a, ring-b, fire-wardens, vpn-users
                else:
                    assert r["people"] == len(org.people), r
                print(
                    f"{rep:<4}{kind:<8}{r['sync_s']:>8.2f}{r['read_s']:>8.2f}"
                    + (f"{r['resync_s']:>9.2f}" if "resync_s" in r else f"{'':>9}")
                    + f"{r['peak_rss_mib']:>8.1f} MiB{r['heap_peak_mib']:>8.1f} MiB"
                    + (f"{r['stored_mib']:>5.1f} MiB" if "stored_mib" in r else f"{'':>9}")
                    + (f"{r['list_users_ms']:>9.0f} ms" if "list_users_ms" in r else f"{'':>12}")
                    + (
                        f"{r['lookup_all_ms']:>9.1f} /{r['lookup_dept_ms']:>4.1f} ms"
                        if "lookup_all_ms" in r
                        else f"{'':>18}"
                    )
                    + (
                        f"{r['publish_all_ms']:>9.1f} /{r['publish_dept_ms']:>4.1f} ms"
                        if "publish_all_ms" in r
                        else f"{'':>18}"
                    )
                    + (
                        f"{r['reach_all_ms']:>9.0f} /{r['reach_dept_ms']:>4.1f} ms"
                        if "reach_all_ms" in r
                        else f"{'':>18}"
                    )
                    + f"{os.getloadavg()[0]:>6.2f}",
                    flush=True,
                )

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    def ratios(kind: str, key: str) -> str:
        pairs = zip(results[kind], results["bare"], strict=True)
        return " / ".join(f"{r[key] / b[key]:.2f}" for r, b in pairs)

    stores = [k for k in kinds if k != "bare"]
    print()
    print(
        f"medians of {args.repetitions}, {len(org.people):,} people;"
        " ratios to the bare search of the same repetition"
    )
    print(_row("", ["bare ldap3 paged search", *(f"sync into {k}" for k in stores)]))
    print(_row("---", ["---"] * (1 + len(stores))))
    print(
        _row(
            "time, first sync (s)",
            [f"{med('bare', 'sync_s'):.2f}"]
            + [f"{med(k, 'sync_s'):.2f} ({ratios(k, 'sync_s')})" for k in stores],
        )
    )
    print(
        _row(
            "of which reading the directory (s)",
            [f"{med('bare', 'read_s'):.2f}"]
            + [f"{med(k, 'read_s'):.2f} ({ratios(k, 'read_s')})" for k in stores],
        )
    )
    print(
        _row(
            "time, sync again, unchanged (s)", ["", *(f"{med(k, 'resync_s'):.2f}" for k in stores)]
        )
    )
    print(
        _row(
            "peak RSS growth (MiB)",
            [f"{med('bare', 'peak_rss_mib'):.1f}"]
            + [f"{med(k, 'peak_rss_mib'):.1f} ({ratios(k, 'peak_rss_mib')})" for k in stores],
        )
    )
    print(
        _row(
            "Python heap peak, tracemalloc (MiB)",
            [f"{med('bare', 'heap_peak_mib'):.1f}"]
            + [f"{med(k, 'heap_peak_mib'):.1f} ({ratios(k, 'heap_peak_mib')})" for k in stores],
        )
    )
    print(_row("stored (MiB)", ["", *(f"{med(k, 'stored_mib'):.1f}" for k in stores)]))
    print(
        _row(
            "people read, broker.list_users() (ms)",
            ["", *(f"{med(k, 'list_users_ms'):.0f}" for k in stores)],
        )
    )
    print(
        _row(
            "audience looked up, broker.audience_members(), all-staff / one department (ms)",
            [
                "",
                *(
                    f"{med(k, 'lookup_all_ms'):.1f} / {med(k, 'lookup_dept_ms'):.2f}"
                    for k in stores
                ),
            ],
        )
    )
    print(
        _row(
            "their users read by name, broker.users_named(), all-staff / one department (ms)",
            [
                "",
                *(f"{med(k, 'named_all_ms'):.1f} / {med(k, 'named_dept_ms'):.2f}" for k in stores),
            ],
        )
    )
    print(
        _row(
            "a publish to all-staff / to one department / without a directory (ms)",
            [
                "",
                *(
                    f"{med(k, 'publish_all_ms'):.1f} / {med(k, 'publish_dept_ms'):.1f}"
                    f" / {med(k, 'publish_plain_ms'):.1f}"
                    for k in stores
                ),
            ],
        )
    )
    print(
        _row(
            "the reach of an announcement to all-staff / to one department, GET over HTTP (ms)",
            [
                "",
                *(f"{med(k, 'reach_all_ms'):.0f} / {med(k, 'reach_dept_ms'):.1f}" for k in stores),
            ],
        )
    )
    print(f"load average now {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
