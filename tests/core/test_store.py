"""The history store on a real SQLite file in tmp_path."""

from __future__ import annotations

import sqlite3
import stat
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import HistoryDamagedError, HistoryStoreError
from app.core.history_schema import SCHEMA_VERSION
from app.core.model import Announcement, Priority, Update
from app.core.store import HistoryStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def ann(ann_id: str, title: str = "", body: str = "", **kw: Any) -> Announcement:
    return Announcement(id=ann_id, title=title or f"title {ann_id}", body=body or "b", **kw)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock):
    with HistoryStore(tmp_path / "h.sqlite3", clock=clock) as s:
        yield s


def test_record_dedupes_by_id_and_keeps_fields(store: HistoryStore) -> None:
    a = Announcement(
        id="7",
        title="Fire drill",
        body="At 3 pm\nUse the stairs",
        priority=Priority.HIGH,
        url="https://example.org/drill",
        created_at=T0 - timedelta(hours=1),
        expires_at=T0 + timedelta(days=1),
    )
    assert store.record(a, "7") is True
    assert store.record(a, "7") is False
    assert store.add(a) is False
    got = store.get("7")
    assert got is not None
    assert got.announcement == a
    assert got.received_at == T0
    assert (got.read, got.acked) == (False, False)
    assert len(store.list()) == 1


def test_a_revoked_one_is_kept_withdrawn_and_never_added_again(
    store: HistoryStore, clock: FakeClock
) -> None:
    assert store.record(ann("1", priority=Priority.URGENT), "1")
    assert store.record(ann("0"), "0")
    clock.now = T0 + timedelta(minutes=5)
    assert store.withdraw("1") is True
    got = store.get("1")
    assert got is not None and got.withdrawn and got.withdrawn_at == T0 + timedelta(minutes=5)
    assert not got.unread and not got.read  # not unread, and not read by anyone either
    assert [s.announcement.id for s in store.list()] == ["0", "1"]  # still listed
    assert [s.announcement.id for s in store.list(search="title 1")] == ["1"]
    assert store.unread_count() == 1
    assert [s.announcement.id for s in store.unshown()] == ["0"]  # never told again
    assert store.unacknowledged_urgent() == []  # its window never comes back
    assert store.queue_ack("1") is False  # nothing left to acknowledge
    # a replayed revoke keeps the time; a replayed announcement never comes back as new
    clock.now = T0 + timedelta(minutes=9)
    assert store.withdraw("1") is False
    got = store.get("1")
    assert got is not None and got.withdrawn_at == T0 + timedelta(minutes=5)
    assert store.record(ann("1"), "1") is False  # replay after reconnect
    assert store.add(ann("1")) is False
    assert store.record_many([(ann("1"), "1")]) == []
    # revoking an id never seen also blocks it
    assert store.withdraw("2") is False
    assert store.record(ann("2"), "2") is False
    assert store.get("2") is None


def test_a_withdrawn_one_gets_no_read_receipt(store: HistoryStore) -> None:
    store.add(ann("a"))
    store.add(ann("w"))
    store.withdraw("w")
    assert store.pending_receipts() == [("a", "delivered")]  # its receipts went with it
    store.mark_read("w")
    store.mark_all_read()
    store.mark_many_read(["w", "a"])
    assert store.pending_receipts() == [("a", "delivered"), ("a", "read")]
    got = store.get("w")
    assert got is not None and not got.read


def test_last_event_id_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with HistoryStore(path) as s:
        assert s.last_event_id() == ""
        s.record(ann("41"), "41")
        s.set_last_event_id("42")
    with HistoryStore(path) as s:
        assert s.last_event_id() == "42"
        assert s.get("41") is not None
        assert s.record(ann("41"), "43") is False
        assert s.last_event_id() == "43"


def test_record_is_one_transaction(store: HistoryStore) -> None:
    store.record(ann("1"), "1")
    with pytest.raises(AttributeError):
        store.record("not an announcement", "2")  # type: ignore[arg-type]
    assert store.last_event_id() == "1"


