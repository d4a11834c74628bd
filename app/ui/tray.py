"""The tray icon and its menu, both drawn from one small piece of state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from app.core.config import Config
from app.core.errors import ErrorKind
from app.core.model import ConnState, Status
from app.core.toast_policy import Hold, HoldReason
from app.ui import icons, widgets

_TRYING = frozenset({ConnState.CONNECTING, ConnState.OFFLINE})  # the stream is (re)connecting


@dataclass(frozen=True, slots=True)
class TrayState:
    status: Status = field(default_factory=lambda: Status(ConnState.STOPPED))
    username: str = ""  # "" while logged out
    unread: int = 0
    dnd: bool = False
    hold: Hold | None = None  # toasts held back (do not disturb, quiet hours)
    alerts_stopped: datetime | None = None  # no announcement can arrive since then
    settings_problem: bool = False  # a value in IT's system file could not be used (logged)


class Tray(QObject):
    """The system tray icon: icon and tooltip show the state; the menu's actions are made once
    and their words updated from it each time it opens (and whenever the state changes, for
    D-Bus trays that cache menus): nothing is rebuilt, and an unchanged word is not set again.
    The unread count shows in all three: the icon's badge, the tooltip and the menu. While no
    announcement can arrive ("alerts stopped") and while toasts are held back (do not disturb,
    quiet hours), the icon carries a mark and the tooltip says so.

    Signals (GUI thread):
        historyRequested(): Announcements… chosen, or the icon clicked.
        reconnectRequested(): Reconnect now chosen (offered while logged in and not connected).
        loginRequested(): Log in… chosen.
        logoutRequested(): Log out chosen.
        dndToggled(bool): Do not disturb switched (asks for it: the mark follows the settings,
            see :meth:`settings_changed`).
        settingsRequested(): Settings… chosen.
        diagnoseRequested(): Diagnose connection… chosen.
        quitRequested(): Quit chosen.
    """

    historyRequested = Signal()
    reconnectRequested = Signal()
    loginRequested = Signal()
    logoutRequested = Signal()
    dndToggled = Signal(bool)
    settingsRequested = Signal()
    diagnoseRequested = Signal()
    quitRequested = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = TrayState()
        self.icon = QSystemTrayIcon(self)
        self.menu = QMenu()
        self.menu.setAccessibleName(self.tr("Tray Notifier menu"))
        self._build_menu()
        self.menu.aboutToShow.connect(self.rebuild_menu)
        self.icon.setContextMenu(self.menu)
        self.icon.activated.connect(self._activated)
        self._refresh()

    # ------------------------------------------------------------------ state

    def set_status(self, status: Status) -> None:
        self._update(status=status)

    def set_user(self, username: str) -> None:
        self._update(username=username)

    def set_unread(self, unread: int) -> None:
        self._update(unread=unread)

    def set_dnd(self, dnd: bool) -> None:
        self._update(dnd=dnd)

    def set_hold(self, hold: Hold | None) -> None:
        """Toasts are held back now (``Notifier.holdChanged``), or not (None)."""
        self._update(hold=hold)

    def set_alerts_stopped(self, since: datetime | None) -> None:
        """No announcement can arrive since ``since`` (``Notifier.alertsStopped``), or that is
        over (None)."""
        self._update(alerts_stopped=since)

    def settings_changed(self, config: Config) -> None:
        """The settings changed (``Settings.changed``): show their do-not-disturb mark, and say
        when IT's system file held something that could not be used (it fell back; logged)."""
        self.set_dnd(config.do_not_disturb)
        self._update(settings_problem=bool(config.problems))

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def _update(self, **changes: object) -> None:
        new = replace(self.state, **changes)  # type: ignore[arg-type]
        if new != self.state:
            self.state = new
            self._refresh()

    def _refresh(self) -> None:
        s = self.state
        shown = s.status.state
        if not s.username and shown is not ConnState.CONNECTING:
            shown = ConnState.LOGIN_REQUIRED
        quiet = s.hold is not None and s.hold.reason is HoldReason.QUIET_HOURS
        self.icon.setIcon(
            icons.tray_icon(
                shown, s.unread, dnd=s.dnd, quiet=quiet, stopped=s.alerts_stopped is not None
            )
        )
        self.icon.setToolTip(self.tooltip())
        self.rebuild_menu()

    # ------------------------------------------------------------------ words

    def status_text(self) -> str:
        """The connection state in words."""
        s = self.state
        state = s.status.state
        if state is ConnState.CONNECTED:
            return self.tr("Connected as %1").replace("%1", s.username)
        if state is ConnState.CONNECTING:
            return self.tr("Connecting…")
        if state is ConnState.OFFLINE:
            if s.status.retry_in is not None:
                return self.tr(
                    "Offline: trying again in %n s", "", max(1, round(s.status.retry_in))
                )
            return self.tr("Offline: trying again")
        if state is ConnState.LOGIN_REQUIRED or not s.username:
            return self.tr("Not logged in")
        if state is ConnState.ERROR:
            return self.tr("Not connected: %1").replace("%1", self.error_text(s.status))
        return self.tr("Not connected")

    def error_text(self, status: Status) -> str:
        """Why the connection stopped, in the person's language: worded from the error's kind
        (the English detail is for the log); a status without a kind shows its detail."""
        kind = status.error
        if kind is ErrorKind.UNREACHABLE:
            return self.tr("the server cannot be reached")
        if kind is ErrorKind.CERTIFICATE:
            return self.tr("the server's certificate is not trusted (ask IT for the CA bundle)")
        if kind is ErrorKind.PROXY_AUTH:
            return self.tr(
                "the proxy asks for credentials: run tray-notifier proxy-login --user NAME "
                "--password-stdin"
            )
        if kind is ErrorKind.PROXY_REFUSED:
            return self.tr(
                "the proxy refused the stored credentials: run tray-notifier proxy-login --user "
                "NAME --password-stdin"
            )
        if kind is ErrorKind.NOT_SERVER:
            return self.tr(
                "the address does not answer like an announcement server (a proxy or a login "
                "page may be in the way)"
            )
        if kind is ErrorKind.ACCESS_DENIED:
            return self.tr("the server refused access to the stream (HTTP 403)")
        if kind is ErrorKind.NOT_FOUND:
            return self.tr("the stream address does not exist (HTTP 404): check the server address")
        if kind is ErrorKind.PROTOCOL:
            return self.tr("the server answered in an unexpected way: check the server address")
        if kind is ErrorKind.SERVER_ERROR:
            return self.tr("the server failed: try again later")
        if kind is ErrorKind.CONFIG:
            return self.tr("a setting cannot be used: see the log")
        if kind is ErrorKind.HISTORY:
            return self.tr("the history file cannot be written: see the log")
        if kind is ErrorKind.KEYRING:
            return self.tr("the system keyring is not available")
        if kind in (
            ErrorKind.LOGIN_REQUIRED,
            ErrorKind.WRONG_CREDENTIALS,
            ErrorKind.STORED_PASSWORD_REFUSED,
        ):
            return self.tr("log in again")
        if kind is ErrorKind.UNEXPECTED:
            return self.tr("unexpected error: see the log")
        return status.detail or self.tr("see the log")

    def login_reason(self, status: Status) -> str:
        """Why the login dialog opens by itself, in the person's language ("" when there is
        nothing to say: no login was stored)."""
        if status.error is ErrorKind.STORED_PASSWORD_REFUSED:
            return self.tr(
                "The stored password stopped working: it was changed, or the account is locked."
                " Log in with your current password."
            )
        if status.error is ErrorKind.LOGIN_REQUIRED:
            return self.tr("Your login has expired or was ended: log in again.")
        return ""

    def tooltip(self) -> str:
        s = self.state
        lines = [self.tr("Tray Notifier"), self.status_text()]
        if s.alerts_stopped is not None:
            lines.append(
                self.tr("Not receiving announcements since %1").replace(
                    "%1", widgets.format_moment(s.alerts_stopped)
                )
            )
        if s.unread:
            lines.append(self.tr("%n unread announcement(s)", "", s.unread))
        if s.dnd:  # (the policy holds toasts back for it too: one line says both)
            lines.append(
                self.tr(
                    "Do not disturb is on: announcements are held back (urgent ones still show)"
                )
            )
        elif s.hold is not None and s.hold.reason is HoldReason.QUIET_HOURS:
            until = s.hold.until.strftime("%H:%M") if s.hold.until is not None else ""
            lines.append(
                self.tr(
                    "Quiet hours until %1: announcements are held back (urgent ones still show)"
                ).replace("%1", until)
            )
        if s.settings_problem:
            lines.append(self.tr("IT's settings could not all be used: see the log"))
        return "\n".join(lines)

    # ------------------------------------------------------------------ menu

    def _build_menu(self) -> None:
        """The actions, once; :meth:`rebuild_menu` gives them their words."""
        m = self.menu
        self._status_action = m.addAction("")
        self._status_action.setEnabled(False)
        self._reconnect_action = m.addAction(self.tr("Reconnect now"))
        self._reconnect_action.triggered.connect(self.reconnectRequested)
        m.addSeparator()
        self._history_action = m.addAction("")
        self._history_action.triggered.connect(self.historyRequested)
        self._account_action = m.addAction("")  # Log in… or Log out (user)
        self._account_action.triggered.connect(self._account_chosen)
        self._dnd_action = QAction(self.tr("Do not disturb"), m)
        self._dnd_action.setCheckable(True)
        self._dnd_action.toggled.connect(self._dnd_chosen)
        m.addAction(self._dnd_action)
        m.addAction(self.tr("Settings…")).triggered.connect(self.settingsRequested)
        m.addAction(self.tr("Diagnose connection…")).triggered.connect(self.diagnoseRequested)
        m.addSeparator()
        m.addAction(self.tr("Quit")).triggered.connect(self.quitRequested)

    def rebuild_menu(self) -> None:
        """Bring the menu's words and marks up to date with the current state."""
        s = self.state
        self._status_action.setText(self.status_text())
        # reconnect_now cuts the wait short while the stream is trying; it cannot restart one
        # that ended (logged out, an error a person must fix)
        trying = bool(s.username) and s.status.state in _TRYING
        if self._reconnect_action.isEnabled() != trying:
            self._reconnect_action.setEnabled(trying)
        self._history_action.setText(
            self.tr("Announcements (%n unread)…", "", s.unread)
            if s.unread
            else self.tr("Announcements…")
        )
        self._account_action.setText(
            self.tr("Log out (%1)").replace("%1", s.username) if s.username else self.tr("Log in…")
        )
        if self._dnd_action.isChecked() != s.dnd:
            self._dnd_action.blockSignals(True)  # showing the state is not asking to change it
            self._dnd_action.setChecked(s.dnd)
            self._dnd_action.blockSignals(False)

    def _account_chosen(self) -> None:
        (self.logoutRequested if self.state.username else self.loginRequested).emit()

    def _dnd_chosen(self, checked: bool) -> None:
        self.dndToggled.emit(checked)

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.historyRequested.emit()

    def close(self) -> None:
        self.icon.hide()
        self.menu.deleteLater()
