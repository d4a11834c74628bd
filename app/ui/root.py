"""The composition root: builds config, stores, secret store, worker, tray, notifier and windows,
and connects every signal in ONE place (:meth:`Root._connect`). It holds no policy: the toast
policy, the stream rules and the history rules live in their own objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import httpx
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from app import config as config_mod
from app.config import Config, ConfigError, Paths
from app.core.autostart import Autostart, AutostartError
from app.core.login_failure import FailureKind, LoginFailure
from app.core.model import Announcement, ConnState, Priority, Status
from app.core.secrets import SecretStore
from app.core.store import HistoryDamagedError, HistoryStore, HistoryStoreError, move_aside
from app.core.toast_policy import ToastPolicy, ToastSettings
from app.ui.history_window import HistoryWindow
from app.ui.login_dialog import LoginDialog
from app.ui.notifier import FreedesktopNotifications, Notifier
from app.ui.settings_dialog import SettingsDialog
from app.ui.tray import Tray
from app.ui.urgent_window import UrgentWindow
from app.ui.wake import WakeMonitor
from app.ui.worker import StreamWorker

log = logging.getLogger(__name__)

AskYesNo = Callable[[str, str], bool]  # (title, question) -> yes?
Inform = Callable[[str, str], None]  # (title, message)


def _ask_yes_no(title: str, question: str) -> bool:
    answer = QMessageBox.question(None, title, question)
    return answer == QMessageBox.StandardButton.Yes


_HEADLESS = frozenset({"offscreen", "minimal"})
UNREAD_INTERVAL_MS = 200  # new announcements update the unread badge at most this often


def _inform(title: str, message: str) -> None:
    """A message box; without a screen (offscreen) nobody could close it: logged instead."""
    if QGuiApplication.platformName() in _HEADLESS:
        log.warning("%s: %s", title, message)
        return
    QMessageBox.information(None, title, message)


def toast_settings(config: Config) -> ToastSettings:
    return ToastSettings(config.do_not_disturb, config.quiet_hours, config.toast_min_priority)


# the stream stopped: no replay will join what the last run left untold
_NO_REPLAY_COMING = frozenset({ConnState.LOGIN_REQUIRED, ConnState.ERROR, ConnState.STOPPED})


class Root(QObject):
    """Owns every long-lived object of the tray application and wires them together.

    Emits no signals. Everything here runs on the GUI thread.
    """

    def __init__(
        self,
        *,
        config: Config,
        paths: Paths,
        secrets: SecretStore,
        autostart: Autostart | None = None,
        bus: FreedesktopNotifications | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        ask_yes_no: AskYesNo = _ask_yes_no,
        inform: Inform = _inform,
        toast_timeout_ms: int = 8000,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.config = config
        self.paths = paths
        self._autostart = autostart
        self._ask_yes_no = ask_yes_no
        self._inform = inform
        self.worker = StreamWorker(config=config, secrets=secrets, transport=transport)
        self.tray = Tray(self)
        self.notifier = Notifier(
            self.tray.icon,
            policy=ToastPolicy(toast_settings(config)),
            bus=bus,
            timeout_ms=toast_timeout_ms,
            parent=self,
        )
        self.wake = WakeMonitor(parent=self)
        self.store: HistoryStore | None = None
        self.history: HistoryWindow | None = None
        self.login_dialog: LoginDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.urgent: dict[str, UrgentWindow] = {}
        self._stores: dict[Path, HistoryStore] = {}
        self._retry: tuple[str, str, str] | None = None  # for "this run only"
        self._shut_down = False
        # what the last run left untold is gathered with the stream's first catch-up: one summary
        self._restoring = False
        # thousands of arrivals: one unread COUNT per UNREAD_INTERVAL_MS, not one each
        self._unread_timer = QTimer(self, singleShot=True, interval=UNREAD_INTERVAL_MS)
        self._unread_timer.timeout.connect(self._update_unread)
        self._connect()

    # ------------------------------------------------------------------ wiring

    def _connect(self) -> None:
        w, t = self.worker, self.tray
        w.statusChanged.connect(self._on_status)
        w.announcementReceived.connect(self._on_announcement)
        w.revoked.connect(self._on_revoked)
        w.loggedIn.connect(self._on_logged_in)
        w.loginFailed.connect(self._on_login_failed)
        w.loggedOut.connect(self._on_logged_out)
        w.catchUpStarted.connect(self._on_catch_up_started)
        w.catchUpFinished.connect(self._on_catch_up_finished)
        t.historyRequested.connect(self.show_history)
        t.loginRequested.connect(self.show_login)
        # the worker's methods are thread-safe: call them directly on the GUI thread (its own
        # thread runs the asyncio loop, not a Qt event loop, so queued calls would never run)
        direct = Qt.ConnectionType.DirectConnection
        t.logoutRequested.connect(w.logout, direct)
        t.dndToggled.connect(self._set_dnd)
        t.settingsRequested.connect(self.show_settings)
        t.quitRequested.connect(self.quit)
        self.notifier.clicked.connect(self._toast_clicked)
        self.notifier.acknowledgeRequested.connect(self.acknowledge)
        self.notifier.shown.connect(self._mark_shown)
        self.wake.wokeUp.connect(w.reconnect_now, direct)

    def start(self, *, password: str | None = None) -> None:
        """Show the tray, start the worker, and connect with the stored login (or ask).
        ``password`` (the demo) logs in as the configured user instead."""
        self.worker.start()
        self.tray.set_dnd(self.config.do_not_disturb)
        self.tray.show()
        self.wake.start()
        cfg = self.config
        if cfg.server_url and cfg.username and password is not None:
            self.login(cfg.server_url, cfg.username, password)
        elif cfg.server_url and cfg.username:
            store = self._use_store(cfg.server_url, cfg.username)
            self.worker.connect_stored(cfg.server_url, cfg.username, store)
        else:
            self.show_login()

    # ------------------------------------------------------------------ history store

    def _use_store(self, server_url: str, username: str) -> HistoryStore:
        """Open (once) the history of this server and user, and show it in the history window."""
        path = HistoryStore.path_for(self.paths.data_dir, server_url, username)
        store = self._stores.get(path)
        if store is None:
            store = self._open_store(path)
            removed = store.purge(self.config.retention_days)
            if removed:
                log.info(
                    "removed %d announcements older than %d days",
                    removed,
                    self.config.retention_days,
                )
            self._stores[path] = store
        if store is not self.store:
            self.store = store
            if self.history is not None:
                self.history.close()
                self.history.deleteLater()
                self.history = None
            self._close_urgent_windows()  # another user's: they come back with that user
            self._restore(store)
        self._update_unread()
        return store

    def _open_store(self, path: Path) -> HistoryStore:
        """Open a history file; a damaged one is moved aside (the user is told where) and a
        new, empty history is started in its place."""
        try:
            return HistoryStore(path)
        except HistoryDamagedError as exc:
            log.error("%s", exc)
            try:
                aside = move_aside(path)
            except OSError as move_error:
                raise HistoryStoreError(
                    f"{exc} It could not be moved aside either ({move_error})."
                ) from move_error
            log.warning("damaged history moved aside to %s", aside)
        self._inform(
            self.tr("Announcement history damaged"),
            self.tr(
                "Your announcement history could not be read: the file is damaged. It was "
                "moved aside to:\n%1\n\nTray Notifier starts with a new, empty history. "
                "New announcements arrive as usual."
            ).replace("%1", str(aside)),
        )
        return HistoryStore(path)

    def _restore(self, store: HistoryStore) -> None:
        """What a quit, crash or kill left undone: the windows of urgent announcements not
        acknowledged come back (with a notification each), and announcements stored but never
        told are toasted, or summed up in one toast when more than a few."""
        urgent = [s.announcement for s in store.unacknowledged_urgent()]
        for ann in urgent:
            self._open_urgent(ann)
            self.notifier.announcement(ann)  # urgent: a notification at once, even in DND
        waiting = {a.id for a in urgent}
        untold = [s.announcement for s in store.unshown() if s.announcement.id not in waiting]
        if untold:
            log.info("%d announcements were stored but never shown: showing them", len(untold))
            self.notifier.catch_up_started()
            for ann in untold:
                self.notifier.announcement(ann)
            # left open: the replay of what was missed meanwhile joins it, and both are told in
            # one summary when that replay ends (or, without one, when the policy's idle time
            # passes)
            self._restoring = True

    def _mark_shown(self, ann_ids: tuple[str, ...]) -> None:
        if self.store is not None and not self._shut_down:
            self.store.mark_shown(ann_ids)

    def _require_store(self) -> HistoryStore:
        assert self.store is not None
        return self.store

    def _history(self) -> HistoryWindow | None:
        if self.history is None and self.store is not None:
            self.history = HistoryWindow(self.store)
            self.history.readChanged.connect(self._update_unread)
            self.history.acknowledgeRequested.connect(self.acknowledge)
        return self.history

    def _update_unread(self) -> None:
        """Badge, tooltip and menu show the unread count now."""
        self._unread_timer.stop()
        if self._shut_down:  # the stores may be closed
            return
        self.tray.set_unread(self.store.unread_count() if self.store is not None else 0)

    def _schedule_unread(self) -> None:
        if not self._unread_timer.isActive():
            self._unread_timer.start()

    # ------------------------------------------------------------------ worker events

    # Signals the worker queued before it stopped may still arrive after shutdown(): ignored.

    def _on_status(self, status: Status) -> None:
        if self._shut_down:
            return
        self.tray.set_status(status)
        self.notifier.connection(status.state)
        if self._restoring and status.state in _NO_REPLAY_COMING:
            self._end_restore()
        if status.state is ConnState.LOGIN_REQUIRED:
            self.tray.set_user("")
            self.show_login()

    def _on_announcement(self, ann: Announcement) -> None:
        if self._shut_down:
            return
        if self.history is not None:
            self.history.schedule_reload()
        self._schedule_unread()
        self.notifier.announcement(ann)
        if ann.priority is Priority.URGENT:
            self._open_urgent(ann)

    def _open_urgent(self, ann: Announcement) -> None:
        if ann.id in self.urgent:
            return
        window = UrgentWindow(ann)
        window.acknowledged.connect(self.acknowledge)
        self.urgent[ann.id] = window
        window.show()

    def _close_urgent_windows(self) -> None:
        for window in self.urgent.values():
            window.dismiss()
            window.deleteLater()
        self.urgent.clear()

    def acknowledge(self, ann_id: str) -> None:
        """Acknowledge an urgent announcement, from its window, the history or a notification:
        the receipt is queued in the history at once (sent by the worker, retried until it is
        sent, even after a restart), its window and notification close, and the history,
        badge, tooltip and menu show it read."""
        store = self.store
        if store is not None:
            store.queue_ack(ann_id)
        window = self.urgent.pop(ann_id, None)
        if window is not None:
            window.dismiss()
            window.deleteLater()
        self.notifier.dismiss(ann_id)
        self.worker.acknowledge(ann_id)
        if self.history is not None:
            self.history.reload()
        self._update_unread()

    def _on_catch_up_started(self) -> None:
        if not self._shut_down:
            self.notifier.catch_up_started()

    def _on_catch_up_finished(self) -> None:
        if not self._shut_down:
            self.notifier.catch_up_finished()
            if self._restoring:
                self._end_restore()

    def _end_restore(self) -> None:
        """Tell what the last run left untold (with the replay, when one came)."""
        self._restoring = False
        self.notifier.catch_up_finished()

    def _on_revoked(self, ann_id: str) -> None:
        if self._shut_down:
            return
        if self.history is not None:
            self.history.schedule_reload()
        self._schedule_unread()
        self.notifier.dismiss(ann_id)
        window = self.urgent.pop(ann_id, None)
        if window is not None:
            window.dismiss()
            window.deleteLater()

    def _on_logged_in(self, username: str) -> None:
        self._retry = None
        self.tray.set_user(username)
        if self.login_dialog is not None:
            self.login_dialog.succeeded()
            self.login_dialog = None

    def _on_login_failed(self, failure: LoginFailure) -> None:
        log.info("login failed (%s): %s", failure.kind.value, failure.message)
        retry, self._retry = self._retry, None
        if (
            failure.kind is FailureKind.KEYRING
            and retry is not None
            and self._ask_yes_no(
                self.tr("Keyring not available"),
                self.tr(
                    "You are logged in, but your login cannot be saved: the system keyring is "
                    "not available or locked.\n\nStay logged in for this run only? You will "
                    "have to log in again next time."
                ),
            )
        ):
            server_url, username, password = retry
            self.worker.login(
                server_url, username, password, self._require_store(), this_run_only=True
            )
            return
        if self.login_dialog is not None:
            self.login_dialog.show_error(self.failure_text(failure))
            self.login_dialog.set_busy(False)

    def failure_text(self, failure: LoginFailure) -> str:
        """A failed login in plain words."""
        kind = failure.kind
        if kind is FailureKind.WRONG_CREDENTIALS:
            return self.tr("The user name or password is wrong. Check both and try again.")
        if kind is FailureKind.UNREACHABLE:
            return self.tr(
                "The server cannot be reached. Check the server address and your network "
                "connection."
            )
        if kind is FailureKind.CERTIFICATE:
            return self.tr(
                "The server's certificate is not trusted. If your organisation uses its own "
                "certificate authority, ask IT to set the CA bundle setting."
            )
        if kind is FailureKind.NOT_SERVER:
            return self.tr("This address is not an announcement server. Check the server address.")
        if kind is FailureKind.KEYRING:
            return self.tr("Your login cannot be saved: the system keyring is not available.")
        return failure.message

    def _on_logged_out(self) -> None:
        self.tray.set_user("")
        self.tray.set_status(Status(ConnState.STOPPED))

    # ------------------------------------------------------------------ windows

    def show_history(self) -> None:
        history = self._history()
        if history is None:
            self.show_login()
            return
        history.reload()
        history.show()
        history.raise_()
        history.activateWindow()

    def _toast_clicked(self, ann_id: str) -> None:
        history = self._history()
        if history is None:
            return
        if ann_id:
            history.show_announcement(ann_id)
        else:
            self.show_history()

    def show_login(self) -> None:
        if self.login_dialog is not None:
            self.login_dialog.raise_()
            self.login_dialog.activateWindow()
            return
        dialog = LoginDialog(
            self.config.server_url, self.config.username, server_fixed=self._server_fixed()
        )
        dialog.loginRequested.connect(self.login)
        dialog.finished.connect(lambda _result: self._login_closed(dialog))
        self.login_dialog = dialog
        dialog.show()

    def _login_closed(self, dialog: LoginDialog) -> None:
        if self.login_dialog is dialog:
            self.login_dialog = None
        dialog.deleteLater()

    def _server_fixed(self) -> bool:
        """IT locked the server, or the environment set it: nobody logs in elsewhere."""
        cfg = self.config
        return bool(cfg.is_locked("server_url") or cfg.set_by_environment("server_url"))

    def login(self, server_url: str, username: str, password: str) -> None:
        """Log in (from the dialog, or the demo): open that history and ask the worker."""
        if self._server_fixed():
            server_url = self.config.server_url
        if self.login_dialog is not None:
            self.login_dialog.set_busy(True)
        self._retry = (server_url, username, password)
        store = self._use_store(server_url, username)
        if (server_url, username) != (self.config.server_url, self.config.username):
            self._save(self.config.with_changes(server_url=server_url, username=username))
        self.worker.login(server_url, username, password, store)

    def show_settings(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            return
        dialog = SettingsDialog(self.config, log_dir=self.paths.log_dir)
        dialog.saved.connect(self.apply_settings)
        dialog.finished.connect(lambda _result: self._settings_closed(dialog))
        self.settings_dialog = dialog
        dialog.show()

    def _settings_closed(self, dialog: SettingsDialog) -> None:
        if self.settings_dialog is dialog:
            self.settings_dialog = None
        dialog.deleteLater()

    # ------------------------------------------------------------------ settings

    def apply_settings(self, new: Config) -> None:
        old = self.config
        if not self._save(new):
            return
        if new.start_at_login != old.start_at_login and self._autostart is not None:
            try:
                self._autostart.set_enabled(new.start_at_login)
            except AutostartError as exc:
                self._inform(
                    self.tr("Start at login"),
                    self.tr("Start at login could not be changed: %1").replace("%1", str(exc)),
                )
        self.tray.set_dnd(new.do_not_disturb)
        self.notifier.policy.settings = toast_settings(new)
        self.notifier.settings_changed()
        if new.language != old.language:
            self._inform(
                self.tr("Language"),
                self.tr("The new language is used after Tray Notifier restarts."),
            )

    def _set_dnd(self, on: bool) -> None:
        self._save(self.config.with_changes(do_not_disturb=on))
        self.tray.set_dnd(on)
        self.notifier.policy.settings = toast_settings(self.config)
        self.notifier.settings_changed()

    def _save(self, new: Config) -> bool:
        try:
            config_mod.save_user(new, self.paths)
        except (OSError, ConfigError) as exc:
            log.error("cannot save settings: %s", exc)
            self._inform(
                self.tr("Settings"),
                self.tr("The settings could not be saved: %1").replace("%1", str(exc)),
            )
            return False
        self.config = new
        return True

    # ------------------------------------------------------------------ quit

    def quit(self) -> None:
        """End the stream, stop the worker thread, close windows and stores, then quit."""
        self.shutdown()
        app = QApplication.instance()
        if app is not None:
            app.quit()

    def shutdown(self, timeout_ms: int = 3000) -> bool:
        """Everything :meth:`quit` does but ending the event loop; True if the thread ended.
        Idempotent."""
        if self._shut_down:
            return True
        self._shut_down = True
        self.wake.stop()
        finished = self.worker.shutdown(timeout_ms)
        if not finished:
            log.error("the worker thread did not finish within %d ms", timeout_ms)
        self.notifier.close()
        self._unread_timer.stop()
        self._close_urgent_windows()
        for widget in (self.history, self.login_dialog, self.settings_dialog):
            if widget is not None:
                widget.close()
                widget.deleteLater()
        self.history = self.login_dialog = self.settings_dialog = None
        self.tray.close()
        if finished:  # the worker no longer writes: the stores may close
            for store in self._stores.values():
                store.close()
            self._stores.clear()
        return finished