def test_list_newest_first_and_limit(store: HistoryStore, clock: FakeClock) -> None:
    for i in range(5):
        clock.now = T0 + timedelta(minutes=i)
        store.add(ann(str(i)))
    assert [s.announcement.id for s in store.list()] == ["4", "3", "2", "1", "0"]
    assert [s.announcement.id for s in store.list(limit=2)] == ["4", "3"]
    # created_at wins over arrival time: a late catch-up of an old announcement sorts below
    store.add(ann("old", created_at=T0 - timedelta(days=1)))
    assert store.list()[-1].announcement.id == "old"


def test_search_title_and_body_case_insensitive_with_escaping(store: HistoryStore) -> None:
    store.add(ann("1", title="Server MAINTENANCE tonight", body="expect 5 minutes"))
    store.add(ann("2", title="Lunch", body="Pizza in the kitchen"))
    store.add(ann("3", title="Discount 50% off", body="snake_case party"))
    store.add(ann("4", title="Ünïcode Straße", body="x"))
    ids = lambda q: sorted(s.announcement.id for s in store.list(search=q))  # noqa: E731
    assert ids("maintenance") == ["1"]
    assert ids("KITCHEN") == ["2"]
    assert ids("%") == ["3"]
    assert ids("_") == ["3"]
    assert ids("50%") == ["3"]
    assert ids("e_c") == ["3"]  # literal underscore, not "any character"
    assert ids("ünï") == ["4"]
    assert ids("STRASSE") == ["4"]  # casefold
    assert ids("  ") == ["1", "2", "3", "4"]
    assert ids("nothing like this") == []


def test_expired_are_hidden_then_purged(store: HistoryStore, clock: FakeClock) -> None:
    store.add(ann("soon", expires_at=T0 + timedelta(minutes=5)))
    store.add(ann("later", expires_at=T0 + timedelta(days=5)))
    assert store.unread_count() == 2
    clock.now = T0 + timedelta(minutes=10)
    assert [s.announcement.id for s in store.list()] == ["later"]
    assert store.unread_count() == 1
    assert store.purge(90) == 1
    assert store.get("soon") is None


def test_read_state(store: HistoryStore) -> None:
    for i in "abc":
        store.add(ann(i))
    assert store.unread_count() == 3
    store.mark_read("b")
    assert store.get("b").read is True  # type: ignore[union-attr]
    assert store.unread_count() == 2
    store.mark_read("unknown")
    store.mark_all_read()
    assert store.unread_count() == 0
    assert all(s.read for s in store.list())


def test_ack_queue(store: HistoryStore, clock: FakeClock) -> None:
    store.add(ann("u1", priority=Priority.URGENT))
    store.add(ann("u2", priority=Priority.URGENT))
    store.queue_ack("u2")
    clock.now = T0 + timedelta(seconds=1)
    store.queue_ack("u1")
    store.queue_ack("u2")  # pressed twice: one receipt
    assert store.pending_acks() == ["u2", "u1"]
    got = store.get("u1")
    assert got is not None and got.acked and got.read
    store.ack_sent("u2")
    assert store.pending_acks() == ["u1"]
    store.withdraw("u1")  # revoked: no receipt to send any more
    assert store.pending_acks() == []


def test_pending_acks_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with HistoryStore(path) as s:
        s.add(ann("u"))
        s.queue_ack("u")
    with HistoryStore(path) as s:
        assert s.pending_acks() == ["u"]


def test_purge_by_retention(store: HistoryStore, clock: FakeClock) -> None:
    store.add(ann("old"))
    store.withdraw("gone")
    clock.now = T0 + timedelta(days=10)
    store.add(ann("new"))
    assert store.purge(30) == 0
    clock.now = T0 + timedelta(days=31)
    assert store.purge(30) == 1
    assert [s.announcement.id for s in store.list()] == ["new"]
    # the revoked id is forgotten after the retention time too
    assert store.add(ann("gone")) is True
    with pytest.raises(ValueError, match="at least 1"):
        store.purge(0)


