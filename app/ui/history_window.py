"""The Announcements window: the local history, newest first, with read state, search and links."""

from __future__ import annotations

import time

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QDesktopServices, QHideEvent, QKeySequence, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME
from app.core.model import Announcement
from app.core.store import HistoryStore
from app.ui import widgets
from app.ui.detail import AnnouncementView
from app.ui.history_model import (
    COL_PRIORITY,
    COL_TIME,
    COL_TITLE,
    ID_ROLE,
    LIMIT,
    HistoryModel,
    arrival_key,
    worth_listing,
)
from app.ui.icons import app_icon

UPDATE_INTERVAL_MS = 200  # arrivals are listed (and store changes re-read) at most this often
ARRIVALS_PER_UPDATE = 500  # a catch-up's thousands are listed this many at a time, in turns


class _RoomyDelegate(QStyledItemDelegate):
    """The default item drawing with some air between rows."""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(hint.width(), hint.height() + 8)


class HistoryWindow(QWidget):
    """The history of announcements (a :class:`HistoryModel` over the store) and the details of
    the current one (an :class:`AnnouncementView`).

    Signals (all emitted on the GUI thread):
        readChanged(): the read state of one or more announcements changed (the tray updates
            its unread badge).
        acknowledgeRequested(str): Acknowledge was pressed for this urgent announcement (the
            composition root acknowledges it everywhere, then calls :meth:`announcement_changed`
            or :meth:`reload`).

    What the store gets is told, and the window keeps up with little work: a new announcement
    (:meth:`announcement_arrived`) is inserted in its place, a revoked one
    (:meth:`announcement_withdrawn`: kept, struck through) and an acknowledged one
    (:meth:`announcement_changed`) change their row, and any other change
    (:meth:`schedule_reload`) re-reads the list. Arrivals and re-reads are gathered for
    ``UPDATE_INTERVAL_MS`` (longer when a re-read is slow), so thousands of arrivals cost the
    GUI thread little: of a catch-up's thousands only those that can still be among the newest
    ``LIMIT`` are read from the store and inserted, the latest first, ``ARRIVALS_PER_UPDATE`` a
    turn; a hidden window does nothing but re-read the list when it is shown again.

    "Mark all read" acts on what is shown: while a search is on it reads "Mark shown read" and
    marks only the listed ones read (no read receipt goes out for one nobody saw).

    ``confirm_link`` and ``open_url`` (keyword options) decide and perform link opening; tests
    inject them instead of driving the modal confirmation.
    """

    readChanged = Signal()
    acknowledgeRequested = Signal(str)

    def __init__(
        self,
        store: HistoryStore,
        parent: QWidget | None = None,
        *,
        confirm_link: widgets.ConfirmLink = widgets.ask_to_open_link,
        open_url: widgets.OpenUrl = QDesktopServices.openUrl,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self._store = store
        # to list at the next update: ids in arrival order, with their arrival_key
        self._arrived: dict[str, float | None] = {}
        self._reload_due = False  # the next update re-reads the list
        self._stale = False  # the store changed while the window was hidden
        self._reload_cost = 0.0  # seconds the last re-read took
        self._unread = 0  # the store's unread count, as last shown
        self._update_timer = QTimer(self, singleShot=True)
        self._update_timer.timeout.connect(self._update)
        self.model = HistoryModel(store, self)
        self.model.readChanged.connect(self._after_read_change)
        self.setObjectName("historyWindow")
        self.setWindowTitle(self.tr("Announcements — %1").replace("%1", APP_NAME))
        self.setWindowIcon(app_icon())
        self.setStyleSheet(widgets.stylesheet())
        self.resize(900, 560)
        self.setMinimumSize(560, 360)
        self._build(confirm_link, open_url)
        self.reload()

    # ------------------------------------------------------------------ layout

    def _build(self, confirm_link: widgets.ConfirmLink, open_url: widgets.OpenUrl) -> None:
        self.search = QLineEdit(self)
        self.search.setPlaceholderText(self.tr("Search announcements (Ctrl+F)"))
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName(self.tr("Search announcements"))
        self.search.textChanged.connect(self.reload)
        self.search.returnPressed.connect(self._focus_list)
        self.unread_label = QLabel(self)
        self.unread_label.setObjectName("unreadCount")

        self.list = QTreeView(self)
        self.list.setModel(self.model)
        self.list.setItemDelegate(_RoomyDelegate(self.list))
        self.list.setRootIsDecorated(False)
        self.list.setUniformRowHeights(True)
        self.list.setAlternatingRowColors(True)
        self.list.setAllColumnsShowFocus(True)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.list.setAccessibleName(self.tr("Announcements"))
        header = self.list.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(COL_TITLE, QHeaderView.ResizeMode.Stretch)
        # fitted to the rows on screen (not to all of them) once per change of the list
        # (_fit_columns), not by the header after every insertion and removal: in a catch-up
        # that fitting was most of each relayout's cost
        header.setSectionResizeMode(COL_PRIORITY, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(COL_TIME, QHeaderView.ResizeMode.Fixed)
        header.setResizeContentsPrecision(0)
        self.list.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.list.selectionModel().selectionChanged.connect(self._update_buttons)
        self.list.activated.connect(self._on_activated)

        self.details = QStackedWidget(self)
        self.placeholder = QLabel(self)
        self.placeholder.setObjectName("placeholder")
        self.placeholder.setTextFormat(Qt.TextFormat.PlainText)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.details.addWidget(self.placeholder)
        self.detail = AnnouncementView(self, confirm_link=confirm_link, open_url=open_url)
        self.detail.setContentsMargins(12, 4, 4, 4)
        self.detail.acknowledgeRequested.connect(self.acknowledgeRequested)
        self.details.addWidget(self.detail)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.list)
        splitter.addWidget(self.details)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 6)

        self.mark_read_button = QPushButton(self.tr("&Mark read"), self)
        self.mark_read_button.setAccessibleName(self.tr("Mark the selected announcements read"))
        self.mark_read_button.clicked.connect(self.mark_selected_read)
        self.mark_all_button = QPushButton(self)
        self.mark_all_button.clicked.connect(self.mark_all_read)
        self.close_button = QPushButton(self.tr("&Close"), self)
        self.close_button.clicked.connect(self.close)

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addSpacing(12)
        top.addWidget(self.unread_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.mark_read_button)
        buttons.addWidget(self.mark_all_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 12, 12, 12)
        layout.setSpacing(10)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)

        QShortcut(QKeySequence.StandardKey.Find, self, self._focus_search)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)
        widgets.tab_order(
            self.search,
            self.list,
            *self.detail.focus_chain(),
            self.mark_read_button,
            self.mark_all_button,
            self.close_button,
        )

    @property
    def ack_button(self) -> QPushButton:
        """Acknowledge (in the details): shown for an urgent announcement not acknowledged."""
        return self.detail.ack_button

    # ------------------------------------------------------------------ keeping up with the store

    def announcement_arrived(self, ann: Announcement) -> None:
        """A new announcement is in the store: list it at the next update (O(1) now)."""
        if not self.isVisible():
            self._stale = True
            return
        self._arrived[ann.id] = arrival_key(ann)
        self._schedule_update()

    def announcements_arrived(self, anns: list[Announcement]) -> None:
        """Several new announcements are in the store: listed at the next update, at once."""
        if not self.isVisible():
            self._stale = True
            return
        self._arrived.update((a.id, arrival_key(a)) for a in anns)
        self._schedule_update()

    def announcement_withdrawn(self, ann_id: str) -> None:
        """An announcement was revoked (the store keeps it, withdrawn): its row and details
        show it struck through, and it no longer counts as unread."""
        self.announcement_changed(ann_id)

    def announcement_removed(self, ann_id: str) -> None:
        """An announcement left the store (purged): drop its row (and its details)."""
        self._arrived.pop(ann_id, None)
        row = self.model.row_of(ann_id)
        if row >= 0:
            self._before_rows_removed(row)
            self.model.remove(ann_id)
        self._update_state()

    def announcement_changed(self, ann_id: str) -> None:
        """An announcement changed in the store (acknowledged, withdrawn): re-read its row and
        details."""
        if not self.model.refresh(ann_id):  # gone from the store meanwhile
            self.announcement_removed(ann_id)
            return
        if self.current_id() == ann_id:
            self.detail.show_stored(self.model.stored(self.model.row_of(ann_id)))
        self._update_state()

    def schedule_reload(self) -> None:
        """The store changed in some other way: re-read the list soon, gathering many changes
        into one re-read; a hidden window re-reads when it is shown again."""
        if not self.isVisible():
            self._stale = True
            return
        self._reload_due = True
        self._schedule_update()

    def _schedule_update(self) -> None:
        if not self._update_timer.isActive():
            # a slow re-read (thousands of rows, a busy machine) waits longer: the GUI stays
            # responsive, spending at most about a fifth of its time re-reading
            wait = round(self._reload_cost * 4000) if self._reload_due else 0
            self._update_timer.start(max(UPDATE_INTERVAL_MS, wait))

    def _update(self) -> None:
        """List what arrived (or re-read the list when due, or when a search is on: the store
        decides what matches)."""
        if self._reload_due or self.search.text().strip():
            self.reload()
            return
        # only those that can still be among the newest LIMIT, and the latest of them first:
        # of a catch-up's thousands most are never read from the store, and those older than
        # a full list's end are not inserted (no relayout, no repaint for them)
        self._arrived = worth_listing(self._arrived, self.model.floor())
        arrived = list(self._arrived)[-ARRIVALS_PER_UPDATE:]
        for ann_id in arrived:
            del self._arrived[ann_id]
        self.model.insert(self._store.get_many(arrived))
        if self.model.rowCount() > LIMIT:
            self._before_rows_removed(LIMIT)
            self.model.trim()
        if self._arrived:  # the rest at the loop's next turn: the GUI answers in between
            self._update_timer.start(0)
        else:  # the count (a store query) and the words once all are listed, not every turn
            self._update_state()

    def _before_rows_removed(self, first: int) -> None:
        """Rows from ``first`` on are about to go: when the current one is among them, show
        nothing rather than letting Qt move the current row (and so read another one)."""
        current = self.list.currentIndex()
        if current.isValid() and current.row() >= first:
            self.list.selectionModel().clearCurrentIndex()

    def showEvent(self, event: QShowEvent) -> None:
        if self._stale:
            self.reload()
        super().showEvent(event)
        self._fit_columns()  # to the rows on screen now that it has its size

    def hideEvent(self, event: QHideEvent) -> None:
        # closed (or the store about to close on quit): nothing runs behind its back
        if self._update_timer.isActive() or self._arrived:
            self._update_timer.stop()
            self._arrived.clear()
            self._stale = True
        super().hideEvent(event)

    def reload(self) -> None:
        """Re-read the list from the store (opened, searched, changed): keeps the current one."""
        started = time.perf_counter()
        self._update_timer.stop()
        self._arrived.clear()
        self._stale = self._reload_due = False
        keep = self.current_id()
        self.model.reload(self.search.text())
        row = self.model.row_of(keep)
        if row >= 0:  # the kept one was read when it was selected: this reads nothing new
            self.list.setCurrentIndex(self.model.index(row, 0))
        else:  # a reset moves the current row silently
            self._show_details(None)
        self._update_state()
        self._reload_cost = time.perf_counter() - started

    def show_announcement(self, ann_id: str) -> None:
        """Show the window, raise and activate it, and select (and so read) ``ann_id``."""
        fresh = self._stale
        if fresh:
            self.reload()
        if ann_id not in self.model:
            if self.search.text():
                self.search.clear()  # re-reads
            elif not fresh:
                self.reload()
        widgets.bring_to_front(self)
        row = self.model.row_of(ann_id)
        if row >= 0:
            index = self.model.index(row, 0)
            self.list.setCurrentIndex(index)
            self.list.scrollTo(index)
            self.list.setFocus()

    # ------------------------------------------------------------------ actions

    def current_id(self) -> str | None:
        index = self.list.currentIndex()
        return str(index.siblingAtColumn(0).data(ID_ROLE)) if index.isValid() else None

    def is_bold(self, ann_id: str) -> bool:
        """Whether the row of ``ann_id`` is shown in bold (unread); False when not listed."""
        row = self.model.row_of(ann_id)
        font = self.model.index(row, 0).data(Qt.ItemDataRole.FontRole) if row >= 0 else None
        return bool(font is not None and font.bold())

    def mark_selected_read(self) -> None:
        ids = {str(i.data(ID_ROLE)) for i in self.list.selectionModel().selectedRows(0)}
        current = self.current_id()
        if current:
            ids.add(current)
        self.model.mark_read(ids)

    def filtered(self) -> bool:
        """Whether a search is on: the list shows only what matches."""
        return bool(self.search.text().strip())

    def mark_all_read(self) -> None:
        """Mark what is shown read: every announcement, or while a search is on only those it
        shows."""
        if self.filtered():
            self.model.mark_listed_read()
        else:
            self.model.mark_all_read()

    def acknowledge_current(self) -> None:
        """Acknowledge the current announcement when it is urgent and not acknowledged yet."""
        self.detail.acknowledge()

    def open_link(self) -> bool:
        """Open the current announcement's link after confirmation; False when refused."""
        return self.detail.open_link()

    # ------------------------------------------------------------------ reactions

    def _after_read_change(self) -> None:
        self._update_state()
        self.readChanged.emit()

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self._show_details(None)
            return
        ann_id = str(current.siblingAtColumn(0).data(ID_ROLE))
        self.model.mark_read([ann_id])
        self._show_details(ann_id)

    def _on_activated(self, index: QModelIndex) -> None:
        """Enter or double-click: open the announcement (read it; focus its text)."""
        self.model.mark_read([str(index.siblingAtColumn(0).data(ID_ROLE))])
        self.detail.body.setFocus()

    def _show_details(self, ann_id: str | None) -> None:
        row = self.model.row_of(ann_id)
        self.detail.show_stored(self.model.stored(row) if row >= 0 else None)
        self.details.setCurrentIndex(1 if row >= 0 else 0)
        self._update_buttons()

    def _update_state(self) -> None:
        """The unread count, the placeholder's words, the buttons and the columns' widths,
        after a change."""
        self._fit_columns()
        self._unread = self._store.unread_count()
        self.unread_label.setText(
            self.tr("%1 unread").replace("%1", str(self._unread)) if self._unread else ""
        )
        search = self.search.text().strip()
        if self.model.rowCount():
            self.placeholder.setText(self.tr("Select an announcement to read it."))
        elif search:
            self.placeholder.setText(self.tr("No announcements match “%1”.").replace("%1", search))
        else:
            self.placeholder.setText(self.tr("No announcements yet. New ones will appear here."))
        self._update_buttons()

    def _fit_columns(self) -> None:
        """Priority and date as wide as the rows on screen need (the header's precision)."""
        for column in (COL_PRIORITY, COL_TIME):
            self.list.resizeColumnToContents(column)

    def _update_buttons(self) -> None:
        if self.filtered():
            self.mark_all_button.setText(self.tr("Mark &shown read"))
            self.mark_all_button.setAccessibleName(self.tr("Mark the announcements shown read"))
            self.mark_all_button.setEnabled(self.model.listed_unread() > 0)
        else:
            self.mark_all_button.setText(self.tr("Mark &all read"))
            self.mark_all_button.setAccessibleName(self.tr("Mark all announcements read"))
            self.mark_all_button.setEnabled(self._unread > 0)
        rows = self.list.selectionModel().selectedRows(0)
        self.mark_read_button.setEnabled(any(self.model.is_unread(i.row()) for i in rows))

    def _focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _focus_list(self) -> None:
        if self.model.rowCount() and not self.list.currentIndex().isValid():
            self.list.setCurrentIndex(self.model.index(0, 0))
        self.list.setFocus(Qt.FocusReason.OtherFocusReason)
