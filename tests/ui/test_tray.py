"""The tray: menu rebuilt from state in every state, tooltip in words, signals of the actions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.core.errors import ErrorKind
from app.core.model import ConnState, Status
from app.core.toast_policy import Hold, HoldReason
from app.ui import i18n, widgets
from app.ui.tray import Tray
from tests.fixtures.qt import menu_action

pytestmark = pytest.mark.qt_log_ignore(".*systemTrayWindowChanged")


def texts(tray: Tray) -> list[str]:
    tray.menu.aboutToShow.emit()
    return [a.text() for a in tray.menu.actions() if not a.isSeparator()]


@pytest.fixture
def tray(qapp: object) -> Iterator[Tray]:
    t = Tray()
    yield t
    t.close()
    t.deleteLater()


def test_logged_out_menu(tray: Tray) -> None:
    assert texts(tray) == [
        "Not logged in",
        "Reconnect now",
        "Announcements…",
        "Log in…",
        "Do not disturb",
        "Settings…",
        "Diagnose connection…",
        "Quit",
    ]
    status = tray.menu.actions()[0]
    assert not status.isEnabled()
    assert not menu_action(tray, "Reconnect now").isEnabled()  # nothing to reconnect


@pytest.mark.parametrize(
    ("status", "line", "reconnect"),
    [
        (Status(ConnState.CONNECTED), "Connected as alice", False),
        (Status(ConnState.CONNECTING), "Connecting…", True),
        (Status(ConnState.OFFLINE, retry_in=12.4), "Offline: trying again in 12 s", True),
        (Status(ConnState.OFFLINE), "Offline: trying again", True),
        # the stream ended: reconnect_now has nothing to cut short
        (Status(ConnState.ERROR, detail="HTTP 403"), "Not connected: HTTP 403", False),
        (Status(ConnState.STOPPED), "Not connected", False),
    ],
)
def test_menu_in_every_connected_state(
    tray: Tray, status: Status, line: str, reconnect: bool
) -> None:
    tray.set_user("alice")
    tray.set_status(status)
    assert texts(tray) == [
        line,
        "Reconnect now",
        "Announcements…",
        "Log out (alice)",
        "Do not disturb",
        "Settings…",
        "Diagnose connection…",
        "Quit",
    ]
    assert line in tray.icon.toolTip()
    assert menu_action(tray, "Reconnect now").isEnabled() is reconnect


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (
            ErrorKind.NOT_FOUND,
            "the stream address does not exist (HTTP 404): check the server address",
        ),
        (ErrorKind.ACCESS_DENIED, "the server refused access to the stream (HTTP 403)"),
        (ErrorKind.HISTORY, "the history file cannot be written: see the log"),
        (
            ErrorKind.PROXY_AUTH,
            "the proxy asks for credentials: run tray-notifier proxy-login --user NAME "
            "--password-stdin",
        ),
        (
            ErrorKind.PROXY_REFUSED,
            "the proxy refused the stored credentials: run tray-notifier proxy-login --user "
            "NAME --password-stdin",
        ),
        (ErrorKind.UNEXPECTED, "unexpected error: see the log"),
    ],
)
def test_a_stream_error_is_worded_from_its_kind_not_its_english_detail(
    tray: Tray, error: ErrorKind, words: str
) -> None:
    tray.set_user("alice")
    tray.set_status(
        Status(ConnState.ERROR, "http://x/sse/connect/alice: the log's words", None, error)
    )
    assert texts(tray)[0] == f"Not connected: {words}"
    assert "the log's words" not in tray.icon.toolTip()


def test_a_stream_error_is_worded_in_chinese(tray: Tray, qapp: QApplication) -> None:
    tray.set_user("alice")
    i18n.install(qapp, "zh_CN")
    try:
        tray.set_status(Status(ConnState.ERROR, "HTTP 404", error=ErrorKind.NOT_FOUND))
        assert texts(tray)[0] == "未连接：消息流地址不存在（HTTP 404）：请检查服务器地址"
    finally:
        i18n.uninstall(qapp)


def test_login_required_offers_log_in(tray: Tray) -> None:
    tray.set_status(Status(ConnState.LOGIN_REQUIRED))
    assert texts(tray)[:4] == ["Not logged in", "Reconnect now", "Announcements…", "Log in…"]
    assert not menu_action(tray, "Reconnect now").isEnabled()


def test_tooltip_in_words(tray: Tray) -> None:
    tray.set_user("alice")
    tray.set_status(Status(ConnState.CONNECTED))
    tray.set_unread(3)
    tray.set_dnd(True)
    assert tray.icon.toolTip().splitlines() == [
        "Tray Notifier",
        "Connected as alice",
        "3 unread announcement(s)",
        "Do not disturb is on: announcements are held back (urgent ones still show)",
    ]
    assert not tray.icon.icon().isNull()


def test_actions_emit_their_signals(tray: Tray, qtbot: QtBot) -> None:
    tray.set_user("alice")
    tray.set_status(Status(ConnState.OFFLINE, retry_in=20.0))
    tray.menu.aboutToShow.emit()
    by_text = {a.text(): a for a in tray.menu.actions()}
    for text, signal in [
        ("Announcements…", tray.historyRequested),
        ("Reconnect now", tray.reconnectRequested),
        ("Log out (alice)", tray.logoutRequested),
        ("Settings…", tray.settingsRequested),
        ("Diagnose connection…", tray.diagnoseRequested),
        ("Quit", tray.quitRequested),
    ]:
        with qtbot.waitSignal(signal, timeout=1000):
            by_text[text].trigger()
    with qtbot.waitSignal(tray.dndToggled, timeout=1000) as blocker:
        by_text["Do not disturb"].trigger()
    assert blocker.args == [True]
    tray.set_dnd(True)
    tray.menu.aboutToShow.emit()
    dnd = next(a for a in tray.menu.actions() if a.text() == "Do not disturb")
    assert dnd.isCheckable() and dnd.isChecked()
    tray.set_user("")
    tray.menu.aboutToShow.emit()
    login = next(a for a in tray.menu.actions() if a.text() == "Log in…")
    with qtbot.waitSignal(tray.loginRequested, timeout=1000):
        login.trigger()


def test_unread_count_in_badge_tooltip_and_menu(tray: Tray) -> None:
    tray.set_user("alice")
    tray.set_status(Status(ConnState.CONNECTED))
    before = tray.icon.icon().cacheKey()
    tray.set_unread(3)
    assert texts(tray)[2] == "Announcements (3 unread)…"
    assert "3 unread announcement(s)" in tray.icon.toolTip()
    assert tray.icon.icon().cacheKey() != before
    tray.set_unread(0)
    assert texts(tray)[2] == "Announcements…"
    assert "unread" not in tray.icon.toolTip()


def test_the_menu_is_updated_in_place_not_rebuilt(tray: Tray) -> None:
    before = tray.menu.actions()
    tray.set_user("alice")
    tray.set_status(Status(ConnState.CONNECTED))
    tray.set_unread(5)
    assert texts(tray)[:4] == [
        "Connected as alice",
        "Reconnect now",
        "Announcements (5 unread)…",
        "Log out (alice)",
    ]
    assert tray.menu.actions() == before  # the same actions, their words updated


def test_alerts_stopped_in_the_icon_and_tooltip_until_it_is_over(tray: Tray) -> None:
    tray.set_user("alice")
    tray.set_status(Status(ConnState.OFFLINE, retry_in=20.0))
    plain = tray.icon.icon().cacheKey()
    since = datetime.now().replace(hour=14, minute=5)
    tray.set_alerts_stopped(since)
    assert tray.icon.toolTip().splitlines() == [
        "Tray Notifier",
        "Offline: trying again in 20 s",
        f"Not receiving announcements since {widgets.format_moment(since)}",
    ]
    assert tray.icon.icon().cacheKey() != plain  # the warning mark
    tray.set_alerts_stopped(since - timedelta(days=1))  # an outage that began yesterday
    yesterday = widgets.format_moment(since - timedelta(days=1))
    assert yesterday != widgets.format_moment(since)  # another day: with its date
    assert f"since {yesterday}" in tray.icon.toolTip()
    tray.set_alerts_stopped(None)
    assert "Not receiving" not in tray.icon.toolTip()
    assert tray.icon.icon().cacheKey() == plain


def test_quiet_hours_holding_toasts_back_in_the_icon_and_tooltip(tray: Tray) -> None:
    tray.set_user("alice")
    tray.set_status(Status(ConnState.CONNECTED))
    plain = tray.icon.icon().cacheKey()
    tray.set_hold(Hold(HoldReason.QUIET_HOURS, time(7, 0)))
    assert tray.icon.toolTip().splitlines()[-1] == (
        "Quiet hours until 07:00: announcements are held back (urgent ones still show)"
    )
    quiet = tray.icon.icon().cacheKey()
    assert quiet != plain  # the moon
    tray.set_dnd(True)  # both: do not disturb is what the person switched on
    assert tray.icon.toolTip().splitlines()[-1] == (
        "Do not disturb is on: announcements are held back (urgent ones still show)"
    )
    assert tray.icon.icon().cacheKey() not in (plain, quiet)
    tray.set_dnd(False)
    tray.set_hold(None)
    assert "held back" not in tray.icon.toolTip()
    assert tray.icon.icon().cacheKey() == plain
