"""End to end through the composition root against the companion server: log in through the
dialog, toasts and history, urgent + acknowledge, restart resumes, logout keeps the history,
login errors in plain words, and the keyring-unavailable offer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app import config as config_mod
from app.config import Config, Paths
from app.core.model import ConnState
from app.core.secrets import KeyringSecretStore, MemorySecretStore, login_key
from app.server.embedded import EmbeddedServer
from app.ui.root import Root
from app.ui.urgent_window import UrgentWindow
from tests.fixtures.qt import RecordingTransport, Spy
from tests.fixtures.server import DEMO_PASSWORD

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


def test_revoke_removes_it_and_closes_the_urgent_window(
    qtbot: QtBot, companion_server: EmbeddedServer, make_root: Callable[..., Root]
) -> None:
    root = make_root(config=Config())
    root.start()
    log_in_through_dialog(qtbot, root, companion_server.url)
    wait_connected(qtbot, root)
    ann_id = companion_server.publish("Wrong alarm", "Ignore", priority="urgent")
    qtbot.waitUntil(lambda: ann_id in root.urgent, timeout=WAIT)
    assert root.urgent[ann_id].isVisible()
    companion_server.revoke(ann_id)
    qtbot.waitUntil(lambda: ann_id not in root.urgent, timeout=WAIT)
    assert not [
        w for w in QApplication.topLevelWidgets() if isinstance(w, UrgentWindow) and w.isVisible()
    ]
    assert "Wrong alarm" not in history_titles(root)


def test_token_expiry_and_server_restart_need_no_user_action(
    qtbot: QtBot,
    server_factory: Any,
    make_root: Callable[..., Root],
    recording_transport: RecordingTransport,
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, token_ttl=2.0, retry_ms=100)
    root = make_root()
    delivered = Spy(root.notifier.delivered)
    root.start()
    log_in_through_dialog(qtbot, root, server.url)
    wait_connected(qtbot, root)
    first = server.publish("Before", "the token expires")
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)
    # 2 s tokens: wait for two refreshes, then the stream must still deliver
    qtbot.waitUntil(
        lambda: recording_transport.paths("POST").count("/auth/refresh") >= 2, timeout=WAIT
    )
    second = server.publish("After", "two token expiries")
    qtbot.waitUntil(lambda: len(delivered.calls) == 2, timeout=WAIT)
    server.stop()
    server = server_factory(
        data_dir=server.data_dir, port=server.port, token_ttl=2.0, retry_ms=100, ping_interval=0.5
    )
    third = server.publish("Restarted", "the server came back")
    qtbot.waitUntil(lambda: len(delivered.calls) >= 3, timeout=WAIT)
    assert [r.announcement_id for r in delivered.values] == [first, second, third]
    assert root.login_dialog is None  # no user action was needed
    assert root.store is not None and root.store.last_event_id() == third
