"""Toast delivery: the desktop's native notifications where they work, else our own window.

Order of preference (``showMessage()`` alone is not enough: with no tray it does nothing, where
no notification service answers Qt's D-Bus call it fails with no fallback, and on a
StatusNotifierItem tray its ``Notify`` carries no actions, no urgency and an 8 s expiry):
1. On Linux, whenever a freedesktop notification service is on the session bus, whatever the
   tray host: the ``Notify`` call ourselves (jeepney), with actions: "default" (a click) opens
   the announcement in the history, and an urgent one also offers "acknowledge". Urgency byte
   (:attr:`Toast.urgency`): 0 low, 1 normal and high, 2 (critical, no expiry) urgent and the
   "alerts stopped" warning. ``ActionInvoked`` is handled for our own ids only;
   ``NotificationClosed`` forgets the id; an announcement acknowledged elsewhere has its
   notification closed (``CloseNotification``), and so has the "alerts stopped" warning when
   the connection is back.
2. ``QSystemTrayIcon.showMessage`` on Windows and macOS when the tray is available.
3. Our own :class:`~app.ui.toast_window.ToastWindow` (the "alerts stopped" one stays until the
   connection is back).
Every toast is also logged. A failed ``Notify`` call falls back to our own window: a toast is
never silently lost. After each delivery :attr:`Notifier.shown` names the announcements told,
so the history can show again, at the next start, what a crash left untold.

The notifier also says what the tray should show: :attr:`Notifier.alertsStopped` (since when
no announcement can arrive) and :attr:`Notifier.holdChanged` (do not disturb or quiet hours
holding toasts back).
"""

from __future__ import annotations

import enum
import html
import logging
import os
import sys
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier, Qt, QTimer, Signal
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from app.core.model import Announcement, ConnState
from app.core.toast_policy import Hold, Toast, ToastKind, ToastPolicy, Urgency
from app.ui.toast_window import TOAST_TIMEOUT_MS, ToastWindow

log = logging.getLogger(__name__)

_NOTIFICATIONS = "org.freedesktop.Notifications"
_WATCHER = "org.kde.StatusNotifierWatcher"
_DBUS_TIMEOUT = 2.0  # seconds for one call on the session bus
_MAX_BUS_IDS = 256  # notifications remembered for their actions (a daemon may never close)
ACTION_OPEN = "default"  # a click on the notification: open it in the history
ACTION_ACKNOWLEDGE = "acknowledge"  # urgent ones: acknowledge without opening a window
_UNSENT: Any = object()  # a state not yet told


class DeliveryMethod(enum.StrEnum):
    TRAY = "tray"  # QSystemTrayIcon.showMessage
    DBUS = "dbus"  # our own org.freedesktop.Notifications.Notify call
    WINDOW = "window"  # our own toast window


@dataclass(frozen=True, slots=True)
class ToastRecord:
    """A toast as delivered: what was shown, how, and which announcement a click opens."""

    title: str
    body: str
    method: DeliveryMethod
    announcement_id: str | None = None  # None: a summary or status toast (opens the history)
    urgent: bool = False


class NotifyError(RuntimeError):
    """The notification service refused or did not answer the Notify call."""


