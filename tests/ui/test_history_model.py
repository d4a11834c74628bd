"""The history model over a real history file: order, insertion, read state in one place."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QModelIndex, Qt

from app import APP_NAME
from app.core.model import Announcement, Priority
from app.core.store import HistoryStore, StoredAnnouncement
from app.ui.history_model import (
    COL_PRIORITY,
    COL_TIME,
    COL_TITLE,
    ID_ROLE,
    KEY_SLACK,
    LIMIT,
    HistoryModel,
    worth_listing,
)
from tests.fixtures.history import T0, add_many, purge_one

RECEIVED = T0 + timedelta(hours=1)  # the store's "now": every arrival is received then


@pytest.fixture
def store(tmp_path: Path):
    with HistoryStore(tmp_path / "history.sqlite3", clock=lambda: RECEIVED) as s:
        yield s


@pytest.fixture
def model(qapp, qtmodeltester, store: HistoryStore) -> HistoryModel:
    m = HistoryModel(store)
    qtmodeltester.check(m)  # Qt's model tester keeps checking every change from here on
    return m


def add(store: HistoryStore, ann_id: str, minutes: int | None = 0, **kw: Any) -> StoredAnnouncement:
    kw.setdefault("title", f"Title {ann_id}")
    kw.setdefault("body", f"Body of {ann_id}")
    created = T0 + timedelta(minutes=minutes) if minutes is not None else None
    assert store.add(Announcement(id=ann_id, created_at=created, **kw))
    stored = store.get(ann_id)
    assert stored is not None
    return stored


def ids(model: HistoryModel) -> list[str]:
    return [str(model.index(r, 0).data(ID_ROLE)) for r in range(model.rowCount())]


def bold(model: HistoryModel, row: int) -> bool:
    font = model.index(row, COL_TITLE).data(Qt.ItemDataRole.FontRole)
    return font is not None and font.bold()


def test_columns_and_roles(model: HistoryModel, store: HistoryStore) -> None:
    add(store, "1", 0, priority=Priority.HIGH)
    add(store, "legacy", 5, title="")
    model.reload()
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(3)] == [
        "Title",
        "Priority",
        "Date",
    ]
    assert ids(model) == ["legacy", "1"]
    assert model.index(0, COL_TITLE).data() == APP_NAME  # a legacy text has no title
    assert model.index(1, COL_PRIORITY).data() == "High"
    assert model.index(1, COL_PRIORITY).data(Qt.ItemDataRole.DecorationRole) is not None
    assert model.index(1, COL_TIME).data()  # the publication time, formatted
    assert model.index(1, COL_TITLE).data(Qt.ItemDataRole.AccessibleTextRole) == (
        "Title 1 (unread)"
    )
    assert model.item(1).text() == "Title 1" and model.item(1, COL_PRIORITY).text() == "High"
    assert "1" in model and "2" not in model


def test_reload_reads_the_newest_limit(model: HistoryModel, store: HistoryStore) -> None:
    for i in range(LIMIT + 3):
        add(store, f"{i:04d}", i)
    model.reload()
    assert model.rowCount() == LIMIT
    assert ids(model)[0] == f"{LIMIT + 2:04d}" and ids(model)[-1] == "0003"
    model.reload("0042")
    assert ids(model) == ["0042"]


def test_insert_keeps_the_store_order(model: HistoryModel, store: HistoryStore) -> None:
    """New ones land where the store's own list puts them, untimed ones by their arrival."""
    for m in (0, 10, 20):
        add(store, f"s{m}", m)
    model.reload()
    arrivals = [add(store, f"n{i}", m) for i, m in enumerate((15, 30, 10, -5, None, 30))]
    model.insert([*arrivals, arrivals[0]])
    inserted = ids(model)
    model.reload()
    assert inserted == ids(model)
    assert inserted[:3] == ["n4", "n5", "n1"]  # untimed: received after; equal: the later first


def test_a_burst_at_the_top_is_one_insertion(model: HistoryModel, store: HistoryStore) -> None:
    add(store, "old", 0)
    model.reload()
    seen: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: seen.append((first, last)))
    model.insert([add(store, f"n{i}", 1 + i) for i in range(50)])
    assert seen == [(0, 49)]
    assert ids(model)[0] == "n49" and ids(model)[-1] == "old"


def test_trim_drops_the_oldest(model: HistoryModel, store: HistoryStore) -> None:
    for i in range(LIMIT):
        add(store, f"{i:04d}", i)
    model.reload()
    model.insert([add(store, "new", LIMIT)])
    assert model.rowCount() == LIMIT + 1
    model.trim()
    assert model.rowCount() == LIMIT
    assert "0000" not in model and ids(model)[0] == "new"


def test_read_state_lives_in_the_store_and_its_row(
    qtbot, model: HistoryModel, store: HistoryStore
) -> None:
    add(store, "1", 0)
    add(store, "2", 1)
    model.reload()
    assert bold(model, 0) and bold(model, 1) and model.is_unread(1)
    with qtbot.waitSignal(model.dataChanged, timeout=1000), qtbot.waitSignal(model.readChanged):
        assert model.mark_read(["1", "unknown"]) is True
    assert store.get("1").read  # type: ignore[union-attr]
    assert not bold(model, 1) and bold(model, 0)
    assert model.index(1, 0).data(Qt.ItemDataRole.AccessibleTextRole) == "Title 1"
    with qtbot.assertNotEmitted(model.readChanged):
        assert model.mark_read(["1"]) is False  # read already: nothing written
    model.reload()
    assert not bold(model, 1)  # the store agrees
    with qtbot.waitSignal(model.readChanged, timeout=1000):
        assert model.mark_all_read() is True
    assert store.unread_count() == 0 and not bold(model, 0)
    with qtbot.assertNotEmitted(model.readChanged):
        assert model.mark_all_read() is False


