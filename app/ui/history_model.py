"""The history as a Qt table model: a view of the store, newest first, unread in bold."""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterable
from dataclasses import dataclass, replace

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QFont

from app.core.model import Announcement, Priority
from app.core.store import HistoryStore, StoredAnnouncement
from app.ui import widgets

ID_ROLE = Qt.ItemDataRole.UserRole + 1
COL_TITLE, COL_PRIORITY, COL_TIME = range(3)
LIMIT = 1000  # the newest this many are listed

_Index = QModelIndex | QPersistentModelIndex


def sort_key(stored: StoredAnnouncement) -> float:
    """The list's order, newest first (the store's ``COALESCE(created_at, received_at)``)."""
    return (stored.announcement.created_at or stored.received_at).timestamp()


def arrival_key(ann: Announcement) -> float | None:
    """An arrival's :func:`sort_key` as far as it is known before the store is read: its
    publication time; None without one (its received time is the store's)."""
    return ann.created_at.timestamp() if ann.created_at is not None else None


KEY_SLACK = 0.001  # seconds: a time read back from the store may differ in its last digits


def worth_listing(
    pending: dict[str, float | None], floor: float | None, limit: int = LIMIT
) -> dict[str, float | None]:
    """Those of ``pending`` (arrivals by id, in arrival order, with their :func:`arrival_key`)
    that may still be among the newest ``limit`` listed, in the same order: every untimed one,
    and the timed ones neither older than ``floor`` (the last row of a full list; None when
    the list is not full) nor beyond the newest ``limit`` timed ones. Kept with a little slack
    (:data:`KEY_SLACK`): :meth:`HistoryModel.insert` decides exactly, from the store's rows.

    So a catch-up of thousands reads from the store only the ones that can show, not every
    one only to drop it again."""
    timed = [key for key in pending.values() if key is not None]
    cutoff = floor
    if len(timed) > limit:
        kth = heapq.nlargest(limit, timed)[-1]
        cutoff = kth if cutoff is None else max(cutoff, kth)
    if cutoff is None:
        return pending
    least = cutoff - KEY_SLACK
    return {i: key for i, key in pending.items() if key is None or key >= least}


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell's text, for callers written against ``QStandardItemModel.item(row, column)``."""

    _text: str

    def text(self) -> str:
        return self._text


WITHDRAWN_COLOR = QColor("#6b7280")  # a withdrawn row: greyed and struck through