class FreedesktopNotifications(QObject):
    """The freedesktop notification service on the session bus, through jeepney.

    Signals (GUI thread):
        actionInvoked(int notification_id, str action_key): an action was chosen ("default":
            the notification itself was clicked).
        notificationClosed(int notification_id): it was closed (expired, dismissed, clicked).
        ownerChanged(str name): the notification service or the tray host came or went.
    """

    actionInvoked = Signal(int, str)
    notificationClosed = Signal(int)
    ownerChanged = Signal(str)

    def __init__(self, connection: Any, parent: QObject | None = None) -> None:
        from jeepney import MatchRule
        from jeepney.bus_messages import message_bus

        super().__init__(parent)
        self._conn = connection
        self._markup = False
        self._signals: deque[Any] = deque(maxlen=256)
        self._filters = []
        for member in ("ActionInvoked", "NotificationClosed"):
            rule = MatchRule(
                type="signal",
                interface=_NOTIFICATIONS,
                member=member,
                path="/org/freedesktop/Notifications",
            )
            self._filters.append(connection.filter(rule, queue=self._signals))
            self._call(message_bus.AddMatch(rule))
        # who owns the notification service and the tray host: asked once, then followed by
        # NameOwnerChanged (subscribed before the first question), not asked for each toast
        self._owners: dict[str, bool] = {}
        for name in (_NOTIFICATIONS, _WATCHER):
            rule = MatchRule(
                type="signal",
                sender="org.freedesktop.DBus",
                interface="org.freedesktop.DBus",
                member="NameOwnerChanged",
                path="/org/freedesktop/DBus",
            )
            rule.add_arg_condition(0, name)
            self._filters.append(connection.filter(rule, queue=self._signals))
            self._call(message_bus.AddMatch(rule))
        self._reader = QSocketNotifier(connection.sock.fileno(), QSocketNotifier.Type.Read, self)
        self._reader.activated.connect(self._read)

    @classmethod
    def open(cls, parent: QObject | None = None) -> FreedesktopNotifications | None:
        """Connect to the session bus; None when there is none (logged)."""
        if sys.platform != "linux" or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            return None
        try:
            from jeepney.io.blocking import open_dbus_connection

            conn = open_dbus_connection(bus="SESSION")
        except (OSError, ValueError, KeyError, ImportError) as exc:
            log.info("no session bus for notifications (%s)", exc)
            return None
        try:
            return cls(conn, parent)
        except (OSError, TimeoutError, NotifyError) as exc:
            log.info("session bus unusable for notifications (%s)", exc)
            conn.close()
            return None

    def _call(self, msg: Any) -> Any:
        from jeepney.wrappers import DBusErrorResponse, unwrap_msg

        try:
            return unwrap_msg(self._conn.send_and_get_reply(msg, timeout=_DBUS_TIMEOUT))
        except (DBusErrorResponse, TimeoutError, OSError) as exc:
            raise NotifyError(f"D-Bus call {msg.header.fields} failed: {exc}") from exc
        finally:
            if self._signals:  # read while waiting for the reply: handled on the next turn
                QTimer.singleShot(0, self, self._dispatch)

    def has_owner(self, name: str) -> bool:
        """Whether ``name`` has an owner on the bus (the service and the tray host: asked once,
        then kept up to date by NameOwnerChanged)."""
        from jeepney.bus_messages import message_bus

        known = self._owners.get(name)
        if known is not None:
            return known
        try:
            owned = bool(self._call(message_bus.NameHasOwner(name))[0])
        except NotifyError:
            log.warning("cannot ask the session bus about %s", name, exc_info=True)
            return False  # not kept: asked again next time
        if name in (_NOTIFICATIONS, _WATCHER):
            self._owners[name] = owned
            if owned and name == _NOTIFICATIONS:
                self._markup = "body-markup" in self._capabilities()
        return owned

    def has_service(self) -> bool:
        """A notification daemon owns org.freedesktop.Notifications."""
        return self.has_owner(_NOTIFICATIONS)

    def has_tray_host(self) -> bool:
        """A StatusNotifierItem host is there: Qt's tray then talks D-Bus (for diagnostics:
        toasts use our own Notify call with or without one)."""
        return self.has_owner(_WATCHER)

    def _capabilities(self) -> list[str]:
        from jeepney import DBusAddress, new_method_call

        addr = DBusAddress("/org/freedesktop/Notifications", _NOTIFICATIONS, _NOTIFICATIONS)
        try:
            return list(self._call(new_method_call(addr, "GetCapabilities"))[0])
        except NotifyError:
            return []

    def notify(
        self,
        title: str,
        body: str,
        *,
        urgency: Urgency,
        timeout_ms: int,
        actions: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Send one notification (plain text) offering ``actions`` ((key, label) pairs; the
        "default" key is a click on the notification); returns its id. A critical one never
        expires (timeout 0). Raises NotifyError."""
        from jeepney import DBusAddress, new_method_call

        addr = DBusAddress("/org/freedesktop/Notifications", _NOTIFICATIONS, _NOTIFICATIONS)
        text = html.escape(body, quote=False) if self._markup else body
        hints = {"urgency": ("y", int(urgency))}
        flat = [part for action in actions for part in action]
        msg = new_method_call(
            addr,
            "Notify",
            "susssasa{sv}i",
            (
                QApplication.applicationName(),
                0,
                "",
                title,
                text,
                flat,
                hints,
                0 if urgency is Urgency.CRITICAL else timeout_ms,
            ),
        )
        return int(self._call(msg)[0])

    def close_notification(self, nid: int) -> None:
        """Take a notification off the screen (CloseNotification); failures are logged."""
        from jeepney import DBusAddress, new_method_call

        addr = DBusAddress("/org/freedesktop/Notifications", _NOTIFICATIONS, _NOTIFICATIONS)
        try:
            self._call(new_method_call(addr, "CloseNotification", "u", (nid,)))
        except NotifyError as exc:
            log.info("cannot close notification %d: %s", nid, exc)

    def close(self) -> None:
        self._reader.setEnabled(False)
        for f in self._filters:
            f.close()
        self._conn.close()

    def _read(self) -> None:
        while True:
            try:
                self._conn.recv_messages(timeout=0)
            except TimeoutError:
                break
            except OSError:
                log.warning("session bus connection lost", exc_info=True)
                self._reader.setEnabled(False)
                self._owners.clear()  # ask again (and fail, logged) rather than trust old news
                break
        self._dispatch()

    def _dispatch(self) -> None:
        from jeepney.low_level import HeaderFields

        while self._signals:
            msg = self._signals.popleft()
            member = msg.header.fields.get(HeaderFields.member)
            if member == "ActionInvoked":
                nid, key = msg.body
                self.actionInvoked.emit(int(nid), str(key))
            elif member == "NotificationClosed":
                self.notificationClosed.emit(int(msg.body[0]))
            elif member == "NameOwnerChanged":
                name, _old, new = msg.body
                log.info("%s is now %s on the session bus", name, "owned" if new else "gone")
                self._owners.pop(name, None)  # asked again at the next toast (capabilities too)
                self.ownerChanged.emit(str(name))


class Notifier(QObject):
    """Shows toasts the policy lets through, by the best available method.

    Signals (GUI thread):
        delivered(ToastRecord): a toast was shown (title, body, method).
        clicked(str announcement_id): a toast was clicked; "" for a summary or status toast.
        acknowledgeRequested(str announcement_id): Acknowledge was chosen on a notification.
        shown(tuple[str, ...]): these announcements have been told (toasted, counted in a
            summary toast, or below the minimum priority on purpose): the history records it.
        displayed(tuple[str, ...]): of those, the ones put before the person (a toast, or a
            summary toast that counts them): their ``displayed`` receipts.
        alertsStopped(datetime | None): no announcement can arrive since then (local time:
            disconnected for longer than a few minutes, the "alerts stopped" warning shown);
            None when that is over (connected again, logged out).
        holdChanged(Hold | None): do not disturb or quiet hours hold toasts back now (why, and
            until when), or None; told at the first delivery or settings change, then when
            it changes.
    """

    delivered = Signal(ToastRecord)
    clicked = Signal(str)
    acknowledgeRequested = Signal(str)
    shown = Signal(tuple)  # tuple[str, ...]
    displayed = Signal(tuple)  # tuple[str, ...]
    alertsStopped = Signal(object)  # datetime | None
    holdChanged = Signal(object)  # Hold | None

    def __init__(
        self,
        tray: QSystemTrayIcon | None,
        *,
        policy: ToastPolicy,
        bus: FreedesktopNotifications | None = None,
        timeout_ms: int = TOAST_TIMEOUT_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.policy = policy
        self._tray = tray
        self._bus = bus
        self._timeout_ms = timeout_ms
        self._tray_click_id = ""  # what the last showMessage() toast opens
        self._bus_ids: OrderedDict[int, str] = OrderedDict()  # notification id -> announcement
        self._windows: list[ToastWindow] = []
        # the "alerts stopped" warning on screen (taken off when it is over)
        self._stopped_since: datetime | None = None
        self._stopped_nid: int | None = None
        self._stopped_window: ToastWindow | None = None
        self._hold: Hold | None = _UNSENT
        # precise: a coarse timer may fire 5 % early (15 ms of a 300 ms settle delay), find
        # nothing due and wait again
        self._timer = QTimer(self, singleShot=True, timerType=Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self.show_due)
        if tray is not None:
            tray.messageClicked.connect(lambda: self.clicked.emit(self._tray_click_id))
        self._tray_supported: bool | None = None  # Qt's answer, kept (see _tray_ok)
        if bus is not None:
            bus.actionInvoked.connect(self._bus_action)
            bus.notificationClosed.connect(self._bus_closed)

    # ------------------------------------------------------------------ inputs

    def announcement(self, ann: Announcement) -> None:
        """A new announcement arrived."""
        self._show_all(self.policy.announcement(ann))

    def announcements(self, anns: list[Announcement]) -> None:
        """Several new announcements (a catch-up's batch): what is due shown once."""
        toasts: list[Toast] = []
        for ann in anns:
            toasts.extend(self.policy.announcement(ann))
        self._show_all(toasts)

    def update(self, ann: Announcement) -> None:
        """An announcement was corrected (``ann``: its new text): one toast, "Updated: ..."."""
        self._show_all(self.policy.announcement(ann, ToastKind.UPDATE))

    def reminder(self, ann: Announcement) -> None:
        """Its publisher reminds of an announcement: one toast, "Reminder: ..."."""
        self._show_all(self.policy.announcement(ann, ToastKind.REMINDER))

    def catch_up_started(self) -> None:
        """A catch-up begins (a replay, or what a crash left untold): one summary for it all."""
        self._show_all(self.policy.catch_up_started())

    def catch_up_finished(self) -> None:
        """The catch-up is over: its summary (or its few toasts) now."""
        self._show_all(self.policy.catch_up_finished())

    def dismiss(self, ann_id: str) -> None:
        """Take the notifications of ``ann_id`` off the screen (it was acknowledged)."""
        for nid in [n for n, a in self._bus_ids.items() if a == ann_id]:
            del self._bus_ids[nid]
            if self._bus is not None:
                self._bus.close_notification(nid)

    def connection(self, state: ConnState) -> None:
        """The connection state changed."""
        self._show_all(self.policy.connection(state))

    def settings_changed(self, _config: object = None) -> None:
        """The settings changed (``Settings.changed``: DND toggled, quiet hours): the policy
        reads them anew; what it held back may go now."""
        self.show_due()

    def show_due(self) -> None:
        """Show what the policy says is due now. The notifier's timer calls this at the
        policy's next deadline (tests that drive the policy's clock call it themselves)."""
        self._show_all(self.policy.due())

    def method(self) -> DeliveryMethod:
        """The method a toast would use now. On Linux the notification service's own Notify
        call whenever there is one, whatever the tray host (a StatusNotifierItem tray's
        messages carry no actions and no urgency); Windows and macOS: the tray's messages."""
        if sys.platform != "linux":
            return DeliveryMethod.TRAY if self._tray_ok() else DeliveryMethod.WINDOW
        if self._bus is None or not self._bus.has_service():
            return DeliveryMethod.WINDOW
        return DeliveryMethod.DBUS

    def _tray_ok(self) -> bool:
        """Our icon is shown in a tray that shows its messages (Windows, macOS). Qt's answer
        is kept: it does not change while the program runs."""
        if self._tray is None or not self._tray.isVisible():
            return False
        if self._tray_supported is None:
            self._tray_supported = (
                QSystemTrayIcon.isSystemTrayAvailable() and QSystemTrayIcon.supportsMessages()
            )
        return self._tray_supported

    @property
    def windows(self) -> tuple[ToastWindow, ...]:
        """Our toast windows on screen, oldest first."""
        return tuple(self._windows)

    def close(self) -> None:
        """Stop timers, take the "alerts stopped" warning off the screen (it would say that we
        keep trying) and close our toast windows (on quit)."""
        self._timer.stop()
        self._end_alerts_stopped()
        for w in list(self._windows):
            w.close()

    # ------------------------------------------------------------------ delivery

    def _show_all(self, toasts: list[Toast]) -> None:
        self._follow_state()
        told: list[str] = self.policy.take_skipped()
        displayed: list[str] = []
        for toast in toasts:
            self._show(toast)
            displayed.extend(toast.ids)
        told.extend(displayed)
        if told:
            self.shown.emit(tuple(told))
        if displayed:
            self.displayed.emit(tuple(displayed))
        deadline = self.policy.next_deadline()
        if deadline is None:
            self._timer.stop()
        else:
            delay = max(0.0, deadline - self.policy.clock())
            self._timer.start(int(delay * 1000) + 1)

    def _follow_state(self) -> None:
        """Tell what changed in the policy's state; the "alerts stopped" warning is taken off
        the screen when it is over (before "Connected again" shows)."""
        since = self.policy.alerts_stopped_since()
        if since != self._stopped_since:
            if since is None:
                self._end_alerts_stopped()
            self._stopped_since = since
            self.alertsStopped.emit(since)
        hold = self.policy.hold()
        if hold != self._hold:
            self._hold = hold
            self.holdChanged.emit(hold)

    def _end_alerts_stopped(self) -> None:
        nid, self._stopped_nid = self._stopped_nid, None
        if nid is not None:
            self._bus_ids.pop(nid, None)
            if self._bus is not None:
                self._bus.close_notification(nid)
        window, self._stopped_window = self._stopped_window, None
        if window is not None and window in self._windows:
            window.close()

    def _show(self, toast: Toast) -> None:
        title, body = self._words(toast)
        ann_id = toast.announcement.id if toast.announcement is not None else None
        method = self.method()
        if method is DeliveryMethod.TRAY:
            assert self._tray is not None
            self._tray_click_id = ann_id or ""
            text = html.escape(body, quote=False) if sys.platform == "linux" else body
            icon = (
                QSystemTrayIcon.MessageIcon.Warning
                if toast.critical
                else QSystemTrayIcon.MessageIcon.Information
            )
            self._tray.showMessage(title, text, icon, self._timeout_ms)
        elif method is DeliveryMethod.DBUS:
            assert self._bus is not None
            try:
                nid = self._bus.notify(
                    title,
                    body,
                    urgency=toast.urgency,
                    timeout_ms=self._timeout_ms,
                    actions=self._actions(toast),
                )
                self._remember(nid, ann_id or "")
                if toast.kind is ToastKind.OFFLINE:
                    self._stopped_nid = nid
            except NotifyError:
                log.warning("Notify call failed; showing our own toast", exc_info=True)
                method = DeliveryMethod.WINDOW
        if method is DeliveryMethod.WINDOW:
            stays = toast.kind is ToastKind.OFFLINE  # until the connection is back
            window = self._window(title, body, ann_id or "", urgent=toast.critical, stays=stays)
            if stays:
                self._stopped_window = window
        # ids and titles only: announcement bodies stay out of the log
        log.info("toast (%s) for %s: %s", method.value, ann_id or "a summary", title)
        self.delivered.emit(ToastRecord(title, body, method, ann_id, toast.urgent))

    def _window(
        self, title: str, body: str, ann_id: str, *, urgent: bool, stays: bool = False
    ) -> ToastWindow:
        above = self._windows[-1].geometry() if self._windows else None
        timeout = 0 if stays else self._timeout_ms
        w = ToastWindow(title, body, timeout_ms=timeout, urgent=urgent)
        w.clicked.connect(lambda: self.clicked.emit(ann_id))
        w.closed.connect(lambda: self._windows.remove(w) if w in self._windows else None)
        self._windows.append(w)
        w.pop_up(above)
        return w

    def _actions(self, toast: Toast) -> list[tuple[str, str]]:
        actions = [(ACTION_OPEN, self.tr("Open"))]
        if toast.urgent:
            actions.append((ACTION_ACKNOWLEDGE, self.tr("Acknowledge")))
        return actions

    def _remember(self, nid: int, ann_id: str) -> None:
        self._bus_ids[nid] = ann_id
        while len(self._bus_ids) > _MAX_BUS_IDS:
            self._bus_ids.popitem(last=False)

    def _bus_action(self, nid: int, key: str) -> None:
        """ActionInvoked: "default" opens the announcement (or the history for a summary),
        "acknowledge" acknowledges it. Ids of other programs' notifications are ignored."""
        ann_id = self._bus_ids.get(nid)
        if ann_id is None:
            return
        if key == ACTION_OPEN:
            self.clicked.emit(ann_id)
        elif key == ACTION_ACKNOWLEDGE and ann_id:
            self.acknowledgeRequested.emit(ann_id)  # the root then calls dismiss()

    def _bus_closed(self, nid: int) -> None:
        """NotificationClosed: forget it (its actions can no longer be chosen)."""
        self._bus_ids.pop(nid, None)
        if nid == self._stopped_nid:  # dismissed: the tray icon still says it
            self._stopped_nid = None

    def bus_ids(self) -> dict[int, str]:
        """Our notifications on the bus that may still be acted on: id -> announcement id."""
        return dict(self._bus_ids)

    def _words(self, toast: Toast) -> tuple[str, str]:
        app_name = QApplication.applicationName()
        if toast.kind is ToastKind.ANNOUNCEMENT:
            ann = toast.announcement
            assert ann is not None
            return ann.display_title(app_name), ann.body
        if toast.kind in (ToastKind.UPDATE, ToastKind.REMINDER):
            ann = toast.announcement
            assert ann is not None
            words = (
                self.tr("Updated: %1")
                if toast.kind is ToastKind.UPDATE
                else self.tr("Reminder: %1")
            )
            return words.replace("%1", ann.display_title(app_name)), ann.body
        if toast.kind is ToastKind.SUMMARY:
            title = (
                self.tr("1 new announcement")
                if toast.count == 1
                else self.tr("%n new announcements", "", toast.count)
            )
            return title, self.tr("Click to read them in Announcements.")
        if toast.kind is ToastKind.OFFLINE:
            return (
                self.tr("Not connected"),
                self.tr(
                    "The announcement server has not been reachable for a few minutes. "
                    "%1 keeps trying."
                ).replace("%1", app_name),
            )
        return self.tr("Connected again"), self.tr("Announcements are arriving again.")
