"""The history files of one run: opened once per server and user, purged when opened, a
damaged one moved aside (no Qt here; the UI words the message)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.sqlite_files import move_aside
from app.core.store import HistoryDamagedError, HistoryStore, HistoryStoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenedHistory:
    store: HistoryStore
    moved_aside: Path | None = None  # the damaged file now lies here; ``store`` is a new one


class HistoryStores:
    """Opens the history of a server and user once per run (every later call returns the same
    store) and closes them all at the end.

    When a history is opened, announcements older than ``retention_days()`` are removed. A
    damaged file is moved aside (:func:`~app.core.sqlite_files.move_aside`) and a new, empty history
    started in its place: :attr:`OpenedHistory.moved_aside` says where it went. A history that
    cannot be opened otherwise (newer version, unwritable) raises HistoryStoreError.
    """

    def __init__(self, data_dir: Path, *, retention_days: Callable[[], int]) -> None:
        self._data_dir = data_dir
        self._retention_days = retention_days
        self._open: dict[Path, HistoryStore] = {}

    def open(self, server_url: str, username: str) -> OpenedHistory:
        path = HistoryStore.path_for(self._data_dir, server_url, username)
        store = self._open.get(path)
        if store is not None:
            return OpenedHistory(store)
        moved_aside = None
        try:
            store = HistoryStore(path)
        except HistoryDamagedError as exc:
            log.error("%s", exc)
            try:
                moved_aside = move_aside(path)
            except OSError as move_error:
                raise HistoryStoreError(
                    f"{exc} It could not be moved aside either ({move_error})."
                ) from move_error
            log.warning("damaged history moved aside to %s", moved_aside)
            store = HistoryStore(path)
        days = self._retention_days()
        removed = store.purge(days)
        if removed:
            log.info("removed %d announcements older than %d days", removed, days)
        self._open[path] = store
        return OpenedHistory(store, moved_aside)

    def close(self) -> None:
        """Close every history opened (the worker must no longer write)."""
        for store in self._open.values():
            store.close()
        self._open.clear()
