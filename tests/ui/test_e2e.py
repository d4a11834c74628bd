"""End to end through the composition root against the companion server: log in through the
dialog, toasts and history, urgent + acknowledge, restart resumes, logout keeps the history,
login errors in plain words, and the keyring-unavailable offer."""

from __future__ import annotations

import dataclasses
import re
import stat
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx
import keyring.backends.fail
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.core import config as config_mod
from app.core.config import Config, Paths
from app.core.model import Announcement, ConnState
from app.core.secrets import KeyringSecretStore, MemorySecretStore, login_key
from app.core.store import HistoryStore
from app.server.embedded import EmbeddedServer
from app.ui.root import Root
from app.ui.urgent_window import UrgentWindow
from tests.fixtures.qt import Spy
from tests.fixtures.server import DEMO_PASSWORD, OffsetClock
from tests.fixtures.spring import GREETING, PROFILE, SpringBackend
from tests.fixtures.transport import RecordingTransport

WAIT = 15_000

# offscreen platform noise: no raise(), no size hints, no tray window signal
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support", ".*systemTrayWindowChanged")


def log_in_through_dialog(
    qtbot: QtBot, root: Root, url: str, password: str = DEMO_PASSWORD
) -> None:
    dialog = root.login_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.server_edit.setText(url)
    dialog.user_edit.setText("alice")
    dialog.password_edit.setText(password)
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)


def wait_connected(qtbot: QtBot, root: Root) -> None:
    qtbot.waitUntil(
        lambda: (
            root.tray.state.username == "alice"
            and root.tray.state.status.state is ConnState.CONNECTED
        ),
        timeout=WAIT,
    )


def history_titles(root: Root) -> list[str]:
    root.show_history()
    history = root.history
    assert history is not None
    return [history.model.item(r).text() for r in range(history.model.rowCount())]


def test_login_publish_toast_history_restart_logout(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_root: Callable[..., Root],
    tray_paths: Paths,
    recording_transport: RecordingTransport,
) -> None:
    secrets = MemorySecretStore()
    root = make_root(secrets=secrets)
    root.start()
    log_in_through_dialog(qtbot, root, companion_server.url)
    wait_connected(qtbot, root)
    assert root.login_dialog is None  # closed on success
    # the login is remembered: server and user in the settings, tokens in the secret store
    saved = config_mod.load(tray_paths)
    assert (saved.server_url, saved.username) == (companion_server.url, "alice")
    assert secrets.get(login_key(companion_server.url, "alice")) is not None

    delivered = Spy(root.notifier.delivered)
    companion_server.publish("Lunch is served", "Soup and bread in the canteen.")
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)
    record = delivered.values[0]
    assert (record.title, record.body) == ("Lunch is served", "Soup and bread in the canteen.")
    assert record.announcement_id is not None
    assert "Lunch is served" in history_titles(root)
    assert root.tray.state.unread == 1

    # clicking the toast opens that announcement in the history window (and reads it)
    root.notifier.clicked.emit(record.announcement_id)
    assert root.history is not None and root.history.current_id() == record.announcement_id
    qtbot.waitUntil(lambda: root.tray.state.unread == 0)

    # urgent: a window that stays until acknowledged; the receipt reaches the server
    companion_server.publish("Evacuate", "Leave the building now.", priority="urgent")
    qtbot.waitUntil(lambda: len(root.urgent) == 1, timeout=WAIT)
    (urgent_id, window) = next(iter(root.urgent.items()))
    assert window.isVisible()
    sent = Spy(root.worker.ackSent)
    qtbot.mouseClick(window.ack_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sent.values == [urgent_id], timeout=WAIT)
    assert root.urgent == {}

    # quit; one announcement arrives while the tray is closed
    assert root.shutdown(1000)
    assert root.worker.thread_handle is not None and root.worker.thread_handle.isFinished()
    missed = companion_server.publish("While you were away", "Resume from the last id.")

    # restart: connects with the stored login without asking, gets the missed one only
    again = make_root(config=config_mod.load(tray_paths), secrets=secrets)
    delivered = Spy(again.notifier.delivered)
    again.start()
    assert again.login_dialog is None
    wait_connected(qtbot, again)
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)
    assert delivered.values[0].announcement_id == missed
    titles = history_titles(again)
    assert titles.count("Lunch is served") == 1 and "While you were away" in titles

    # logout: close + logout endpoints, tokens gone, history kept on disk
    again.tray.logoutRequested.emit()
    qtbot.waitUntil(lambda: again.tray.state.username == "", timeout=WAIT)
    posts = recording_transport.paths("POST")
    assert "/sse/close/alice" in posts and "/auth/logout" in posts
    assert secrets.get(login_key(companion_server.url, "alice")) is None
    assert again.store is not None and len(again.store.list()) == 3
    assert again.shutdown(1000)


