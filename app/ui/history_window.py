"""The Announcements window: the local history, newest first, with read state, search and links."""

from __future__ import annotations

import time

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QDesktopServices,
    QFont,
    QHideEvent,
    QKeySequence,
    QShortcut,
    QShowEvent,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
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
from app.core.links import safe_link
from app.core.model import Priority
from app.core.store import HistoryStore, StoredAnnouncement
from app.ui import widgets
from app.ui.icons import app_icon

_ID_ROLE = Qt.ItemDataRole.UserRole + 1
_COL_TITLE, _COL_PRIORITY, _COL_TIME = range(3)
RELOAD_INTERVAL_MS = 200  # new announcements reload the list at most this often


def display_title(stored: StoredAnnouncement) -> str:
    """The title to show: a legacy backend's text has none and goes under the app's name."""
    return stored.announcement.title or APP_NAME


class _RoomyDelegate(QStyledItemDelegate):
    """The default item drawing with some air between rows."""

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        hint = super().sizeHint(option, index)
        return QSize(hint.width(), hint.height() + 8)


class HistoryWindow(QWidget):
    """The history of announcements with a details pane.

    Signals (all emitted on the GUI thread):
        readChanged(): the read state of one or more announcements changed (the tray updates
            its unread badge).
        acknowledgeRequested(str): Acknowledge was pressed for this urgent announcement (the
            composition root acknowledges it everywhere, then calls :meth:`reload`).

    New announcements call :meth:`schedule_reload`: the list is re-read at most every
    ``RELOAD_INTERVAL_MS`` (longer when a reload is slow) while the window is shown, and once
    when it is shown again, so thousands of arrivals never flood the GUI thread.

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
        self._confirm_link = confirm_link
        self._open_url = open_url
        self._current: StoredAnnouncement | None = None
        self._stale = False  # the store changed while the window was hidden
        self._reload_cost = 0.0  # seconds the last reload took
        self._reload_timer = QTimer(self, singleShot=True)
        self._reload_timer.timeout.connect(self.reload)
        self._dots = {p: widgets.priority_dot(p) for p in Priority}
        self.setObjectName("historyWindow")
        self.setWindowTitle(self.tr("Announcements — %1").replace("%1", APP_NAME))
        self.setWindowIcon(app_icon())
        self.setStyleSheet(widgets.stylesheet())
        self.resize(900, 560)
        self.setMinimumSize(560, 360)
        self._build()
        self.reload()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.search = QLineEdit(self)
        self.search.setPlaceholderText(self.tr("Search announcements (Ctrl+F)"))
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName(self.tr("Search announcements"))
        self.search.textChanged.connect(self.reload)
        self.search.returnPressed.connect(self._focus_list)
        self.unread_label = QLabel(self)
        self.unread_label.setObjectName("unreadCount")

        self.model = QStandardItemModel(0, 3, self)
        self.model.setHorizontalHeaderLabels(
            [self.tr("Title"), self.tr("Priority"), self.tr("Date")]
        )
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
        header.setSectionResizeMode(_COL_TITLE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(_COL_PRIORITY, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_COL_TIME, QHeaderView.ResizeMode.ResizeToContents)
        self.list.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.list.selectionModel().selectionChanged.connect(self._update_buttons)
        self.list.activated.connect(self._on_activated)

        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.list)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self._build_details())
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 6)

        self.mark_read_button = QPushButton(self.tr("&Mark read"), self)
        self.mark_read_button.setAccessibleName(self.tr("Mark the selected announcements read"))
        self.mark_read_button.clicked.connect(self.mark_selected_read)
        self.mark_all_button = QPushButton(self.tr("Mark &all read"), self)
        self.mark_all_button.setAccessibleName(self.tr("Mark all announcements read"))
        self.mark_all_button.clicked.connect(self.mark_all_read)
        self.ack_button = QPushButton(self.tr("Ac&knowledge"), self)
        self.ack_button.setObjectName("acknowledgeButton")
        self.ack_button.setAccessibleName(self.tr("Acknowledge the selected urgent announcement"))
        self.ack_button.setToolTip(
            self.tr("Confirm that you have read this urgent announcement; the sender is told.")
        )
        self.ack_button.clicked.connect(self.acknowledge_current)
        self.close_button = QPushButton(self.tr("&Close"), self)
        self.close_button.clicked.connect(self.close)

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        top.addSpacing(12)
        top.addWidget(self.unread_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.mark_read_button)
        buttons.addWidget(self.mark_all_button)
        buttons.addWidget(self.ack_button)
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
        self.setTabOrder(self.search, self.list)
        self.setTabOrder(self.list, self.body)
        self.setTabOrder(self.body, self.link_field)
        self.setTabOrder(self.link_field, self.open_link_button)
        self.setTabOrder(self.open_link_button, self.mark_read_button)
        self.setTabOrder(self.mark_read_button, self.mark_all_button)
        self.setTabOrder(self.mark_all_button, self.ack_button)
        self.setTabOrder(self.ack_button, self.close_button)

    def _build_details(self) -> QWidget:
        self.details = QStackedWidget(self)
        self.placeholder = QLabel(self)
        self.placeholder.setObjectName("placeholder")
        self.placeholder.setTextFormat(Qt.TextFormat.PlainText)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.details.addWidget(self.placeholder)

        page = QWidget(self)
        self.chip = widgets.PriorityChip(page)
        self.meta_label = widgets.plain_label("", page)
        self.meta_label.setObjectName("detailMeta")
        self.title_label = widgets.plain_label("", page)
        self.title_label.setObjectName("detailTitle")
        self.body = QPlainTextEdit(page)
        self.body.setObjectName("detailBody")
        self.body.setReadOnly(True)
        self.body.setTabChangesFocus(True)
        self.body.setAccessibleName(self.tr("Announcement text"))
        self.link_caption = QLabel(self.tr("Link:"), page)
        self.link_field = QLineEdit(page)
        self.link_field.setObjectName("linkField")
        self.link_field.setReadOnly(True)
        self.link_field.setAccessibleName(self.tr("Link address"))
        self.link_caption.setBuddy(self.link_field)
        self.open_link_button = QPushButton(self.tr("&Open link…"), page)
        self.open_link_button.setAccessibleName(self.tr("Open the link in your web browser"))
        self.open_link_button.clicked.connect(self.open_link)
        self.link_note = widgets.plain_label("", page)
        self.link_note.setObjectName("hint")

        head = QHBoxLayout()
        head.addWidget(self.chip)
        head.addWidget(self.meta_label, 1)
        link_row = QHBoxLayout()
        link_row.addWidget(self.link_caption)
        link_row.addWidget(self.link_field, 1)
        link_row.addWidget(self.open_link_button)
        layout = QVBoxLayout(page)
        layout.setContentsMargins(12, 4, 4, 4)
        layout.setSpacing(8)
        layout.addLayout(head)
        layout.addWidget(self.title_label)
        layout.addWidget(self.body, 1)
        layout.addLayout(link_row)
        layout.addWidget(self.link_note)
        self.details.addWidget(page)
        return self.details

    # ------------------------------------------------------------------ public API

    def schedule_reload(self) -> None:
        """The store changed (a new announcement): reload soon, coalescing many changes into
        one reload; a hidden window reloads when it is shown again."""
        if not self.isVisible():
            self._stale = True
            return
        if not self._reload_timer.isActive():
            # a slow reload (thousands of rows, a busy machine) waits longer: the GUI stays
            # responsive, spending at most about a fifth of its time reloading
            self._reload_timer.start(max(RELOAD_INTERVAL_MS, round(self._reload_cost * 4000)))

    def showEvent(self, event: QShowEvent) -> None:
        if self._stale:
            self.reload()
        super().showEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:
        # closed (or the store about to close on quit): no reload behind its back
        if self._reload_timer.isActive():
            self._reload_timer.stop()
            self._stale = True
        super().hideEvent(event)

    def reload(self) -> None:
        """Re-read the store (a new announcement, a revoke, a search): keeps the selection."""
        started = time.perf_counter()
        self._reload_timer.stop()
        self._stale = False
        keep = self.current_id()
        search = self.search.text()
        items = self._store.list(search=search)
        bold = QFont(self.list.font())
        bold.setBold(True)
        self.list.setUpdatesEnabled(False)
        try:
            self.model.removeRows(0, self.model.rowCount())
            for stored in items:
                self.model.appendRow(self._row(stored, bold))
        finally:
            self.list.setUpdatesEnabled(True)
        row = self._row_of(keep)
        if row >= 0:  # the kept one was read when it was selected: this reads nothing new
            self.list.setCurrentIndex(self.model.index(row, 0))
        if not items:
            self.placeholder.setText(
                self.tr("No announcements match “%1”.").replace("%1", search.strip())
                if search.strip()
                else self.tr("No announcements yet. New ones will appear here.")
            )
        else:
            self.placeholder.setText(self.tr("Select an announcement to read it."))
        self._update_unread()
        self._update_buttons()
        self._reload_cost = time.perf_counter() - started

    def show_announcement(self, ann_id: str) -> None:
        """Show the window, raise and activate it, and select (and so read) ``ann_id``."""
        if self._stale:
            self.reload()
        if self._row_of(ann_id) < 0 and self.search.text():
            self.search.clear()  # reloads
        elif self._row_of(ann_id) < 0:
            self.reload()
        widgets.bring_to_front(self)
        row = self._row_of(ann_id)
        if row >= 0:
            self.list.setCurrentIndex(self.model.index(row, 0))
            self.list.scrollTo(self.model.index(row, 0))
            self.list.setFocus()

    def current_id(self) -> str | None:
        index = self.list.currentIndex()
        if not index.isValid():
            return None
        return str(self.model.index(index.row(), 0).data(_ID_ROLE))

    def mark_selected_read(self) -> None:
        ids = [str(index.data(_ID_ROLE)) for index in self.list.selectionModel().selectedRows(0)]
        current = self.current_id()
        if current and current not in ids:
            ids.append(current)
        changed = False
        for ann_id in ids:
            changed |= self._mark_read(ann_id, notify=False)
        if changed:
            self.readChanged.emit()

    def mark_all_read(self) -> None:
        if self._store.unread_count() == 0:
            return
        self._store.mark_all_read()
        for row in range(self.model.rowCount()):
            self._set_row_bold(row, False)
        self._after_read_change()

    def acknowledge_current(self) -> None:
        """Acknowledge the current announcement when it is urgent and not acknowledged yet."""
        current = self._current
        if current is None or not self._acknowledgeable(current):
            return
        self.acknowledgeRequested.emit(current.announcement.id)

    @staticmethod
    def _acknowledgeable(stored: StoredAnnouncement) -> bool:
        return stored.announcement.priority is Priority.URGENT and not stored.acked

    def open_link(self) -> bool:
        """Open the current announcement's link after confirmation; False when refused."""
        if self._current is None:
            return False
        return widgets.open_link(
            self, self._current.announcement.url, confirm=self._confirm_link, opener=self._open_url
        )

    # ------------------------------------------------------------------ rows

    def _row(self, stored: StoredAnnouncement, bold: QFont) -> list[QStandardItem]:
        ann = stored.announcement
        title = QStandardItem(display_title(stored))
        title.setData(ann.id, _ID_ROLE)
        priority = QStandardItem(widgets.priority_name(ann.priority))
        priority.setData(self._dots[ann.priority], Qt.ItemDataRole.DecorationRole)
        received = QStandardItem(widgets.format_time(ann.created_at or stored.received_at))
        row = [title, priority, received]
        for item in row:
            item.setEditable(False)
            if not stored.read:
                item.setFont(bold)
        title.setAccessibleText(
            self.tr("%1 (unread)").replace("%1", display_title(stored))
            if not stored.read
            else display_title(stored)
        )
        return row

    def _row_of(self, ann_id: str | None) -> int:
        for row in range(self.model.rowCount()):
            if self.model.index(row, 0).data(_ID_ROLE) == ann_id:
                return row
        return -1

    def is_bold(self, ann_id: str) -> bool:
        """Whether the row of ``ann_id`` is shown in bold (unread); False when not listed."""
        row = self._row_of(ann_id)
        item = self.model.item(row, 0) if row >= 0 else None
        return bool(item and item.font().bold())

    def _set_row_bold(self, row: int, bold: bool) -> None:
        for col in range(self.model.columnCount()):
            item = self.model.item(row, col)
            font = item.font()
            font.setBold(bold)
            item.setFont(font)
        title = self.model.item(row, _COL_TITLE)
        title.setAccessibleText(title.text())

    def _mark_read(self, ann_id: str, *, notify: bool = True) -> bool:
        stored = self._store.get(ann_id)
        if stored is None or stored.read:
            return False
        self._store.mark_read(ann_id)
        row = self._row_of(ann_id)
        if row >= 0:
            self._set_row_bold(row, False)
        if notify:
            self._after_read_change()
        else:
            self._update_unread()
            self._update_buttons()
        return True

    def _after_read_change(self) -> None:
        self._update_unread()
        self._update_buttons()
        self.readChanged.emit()

    # ------------------------------------------------------------------ reactions

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self._show_details(None)
            return
        ann_id = str(self.model.index(current.row(), 0).data(_ID_ROLE))
        self._mark_read(ann_id)
        self._show_details(self._store.get(ann_id))

    def _on_activated(self, index: QModelIndex) -> None:
        """Enter or double-click: open the announcement (read it; focus its text)."""
        self._mark_read(str(self.model.index(index.row(), 0).data(_ID_ROLE)))
        self.body.setFocus()

    def _show_details(self, stored: StoredAnnouncement | None) -> None:
        self._current = stored
        self._update_buttons()
        if stored is None:
            self.details.setCurrentIndex(0)
            return
        ann = stored.announcement
        self.chip.set_priority(ann.priority)
        received = widgets.format_time(stored.received_at)
        created = widgets.format_time(ann.created_at)
        self.meta_label.setText(
            self.tr("Published %1").replace("%1", created)
            if created
            else self.tr("Received %1").replace("%1", received)
        )
        self.title_label.setText(display_title(stored))
        self.body.setPlainText(ann.body)
        link = safe_link(ann.url)
        has_url = bool(ann.url)
        self.link_caption.setVisible(has_url)
        self.link_field.setVisible(has_url)
        self.open_link_button.setVisible(has_url)
        self.link_field.setText(ann.url or "")
        self.link_field.setCursorPosition(0)
        self.open_link_button.setEnabled(link is not None)
        self.link_field.setProperty("unsafe", link is None)
        self.link_field.style().unpolish(self.link_field)
        self.link_field.style().polish(self.link_field)
        self.link_note.setVisible(has_url and link is None)
        self.link_note.setText(
            self.tr("This link cannot be opened: only web addresses (http, https) are allowed.")
        )
        self.details.setCurrentIndex(1)

    def _update_unread(self) -> None:
        unread = self._store.unread_count()
        self.unread_label.setText(self.tr("%1 unread").replace("%1", str(unread)) if unread else "")

    def _update_buttons(self) -> None:
        self.mark_all_button.setEnabled(self._store.unread_count() > 0)
        current = self._current
        can_ack = current is not None and self._acknowledgeable(current)
        self.ack_button.setEnabled(can_ack)
        self.ack_button.setVisible(can_ack)
        rows = self.list.selectionModel().selectedRows(0)
        self.mark_read_button.setEnabled(any(self.is_bold(str(i.data(_ID_ROLE))) for i in rows))

    def _focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _focus_list(self) -> None:
        if self.model.rowCount() and not self.list.currentIndex().isValid():
            self.list.setCurrentIndex(self.model.index(0, 0))
        self.list.setFocus(Qt.FocusReason.OtherFocusReason)
