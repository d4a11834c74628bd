"""Login and Settings dialogs."""

from __future__ import annotations

import os
import stat
from datetime import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTime, QUrl
from PySide6.QtWidgets import QLineEdit

from app.core.config import AuthProfile, Config, QuietHours
from app.core.login_failure import FailureKind, LoginFailure
from app.core.model import Priority
from app.ui.login_dialog import LoginDialog
from app.ui.settings_dialog import SettingsDialog

# the offscreen platform warns about this for every shown window with a layout

# ------------------------------------------------------------------ login


@pytest.fixture
def login(qtbot) -> LoginDialog:
    d = LoginDialog("https://news.example.org", "alice")
    qtbot.addWidget(d)
    d.show()
    qtbot.waitExposed(d)
    return d


def test_prefilled_and_password_hidden(login: LoginDialog) -> None:
    assert login.server_edit.text() == "https://news.example.org"
    assert login.user_edit.text() == "alice"
    assert login.password_edit.echoMode() == QLineEdit.EchoMode.Password
    assert login.password_edit.hasFocus()  # the first empty field
    for w in (login.server_edit, login.user_edit, login.password_edit):
        assert w.accessibleName()


def test_enter_submits_valid_fields(qtbot, login: LoginDialog) -> None:
    login.server_edit.setText("  https://news.example.org/  ")
    qtbot.keyClicks(login.password_edit, "s3cret")
    with qtbot.waitSignal(login.loginRequested, timeout=1000) as blocker:
        qtbot.keyClick(login.password_edit, Qt.Key.Key_Return)
    assert blocker.args == ["https://news.example.org", "alice", "s3cret"]
    # busy: fields and Log in disabled, progress shown
    assert not login.password_edit.isEnabled()
    assert not login.login_button.isEnabled()
    assert login.busy_box.isVisible()
    assert login.cancel_button.isEnabled()
    assert login.isVisible()  # stays open until the root says how it went


@pytest.mark.parametrize(
    ("server", "user", "password", "message", "field"),
    [
        ("", "alice", "pw", "Enter the server address", "server_edit"),
        ("news.example.org", "alice", "pw", "must start with https://", "server_edit"),
        ("ftp://news.example.org", "alice", "pw", "not a valid server address", "server_edit"),
        ("javascript://x", "alice", "pw", "not a valid server address", "server_edit"),
        ("https://news.example.org", "  ", "pw", "Enter your user name", "user_edit"),
        ("https://news.example.org", "alice", "", "Enter your password", "password_edit"),
    ],
)
def test_validation_in_plain_words(
    qtbot, login: LoginDialog, server: str, user: str, password: str, message: str, field: str
) -> None:
    login.server_edit.setText(server)
    login.user_edit.setText(user)
    login.password_edit.setText(password)
    with qtbot.assertNotEmitted(login.loginRequested):
        login.submit()
    assert login.error_label.isVisible()
    assert message in login.error_label.text()
    assert getattr(login, field).hasFocus()
    assert login.login_button.isEnabled()


def test_show_error_is_plain_text_and_ends_busy(qtbot, login: LoginDialog) -> None:
    login.password_edit.setText("wrong")
    login.submit()
    login.show_error("<b>Wrong</b> user name or password.")
    assert login.error_label.textFormat() == Qt.TextFormat.PlainText
    assert login.error_label.text() == "<b>Wrong</b> user name or password."
    assert login.password_edit.isEnabled() and login.login_button.isEnabled()
    assert not login.busy_box.isVisible()
    assert login.password_edit.hasFocus()


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (FailureKind.WRONG_CREDENTIALS, "The user name or password is wrong."),
        (FailureKind.UNREACHABLE, "The server cannot be reached."),
        (FailureKind.CERTIFICATE, "ask IT to set the CA bundle setting"),
        (FailureKind.NOT_SERVER, "This address is not an announcement server."),
        (FailureKind.KEYRING, "the system keyring is not available"),
        (FailureKind.OTHER, "<i>the core's own message</i>"),
    ],
)
def test_a_failed_login_in_plain_words(
    qtbot, login: LoginDialog, kind: FailureKind, words: str
) -> None:
    login.password_edit.setText("pw")
    login.submit()
    login.show_failure(LoginFailure(kind, "<i>the core's own message</i>"))
    assert words in login.error_label.text()
    assert login.error_label.textFormat() == Qt.TextFormat.PlainText
    assert login.login_button.isEnabled() and not login.busy_box.isVisible()


LONG_REFUSAL = (
    "Account locked after too many failed attempts; contact the IT service desk at extension "
    "4242 or servicedesk@example.org to unlock it. " * 3
)


def fields_whole(d: LoginDialog) -> bool:
    """Every field as tall as it asks to be, and each message as tall as its wrapped text."""
    edits = (d.server_edit, d.user_edit, d.password_edit)
    messages = [m for m in (d.clear_warning, d.error_label) if m.isVisible()]
    return all(e.height() >= e.sizeHint().height() for e in edits) and all(
        m.height() >= m.heightForWidth(m.width()) for m in messages
    )


