"""The history files of a run: opened once per server and user, purged when opened, a damaged
one moved aside and reported, a newer one refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.history_stores import HistoryStores
from app.core.model import Announcement
from app.core.store import HistoryStore, HistoryStoreError

URL = "https://news.example.org"


def test_one_store_per_server_and_user(tmp_path: Path) -> None:
    stores = HistoryStores(tmp_path, retention_days=lambda: 90)
    first = stores.open(URL, "alice")
    assert first.moved_aside is None
    assert stores.open(URL + "/", "alice").store is first.store  # the same history
    assert stores.open(URL, "bob").store is not first.store
    stores.close()
    with pytest.raises(HistoryStoreError):
        first.store.list()


def test_old_announcements_are_purged_when_opened(tmp_path: Path) -> None:
    path = HistoryStore.path_for(tmp_path, URL, "alice")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    with HistoryStore(path, clock=lambda: long_ago) as old:
        old.add(Announcement(id="old", title="t", body="b"))
    with HistoryStore(path) as recent:
        recent.add(Announcement(id="new", title="t", body="b"))
    stores = HistoryStores(tmp_path, retention_days=lambda: 30)
    store = stores.open(URL, "alice").store
    assert [s.announcement.id for s in store.list()] == ["new"]
    stores.close()


def test_a_damaged_file_is_moved_aside_and_reported(tmp_path: Path) -> None:
    path = HistoryStore.path_for(tmp_path, URL, "alice")
    path.parent.mkdir(parents=True)
    garbage = b"SQLite format 3\x00" + b"\xff" * 4000
    path.write_bytes(garbage)
    stores = HistoryStores(tmp_path, retention_days=lambda: 90)
    opened = stores.open(URL, "alice")
    assert opened.moved_aside is not None and opened.moved_aside.read_bytes() == garbage
    assert opened.store.path == path and opened.store.list() == []
    again = stores.open(URL, "alice")  # reported once: it is open now
    assert again.store is opened.store and again.moved_aside is None
    stores.close()


def test_a_history_from_a_newer_version_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = HistoryStore.path_for(tmp_path, URL, "alice")
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    stores = HistoryStores(tmp_path, retention_days=lambda: 90)
    with pytest.raises(HistoryStoreError, match="newer version"):
        stores.open(URL, "alice")
    assert path.exists() and list(path.parent.glob("*.damaged-*")) == []
