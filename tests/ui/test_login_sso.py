"""The tray's single sign-on: the login dialog offers "Sign in with your organisation account"
when the server's ``/auth/config`` says so (asked off the GUI thread, by the worker), hides the
password form when the server takes no passwords, waits for the browser with a Cancel, and on
success stores and connects as a password login does. Against the companion server and the
real OpenID provider (tests/fixtures/oidc.py) signed in through headless Chromium."""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QPoint, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.core import config as config_mod
from app.core.config import Config, Paths
from app.core.errors import ErrorKind
from app.core.login_failure import FailureKind, LoginFailure
from app.core.model import ConnState
from app.core.oidc import BrowserPrompt, Provider, SignInFailure, SignInOptions
from app.core.secrets import MemorySecretStore, login_key
from app.server.config import OidcSettings
from app.server.embedded import EmbeddedServer
from app.ui import i18n
from app.ui.login_dialog import LoginDialog
from app.ui.root import Root
from tests.fixtures.browser import Chromium
from tests.fixtures.oidc import (
    CONSOLE_CLIENT_ID,
    PUBLISHER_GROUP,
    TRAY_CLIENT_ID,
    OidcProvider,
    browser_command,
    complete_sign_in,
)
from tests.fixtures.qt import Spy
from tests.fixtures.server import ServerFactory
from tests.fixtures.transport import RecordingTransport

WAIT = 20_000
URL = "https://news.example.org"

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support", ".*systemTrayWindowChanged")


def _sso_server(
    server_factory: ServerFactory, provider: OidcProvider, *, passwords: bool = True
) -> EmbeddedServer:
    return server_factory(
        oidc=OidcSettings(
            issuer=provider.issuer,
            client_id=TRAY_CLIENT_ID,
            console_client_id=CONSOLE_CLIENT_ID,
            publisher_groups=(PUBLISHER_GROUP,),
            password_login=passwords,
        )
    )


def _dialog(root: Root) -> LoginDialog:
    dialog = root.login_dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def _above(upper: Any, lower: Any, dialog: LoginDialog) -> bool:
    return bool(upper.mapTo(dialog, QPoint()).y() < lower.mapTo(dialog, QPoint()).y())


# ---------------------------------------------------------------------- what is offered


@pytest.mark.browser
def test_the_dialog_offers_the_organisation_account_when_the_server_does(
    qtbot: QtBot,
    server_factory: ServerFactory,
    oidc_provider: OidcProvider,
    make_root: Callable[..., Root],
    recording_transport: RecordingTransport,
) -> None:
    server = _sso_server(server_factory, oidc_provider)
    root = make_root(config=Config(server_url=server.url))
    root.start()  # a server but no user: the dialog opens and asks the server
    dialog = _dialog(root)
    qtbot.waitUntil(dialog.sso_offered, timeout=WAIT)
    assert ("GET", "/auth/config") in recording_transport.requests
    # first the organisation account, then (the server takes passwords too) the password form
    assert dialog.sso_button.text() == "Sign in with your organisation account"
    assert dialog.password_form_shown() and dialog.login_button.isVisible()
    assert dialog.or_label.isVisible()
    assert _above(dialog.sso_button, dialog.user_edit, dialog)


@pytest.mark.browser
def test_no_password_form_when_the_server_takes_no_passwords(
    qtbot: QtBot,
    server_factory: ServerFactory,
    oidc_provider: OidcProvider,
    make_root: Callable[..., Root],
) -> None:
    server = _sso_server(server_factory, oidc_provider, passwords=False)
    root = make_root(config=Config(server_url=server.url))
    root.start()
    dialog = _dialog(root)
    qtbot.waitUntil(dialog.sso_offered, timeout=WAIT)
    assert not dialog.password_form_shown()
    assert not dialog.user_edit.isVisible() and not dialog.password_edit.isVisible()
    assert not dialog.login_button.isVisible() and not dialog.or_label.isVisible()
    assert dialog.sso_button.isDefault()