@pytest.mark.parametrize(
    ("password", "url_of", "words"),
    [
        ("wrong", lambda s: s.url, "user name or password is wrong"),
        (DEMO_PASSWORD, lambda s: s.url + "/nothing-here", "not an announcement server"),
    ],
)
def test_login_errors_in_plain_words(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_root: Callable[..., Root],
    password: str,
    url_of: Callable[[EmbeddedServer], str],
    words: str,
) -> None:
    root = make_root()
    root.start()
    log_in_through_dialog(qtbot, root, url_of(companion_server), password)
    dialog = root.login_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: words in dialog.error_label.text(), timeout=WAIT)
    assert dialog.login_button.isEnabled()  # no longer busy


def test_unreachable_server_in_plain_words(
    qtbot: QtBot, server_factory: Any, make_root: Callable[..., Root]
) -> None:
    server = server_factory()
    url = server.url
    server.stop()
    root = make_root()
    root.start()
    log_in_through_dialog(qtbot, root, url)
    dialog = root.login_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: "cannot be reached" in dialog.error_label.text(), timeout=WAIT)


def test_keyring_unavailable_offers_this_run_only(
    qtbot: QtBot, companion_server: EmbeddedServer, make_root: Callable[..., Root]
) -> None:
    questions: list[str] = []

    def ask(title: str, question: str) -> bool:
        questions.append(question)
        return True

    root = make_root(
        secrets=KeyringSecretStore(backend=keyring.backends.fail.Keyring()), ask_yes_no=ask
    )
    root.start()
    log_in_through_dialog(qtbot, root, companion_server.url)
    wait_connected(qtbot, root)
    assert len(questions) == 1 and "this run only" in questions[0]