class HistoryModel(QAbstractTableModel):
    """The listed announcements (title, priority, date), newest first, at most ``LIMIT``.

    Unread ones are bold; a withdrawn one (revoked) is struck through and greyed, its priority
    reads "Withdrawn", and its tooltip "Withdrawn at 08:28"; it never counts as unread. A
    corrected one's title reads "Title (updated)", its tooltip "Updated at 08:28".

    Rows are the store's :class:`StoredAnnouncement` values: :meth:`reload` reads them (the
    window opens, the search changes, the store changed), :meth:`insert` places new arrivals
    where they belong without re-reading the rest, :meth:`remove` and :meth:`refresh` change
    one. Read state is written only by :meth:`mark_read`, :meth:`mark_listed_read` and
    :meth:`mark_all_read`: the store first, then the row, so a row's ``read`` is always what
    the store holds.

    Signals (emitted on the GUI thread):
        readChanged(): one of them read something unread.
    """

    readChanged = Signal()

    def __init__(self, store: HistoryStore, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._rows: list[StoredAnnouncement] = []
        self._ids: set[str] = set()
        self._dots = {p: widgets.priority_dot(p) for p in Priority}
        self._bold = QFont()
        self._bold.setBold(True)
        self._struck = QFont()
        self._struck.setStrikeOut(True)

    # ------------------------------------------------------------------ Qt model

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 3

    # no ``flags`` here: QAbstractTableModel's own (selectable, enabled, never has children)
    # is the one wanted, and answered in C++: the view asks it twice a row on every layout,
    # which in Python cost about 2,000 calls a layout with the list full

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if orientation is Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return (self.tr("Title"), self.tr("Priority"), self.tr("Date"))[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        stored = self._rows[index.row()]
        ann, column = stored.announcement, index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COL_TITLE:
                if stored.updated:  # corrected by its publisher: said on its row
                    return self.tr("%1 (updated)").replace("%1", ann.display_title())
                return ann.display_title()
            if column == COL_PRIORITY:
                if stored.withdrawn:
                    return self.tr("Withdrawn")
                return widgets.priority_name(ann.priority)
            return widgets.format_time(ann.created_at or stored.received_at)
        if role == ID_ROLE:
            return ann.id
        if role == Qt.ItemDataRole.FontRole:
            if stored.withdrawn:
                return self._struck
            return None if stored.read else self._bold
        if role == Qt.ItemDataRole.ForegroundRole:
            return WITHDRAWN_COLOR if stored.withdrawn else None
        if role == Qt.ItemDataRole.ToolTipRole and stored.withdrawn_at is not None:
            return widgets.withdrawn_text(stored.withdrawn_at)
        if role == Qt.ItemDataRole.ToolTipRole and stored.updated and stored.updated_at:
            return widgets.updated_text(stored.updated_at)
        if role == Qt.ItemDataRole.DecorationRole and column == COL_PRIORITY:
            return None if stored.withdrawn else self._dots[ann.priority]
        if role == Qt.ItemDataRole.AccessibleTextRole and column == COL_TITLE:
            title = ann.display_title()
            if stored.withdrawn_at is not None:
                return self.tr("%1 (withdrawn)").replace("%1", title)
            return self.tr("%1 (unread)").replace("%1", title) if stored.unread else title
        return None

    # ------------------------------------------------------------------ rows

    def stored(self, row: int) -> StoredAnnouncement:
        return self._rows[row]

    def row_of(self, ann_id: str | None) -> int:
        """The row of ``ann_id``; -1 when it is not listed."""
        if ann_id not in self._ids:
            return -1
        return next(r for r, s in enumerate(self._rows) if s.announcement.id == ann_id)

    def __contains__(self, ann_id: object) -> bool:
        return ann_id in self._ids

    def item(self, row: int, column: int = COL_TITLE) -> Cell:
        """The text of a cell (``index(row, column).data()`` is the Qt way)."""
        return Cell(str(self.index(row, column).data() or ""))

    def is_unread(self, row: int) -> bool:
        """Not read and not withdrawn (bold)."""
        return self._rows[row].unread

    def listed_unread(self) -> int:
        """How many of the listed rows are unread."""
        return sum(1 for s in self._rows if s.unread)

    def floor(self) -> float | None:
        """The :func:`sort_key` of the last row when the list is full (``LIMIT`` rows or
        more): anything older cannot be listed. None while there is room."""
        return sort_key(self._rows[LIMIT - 1]) if len(self._rows) >= LIMIT else None

    # ------------------------------------------------------------------ changes

    def reload(self, search: str = "") -> None:
        """Re-read the newest ``LIMIT`` from the store (matching ``search``, if given)."""
        rows = self._store.list(search=search, limit=LIMIT)
        self.beginResetModel()
        self._rows = rows
        self._ids = {s.announcement.id for s in rows}
        self.endResetModel()

    def insert(self, arrivals: Iterable[StoredAnnouncement]) -> None:
        """Place new announcements where the order puts them (one insertion for those that land
        together: a burst of new ones at the top is one insertion). Those already listed are
        skipped, and so are those that would land beyond ``LIMIT`` (:meth:`trim` would drop
        them at once: older than every listed row of a full list); the list may now hold more
        than ``LIMIT`` rows (see :meth:`trim`)."""
        fresh: list[StoredAnnouncement] = []
        seen: set[str] = set()
        for stored in arrivals:
            ann_id = stored.announcement.id
            if ann_id not in self._ids and ann_id not in seen:
                seen.add(ann_id)
                fresh.append(stored)
        if not fresh:
            return
        # newest first; among equal times the later arrival first, like the store's seq DESC
        fresh.reverse()
        fresh.sort(key=sort_key, reverse=True)
        # where each goes in the current list: before the first row not newer than it
        keys = [-sort_key(r) for r in self._rows]  # ascending
        positions = [bisect.bisect_left(keys, -sort_key(s)) for s in fresh]
        # the i-th of them ends at row positions[i] + i: from the first at LIMIT on, none shows
        keep = next((i for i, p in enumerate(positions) if p + i >= LIMIT), len(fresh))
        del fresh[keep:], positions[keep:]
        self._ids.update(s.announcement.id for s in fresh)
        inserted = 0
        start = 0
        while start < len(fresh):
            end = start
            while end + 1 < len(fresh) and positions[end + 1] == positions[start]:
                end += 1
            row = positions[start] + inserted
            group = fresh[start : end + 1]
            self.beginInsertRows(QModelIndex(), row, row + len(group) - 1)
            self._rows[row:row] = group
            self.endInsertRows()
            inserted += len(group)
            start = end + 1

    def trim(self) -> None:
        """Drop the rows beyond ``LIMIT`` (the oldest)."""
        if len(self._rows) <= LIMIT:
            return
        self.beginRemoveRows(QModelIndex(), LIMIT, len(self._rows) - 1)
        for stored in self._rows[LIMIT:]:
            self._ids.discard(stored.announcement.id)
        del self._rows[LIMIT:]
        self.endRemoveRows()

    def remove(self, ann_id: str) -> bool:
        """Drop the row of ``ann_id`` (revoked); False when it was not listed."""
        row = self.row_of(ann_id)
        if row < 0:
            return False
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self._ids.discard(ann_id)
        self.endRemoveRows()
        return True

    def refresh(self, ann_id: str) -> bool:
        """Re-read the row of ``ann_id`` from the store (acknowledged elsewhere). False when the
        store no longer holds it: the caller removes the row (:meth:`remove`)."""
        row = self.row_of(ann_id)
        stored = self._store.get(ann_id) if row >= 0 else None
        if stored is None:
            return row < 0
        self._set_row(row, stored)
        return True

    def mark_read(self, ann_ids: Iterable[str]) -> bool:
        """Mark these read (in the store, then their rows); True when one was unread."""
        wanted = set(ann_ids) & self._ids
        rows = [
            row
            for row, stored in enumerate(self._rows)
            if stored.announcement.id in wanted and stored.unread
        ]
        if not rows:
            return False
        self._store.mark_many_read(self._rows[row].announcement.id for row in rows)
        for row in rows:
            self._set_row(row, replace(self._rows[row], read=True))
        self.readChanged.emit()
        return True

    def mark_listed_read(self) -> bool:
        """Mark the listed ones read (those a search shows), and no other; True when one was
        unread."""
        return self.mark_read(self._ids)

    def mark_all_read(self) -> bool:
        """Mark every announcement read, listed or not; True when one was unread."""
        if self._store.unread_count() == 0:
            return False
        self._store.mark_all_read()
        self._rows = [replace(s, read=True) if s.unread else s for s in self._rows]
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, 2))
        self.readChanged.emit()
        return True

    def _set_row(self, row: int, stored: StoredAnnouncement) -> None:
        self._rows[row] = stored
        self.dataChanged.emit(self.index(row, 0), self.index(row, 2))