@pytest.mark.browser
def test_a_server_without_single_sign_on_keeps_the_password_form(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    server_factory: ServerFactory,
    oidc_provider: OidcProvider,
    make_root: Callable[..., Root],
) -> None:
    root = make_root(config=Config(server_url=companion_server.url))
    told = Spy(root.worker.signInOptions)
    root.start()
    dialog = _dialog(root)
    qtbot.waitUntil(lambda: len(told.calls) == 1, timeout=WAIT)
    assert told.values == [SignInOptions(companion_server.url)]
    assert not dialog.sso_offered() and dialog.password_form_shown()
    # another address typed: that server is asked in turn
    other = _sso_server(server_factory, oidc_provider, passwords=False)
    dialog.server_edit.setText(other.url)
    dialog.server_edit.editingFinished.emit()
    qtbot.waitUntil(dialog.sso_offered, timeout=WAIT)
    assert not dialog.password_form_shown()
    # the answer about an address no longer in the field is not followed
    dialog.set_sign_in_options(SignInOptions(companion_server.url))
    assert dialog.sso_offered()


# ---------------------------------------------------------------------- signing in


@pytest.mark.browser
def test_the_tray_signs_in_with_the_organisation_account(
    qtbot: QtBot,
    server_factory: ServerFactory,
    oidc_provider: OidcProvider,
    chromium: Chromium,
    make_worker: Callable[..., Any],
    make_root: Callable[..., Root],
    tray_paths: Paths,
) -> None:
    """The button opens the provider's page in the browser; once alice signed in there, the
    login is stored under alice (the user the sign-in names) as a password login is, the
    settings name her, the dialog closes and the tray connects."""
    server = _sso_server(server_factory, oidc_provider)
    secrets = MemorySecretStore()
    config = Config(server_url=server.url)
    opener = webbrowser.GenericBrowser(browser_command(chromium)).open
    worker = make_worker(config=config, secrets=secrets, open_browser=opener)
    root = make_root(config=config, secrets=secrets, worker=worker)
    root.start()
    dialog = _dialog(root)
    qtbot.waitUntil(dialog.sso_offered, timeout=WAIT)
    done: list[BaseException | str] = []

    def person() -> None:
        try:
            done.append(
                complete_sign_in(
                    chromium,
                    url_prefix=oidc_provider.issuer,
                    username="alice",
                    password=oidc_provider.user("alice").password,
                )
            )
        except BaseException as exc:  # noqa: BLE001 - checked below, on the test's thread
            done.append(exc)

    helper = threading.Thread(target=person, daemon=True)
    helper.start()
    waiting = Spy(root.worker.signInWaiting)
    qtbot.mouseClick(dialog.sso_button, Qt.MouseButton.LeftButton)
    assert dialog.signing_in and dialog.waiting_box.isVisible()
    assert dialog.waiting_label.text() == "Waiting for the sign-in in your browser…"
    assert not dialog.sso_button.isEnabled() and dialog.cancel_sign_in_button.isEnabled()
    qtbot.waitUntil(lambda: len(waiting.calls) == 1, timeout=WAIT)
    prompt = waiting.values[0]
    assert isinstance(prompt, BrowserPrompt) and prompt.url.startswith(oidc_provider.issuer)
    qtbot.mouseClick(dialog.copy_address_button, Qt.MouseButton.LeftButton)
    clipboard = QApplication.clipboard()
    assert clipboard is not None and clipboard.text() == prompt.url
    qtbot.waitUntil(
        lambda: (
            root.login_dialog is None
            and root.tray.state.username == "alice"
            and root.tray.state.status.state is ConnState.CONNECTED
        ),
        timeout=WAIT,
    )
    helper.join(WAIT / 1000)
    assert done and isinstance(done[0], str), done
    assert secrets.get(login_key(server.url, "alice")) is not None
    saved = config_mod.load(tray_paths)
    assert (saved.server_url, saved.username) == (server.url, "alice")


