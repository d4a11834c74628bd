"""A server that moved keeps its people's logins and histories (issue 21): moved once, at the
next start, from a previous address to the new one; nothing overwritten."""

from __future__ import annotations

import subprocess
from pathlib import Path

from app.core.model import Announcement
from app.core.relocation import Relocation, relocate
from app.core.secrets import MemorySecretStore, login_key
from app.core.store import HistoryStore

OLD = "https://oa.example.org"
NEW = "https://oa.example.org/prod-api"


def _history(data_dir: Path, url: str, titles: list[str]) -> None:
    with HistoryStore(HistoryStore.path_for(data_dir, url, "zhangsan")) as store:
        for n, title in enumerate(titles, start=1):
            store.record(Announcement(id=str(n), title=title, body=""), str(n))
        store.remember_greeting("greeting:连接成功")


def _move(secrets: MemorySecretStore, data_dir: Path) -> Relocation | None:
    return relocate(
        previous=["https://elsewhere.example.org", OLD],
        server_url=NEW,
        username="zhangsan",
        secrets=secrets,
        data_dir=data_dir,
    )


def test_the_login_and_the_history_follow_the_server_once(tmp_path: Path) -> None:
    secrets = MemorySecretStore()
    secrets.set(login_key(OLD, "zhangsan"), '{"access_token": "t"}')
    _history(tmp_path, OLD, ["停电", "Policy"])
    assert _move(secrets, tmp_path) == Relocation(OLD, login=True, history=True)
    assert secrets.get(login_key(NEW, "zhangsan")) == '{"access_token": "t"}'
    assert secrets.get(login_key(OLD, "zhangsan")) is None
    with HistoryStore(HistoryStore.path_for(tmp_path, NEW, "zhangsan")) as store:
        assert [a.announcement.title for a in store.list()] == ["Policy", "停电"]
        assert store.last_event_id() == "2"  # it resumes where it was
        assert store.is_known_greeting("greeting:连接成功")  # no greeting again
    assert not HistoryStore.path_for(tmp_path, OLD, "zhangsan").exists()
    assert _move(secrets, tmp_path) is None  # once


def test_what_the_new_address_has_is_never_overwritten(tmp_path: Path) -> None:
    secrets = MemorySecretStore()
    secrets.set(login_key(OLD, "zhangsan"), "old login")
    secrets.set(login_key(NEW, "zhangsan"), "new login")
    _history(tmp_path, OLD, ["old"])
    _history(tmp_path, NEW, ["new"])
    assert _move(secrets, tmp_path) is None
    assert secrets.get(login_key(NEW, "zhangsan")) == "new login"
    with HistoryStore(HistoryStore.path_for(tmp_path, NEW, "zhangsan")) as store:
        assert [a.announcement.title for a in store.list()] == ["new"]


def test_a_history_left_by_a_crash_moves_with_its_log(tmp_path: Path) -> None:
    """A tray killed with its history open leaves committed rows in the write-ahead log."""
    path = HistoryStore.path_for(tmp_path, OLD, "zhangsan")
    store = HistoryStore(path)
    store.record(Announcement(id="9", title="in the log", body=""), "9")
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0
    crashed = tmp_path / "crashed"  # the files as a kill -9 leaves them: copied while open,
    crashed.mkdir()  # by another process (a descriptor of ours would drop SQLite's locks)
    subprocess.run(["cp", str(path), str(wal), str(crashed)], check=True, timeout=60)
    store.close()
    data_dir = tmp_path / "after"
    target = HistoryStore.path_for(data_dir, OLD, "zhangsan")
    target.parent.mkdir(parents=True)
    for file in crashed.iterdir():
        file.replace(target.parent / file.name)
    assert relocate(
        previous=[OLD], server_url=NEW, username="zhangsan",
        secrets=MemorySecretStore(), data_dir=data_dir,
    ) == Relocation(OLD, login=False, history=True)  # fmt: skip
    with HistoryStore(HistoryStore.path_for(data_dir, NEW, "zhangsan")) as moved:
        assert [a.announcement.title for a in moved.list()] == ["in the log"]


def test_the_same_address_spelt_otherwise_moves_nothing(tmp_path: Path) -> None:
    secrets = MemorySecretStore()
    secrets.set(login_key(NEW, "zhangsan"), "login")
    assert relocate(
        previous=["HTTPS://OA.example.org/prod-api/"], server_url=NEW, username="zhangsan",
        secrets=secrets, data_dir=tmp_path,
    ) is None  # fmt: skip
    assert secrets.get(login_key(NEW, "zhangsan")) == "login"
