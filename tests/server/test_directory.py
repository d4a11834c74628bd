"""The organisation's directory (DESIGN.md "Directory"; docs/directory.md) against a real
OpenLDAP (``slapd``, tests/fixtures/ldap.py) holding 300 people in departments inside divisions,
on both backends: the sync, audiences and reach denominators, leavers, an unreachable directory,
processes that share a backend, and the options.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from app.cli import build_parser
from app.exit_codes import EXIT_USAGE
from app.server import main
from app.server.config import LdapSettings
from app.server.directory import DirectorySync, DirectoryUnreachable, Snapshot
from app.server.embedded import EmbeddedServer
from app.server.model import DirectoryPerson
from app.server.sqlite_broker import SqliteBroker
from tests.fixtures.ldap import GROUPS, Slapd, group_dn, person_dn
from tests.fixtures.oidc import OidcProvider
from tests.fixtures.server import ManualClock, ServerFactory
from tests.server.conftest import TIMEOUT, bearer, login, publish


@pytest.fixture
def directory_server(server_factory: ServerFactory, slapd_directory: Slapd) -> EmbeddedServer:
    return server_factory(ldap=slapd_directory.settings(), demo_users=True)


@pytest.fixture
def client(directory_server: EmbeddedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=directory_server.url, timeout=TIMEOUT) as c:
        yield c


def _directory(client: httpx.Client) -> dict[str, Any]:
    reply = client.get("/directory", headers=bearer(login(client, "publisher")))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def _reach(client: httpx.Client, ann_id: str) -> dict[str, Any]:
    reply = client.get(f"/announcements/{ann_id}/reach", headers=bearer(login(client, "publisher")))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_the_sync_reads_people_display_names_and_nested_groups(
    client: httpx.Client, slapd_directory: Slapd
) -> None:
    org = slapd_directory.org
    body = _directory(client)
    users = {u["user_id"]: u for u in body["users"]}
    from_directory = [u for u in body["users"] if u["source"] == "directory"]
    assert len(from_directory) == 300  # alice is a local account's name: see below
    assert body["everyone"] == 300 + 3  # and the demo accounts alice, bob, publisher
    assert users["p0001"]["display_name"] == org.people["p0001"]
    assert users["p0010"]["display_name"] == "Person p0010"  # no displayName: the cn
    # departments inside divisions inside all-staff; a cycle of two groups; other classes
    assert users["p0001"]["groups"] == sorted(
        ["dept-platform", "div-engineering", "all-staff", "ring-a", "ring-b"]
    )
    assert set(users["p0300"]["groups"]) == {
        "dept-training",
        "div-people",
        "all-staff",
        "fire-wardens",
    }
    assert "vpn-users" in users["p0150"]["groups"]
    members = {g["name"]: g["members"] for g in body["groups"]}
    assert members["dept-data"] == 25
    assert members["div-engineering"] == 100 and members["div-people"] == 100
    assert members["all-staff"] == 300
    assert members["ring-a"] == members["ring-b"] == 2
    assert members["fire-wardens"] == 3 and members["vpn-users"] == 2
    # the directory's alice is not merged with the local account alice, which stays as it is
    assert users["alice"]["source"] == "local" and users["alice"]["groups"] == ["it"]
    sync = body["sync"]
    assert sync["people"] == 300 and sync["groups"] == 20 and sync["problem"] is None
    assert sync["conflicts"] == ["alice"]


def test_an_audience_by_department_reaches_those_who_never_signed_in(
    client: httpx.Client, directory_server: EmbeddedServer
) -> None:
    directory_server.add_user("kiosk", "kiosk-pw", groups=["div-engineering"])  # a service account
    kiosk = login(client, "kiosk", "kiosk-pw")
    publisher = login(client, "publisher")
    ann_id = publish(client, publisher, audience={"groups": ["div-engineering"]})
    reply = client.post("/receipts", json={"delivered": [ann_id]}, headers=bearer(kiosk))
    assert reply.json() == {"recorded": 1, "ignored": 0}
    reach = _reach(client, ann_id)
    assert reach["recipients"] == 101 and reach["delivered"] == 1
    assert reach["never_connected"] == 100
    rows = {r["user_id"]: r for r in reach["users"]}
    assert rows["kiosk"]["never_connected"] is False
    assert rows["p0051"]["never_connected"] is True and rows["p0051"]["online"] is False
    assert directory_server_people(client)["p0051"] == "Bram Silva 51"
    # a publish by department names only the directory's groups that exist
    bad = client.post(
        "/announcements",
        json={"title": "T", "body": "B", "audience": {"groups": ["dept-nowhere"]}},
        headers=bearer(publisher),
    )
    assert bad.status_code == 400 and "group dept-nowhere" in bad.json()["error"]


def directory_server_people(client: httpx.Client) -> dict[str, str]:
    return {u["user_id"]: u["display_name"] for u in _directory(client)["users"]}


def test_a_local_account_never_takes_a_directory_persons_name(
    directory_server: EmbeddedServer,
) -> None:
    with pytest.raises(ValueError, match="directory"):
        directory_server.add_user("p0007", "pw")


def test_a_directory_person_signs_in_with_the_provider_and_keeps_the_directorys_groups(
    server_factory: ServerFactory, slapd_directory: Slapd, oidc_provider: OidcProvider
) -> None:
    server = server_factory(
        ldap=slapd_directory.settings(), oidc=oidc_provider.server_settings(), demo_users=True
    )
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        token = oidc_provider.mint_id_token(
            user="bob", sub="sub-p0005", preferred_username="p0005", groups=["staff"]
        )
        reply = client.post("/auth/oidc", json={"id_token": token})
        assert reply.status_code == 200, reply.text
        tokens = reply.json()
        assert tokens["user_id"] == "p0005"
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        assert sorted(claims["groups"]) == ["all-staff", "dept-platform", "div-engineering"]
        ann_id = publish(client, login(client, "publisher"), audience={"groups": ["dept-platform"]})
        rows = {r["user_id"]: r for r in _reach(client, ann_id)["users"]}
        assert rows["p0005"]["never_connected"] is False
        assert rows["p0006"]["never_connected"] is True
        users = {u["user_id"]: u for u in _directory(client)["users"]}
        assert users["p0005"]["source"] == "directory"


def test_a_person_removed_from_the_directory_loses_groups_and_sessions(
    server_factory: ServerFactory, slapd_directory: Slapd, oidc_provider: OidcProvider
) -> None:
    server = server_factory(
        ldap=slapd_directory.settings(), oidc=oidc_provider.server_settings(), demo_users=True
    )
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        token = oidc_provider.mint_id_token(
            user="bob", sub="sub-p0005", preferred_username="p0005", groups=["staff"]
        )
        tokens = client.post("/auth/oidc", json={"id_token": token}).json()
        assert client.get("/announcements", headers=bearer(tokens)).status_code == 200
        # IT removes p0005 (who signed in) and p0006 (who never did) from the directory
        slapd_directory.delete(person_dn("p0005"), person_dn("p0006"))
        publisher = login(client, "publisher")
        reply = client.post("/directory/sync", headers=bearer(publisher))
        assert reply.status_code == 200, reply.text
        assert reply.json()["people"] == 298
        # every session of the leaver ended: the access token and the refresh token refused
        assert client.get("/announcements", headers=bearer(tokens)).status_code == 401
        refresh = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 401
        users = {u["user_id"]: u for u in _directory(client)["users"]}
        assert "p0006" not in users  # never signed in: gone
        assert users["p0005"]["groups"] == [] and users["p0005"]["source"] == "sso"
        # and no publish by department reaches them any more
        ann_id = publish(client, publisher, audience={"groups": ["dept-platform"]})
        named = {r["user_id"] for r in _reach(client, ann_id)["users"]}
        assert "p0005" not in named and "p0006" not in named and "p0007" in named


def test_an_unreachable_directory_keeps_the_last_sync_and_warns(
    client: httpx.Client, slapd_directory: Slapd, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = login(client, "publisher")
    slapd_directory.stop()
    reply = client.post("/directory/sync", headers=bearer(publisher))
    assert reply.status_code == 503
    assert "directory" in reply.json()["error"] and "last read" in reply.json()["error"]
    assert "cannot" in caplog.text or "failed" in caplog.text
    assert slapd_directory.password_file.read_text().strip() not in caplog.text
    body = _directory(client)
    assert len([u for u in body["users"] if u["source"] == "directory"]) == 300
    assert body["sync"]["problem"] and body["sync"]["people"] == 300
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["directory"]["status"] == "warn"
    # an audience by department still reaches everyone of the last sync
    ann_id = publish(client, publisher, audience={"groups": ["dept-hr"]})
    assert _reach(client, ann_id)["recipients"] == 25
    slapd_directory.start()
    assert client.post("/directory/sync", headers=bearer(publisher)).status_code == 200
    assert client.get("/healthz").json()["directory"]["status"] == "ok"


def test_a_sync_on_one_process_is_seen_by_another(
    server_factory: ServerFactory,
    slapd_directory: Slapd,
    server_backend: str,
    tmp_path: Path,
) -> None:
    shared: dict[str, Any] = (
        {"db_path": tmp_path / "shared.db"} if server_backend == "sqlite" else {}
    )
    first = server_factory(ldap=slapd_directory.settings(), demo_users=True, **shared)
    second = server_factory(ldap=slapd_directory.settings(), **shared)
    with (
        httpx.Client(base_url=first.url, timeout=TIMEOUT) as one,
        httpx.Client(base_url=second.url, timeout=TIMEOUT) as two,
    ):
        assert len(_directory(two)["users"]) == 303
        slapd_directory.modify(
            f"dn: {group_dn('dept-comms')}\nchangetype: modify\nadd: member\n"
            f"member: {person_dn('p0001')}\n"
        )
        slapd_directory.delete(person_dn("p0299"))
        assert second.sync_directory().people == 299
        users = {u["user_id"]: u for u in _directory(one)["users"]}
        assert "p0299" not in users
        assert {"dept-comms", "div-people", "dept-platform"} <= set(users["p0001"]["groups"])


def test_sync_needs_a_publisher_and_a_directory(
    client: httpx.Client, server_factory: ServerFactory
) -> None:
    staff = login(client, "bob")
    assert client.post("/directory/sync", headers=bearer(staff)).status_code == 403
    assert client.post("/directory/sync").status_code == 401
    plain = server_factory(demo_users=True)
    with httpx.Client(base_url=plain.url, timeout=TIMEOUT) as other:
        reply = other.post("/directory/sync", headers=bearer(login(other, "publisher")))
        assert reply.status_code == 404 and "--ldap-url" in reply.json()["error"]
        assert "directory" not in other.get("/healthz").json()


# ---------------------------------------------------------------- the schedule, on a clock


class _Reader:
    def __init__(self) -> None:
        self.calls = 0
        self.people = [DirectoryPerson("p1", "P One", frozenset({"dept"}))]
        self.fail = False

    def __call__(self, settings: LdapSettings) -> Snapshot:
        self.calls += 1
        if self.fail:
            raise DirectoryUnreachable("the directory at ldap://x failed: down")
        return Snapshot(tuple(self.people), 1)


async def test_the_interval_on_an_injected_clock(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("x\n")
    settings = LdapSettings(
        url="ldaps://ldap.example.org",
        bind_dn="cn=r,dc=x",
        bind_password_file=tmp_path / "pw",
        user_base="ou=p,dc=x",
        group_base="ou=g,dc=x",
        sync_interval=900,
    )
    broker = SqliteBroker(tmp_path / "db.sqlite")
    clock = ManualClock()
    reader = _Reader()
    sync = DirectorySync(broker, settings, clock=clock, reader=reader)
    try:
        assert (await sync.tick()) is not None and reader.calls == 1
        clock.advance(600)
        assert await sync.tick() is None and reader.calls == 1  # not due yet
        clock.advance(400)
        reader.fail = True
        assert await sync.tick() is None and reader.calls == 2  # due: tried, failed
        status = await broker.directory_status()
        assert status is not None and status.problem and status.people == 1
        assert (await broker.get_user("p1")) is not None  # the last good sync stays
        clock.advance(100)
        assert await sync.tick() is None and reader.calls == 2  # once per interval
        reader.fail = False
        reader.people = []
        with pytest.raises(DirectoryUnreachable, match="nobody"):
            await sync.sync()  # an empty answer never removes everyone
        assert (await broker.get_user("p1")) is not None
    finally:
        await broker.close()


# ---------------------------------------------------------------------------- the options


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["server", *argv])


def _ldap_argv(tmp_path: Path, *more: str) -> list[str]:
    secret = tmp_path / "bind-password"
    if not secret.exists():
        secret.write_text("s3cret\n")
        secret.chmod(0o600)
    return [
        *("--data-dir", str(tmp_path / "data"), "--ldap-url", "ldaps://dc1.example.org"),
        *("--ldap-bind-dn", "CN=svc-notices,OU=Service,DC=example,DC=org"),
        *("--ldap-bind-password-file", str(secret)),
        *("--ldap-user-base", "OU=Staff,DC=example,DC=org"),
        *("--ldap-group-base", "OU=Groups,DC=example,DC=org"),
        *more,
    ]


def test_ldap_options_become_the_config(tmp_path: Path) -> None:
    config = main._config(_args(*_ldap_argv(tmp_path, "--ldap-login-attribute", "sAMAccountName")))
    assert config.ldap is not None
    assert config.ldap.login_attribute == "sAMAccountName" and config.ldap.sync_interval == 900
    assert "objectCategory=person" in config.ldap.users and config.ldap.groups == (
        "(objectClass=group)"
    )
    custom = main._config(
        _args(
            *_ldap_argv(
                tmp_path,
                *("--ldap-user-filter", "(objectClass=person)", "--ldap-sync-interval", "60"),
            )
        )
    )
    assert custom.ldap is not None
    assert custom.ldap.users == "(objectClass=person)" and custom.ldap.sync_interval == 60


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"--ldap-url": "https://dc1.example.org"}, "--ldap-url"),
        ({"--ldap-bind-dn": "svc-notices"}, "--ldap-bind-dn"),
        ({"--ldap-bind-password-file": "/nonexistent/pw"}, "--ldap-bind-password-file"),
        ({"--ldap-user-base": None}, "--ldap-user-base is needed"),
        ({"--ldap-group-filter": "objectClass=group"}, "--ldap-group-filter"),
    ],
)
def test_bad_ldap_options_stop_the_server_naming_them(
    tmp_path: Path, change: dict[str, str | None], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _ldap_argv(tmp_path)
    for option, value in change.items():
        if option not in argv:
            argv += [option, ""]
        at = argv.index(option)
        if value is None:
            del argv[at : at + 2]
        else:
            argv[at + 1] = value
    assert main.run(_args(*argv)) == EXIT_USAGE
    err = capsys.readouterr().err
    assert says in err and "s3cret" not in err


def test_an_ldap_option_without_the_url_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.run(_args("--ldap-user-base", "ou=p,dc=x")) == EXIT_USAGE
    assert "--ldap-user-base needs --ldap-url" in capsys.readouterr().err


def test_a_bad_sync_interval_or_login_attribute_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (["--ldap-sync-interval", "0"], ["--ldap-login-attribute", "mail"]):
        with pytest.raises(SystemExit) as exit_:
            _args(*argv)
        assert exit_.value.code == EXIT_USAGE
        assert argv[0] in capsys.readouterr().err


def test_the_group_base_is_read_with_the_group_filter(slapd_directory: Slapd) -> None:
    from app.server.directory import read_directory

    only = slapd_directory.settings(group_filter="(objectClass=posixGroup)")
    snapshot = read_directory(only)
    assert snapshot.groups == 1
    assert {g for p in snapshot.people for g in p.groups} == {"vpn-users"}
    assert GROUPS in only.group_base