def test_a_long_error_squashes_no_field(qtbot, login: LoginDialog) -> None:
    login.password_edit.setText("wrong")
    login.submit()
    login.show_failure(
        LoginFailure(FailureKind.WRONG_CREDENTIALS, "x", reason=LONG_REFUSAL),
    )
    qtbot.waitUntil(lambda: fields_whole(login), timeout=2000)
    layout = login.layout()
    assert layout is not None and login.height() >= layout.totalHeightForWidth(login.width())
    # narrower: taller, never squashed; the error gone: its room goes too
    login.resize(login.minimumWidth(), login.height())
    qtbot.waitUntil(lambda: fields_whole(login), timeout=2000)
    tall = login.height()
    login.submit()  # tries again: the error is hidden while busy
    login.set_busy(False)
    qtbot.waitUntil(lambda: login.height() < tall, timeout=2000)
    assert fields_whole(login)


def test_succeeded_accepts_and_forgets_password(qtbot, login: LoginDialog) -> None:
    login.password_edit.setText("pw")
    with qtbot.waitSignal(login.accepted, timeout=1000):
        login.succeeded()
    assert login.password_edit.text() == ""
    assert not login.isVisible()


def test_escape_cancels_and_forgets_password(qtbot, login: LoginDialog) -> None:
    qtbot.keyClicks(login.password_edit, "half-typed")
    with qtbot.waitSignal(login.rejected, timeout=1000):
        qtbot.keyClick(login.password_edit, Qt.Key.Key_Escape)
    assert not login.isVisible()
    assert login.password_edit.text() == ""


# ------------------------------------------------------------------ settings


class Opener:
    def __init__(self) -> None:
        self.urls: list[QUrl] = []

    def __call__(self, url: QUrl) -> bool:
        self.urls.append(url)
        return True


@pytest.fixture
def opener() -> Opener:
    return Opener()


def settings(qtbot, config: Config, tmp_path: Path, opener: Opener) -> SettingsDialog:
    d = SettingsDialog(config, log_dir=tmp_path / "logs", open_url=opener)
    qtbot.addWidget(d)
    return d


def test_settings_show_the_config(qtbot, tmp_path: Path, opener: Opener) -> None:
    cfg = Config(
        server_url="https://news.example.org",
        start_at_login=True,
        quiet_hours=QuietHours(time(22, 30), time(6, 45)),
        toast_min_priority=Priority.HIGH,
        language="zh_CN",
        retention_days=30,
    )
    d = settings(qtbot, cfg, tmp_path, opener)
    assert d.server_edit.text() == "https://news.example.org"
    assert d.autostart_check.isChecked()
    assert d.quiet_box.isChecked()
    assert d.quiet_start.time() == QTime(22, 30) and d.quiet_end.time() == QTime(6, 45)
    assert d.threshold_combo.currentData() == "high"
    assert d.language_combo.currentText() == "简体中文"
    assert d.retention_spin.value() == 30


def test_settings_round_trip(qtbot, tmp_path: Path, opener: Opener) -> None:
    base = Config(server_url="https://old.example.org", username="alice")
    d = settings(qtbot, base, tmp_path, opener)
    d.server_edit.setText("https://new.example.org/")
    d.autostart_check.setChecked(True)
    d.quiet_box.setChecked(True)
    d.quiet_start.setTime(QTime(21, 0))
    d.quiet_end.setTime(QTime(7, 30))
    d.threshold_combo.setCurrentIndex(d.threshold_combo.findData("urgent"))
    d.language_combo.setCurrentIndex(d.language_combo.findData("zh_CN"))
    d.retention_spin.setValue(14)
    with qtbot.waitSignal(d.saved, timeout=1000) as blocker:
        qtbot.mouseClick(d.save_button, Qt.MouseButton.LeftButton)
    new = blocker.args[0]
    assert isinstance(new, Config)
    assert new == base.with_changes(
        server_url="https://new.example.org",
        start_at_login=True,
        quiet_hours=QuietHours(time(21, 0), time(7, 30)),
        toast_min_priority=Priority.URGENT,
        language="zh_CN",
        retention_days=14,
    )
    # and back: a dialog on the new config shows the same values
    again = settings(qtbot, new, tmp_path, opener)
    assert again.result_config() == new


def test_settings_quiet_hours_off_and_system_language(
    qtbot, tmp_path: Path, opener: Opener
) -> None:
    base = Config(quiet_hours=QuietHours(time(22), time(7)), language="en")
    d = settings(qtbot, base, tmp_path, opener)
    d.quiet_box.setChecked(False)
    d.language_combo.setCurrentIndex(0)
    new = d.result_config()
    assert new is not None
    assert new.quiet_hours is None and new.language == ""


