"""What still needs the person's attention, and when it has had it (no Qt here).

Rules kept by :class:`Attention`:

- **Restore.** When a history comes into use (the tray starts, another user logs in), what the
  last run left undone comes back: the window of each urgent announcement not acknowledged,
  with a notification (urgent: at once, even in do not disturb), and every announcement stored
  but never told. Those are told as one catch-up, left open so that the stream's replay of what
  was missed meanwhile joins it: one summary for both, when that replay ends, or as soon as it
  is clear that none comes (login required, an error, stopped; without either, the toast
  policy's idle time ends it).
- **Urgent.** An urgent announcement opens its window (once) when it arrives; a revoked one
  loses its window and its notification (the history keeps it, marked withdrawn).
- **Corrected, reminded.** A correction is told once as an update (its urgent window, if
  waiting, shows the new text); a reminder is told again, and an urgent one not acknowledged
  opens its window again.
- **Shown.** What the notifier told is marked shown in the history; thousands (a summary) in
  turns of :data:`SHOWN_PER_TURN`, so the GUI answers in between; everything still waiting is
  written before the history changes or closes.
- **Acknowledged.** Acknowledge (its window, the history, a notification) is written to the
  history here, once: :meth:`HistoryStore.queue_ack` marks it acknowledged, read and shown and
  queues the receipt in one transaction, and the store wakes the receipt sender on the
  worker's loop (its receipt listener), which sends it, retried until it is sent, even after a
  restart. The worker is not asked to write it again. Then its window and notification close.

Use it from one thread (the GUI's); the history store is thread-safe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from app.core.model import Announcement, ConnState, Priority
from app.core.store import HistoryStore

log = logging.getLogger(__name__)

SHOWN_PER_TURN = 1000  # a summary's thousands are marked shown this many per turn

# the stream stopped: no replay will join what the last run left untold
NO_REPLAY_COMING = frozenset({ConnState.LOGIN_REQUIRED, ConnState.ERROR, ConnState.STOPPED})


class Notifications(Protocol):
    """What :class:`Attention` asks of the notifier (``app.ui.notifier.Notifier``)."""

    def announcement(self, ann: Announcement) -> None: ...
    def announcements(self, anns: list[Announcement]) -> None: ...
    def update(self, ann: Announcement) -> None: ...
    def reminder(self, ann: Announcement) -> None: ...
    def catch_up_started(self) -> None: ...
    def catch_up_finished(self) -> None: ...
    def dismiss(self, ann_id: str) -> None: ...


class Attention:
    """Decides what is brought (back) to the person's attention and records when it was had.

    ``notifications`` tells (toasts, summaries); ``open_urgent(ann)`` shows an urgent
    announcement's window (the caller keeps one per id); ``close_urgent(ann_id)`` closes it if
    open; ``schedule_marks()`` asks for :meth:`mark_some` to be called on a later turn of the
    caller's event loop.
    """

    def __init__(
        self,
        notifications: Notifications,
        *,
        open_urgent: Callable[[Announcement], None],
        close_urgent: Callable[[str], None],
        schedule_marks: Callable[[], None],
        per_turn: int = SHOWN_PER_TURN,
    ) -> None:
        if per_turn < 1:
            raise ValueError("per_turn must be at least 1")
        self._notifications = notifications
        self._open_urgent = open_urgent
        self._close_urgent = close_urgent
        self._schedule_marks = schedule_marks
        self._per_turn = per_turn
        self._store: HistoryStore | None = None
        self._restoring = False  # what the last run left untold waits for the first replay
        self._to_mark: list[str] = []  # told, still to be marked shown (in turns)
        self._closed = False

    @property
    def store(self) -> HistoryStore | None:
        """The history in use (of the current server and user)."""
        return self._store

    @property
    def restoring(self) -> bool:
        """True while what the last run left untold is gathered, waiting for the replay."""
        return self._restoring

    # ------------------------------------------------------------------ the history in use

    def use_store(self, store: HistoryStore) -> None:
        """Use ``store`` from now on: what was told is written to the one before, then what
        the last run left undone in ``store`` comes back (see the module's rules)."""
        if store is self._store or self._closed:
            return
        self.flush()
        self._store = store
        urgent = [s.announcement for s in store.unacknowledged_urgent()]
        for ann in urgent:
            self._show_urgent(ann)
            self._notifications.announcement(ann)
        waiting = {a.id for a in urgent}
        untold = [s.announcement for s in store.unshown() if s.announcement.id not in waiting]
        if untold:
            log.info("%d announcements were stored but never shown: showing them", len(untold))
            self._notifications.catch_up_started()
            for ann in untold:
                self._notifications.announcement(ann)
            self._restoring = True  # left open: the replay joins it

    def close(self) -> None:
        """Write what is still waiting (before the history closes); ignore everything after."""
        self.flush()
        self._closed = True

    # ------------------------------------------------------------------ the stream

    def arrived(self, ann: Announcement) -> None:
        """A new announcement (already stored)."""
        if self._closed:
            return
        self._notifications.announcement(ann)
        if ann.priority is Priority.URGENT:
            self._show_urgent(ann)

    def arrived_many(self, anns: list[Announcement]) -> None:
        """A catch-up's batch (already stored), in order."""
        if self._closed or not anns:
            return
        self._notifications.announcements(anns)
        for ann in anns:
            if ann.priority is Priority.URGENT:
                self._show_urgent(ann)

    def updated(self, ann: Announcement) -> None:
        """Corrected (already stored, ``ann`` its new text): told once as an update; an open
        urgent window shows the new text (``open_urgent`` again: the caller refreshes it)."""
        if self._closed:
            return
        self._notifications.update(ann)
        if ann.priority is Priority.URGENT and self._waiting_for_ack(ann.id):
            self._show_urgent(ann)

    def reminded(self, ann: Announcement) -> None:
        """Reminded of (already recorded): told again; an urgent one not acknowledged opens
        its window again."""
        if self._closed:
            return
        self._notifications.reminder(ann)
        if ann.priority is Priority.URGENT and self._waiting_for_ack(ann.id):
            self._show_urgent(ann)

    def _waiting_for_ack(self, ann_id: str) -> bool:
        stored = self._store.get(ann_id) if self._store is not None else None
        return stored is not None and not stored.acked and not stored.withdrawn

    def _show_urgent(self, ann: Announcement) -> None:
        """Its window on screen (it stays until acknowledged): the person was shown it."""
        self._open_urgent(ann)
        if self._store is not None:
            self._store.mark_displayed([ann.id])

    def displayed(self, ann_ids: Sequence[str]) -> None:
        """The notifier showed these to the person (a toast, or a summary that counts them):
        their ``displayed`` receipts are queued. Held back (Do not disturb, quiet hours), an
        announcement is not displayed until the summary that counts it shows."""
        if self._store is not None and not self._closed and ann_ids:
            self._store.mark_displayed(ann_ids)

    def revoked(self, ann_id: str) -> None:
        """Withdrawn (already marked so in the history, which keeps it): its notification and
        window off the screen."""
        if self._closed:
            return
        self._notifications.dismiss(ann_id)
        self._close_urgent(ann_id)

    def catch_up_started(self) -> None:
        if not self._closed:
            self._notifications.catch_up_started()

    def catch_up_finished(self) -> None:
        """The replay ended: its summary, joined by what the last run left untold."""
        if self._closed:
            return
        self._notifications.catch_up_finished()
        if self._restoring:
            self._end_restore()

    def connection(self, state: ConnState) -> None:
        """The connection state changed: a stopped stream brings no replay to wait for."""
        if self._restoring and not self._closed and state in NO_REPLAY_COMING:
            self._end_restore()

    def _end_restore(self) -> None:
        self._restoring = False
        self._notifications.catch_up_finished()

    # ------------------------------------------------------------------ shown

    def shown(self, ann_ids: Sequence[str]) -> None:
        """The notifier told these: mark them shown (thousands: in turns)."""
        if self._store is None or self._closed:
            return
        if len(ann_ids) <= self._per_turn and not self._to_mark:
            self._store.mark_shown(ann_ids)
            return
        self._to_mark.extend(ann_ids)
        self._schedule_marks()

    def mark_some(self) -> None:
        """One turn: mark up to ``per_turn`` of those waiting; ask for another turn if more."""
        chunk = self._to_mark[: self._per_turn]
        del self._to_mark[: self._per_turn]
        if chunk and self._store is not None and not self._closed:
            self._store.mark_shown(chunk)
        if self._to_mark:
            self._schedule_marks()

    def flush(self) -> None:
        """Mark everything waiting now."""
        marks, self._to_mark = self._to_mark, []
        if marks and self._store is not None and not self._closed:
            self._store.mark_shown(marks)

    # ------------------------------------------------------------------ acknowledged

    def acknowledge(self, ann_id: str) -> bool:
        """Acknowledge pressed: written to the history once (the receipt queued with it; the
        store wakes the sender), then its window and notification close. True when this call
        acknowledged it; False when it was acknowledged before, or there is no history."""
        if self._closed:
            return False
        store = self._store
        written = store.queue_ack(ann_id) if store is not None else False
        self._close_urgent(ann_id)
        self._notifications.dismiss(ann_id)
        return written
