"""The login conversation without a server: the locked server wins, the keyring's refusal is
offered for this run only (asked once), other failures are worded in the dialog."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.core.config import Config, Paths
from app.core.login_failure import FailureKind, LoginFailure
from app.ui.login_flow import LoginAttempt, LoginFlow
from app.ui.notices import Notices
from app.ui.settings import Settings
from tests.fixtures.qt import Spy

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support")

URL = "https://news.example.org"


def make_flow(
    qtbot: QtBot, paths: Paths, config: Config, answers: list[bool]
) -> tuple[LoginFlow, list[str]]:
    asked: list[str] = []

    def ask(title: str, question: str) -> bool:
        asked.append(title)
        return answers.pop(0)

    notices = Notices(inform=lambda _t, _m: None, ask_yes_no=ask)
    flow = LoginFlow(Settings(config, paths), notices)
    flow.show()
    assert flow.dialog is not None
    qtbot.addWidget(flow.dialog)
    return flow, asked


def test_keyring_refusal_is_offered_for_this_run_only_once(qtbot: QtBot, tray_paths: Paths) -> None:
    flow, asked = make_flow(qtbot, tray_paths, Config(), [True])
    attempts = Spy(flow.attempt)
    flow.request(URL, "alice", "pw")
    assert attempts.values == [LoginAttempt(URL, "alice", "pw")]
    assert "pw" not in repr(attempts.values[0])  # never in a log line
    flow.failed(LoginFailure(FailureKind.KEYRING, "no keyring"))
    assert asked == ["Keyring not available"]
    assert attempts.values[1] == LoginAttempt(URL, "alice", "pw", this_run_only=True)
    flow.failed(LoginFailure(FailureKind.KEYRING, "no keyring"))  # even memory failed: no loop
    assert len(asked) == 1 and len(attempts.calls) == 2
    dialog = flow.dialog
    assert dialog is not None and "keyring is not available" in dialog.error_label.text()
    flow.succeeded("alice")
    assert flow.dialog is None


def test_declined_keyring_offer_shows_the_failure(qtbot: QtBot, tray_paths: Paths) -> None:
    flow, asked = make_flow(qtbot, tray_paths, Config(), [False])
    attempts = Spy(flow.attempt)
    flow.request(URL, "alice", "pw")
    flow.failed(LoginFailure(FailureKind.KEYRING, "no keyring"))
    assert asked == ["Keyring not available"] and len(attempts.calls) == 1
    dialog = flow.dialog
    assert dialog is not None and dialog.login_button.isEnabled()


def test_a_locked_server_is_the_one_logged_in_to(qtbot: QtBot, tray_paths: Paths) -> None:
    config = Config(server_url=URL, locked=frozenset({"server_url"}))
    flow, _ = make_flow(qtbot, tray_paths, config, [])
    attempts = Spy(flow.attempt)
    dialog = flow.dialog
    assert dialog is not None and dialog.server_edit.isReadOnly()
    flow.request("https://elsewhere.example.org", "alice", "pw")
    assert attempts.values == [LoginAttempt(URL, "alice", "pw")]
    flow.failed(LoginFailure(FailureKind.WRONG_CREDENTIALS, "401"))
    assert "password is wrong" in dialog.error_label.text()
    flow.close()
    assert flow.dialog is None
