"""The composition root: builds the settings, the history stores, the worker, the tray, the
notifier, the login flow and the windows, and connects their signals in ONE place
(:meth:`Root._connect`). It holds no policy: the toast rules live in the toast policy, the
stream, storing and receipts in the worker's connection, what needs the person's attention
(restored after a crash, marked shown, acknowledged, urgent windows opened) in
:class:`Attention`, the settings in :class:`Settings`, the login conversation in
:class:`LoginFlow`, opening and repairing histories in :class:`HistoryStores`, the words of
every message box in :class:`Notices`. What remains here is keeping the windows in step with
the current history (which store, which urgent windows). A proxy that asks for credentials
is :class:`ProxyFlow`'s.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.core.attention import Attention
from app.core.autostart import Autostart
from app.core.config import Config, Paths
from app.core.history_stores import HistoryStores
from app.core.model import Announcement, ConnState, Status
from app.core.secrets import SecretStore
from app.core.store import HistoryStore
from app.core.toast_policy import ToastPolicy
from app.ui import notices
from app.ui.login_flow import LoginAttempt, LoginFlow
from app.ui.notices import Notices
from app.ui.notifier import FreedesktopNotifications, Notifier
from app.ui.proxy_flow import ProxyFlow
from app.ui.settings import Settings
from app.ui.toast_window import TOAST_TIMEOUT_MS
from app.ui.tray import Tray
from app.ui.wake import WakeMonitor
from app.ui.worker import StreamWorker

if TYPE_CHECKING:  # the windows are imported when first opened: not at start-up
    from app.core.doctor import Check
    from app.ui.diagnose_window import DiagnoseWindow
    from app.ui.history_window import HistoryWindow
    from app.ui.login_dialog import LoginDialog
    from app.ui.settings_dialog import SettingsDialog
    from app.ui.urgent_window import UrgentWindow

log = logging.getLogger(__name__)

UNREAD_INTERVAL_MS = 200  # new announcements update the unread badge at most this often


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
        ask_yes_no: notices.AskYesNo = notices.ask_yes_no,
        inform: notices.Inform = notices.inform,
        toast_timeout_ms: int = TOAST_TIMEOUT_MS,
        worker: StreamWorker | None = None,
        parent: QObject | None = None,
    ) -> None:
        """``worker``: one made (and maybe started, preparing the stored login) before the GUI
        was built; by default one is made here."""
        super().__init__(parent)
        self.paths = paths
        self._secrets = secrets  # the doctor reads the stored login and proxy credentials
        settings = self.settings = Settings(config, paths, autostart=autostart, parent=self)
        self.notices = Notices(inform=inform, ask_yes_no=ask_yes_no, parent=self)
        self.stores = HistoryStores(
            paths.data_dir, retention_days=lambda: settings.config.retention_days
        )
        if worker is None:
            worker = StreamWorker(config=config, secrets=secrets, transport=transport)
        self.worker = worker
        self.tray = Tray(self)
        self.notifier = Notifier(
            self.tray.icon,
            policy=ToastPolicy(lambda: settings.config),
            bus=bus,
            timeout_ms=toast_timeout_ms,
            parent=self,
        )
        self.login_flow = LoginFlow(settings, self.notices, parent=self)
        self.proxy_flow = ProxyFlow(parent=self)
        self.wake = WakeMonitor(parent=self)
        self.history: HistoryWindow | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.diagnosis: DiagnoseWindow | None = None
        self.urgent: dict[str, UrgentWindow] = {}
        self._shut_down = False
        # thousands of arrivals: one unread COUNT per UNREAD_INTERVAL_MS, not one each
        self._unread_timer = QTimer(self, singleShot=True, interval=UNREAD_INTERVAL_MS)
        # the next turn of the event loop, for marking thousands shown in turns
        self._mark_timer = QTimer(self, singleShot=True, interval=0)
        self.attention = Attention(
            self.notifier,
            open_urgent=self._open_urgent,
            close_urgent=self._close_urgent,
            schedule_marks=self._mark_timer.start,
        )
        self._connect()

    @property
    def store(self) -> HistoryStore | None:
        """The history of the current server and user (the windows show it)."""
        return self.attention.store

    # ------------------------------------------------------------------ wiring

    def _connect(self) -> None:
        w, t, n, s = self.worker, self.tray, self.notifier, self.settings
        login, say, a, proxy = self.login_flow, self.notices, self.attention, self.proxy_flow
        # the worker's methods are thread-safe: call them directly on the GUI thread (its own
        # thread runs the asyncio loop, not a Qt event loop, so queued calls would never run)
        direct = Qt.ConnectionType.DirectConnection
        # what the worker tells (queued to this thread)
        w.statusChanged.connect(self._on_status)
        w.announcementReceived.connect(self._on_announcement)
        w.announcementsReceived.connect(self._on_announcements)
        w.revoked.connect(self._on_revoked)
        w.updated.connect(self._on_updated)
        w.reminded.connect(self._on_reminded)
        w.loggedIn.connect(self._on_logged_in)
        w.loginFailed.connect(login.failed)
        w.loggedOut.connect(self._on_logged_out)
        w.catchUpStarted.connect(self._on_catch_up_started)
        w.catchUpFinished.connect(self._on_catch_up_finished)
        # the tray menu
        t.historyRequested.connect(self.show_history)
        t.reconnectRequested.connect(w.reconnect_now, direct)
        t.loginRequested.connect(login.show)
        t.logoutRequested.connect(w.logout, direct)
        t.dndToggled.connect(s.set_do_not_disturb)
        t.settingsRequested.connect(self.show_settings)
        t.diagnoseRequested.connect(self.show_diagnosis)
        t.quitRequested.connect(self.quit)
        # the settings: changed in one place; the toast policy reads them, these follow
        s.changed.connect(t.settings_changed)
        s.changed.connect(n.settings_changed)
        s.changed.connect(w.use_config, direct)
        s.saveFailed.connect(say.settings_not_saved)
        s.autostartFailed.connect(say.autostart_failed)
        s.languageChanged.connect(say.language_after_restart)
        # the login conversation
        login.attempt.connect(self._log_in)
        # the sign-in with the organisation account (single sign-on), carried out by the worker
        login.optionsWanted.connect(w.fetch_sign_in_options, direct)
        login.signIn.connect(w.sign_in, direct)
        login.signInCancelled.connect(w.cancel_sign_in, direct)
        w.signInOptions.connect(login.options_known)
        w.signInWaiting.connect(login.sign_in_waiting)
        w.signInFailed.connect(login.sign_in_failed)
        w.signedIn.connect(self._on_signed_in)
        # a proxy that asks for credentials (HTTP 407): the dialog, the keyring, a reconnect
        w.statusChanged.connect(proxy.status_changed)
        w.loginFailed.connect(proxy.login_failed)
        login.attempt.connect(proxy.allow_again)
        proxy.store.connect(w.store_proxy_credentials, direct)
        w.proxyCredentialsStored.connect(proxy.stored)
        w.proxyCredentialsNotStored.connect(proxy.not_stored)
        proxy.reconnectRequested.connect(self._reconnect_stored)
        # toasts and notifications
        n.clicked.connect(self._toast_clicked)
        n.acknowledgeRequested.connect(self.acknowledge)
        n.shown.connect(a.shown)
        n.displayed.connect(a.displayed)
        n.alertsStopped.connect(t.set_alerts_stopped)  # the tray says so while it holds
        n.holdChanged.connect(t.set_hold)  # do not disturb, quiet hours: the tray says so
        self.wake.wokeUp.connect(w.reconnect_now, direct)
        self._unread_timer.timeout.connect(self._update_unread)
        self._mark_timer.timeout.connect(a.mark_some)

    # windows made while the tray runs are wired as they are made, here

    def _new_history_window(self, store: HistoryStore) -> HistoryWindow:
        from app.ui.history_window import HistoryWindow

        window = HistoryWindow(store)
        window.readChanged.connect(self._update_unread)
        window.acknowledgeRequested.connect(self.acknowledge)
        return window

    def _new_urgent_window(self, ann: Announcement) -> UrgentWindow:
        from app.ui.urgent_window import UrgentWindow

        window = UrgentWindow(ann)
        window.acknowledged.connect(self.acknowledge)
        return window

    def _new_settings_dialog(self) -> SettingsDialog:
        from app.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.settings.config, log_dir=self.paths.log_dir)
        dialog.saved.connect(self.settings.save)
        dialog.finished.connect(lambda _result: self._settings_closed(dialog))
        return dialog

    # ------------------------------------------------------------------ start

    def start(self, *, password: str | None = None) -> None:
        """Show the tray, start the worker, and connect with the stored login (or ask).
        ``password`` (the demo) logs in as the configured user instead."""
        self.worker.start()
        cfg = self.settings.config
        self.tray.settings_changed(cfg)
        self.notifier.settings_changed(cfg)  # tells the tray whether toasts are held back
        self.tray.show()
        self.wake.start()
        if cfg.server_url and cfg.username and password is not None:
            self.login(cfg.server_url, cfg.username, password)
        elif cfg.server_url and cfg.username:
            self._connect_stored()
        else:
            self.login_flow.show()

    def login(self, server_url: str, username: str, password: str) -> None:
        """Log in (the demo, tests): as from the login dialog."""
        self.login_flow.request(server_url, username, password)

    def _connect_stored(self) -> None:
        """Connect as the settings' server and user, with the login stored for them."""
        cfg = self.settings.config
        store = self._use_store(cfg.server_url, cfg.username)
        self.worker.connect_stored(cfg.server_url, cfg.username, store)

    def _reconnect_stored(self) -> None:
        """Connect again with the stored login (new proxy credentials were just kept)."""
        if self._shut_down:
            return
        cfg = self.settings.config
        if cfg.server_url and cfg.username:
            self._connect_stored()

    def follow_login(self, key: str) -> None:
        """``login`` on the command line stored the login ``key`` (and saved its server and user
        in the settings): when it is the settings' login, connect with it now, as at a start."""
        if self._shut_down:
            return
        self.settings.reload()
        if not self.settings.is_current_login(key):
            log.info("the command line logged in to another server or user: not followed")
            return
        log.info("the command line logged in: connecting with that login")
        self._connect_stored()

    def follow_logout(self, key: str) -> None:
        """``logout`` on the command line is ending the login ``key`` (it makes the server calls
        and removes the stored login): when it is this tray's, stop and forget it, at once."""
        if self._shut_down or not self.settings.is_current_login(key):
            return
        log.info("the command line logged out: the stream ends and the login is forgotten")
        self.worker.forget()

    @property
    def login_dialog(self) -> LoginDialog | None:
        return self.login_flow.dialog

    def _log_in(self, attempt: LoginAttempt) -> None:
        """Open that history (the windows follow it), remember the account, ask the worker."""
        store = self._use_store(attempt.server_url, attempt.username)
        self.settings.remember_account(attempt.server_url, attempt.username)
        self.worker.login(
            attempt.server_url,
            attempt.username,
            attempt.password,
            store,
            this_run_only=attempt.this_run_only,
        )

    def _on_signed_in(self, server_url: str, username: str) -> None:
        """A sign-in stored the login of the user it named: remember the account, open that
        history, connect with the stored login (its loggedIn closes the dialog)."""
        if self._shut_down:
            return
        store = self._use_store(server_url, username)
        self.settings.remember_account(server_url, username)
        self.worker.connect_stored(server_url, username, store)

    # ------------------------------------------------------------------ history store

    def _use_store(self, server_url: str, username: str) -> HistoryStore:
        """The history of this server and user (opened once), shown in the windows."""
        opened = self.stores.open(server_url, username)
        if opened.moved_aside is not None:
            self.notices.history_moved_aside(opened.moved_aside)
        store = opened.store
        if store is not self.store:
            if self.history is not None:
                self.history.close()
                self.history.deleteLater()
                self.history = None
            self._close_urgent_windows()  # another user's: they come back with that user
            self.attention.use_store(store)  # what the last run left undone comes back
        self._update_unread()
        return store

    def _history(self) -> HistoryWindow | None:
        if self.history is None and self.store is not None:
            self.history = self._new_history_window(self.store)
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
        self.attention.connection(status.state)
        if status.state is ConnState.LOGIN_REQUIRED:
            self.tray.set_user("")
            self.login_flow.show(self.tray.login_reason(status))

    def _on_announcement(self, ann: Announcement) -> None:
        if self._shut_down:
            return
        if self.history is not None:
            self.history.announcement_arrived(ann)
        self._schedule_unread()
        self.attention.arrived(ann)

    def _on_announcements(self, anns: list[Announcement]) -> None:
        """A catch-up's batch: the history, the unread count and the toasts updated once."""
        if self._shut_down or not anns:
            return
        if self.history is not None:
            self.history.announcements_arrived(anns)
        self._schedule_unread()
        self.attention.arrived_many(anns)

    def _open_urgent(self, ann: Announcement) -> None:
        window = self.urgent.get(ann.id)
        if window is not None:  # corrected: its new text; reminded: in front again
            if window.announcement != ann:
                window.show_announcement(ann)
            window.show()
            window.raise_()
            return
        window = self._new_urgent_window(ann)
        self.urgent[ann.id] = window
        window.show()

    def _close_urgent(self, ann_id: str) -> None:
        window = self.urgent.pop(ann_id, None)
        if window is not None:
            window.dismiss()
            window.deleteLater()

    def _close_urgent_windows(self) -> None:
        for window in self.urgent.values():
            window.dismiss()
            window.deleteLater()
        self.urgent.clear()

    def acknowledge(self, ann_id: str) -> None:
        """Acknowledge an urgent announcement, from its window, the history or a notification
        (:meth:`Attention.acknowledge` writes it and closes its window and notification); the
        history, badge, tooltip and menu show it read."""
        self.attention.acknowledge(ann_id)
        if self.history is not None:
            self.history.announcement_changed(ann_id)
        self._update_unread()

    # the worker's signals reach this QObject's methods queued (a plain callable would run on
    # the worker's thread): these hand them on to Attention on the GUI thread

    def _on_catch_up_started(self) -> None:
        self.attention.catch_up_started()

    def _on_catch_up_finished(self) -> None:
        self.attention.catch_up_finished()

    def _on_revoked(self, ann_id: str) -> None:
        if self._shut_down:
            return
        if self.history is not None:
            self.history.announcement_withdrawn(ann_id)
        self._schedule_unread()
        self.attention.revoked(ann_id)

    def _on_updated(self, ann: Announcement) -> None:
        """Corrected (the history holds its new text, marked updated): told once."""
        if self._shut_down:
            return
        if self.history is not None:
            self.history.announcement_changed(ann.id)
        self.attention.updated(ann)

    def _on_reminded(self, ann: Announcement) -> None:
        if not self._shut_down:
            self.attention.reminded(ann)

    def _on_logged_in(self, username: str) -> None:
        if self._shut_down:
            return
        self.tray.set_user(username)
        self.login_flow.succeeded(username)

    def _on_logged_out(self) -> None:
        if self._shut_down:
            return
        self.tray.set_user("")
        self.tray.set_status(Status(ConnState.STOPPED))

    # ------------------------------------------------------------------ windows

    def show_history(self) -> None:
        history = self._history()
        if history is None:
            self.login_flow.show()
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

    def show_settings(self) -> None:
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            return
        self.settings_dialog = self._new_settings_dialog()
        self.settings_dialog.show()

    def _settings_closed(self, dialog: SettingsDialog) -> None:
        if self.settings_dialog is dialog:
            self.settings_dialog = None
        dialog.deleteLater()

    def show_diagnosis(self) -> None:
        """*Diagnose connection…*: the doctor's checks for the current settings, in a window."""
        from app.ui.diagnose_window import DiagnoseWindow

        if self.diagnosis is None:
            settings, paths, secrets = self.settings, self.paths, self._secrets

            def diagnose() -> list[Check]:  # on the window's thread: the current settings
                import asyncio

                from app.core import doctor
                from app.core.config.layers import sources

                checks = doctor.diagnose(settings.config, secrets=secrets, sources=sources(paths))
                return asyncio.run(checks)

            self.diagnosis = DiagnoseWindow(diagnose)
        self.diagnosis.start()
        if self.diagnosis.isVisible():
            self.diagnosis.raise_()
        else:
            self.diagnosis.show()

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
        self.attention.close()  # what was told is written; nothing more after this
        self._mark_timer.stop()
        self.wake.stop()
        finished = self.worker.shutdown(timeout_ms)
        if not finished:
            log.error("the worker thread did not finish within %d ms", timeout_ms)
        self.notifier.close()
        self._unread_timer.stop()
        self._close_urgent_windows()
        self.login_flow.close()
        self.proxy_flow.close()
        for widget in (self.history, self.settings_dialog):
            if widget is not None:
                widget.close()
                widget.deleteLater()
        self.history = self.settings_dialog = None
        self.tray.close()
        if finished:  # the worker no longer writes: the stores may close
            self.stores.close()
        return finished