def test_revoke_keeps_it_struck_through_and_closes_the_urgent_window(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_root: Callable[..., Root],
    tray_paths: Paths,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The companion server's DELETE /announcements/{id} (a revoke on the stream): the urgent
    window and the notification close, the history keeps it struck through ("Withdrawn at"),
    it no longer counts as unread; a replay after a restart never brings it back as new."""
    secrets = MemorySecretStore()
    root = make_root(secrets=secrets)
    root.start()
    log_in_through_dialog(qtbot, root, companion_server.url)
    wait_connected(qtbot, root)
    ann_id = companion_server.publish("Wrong alarm", "Ignore", priority="urgent")
    qtbot.waitUntil(lambda: ann_id in root.urgent, timeout=WAIT)
    assert root.urgent[ann_id].isVisible()
    root.show_history()  # open while it is withdrawn: its row changes in place
    history = root.history
    assert history is not None
    history.show_announcement(ann_id)
    qtbot.waitUntil(lambda: root.tray.state.unread == 0, timeout=WAIT)  # read by opening it
    other = companion_server.publish("Lunch", "Soup")  # one unread beside it
    qtbot.waitUntil(lambda: root.tray.state.unread == 1, timeout=WAIT)
    dismissed: list[str] = []
    dismiss = root.notifier.dismiss

    def spy_dismiss(ann_id: str) -> None:
        dismissed.append(ann_id)
        dismiss(ann_id)

    monkeypatch.setattr(root.notifier, "dismiss", spy_dismiss)

    login = httpx.post(
        f"{companion_server.url}/auth/login",
        json={"username": "publisher", "password": DEMO_PASSWORD},
        timeout=10,
    )
    revoked = httpx.delete(
        f"{companion_server.url}/announcements/{ann_id}",
        headers={"Authorization": f"Bearer {login.json()['access_token']}"},
        timeout=10,
    )
    assert revoked.is_success, revoked.text
    qtbot.waitUntil(lambda: ann_id not in root.urgent, timeout=WAIT)
    assert not [
        w for w in QApplication.topLevelWidgets() if isinstance(w, UrgentWindow) and w.isVisible()
    ]
    assert ann_id in dismissed  # its notification too
    # kept in the history, struck through, saying when; the current one stays current
    assert "Wrong alarm" in history_titles(root)
    row = history.model.row_of(ann_id)
    font = history.model.index(row, 0).data(Qt.ItemDataRole.FontRole)
    assert font is not None and font.strikeOut()
    assert history.current_id() == ann_id
    assert history.detail.withdrawn_label.text().startswith("Withdrawn at ")
    assert history.detail.withdrawn_label.isVisible() and history.ack_button.isHidden()
    assert root.tray.state.unread == 1  # "Lunch" only

    # a restart that replays from before it: never new again, no window, still withdrawn
    assert root.shutdown(1000)
    with HistoryStore(
        HistoryStore.path_for(tray_paths.data_dir, companion_server.url, "alice")
    ) as h:
        h.set_last_event_id("0")
    again = make_root(config=config_mod.load(tray_paths), secrets=secrets)
    delivered = Spy(again.notifier.delivered)
    replayed = Spy(again.worker.catchUpFinished)
    again.start()
    wait_connected(qtbot, again)
    qtbot.waitUntil(lambda: bool(replayed.calls), timeout=WAIT)  # the replay from "0" is over
    assert ann_id not in again.urgent
    assert ann_id not in [r.announcement_id for r in delivered.values]
    assert again.store is not None
    stored = again.store.get(ann_id)
    assert stored is not None and stored.withdrawn
    assert again.tray.state.unread == 1 and other in {s.announcement.id for s in again.store.list()}
    assert history_titles(again).count("Wrong alarm") == 1
    assert again.shutdown(1000)


def test_token_expiry_and_server_restart_need_no_user_action(
    qtbot: QtBot,
    server_factory: Any,
    make_root: Callable[..., Root],
    recording_transport: RecordingTransport,
) -> None:
    clock = OffsetClock()
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100, clock=clock)
    root = make_root()
    delivered = Spy(root.notifier.delivered)
    root.start()
    log_in_through_dialog(qtbot, root, server.url)
    wait_connected(qtbot, root)
    first = server.publish("Before", "the token expires")
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)

    # two token expiries (900 s tokens, the server's clock moved on): two refreshes
    def refreshes() -> int:
        return recording_transport.paths("POST").count("/auth/refresh")

    for expiry in (1, 2):
        clock.offset += 901.0
        qtbot.waitUntil(lambda: refreshes() == expiry, timeout=WAIT)  # noqa: B023 - waited here
        wait_connected(qtbot, root)
    second = server.publish("After", "two token expiries")
    qtbot.waitUntil(lambda: len(delivered.calls) == 2, timeout=WAIT)
    server.stop()
    server = server_factory(
        data_dir=server.data_dir, port=server.port, retry_ms=100, ping_interval=0.5, clock=clock
    )
    third = server.publish("Restarted", "the server came back")
    qtbot.waitUntil(lambda: len(delivered.calls) >= 3, timeout=WAIT)
    assert [r.announcement_id for r in delivered.values] == [first, second, third]
    assert root.login_dialog is None  # no user action was needed
    assert root.store is not None and root.store.last_event_id() == third


def test_urgent_comes_back_after_a_restart_until_acknowledged(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_root: Callable[..., Root],
    tray_paths: Paths,
) -> None:
    """Quit with an urgent window open: at the next start its window and a notification are
    back. Acknowledge (window or history) closes it everywhere, updates badge, tooltip and
    menu at once, and the receipt reaches the server."""
    secrets = MemorySecretStore()
    first = make_root(secrets=secrets)
    first.start()
    log_in_through_dialog(qtbot, first, companion_server.url)
    wait_connected(qtbot, first)
    alarm = companion_server.publish("Evacuate", "Leave the building now.", priority="urgent")
    qtbot.waitUntil(lambda: alarm in first.urgent, timeout=WAIT)
    assert first.shutdown(1000)  # quit (or a crash) without acknowledging

    again = make_root(config=config_mod.load(tray_paths), secrets=secrets)
    delivered = Spy(again.notifier.delivered)
    sent = Spy(again.worker.ackSent)
    again.start()
    # back at once, before the stream is even connected: the window and a notification
    assert alarm in again.urgent and again.urgent[alarm].isVisible()
    assert [(r.announcement_id, r.urgent) for r in delivered.values] == [(alarm, True)]
    assert again.tray.state.unread == 1
    wait_connected(qtbot, again)
    # acknowledged from its window: badge, tooltip and menu follow at once
    qtbot.mouseClick(again.urgent[alarm].ack_button, Qt.MouseButton.LeftButton)
    assert alarm not in again.urgent
    assert again.tray.state.unread == 0
    assert "unread" not in again.tray.icon.toolTip()
    again.tray.menu.aboutToShow.emit()
    assert "Announcements…" in [a.text() for a in again.tray.menu.actions()]
    qtbot.waitUntil(lambda: sent.values == [alarm], timeout=WAIT)

    # a second one, acknowledged from the history window
    second = companion_server.publish("Gas leak", "Stay out of lab 2.", priority="urgent")
    qtbot.waitUntil(lambda: second in again.urgent, timeout=WAIT)
    qtbot.waitUntil(lambda: again.tray.state.unread == 1, timeout=WAIT)
    again.show_history()
    history = again.history
    assert history is not None
    history.show_announcement(second)
    assert history.ack_button.isVisible()
    qtbot.mouseClick(history.ack_button, Qt.MouseButton.LeftButton)
    assert second not in again.urgent
    assert history.ack_button.isHidden()
    assert again.store is not None and again.store.unacknowledged_urgent() == []
    qtbot.waitUntil(lambda: sent.values == [alarm, second], timeout=WAIT)
    assert not [
        w for w in QApplication.topLevelWidgets() if isinstance(w, UrgentWindow) and w.isVisible()
    ]
    # and after another restart nothing comes back
    assert again.shutdown(1000)
    third = make_root(config=config_mod.load(tray_paths), secrets=secrets)
    third.start()
    assert third.urgent == {}


def _stored_but_never_shown(tray_paths: Paths, n: int, url: str = "http://127.0.0.1:9") -> Config:
    """What a kill in the middle of a burst leaves: ``n`` announcements stored, none shown."""
    config = Config().with_changes(server_url=url, username="alice")
    path = HistoryStore.path_for(tray_paths.data_dir, url, "alice")
    with HistoryStore(path) as store:
        for i in range(n):
            store.record(Announcement(id=f"{i:04d}", title=f"Burst {i}", body="b"), f"{i:04d}")
        store.mark_shown(["0000"])  # the first one was toasted before the kill
    return config


@pytest.mark.parametrize(("stored", "titles"), [(3, ["Burst 1", "Burst 2"]), (122, None)])
def test_what_a_kill_left_untold_is_shown_at_the_next_start(
    qtbot: QtBot,
    make_root: Callable[..., Root],
    tray_paths: Paths,
    stored: int,
    titles: list[str] | None,
) -> None:
    root = make_root(config=_stored_but_never_shown(tray_paths, stored))
    delivered = Spy(root.notifier.delivered)
    root.start()  # no login stored: it asks, and tells what it holds meanwhile
    if titles is not None:  # a few: one toast each
        qtbot.waitUntil(lambda: len(delivered.calls) == len(titles), timeout=WAIT)
        assert [r.title for r in delivered.values] == titles
    else:  # many: one summary for all of them, once it is clear no replay joins them
        qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)
        assert [r.title for r in delivered.values] == ["121 new announcements"]
    assert root.store is not None
    qtbot.waitUntil(lambda: root.store is not None and root.store.unshown() == [], timeout=WAIT)


def test_a_catch_up_of_2500_in_pages_gives_one_summary_toast(
    qtbot: QtBot,
    server_factory: Any,
    make_root: Callable[..., Root],
    tray_paths: Paths,
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, replay_limit=1000)
    secrets = MemorySecretStore()
    first = make_root(secrets=secrets)
    delivered = Spy(first.notifier.delivered)
    first.start()
    log_in_through_dialog(qtbot, first, server.url)
    wait_connected(qtbot, first)
    server.publish("Before", "the resume point")
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)
    assert first.shutdown(1000)
    for n in range(2500):
        server.publish(f"Missed {n}", "while away")

    again = make_root(config=config_mod.load(tray_paths), secrets=secrets)
    delivered = Spy(again.notifier.delivered)
    started = time.monotonic()
    again.start()
    again.show_history()  # open: its reloads are coalesced
    qtbot.waitUntil(lambda: len(delivered.calls) >= 1, timeout=40_000)
    elapsed = time.monotonic() - started
    qtbot.waitUntil(lambda: again.notifier.policy.next_deadline() is None, timeout=WAIT)
    assert [(r.title, r.announcement_id) for r in delivered.values] == [
        ("2500 new announcements", None)
    ]
    store = again.store
    assert store is not None
    # thousands are marked told in turns (the GUI answers in between)
    qtbot.waitUntil(lambda: store.unshown() == [], timeout=WAIT)
    qtbot.waitUntil(lambda: again.tray.state.unread == 2501, timeout=WAIT)
    history = again.history
    assert history is not None
    qtbot.waitUntil(lambda: history.model.rowCount() == 1000, timeout=WAIT)
    print(f"catch-up of 2500 with the history open: summary after {elapsed:.2f} s")


def test_a_damaged_history_is_moved_aside_and_a_new_one_started(
    qtbot: QtBot, make_root: Callable[..., Root], tray_paths: Paths
) -> None:
    config = Config().with_changes(server_url="http://127.0.0.1:9", username="alice")
    path = HistoryStore.path_for(tray_paths.data_dir, config.server_url, "alice")
    path.parent.mkdir(parents=True)
    garbage = b"SQLite format 3\x00" + b"\xff" * 4000
    path.write_bytes(garbage)
    told: list[tuple[str, str]] = []
    root = make_root(config=config, inform=lambda title, text: told.append((title, text)))
    root.start()  # no crash
    assert len(told) == 1
    title, text = told[0]
    assert title == "Announcement history damaged"
    (aside,) = path.parent.glob("*.damaged-*.sqlite3")
    assert re.fullmatch(r".+\.damaged-\d{8}T\d{6}\.sqlite3", aside.name)
    assert str(aside) in text and "new, empty history" in text
    assert aside.read_bytes() == garbage
    assert root.store is not None and root.store.path == path
    assert root.store.list() == []
    assert root.store.add(Announcement(id="1", title="t", body="b"))
    if sys.platform != "win32":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_server_it_locked_is_read_only_in_the_login_dialog_and_used_for_the_login(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_root: Callable[..., Root],
    tray_paths: Paths,
) -> None:
    config = Config(server_url=companion_server.url, locked=frozenset({"server_url"}))
    root = make_root(config=config, paths=tray_paths)
    root.start()
    dialog = root.login_dialog
    assert dialog is not None
    assert dialog.server_edit.isReadOnly()
    assert dialog.server_edit.text() == companion_server.url
    assert "IT department" in dialog.server_edit.toolTip()
    # whatever reaches login(), the locked server is the one logged in to
    root.login("https://elsewhere.example.org", "alice", DEMO_PASSWORD)
    wait_connected(qtbot, root)  # elsewhere.example.org would never connect
    assert root.store is not None
    assert root.store.path == HistoryStore.path_for(
        tray_paths.data_dir, companion_server.url, "alice"
    )


# ---------------------------------------------------------------- a RuoYi-style backend (issue 11)


def test_the_tray_against_a_ruoyi_backend_configured_by_a_file_alone(
    qtbot: QtBot,
    spring: Callable[..., SpringBackend],
    make_root: Callable[..., Root],
    tray_paths: Paths,
    recording_transport: RecordingTransport,
) -> None:
    """The profile in a system config file, nothing else: each notice toasts once with its
    title and readable text, the connect greeting does not repeat, an expired token is
    replaced by relogin with no user action, and quit calls close with the token."""
    backend = spring()
    system = tray_paths.config_dir.parent / "system.toml"
    system.parent.mkdir(parents=True, exist_ok=True)
    system.write_text(config_mod.dumps({"server_url": backend.url, **PROFILE}), encoding="utf-8")
    paths = dataclasses.replace(tray_paths, system_config_files=(system,))
    root = make_root(config=config_mod.load(paths), paths=paths)
    delivered = Spy(root.notifier.delivered)
    root.start()
    dialog = root.login_dialog
    assert dialog is not None and dialog.server_edit.text() == backend.url
    assert dialog.profile_label.text() == "Server type: token login (/login)"
    dialog.user_edit.setText("admin")
    dialog.password_edit.setText("admin123")
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)  # the greeting, once
    assert delivered.values[0].body == GREETING

    for n, html in (
        (1, "<p>今晚&nbsp;<b>22:00</b> 停电</p><p>请保存</p>"),
        (2, "<ul><li>a</li></ul>"),
    ):
        backend.notice({"noticeId": n, "noticeTitle": f"通知 {n}", "noticeContent": html})
        count = n + 1
        qtbot.waitUntil(lambda: len(delivered.calls) == count, timeout=WAIT)  # noqa: B023
    shown = [(r.title, r.body) for r in delivered.values[1:]]
    assert shown == [("通知 1", "今晚 22:00 停电\n请保存"), ("通知 2", "• a")]

    # the token expires and the stream drops: relogin, same greeting not toasted again
    backend.expire_tokens()
    backend.drop_streams()
    root.worker.reconnect_now()  # (skips the 3 s wait, as a wake-up does)
    qtbot.waitUntil(lambda: len(backend.logins) == 2 and backend.open_streams() == 1, timeout=WAIT)
    backend.notice({"noticeId": 3, "noticeTitle": "通知 3", "noticeContent": "<p>after</p>"})
    qtbot.waitUntil(lambda: len(delivered.calls) == 4, timeout=WAIT)
    assert [r.title for r in delivered.values].count("通知 3") == 1
    assert [r.body for r in delivered.values].count(GREETING) == 1
    assert root.login_dialog is None and root.tray.state.status.state is ConnState.CONNECTED

    token = backend.connects[-1].authorization
    assert root.shutdown(3000)
    assert [(c.path, c.authorization) for c in backend.closes] == [("/sse/close/1", token)]
    assert ("GET", "/sse/close/1") in recording_transport.requests


def test_a_changed_password_opens_the_login_saying_why(
    qtbot: QtBot,
    spring: Callable[..., SpringBackend],
    make_root: Callable[..., Root],
    tray_paths: Paths,
) -> None:
    """The automatic relogin is refused (the password was changed): the login dialog opened
    with no reason (issue 21); it says the stored password stopped working, and its profile
    line stays whole beside the message."""
    backend = spring(greeting=None)
    system = tray_paths.config_dir.parent / "system.toml"
    system.parent.mkdir(parents=True, exist_ok=True)
    tables = {"server_url": backend.url, "username": "admin", **PROFILE}
    system.write_text(config_mod.dumps(tables), encoding="utf-8")
    paths = dataclasses.replace(tray_paths, system_config_files=(system,))
    root = make_root(config=config_mod.load(paths), paths=paths)
    root.start()
    qtbot.waitUntil(lambda: root.login_dialog is not None, timeout=WAIT)  # none stored yet
    dialog = root.login_dialog
    assert dialog is not None
    assert dialog.error_label.isHidden()  # the first login: nothing to explain
    dialog.password_edit.setText("admin123")
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: root.tray.state.status.state is ConnState.CONNECTED, timeout=WAIT)
    assert root.login_dialog is None

    backend.users["admin"].password = "a new one"  # changed in the web app
    backend.expire_tokens()
    backend.drop_streams()
    root.worker.reconnect_now()
    qtbot.waitUntil(lambda: root.login_dialog is not None, timeout=WAIT)
    dialog = root.login_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: not dialog.error_label.isHidden(), timeout=WAIT)
    assert "The stored password stopped working" in dialog.error_label.text()
    assert len(backend.logins) == 2  # one relogin, refused: never a loop
    label = dialog.profile_label
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.contentsRect().width()


def test_a_bad_value_in_it_s_file_keeps_the_tray_running_and_says_so(
    qtbot: QtBot,
    server_factory: Any,
    make_root: Callable[..., Root],
    tray_paths: Paths,
) -> None:
    """One bad value in IT's system file stopped every user's tray with a modal error telling
    staff to edit a file they cannot touch (issue 22): the tray starts, connects with IT's
    other settings, and its tooltip says so for IT; that one setting has its default."""
    server = server_factory(demo_users=True, ping_interval=0.5)
    system = tray_paths.config_dir.parent / "system.toml"
    system.parent.mkdir(parents=True, exist_ok=True)
    system.write_text(
        f'server_url = "{server.url}"\nretention_days = "forever"\nlocked = ["server_url"]\n'
    )
    paths = dataclasses.replace(tray_paths, system_config_files=(system,))
    cfg = config_mod.load(paths)
    assert cfg.server_url == server.url and cfg.retention_days == 90 and cfg.problems
    root = make_root(config=cfg, paths=paths)
    root.start()
    assert "IT's settings could not all be used: see the log" in root.tray.tooltip()
    root.login(server.url, "alice", DEMO_PASSWORD)
    qtbot.waitUntil(lambda: root.tray.state.status.state is ConnState.CONNECTED, timeout=WAIT)