def test_path_for_one_history_per_server_and_user(tmp_path: Path) -> None:
    p = HistoryStore.path_for
    a = p(tmp_path, "https://News.Example.org/", "alice")
    assert a == p(tmp_path, "https://news.example.org", "alice")
    assert a == p(tmp_path, "https://news.example.org:443", "alice")
    assert a != p(tmp_path, "https://news.example.org", "bob")
    assert a != p(tmp_path, "https://other.example.org", "alice")
    assert a != p(tmp_path, "http://news.example.org", "alice")
    assert a.parent == tmp_path / "history"
    assert a.name.startswith("news.example.org-alice-")
    weird = p(tmp_path, "https://x.org", "../../etc/passwd")
    assert weird.parent == tmp_path / "history"


def test_schema_version_and_wal(store: HistoryStore) -> None:
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_newer_schema_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryStoreError, match="newer version"):
        HistoryStore(path)


def test_damaged_file_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistoryStoreError, match="Move it aside"):
        HistoryStore(path)


def test_closed_store_raises_clearly(tmp_path: Path) -> None:
    s = HistoryStore(tmp_path / "h.sqlite3")
    s.close()
    s.close()
    with pytest.raises(HistoryStoreError, match="closed"):
        s.list()
    with pytest.raises(HistoryStoreError, match="closed"):
        s.add(ann("1"))


def test_writer_thread_and_reader_thread(store: HistoryStore) -> None:
    """The worker thread records while the GUI thread reads: no error, nothing lost."""
    n = 300
    errors: list[BaseException] = []
    done = threading.Event()

    def writer() -> None:
        try:
            for i in range(n):
                store.record(ann(f"{i:04d}"), f"{i:04d}")
                if i % 3 == 0:
                    store.record(ann(f"{i:04d}"), f"{i:04d}")  # duplicate
        except Exception as exc:  # noqa: BLE001 - the assertion below reports it
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set() or reads == 0:
        store.list(search="title")
        store.unread_count()
        store.mark_all_read()
        reads += 1
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
    assert len(store.list()) == n
    assert store.last_event_id() == f"{n - 1:04d}"


def _version_1_file(path: Path) -> None:
    """A history as version 1 of the schema wrote it, with one announcement."""
    _version_n_file(path, 1)


def _version_n_file(path: Path, version: int) -> None:
    """A history as version ``version`` of the schema wrote it, with one announcement."""
    from app.core.history_schema import statements

    conn = sqlite3.connect(path)
    for step in range(version):
        for statement in statements(step):
            conn.execute(statement)
    conn.execute(
        "INSERT INTO announcements (id, title, body, priority, received_at) "
        "VALUES ('old', 't', 'b', 'normal', ?)",
        (T0.timestamp(),),
    )
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


def test_a_history_of_version_3_opens_with_its_data_and_keeps_revoked_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.sqlite3"
    _version_n_file(path, 3)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO revoked (id, revoked_at) VALUES ('gone', ?)", (T0.timestamp(),))
    conn.execute(
        "INSERT INTO pending_receipts (id, kind, queued_at) VALUES ('old', 'read', ?)",
        (T0.timestamp(),),
    )
    conn.commit()
    conn.close()
    with HistoryStore(path) as s:
        old = s.get("old")
        assert old is not None and old.announcement.title == "t" and not old.withdrawn
        assert s.unread_count() == 1 and s.pending_receipts() == [("old", "read")]
        assert s.record(ann("gone"), "9") is False  # revoked before: still never added
        assert s.withdraw("old") is True
    with HistoryStore(path) as s:
        old = s.get("old")
        assert old is not None and old.withdrawn and s.unread_count() == 0