def test_settings_refuse_bad_values(qtbot, tmp_path: Path, opener: Opener) -> None:
    d = settings(qtbot, Config(), tmp_path, opener)
    d.show()
    d.server_edit.setText("news.example.org")
    with qtbot.assertNotEmitted(d.saved):
        d.save()
    assert "https://" in d.error_label.text()
    assert d.isVisible()
    d.server_edit.setText("")
    d.quiet_box.setChecked(True)
    d.quiet_start.setTime(QTime(8, 0))
    d.quiet_end.setTime(QTime(8, 0))
    with qtbot.assertNotEmitted(d.saved):
        d.save()
    assert "different times" in d.error_label.text()


def test_settings_show_locked_settings_read_only(qtbot, tmp_path: Path, opener: Opener) -> None:
    base = Config(
        server_url="https://it.example.org",
        toast_min_priority=Priority.HIGH,
        quiet_hours=QuietHours(time(22), time(7)),
        locked=frozenset({"server_url", "toast_min_priority", "quiet_hours", "stream"}),
    )
    d = settings(qtbot, base, tmp_path, opener)
    d.show()
    qtbot.waitExposed(d)
    for widget in (d.server_edit, d.threshold_combo, d.quiet_box, d.quiet_start):
        assert not widget.isEnabled()
    for widget in (d.server_edit, d.threshold_combo, d.quiet_box):
        assert "IT department" in widget.toolTip()
    for editable in (d.autostart_check, d.language_combo, d.retention_spin):
        assert editable.isEnabled() and editable.toolTip() == ""
    assert d.locked_note.isVisible()
    # even when changed behind the user's back, a locked value is not taken from its widget
    d.server_edit.setText("not a url")
    d.threshold_combo.setCurrentIndex(d.threshold_combo.findData("low"))
    d.quiet_box.setChecked(False)
    d.retention_spin.setValue(7)
    with qtbot.waitSignal(d.saved, timeout=1000) as blocker:
        qtbot.mouseClick(d.save_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == base.with_changes(retention_days=7)


def test_settings_show_environment_settings_read_only(
    qtbot, tmp_path: Path, opener: Opener
) -> None:
    base = Config(server_url="https://env.example.org", environment=frozenset({"server_url"}))
    d = settings(qtbot, base, tmp_path, opener)
    assert not d.server_edit.isEnabled()
    assert "TRAY_NOTIFIER_SERVER" in d.server_edit.toolTip()
    assert d.locked_note.isHidden()  # IT locked nothing
    assert d.autostart_check.isEnabled()
    d.autostart_check.setChecked(True)
    assert d.result_config() == base.with_changes(start_at_login=True)


def test_settings_without_locks_are_all_editable(qtbot, tmp_path: Path, opener: Opener) -> None:
    d = settings(qtbot, Config(), tmp_path, opener)
    assert all(w.isEnabled() and not w.toolTip() for w in d.setting_widgets.values())
    assert d.locked_note.isHidden()


def test_open_log_folder(qtbot, tmp_path: Path, opener: Opener) -> None:
    d = settings(qtbot, Config(), tmp_path, opener)
    qtbot.mouseClick(d.log_button, Qt.MouseButton.LeftButton)
    assert (tmp_path / "logs").is_dir()
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700
    assert [u.toLocalFile() for u in opener.urls] == [str(tmp_path / "logs")]


# ------------------------------------------------------------------ backend profile (issue 11)

TOKEN_PROFILE = AuthProfile(style="token", login_path="/prod-api/login")


def test_login_dialog_names_the_active_profile(qtbot) -> None:
    companion = LoginDialog("https://news.example.org", "alice")
    token = LoginDialog("https://oa.example.org", "admin", profile=TOKEN_PROFILE)
    for d in (companion, token):
        qtbot.addWidget(d)
    assert companion.profile_label.text() == "Server type: companion"
    assert token.profile_label.text() == "Server type: token login (/prod-api/login)"
    assert token.profile_label.textFormat() == Qt.TextFormat.PlainText


def test_a_refusal_in_the_backends_words(qtbot, login: LoginDialog) -> None:
    login.password_edit.setText("pw")
    login.submit()
    words = "用户不存在/密码错误"
    login.show_failure(LoginFailure(FailureKind.WRONG_CREDENTIALS, "x", reason=words))
    assert login.error_label.text() == f"The server refused the login: {words}"


def test_settings_name_the_active_profile(qtbot, tmp_path: Path, opener: Opener) -> None:
    d = settings(qtbot, Config(auth=TOKEN_PROFILE), tmp_path, opener)
    assert d.profile_label.text() == "Server type: token login (/prod-api/login)"
    d = settings(qtbot, Config(), tmp_path, opener)
    assert d.profile_label.text() == "Server type: companion"


def test_login_warns_before_a_password_goes_out_in_plain_http(qtbot) -> None:
    dialog = LoginDialog("http://oa.example.org", "alice")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.clear_warning.isVisible()
    assert "plain text" in dialog.clear_warning.text()
    dialog.server_edit.setText("https://oa.example.org")
    assert not dialog.clear_warning.isVisible()
    dialog.server_edit.setText("http://127.0.0.1:8080")
    assert not dialog.clear_warning.isVisible()