@pytest.mark.browser
def test_cancel_while_waiting_changes_nothing(
    qtbot: QtBot,
    server_factory: ServerFactory,
    oidc_provider: OidcProvider,
    make_worker: Callable[..., Any],
    make_root: Callable[..., Root],
    tray_paths: Paths,
) -> None:
    server = _sso_server(server_factory, oidc_provider)
    secrets = MemorySecretStore()
    config = Config(server_url=server.url)
    opened: list[str] = []

    def open_browser(url: str) -> bool:  # a browser nobody signs in with
        opened.append(url)
        return True

    worker = make_worker(config=config, secrets=secrets, open_browser=open_browser)
    root = make_root(config=config, secrets=secrets, worker=worker)
    root.start()
    dialog = _dialog(root)
    qtbot.waitUntil(dialog.sso_offered, timeout=WAIT)
    qtbot.mouseClick(dialog.sso_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.copy_address_button.isEnabled, timeout=WAIT)  # the page is open
    qtbot.mouseClick(dialog.cancel_sign_in_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.signing_in, timeout=WAIT)
    assert dialog.error_label.text() == "The sign-in was cancelled. Nothing was changed."
    assert dialog.error_label.textFormat() == Qt.TextFormat.PlainText
    assert not dialog.waiting_box.isVisible() and dialog.sso_button.isEnabled()
    assert opened and opened[0].startswith(oidc_provider.issuer)
    assert secrets._values == {}
    assert not tray_paths.user_config_file.exists()

    # closing the dialog while a sign-in waits cancels it too
    failed = Spy(root.worker.signInFailed)
    qtbot.mouseClick(dialog.sso_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(opened) == 2, timeout=WAIT)
    dialog.reject()
    qtbot.waitUntil(lambda: len(failed.calls) == 1, timeout=WAIT)
    assert failed.values[0].kind is ErrorKind.SIGN_IN_CANCELLED
    assert root.login_dialog is None and secrets._values == {}


# ---------------------------------------------------------------------- words


def _failure(kind: ErrorKind, reason: str = "", failure: LoginFailure | None = None) -> Any:
    return SignInFailure(URL, kind, failure or LoginFailure(FailureKind.OTHER, "x"), reason)


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        (_failure(ErrorKind.SIGN_IN_CANCELLED), "The sign-in was cancelled. Nothing was changed."),
        (_failure(ErrorKind.SIGN_IN_TIMED_OUT), "not finished within 5 minutes"),
        (_failure(ErrorKind.PROVIDER_REFUSED, "<b>no</b>"), "did not succeed: <b>no</b>"),
        (_failure(ErrorKind.NO_SINGLE_SIGN_ON), "does not offer sign-in"),
        (
            _failure(
                ErrorKind.WRONG_CREDENTIALS,
                failure=LoginFailure(FailureKind.WRONG_CREDENTIALS, "m", reason="a local name"),
            ),
            "The server refused the login: a local name",
        ),
        (
            _failure(ErrorKind.UNREACHABLE, failure=LoginFailure(FailureKind.UNREACHABLE, "m")),
            "cannot be reached",
        ),
    ],
)
def test_a_failed_sign_in_in_plain_words(qtbot: QtBot, failure: Any, words: str) -> None:
    dialog = LoginDialog(URL)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.set_sign_in_options(SignInOptions(URL, password=False, provider=Provider(URL, "c")))
    with qtbot.waitSignal(dialog.signInRequested, timeout=1000) as asked:
        dialog.submit()  # Enter, with no password form: the organisation account
    assert asked.args == [URL] and dialog.signing_in
    dialog.show_sign_in_failure(failure)
    assert words in dialog.error_label.text()
    assert dialog.error_label.textFormat() == Qt.TextFormat.PlainText
    assert not dialog.signing_in and dialog.sso_button.isEnabled()


def test_the_words_in_chinese(qapp: QApplication, qtbot: QtBot) -> None:
    try:
        i18n.install(qapp, "zh_CN")
        dialog = LoginDialog(URL)
        qtbot.addWidget(dialog)
        assert dialog.sso_button.text() == "使用组织账户登录"
        assert dialog.waiting_label.text() == "正在等待您在浏览器中完成登录…"
        cancelled = dialog.sign_in_failure_text(_failure(ErrorKind.SIGN_IN_CANCELLED))
        assert cancelled == "登录已取消，未作任何更改。"
        assert "5 分钟" in dialog.sign_in_failure_text(_failure(ErrorKind.SIGN_IN_TIMED_OUT))
    finally:
        i18n.uninstall(qapp)
    assert QCoreApplication.translate("LoginDialog", "Cancel sign-in") == "Cancel sign-in"