def test_migration_to_2_counts_existing_announcements_as_shown(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    _version_1_file(path)
    with HistoryStore(path) as s:
        assert SCHEMA_VERSION >= 2
        old = s.get("old")
        assert old is not None and old.shown
        assert s.unshown() == []
        s.add(ann("new"))
        assert [x.announcement.id for x in s.unshown()] == ["new"]


def test_shown_is_recorded_and_untold_ones_are_listed_oldest_first(
    store: HistoryStore, clock: FakeClock
) -> None:
    for i in range(5):
        store.record(ann(str(i)), str(i))
    store.add(ann("gone", expires_at=T0 + timedelta(minutes=1)))
    store.mark_shown(["1", "3", "unknown"])
    store.mark_shown([])
    clock.now = T0 + timedelta(minutes=2)  # "gone" has expired: nothing to tell
    assert [s.announcement.id for s in store.unshown()] == ["0", "2", "4"]
    assert [s.announcement.id for s in store.unshown(limit=2)] == ["0", "2"]
    got = store.get("1")
    assert got is not None and got.shown and not got.read


def test_unacknowledged_urgent_ones(store: HistoryStore, clock: FakeClock) -> None:
    store.add(ann("u1", priority=Priority.URGENT))
    store.add(ann("u2", priority=Priority.URGENT))
    store.add(ann("u3", priority=Priority.URGENT, expires_at=T0 + timedelta(hours=1)))
    store.add(ann("u4", priority=Priority.URGENT))
    store.add(ann("n", priority=Priority.HIGH))
    assert store.queue_ack("u2") is True
    store.withdraw("u4")  # revoked
    assert [s.announcement.id for s in store.unacknowledged_urgent()] == ["u1", "u3"]
    clock.now = T0 + timedelta(hours=2)  # u3 expired
    assert [s.announcement.id for s in store.unacknowledged_urgent()] == ["u1"]


def test_acknowledging_twice_queues_one_receipt(store: HistoryStore) -> None:
    store.add(ann("u", priority=Priority.URGENT))
    assert store.queue_ack("u") is True  # pressed
    got = store.get("u")
    assert got is not None and (got.acked, got.read, got.shown) == (True, True, True)
    store.ack_sent("u")
    assert store.queue_ack("u") is False  # pressed again, after the receipt was sent
    assert store.pending_acks() == []


def test_damaged_file_is_a_damaged_error_and_moves_aside(tmp_path: Path) -> None:
    from app.core.sqlite_files import move_aside

    path = tmp_path / "history" / "h.sqlite3"
    path.parent.mkdir()
    path.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(HistoryDamagedError, match="damaged"):
        HistoryStore(path)
    path.with_name("h.sqlite3-wal").write_bytes(b"wal")  # as a crash may leave it
    aside = move_aside(path, now=datetime(2026, 11, 29, 21, 30, 5))
    assert aside.name == "h.damaged-20261129T213005.sqlite3"
    assert aside.read_bytes() == b"\x00garbage" * 512
    assert aside.with_name(aside.name + "-wal").read_bytes() == b"wal"
    assert not path.exists() and not path.with_name("h.sqlite3-wal").exists()
    # a second one in the same second gets its own name
    path.write_bytes(b"again")
    again = move_aside(path, now=datetime(2026, 11, 29, 21, 30, 5))
    assert again != aside and again.read_bytes() == b"again"
    with HistoryStore(path) as fresh:
        assert fresh.list() == []


def test_newer_schema_is_not_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(HistoryStoreError) as info:
        HistoryStore(path)
    assert not isinstance(info.value, HistoryDamagedError)  # never moved aside


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_history_folder_and_files_are_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / "history" / "h.sqlite3"
    with HistoryStore(path) as s:
        s.add(ann("1"))
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for f in (path, path.with_name("h.sqlite3-wal"), path.with_name("h.sqlite3-shm")):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f


def test_the_store_selects_and_inserts_the_models_row() -> None:
    """An announcement's columns are the model's row, in order, in every statement."""
    from app.core import store
    from app.core.model import ROW_COLUMNS

    columns = ", ".join(ROW_COLUMNS)
    assert store._SELECT.startswith(f"SELECT {columns}, received_at, ")
    assert f"({columns}, received_at, read, acked)" in store._INSERT


def test_migration_to_3_keeps_pending_acknowledgements(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    _version_1_file(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO pending_acks (id, queued_at) VALUES ('old', 1.0)")
    conn.commit()
    conn.close()
    with HistoryStore(path) as s:
        assert s.pending_acks() == ["old"]
        assert s.pending_receipts() == [("old", "acknowledged")]


def test_receipts_are_queued_once_each_when_stored_read_and_acknowledged(
    store: HistoryStore,
) -> None:
    woken: list[int] = []
    stop = store.add_receipt_listener(lambda: woken.append(1))
    store.record(ann("a"), "a")
    store.record(ann("a"), "a")  # known: nothing more
    store.add(ann("b", priority=Priority.URGENT))
    store.add(ann("legacy-x"))  # an event without an id: the server cannot know it
    store.mark_read("a")
    store.mark_read("a")
    store.mark_all_read()  # b and legacy-x were unread
    store.queue_ack("b")
    store.queue_ack("b")
    assert store.pending_receipts() == [
        ("a", "delivered"),
        ("b", "delivered"),
        ("a", "read"),
        ("b", "read"),
        ("b", "acknowledged"),
    ]
    assert len(woken) == 6  # each call that stored or marked something (a spare wake is harmless)
    store.receipts_sent([("a", "delivered"), ("a", "read")])
    store.withdraw("b")  # revoked: its receipts go with it
    assert store.pending_receipts() == []
    stop()
    store.add(ann("c"))
    assert len(woken) == 6


def test_record_many_stores_a_batch_in_one_go_leaving_out_known_and_revoked(
    store: HistoryStore,
) -> None:
    store.record(ann("a"), "1")
    store.withdraw("r")  # revoked before it came
    queued: list[int] = []
    store.add_receipt_listener(lambda: queued.append(1))
    new = store.record_many([(ann("a"), "2"), (ann("b"), "3"), (ann("r"), "4"), (ann("c"), "5")])
    assert [a.id for a in new] == ["b", "c"]
    assert store.last_event_id() == "5"
    assert sorted(s.announcement.id for s in store.list()) == ["a", "b", "c"]
    assert queued == [1]  # the receipts listener woken once for the batch
    assert store.record_many([(ann("b"), "6")]) == []
    assert store.last_event_id() == "6"
    assert store.record_many([]) == []


def test_a_correction_replaces_the_text_once_per_revision(tmp_path: Path, clock: FakeClock) -> None:
    """Issue 25: a history of version 4 opens; an update replaces the stored text (marked
    updated at the server's time), each revision once, with its position in the same
    transaction; a reminder is recorded once per reminder event; a revoke stores its
    position too. Unknown and withdrawn ones change nothing (and are not told)."""
    path = tmp_path / "h.sqlite3"
    _version_n_file(path, 4)
    fixed_at = T0 + timedelta(minutes=5)
    corrected = Announcement("old", "t2", "b2", Priority.HIGH, url="https://example.org/")
    with HistoryStore(path, clock=clock) as s:
        first = s.apply_update(Update(corrected, 1, fixed_at), "11")
        assert first is not None and first.updated and first.updated_at == fixed_at
        assert (first.announcement.title, first.announcement.priority) == ("t2", Priority.HIGH)
        assert first.announcement.url == "https://example.org/" and first.revision == 1
        assert s.last_event_id() == "11"
        assert s.apply_update(Update(corrected, 1, fixed_at), "12") is None  # replayed
        assert s.last_event_id() == "12"
        assert s.apply_update(Update(ann("nobody"), 3), "13") is None
        reminded = s.record_remind("old", "14", "14")
        assert reminded is not None and reminded.reminded_at == T0
        assert s.record_remind("old", "14", "15") is None  # the same reminder again
        assert s.record_remind("old", "16", "16") is not None  # another one
        assert s.record_remind("nobody", "17", "17") is None
        assert s.withdraw("old", "18") and s.last_event_id() == "18"
        assert s.apply_update(Update(corrected, 2), "19") is None  # withdrawn: kept as it was
        assert s.record_remind("old", "20", "20") is None
    with HistoryStore(path) as s:
        kept = s.get("old")
        assert kept is not None and kept.revision == 1 and kept.announcement.title == "t2"
        assert kept.withdrawn and s.last_event_id() == "20"