def test_mark_listed_read_reads_only_the_listed_ones(
    qtbot, model: HistoryModel, store: HistoryStore
) -> None:
    add(store, "1", 0, title="Fire drill")
    add(store, "2", 1, title="Lunch")
    add(store, "3", 2, title="Fire alarm test")
    model.reload("fire")
    assert ids(model) == ["3", "1"] and model.listed_unread() == 2
    with qtbot.waitSignal(model.readChanged, timeout=1000):
        assert model.mark_listed_read() is True
    assert model.listed_unread() == 0 and store.unread_count() == 1
    assert sorted(i for i, kind in store.pending_receipts() if kind == "read") == ["1", "3"]
    with qtbot.assertNotEmitted(model.readChanged):
        assert model.mark_listed_read() is False


def test_a_withdrawn_row_is_struck_through_and_not_unread(
    model: HistoryModel, store: HistoryStore
) -> None:
    add(store, "w", 0, priority=Priority.URGENT)
    add(store, "n", 1)
    store.withdraw("w")
    model.reload()
    row = model.row_of("w")
    font = model.index(row, COL_TITLE).data(Qt.ItemDataRole.FontRole)
    assert font.strikeOut() and not font.bold()
    assert not model.is_unread(row) and model.listed_unread() == 1
    assert model.index(row, COL_PRIORITY).data() == "Withdrawn"
    assert model.index(row, COL_PRIORITY).data(Qt.ItemDataRole.DecorationRole) is None
    tip = model.index(row, COL_TITLE).data(Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Withdrawn at ")
    assert model.index(row, COL_TITLE).data(Qt.ItemDataRole.AccessibleTextRole) == (
        "Title w (withdrawn)"
    )
    assert model.index(row, COL_TITLE).data(Qt.ItemDataRole.ForegroundRole) is not None
    assert model.mark_read(["w"]) is False  # nothing to read: no receipt
    other = model.row_of("n")
    assert model.index(other, COL_TITLE).data(Qt.ItemDataRole.ToolTipRole) is None


def test_refresh_and_remove_one_row(model: HistoryModel, store: HistoryStore) -> None:
    add(store, "u", 0, priority=Priority.URGENT)
    add(store, "n", 1)
    model.reload()
    store.queue_ack("u")
    assert model.refresh("u") is True
    assert model.stored(model.row_of("u")).acked and not bold(model, model.row_of("u"))
    purge_one(store, "u")
    assert model.refresh("u") is False  # gone from the store: the caller removes it
    assert model.remove("u") is True and ids(model) == ["n"]
    assert model.refresh("u") is True  # not listed: nothing to re-read
    assert model.remove("n") is True and model.remove("n") is False
    assert model.rowCount() == 0 and model.row_of("n") == -1


def test_rows_have_the_flags_of_a_table(model: HistoryModel, store: HistoryStore) -> None:
    """Qt's own flags (answered in C++, asked for every row on every layout)."""
    add(store, "1", 0)
    model.reload()
    assert model.flags(model.index(0, COL_TITLE)) == (
        Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemNeverHasChildren
    )
    assert model.flags(QModelIndex()) == Qt.ItemFlag.NoItemFlags


def stored_many(
    store: HistoryStore, specs: list[tuple[str, int | None]]
) -> list[StoredAnnouncement]:
    """Many at once (one transaction), as a catch-up stores them; as the store gives them."""
    return store.get_many(a.id for a in add_many(store, specs))


def test_insert_leaves_out_what_a_full_list_drops(model: HistoryModel, store: HistoryStore) -> None:
    """Into a full list, arrivals older than its last row are not inserted (trim would drop
    them at once); the others land where a re-read puts them."""
    stored_many(store, [(f"o{i}", 10 + i) for i in range(LIMIT)])
    model.reload()
    assert model.floor() is not None
    seen: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, first, last: seen.append((first, last)))
    arrivals = stored_many(store, [("older", 0), ("newest", LIMIT + 20), ("middle", 15), ("x", 5)])
    model.insert(arrivals)
    assert seen == [(0, 0), (LIMIT - 5, LIMIT - 5)]  # 994 rows newer than "middle", + "newest"
    assert "older" not in model and "x" not in model
    assert model.rowCount() == LIMIT + 2
    model.trim()
    inserted = ids(model)
    model.reload()
    assert inserted == ids(model)
    model.insert(store.get_many(["older"]))  # left out, not remembered as listed
    assert "older" not in model and model.rowCount() == LIMIT


def test_worth_listing_keeps_what_can_show_in_order() -> None:
    pending: dict[str, float | None] = {"a": 10.0, "u": None, "b": 30.0, "c": 20.0, "d": 5.0}
    assert worth_listing(pending, None, limit=10) == pending  # room for all
    # older than a full list's last row: out (the same time stays: it may land before it)
    assert list(worth_listing(pending, 10.0, limit=10)) == ["a", "u", "b", "c"]
    # only the newest ``limit`` timed ones can show; untimed ones are the store's to place
    assert list(worth_listing(pending, None, limit=2)) == ["u", "b", "c"]
    assert list(worth_listing(pending, 25.0, limit=2)) == ["u", "b"]
    # a time read back from the store may differ in its last digits: kept
    assert list(worth_listing({"e": 10.0 - KEY_SLACK / 2}, 10.0)) == ["e"]
