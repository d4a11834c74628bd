"""The proxy dialog against a real squid asking for Basic credentials (DESIGN "Corporate
networks": the tray asks with a dialog on the first 407): the stream's 407 opens it, Save keeps
the credentials in the keyring as ``proxy-login`` does and reconnects through squid (its access
log names the user); wrong ones bring it back once, saying the proxy refused them; Cancel leaves
the error state naming proxy-login, and a later 407 does not bring it back by itself. The
password is never in the log, the settings file or any file of the profile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLineEdit
from pytestqt.qtbot import QtBot

from app.core import network_policy
from app.core.auth import AuthSession
from app.core.config import Config, Endpoints, NetworkSettings, Paths, StreamSettings
from app.core.errors import ErrorKind
from app.core.model import ConnState
from app.core.proxy import OsProxySettings, read_credentials
from app.core.secrets import MemorySecretStore, login_key
from app.server.embedded import EmbeddedServer
from app.ui import i18n
from app.ui.proxy_dialog import ProxyDialog
from app.ui.root import Root
from tests.fixtures.proxy import Squid, SquidFactory
from tests.fixtures.qt import Spy
from tests.fixtures.server import DEMO_PASSWORD

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support", ".*systemTrayWindowChanged")

BOUND_MS = 30_000  # every wait is on a condition, bounded by this
PROXY_USER = "ann"
PROXY_PASSWORD = "pr0xy-Secret-771"
WRONG_PASSWORD = "not-it-4412"


def _stored_login(server: EmbeddedServer) -> MemorySecretStore:
    """A keyring holding alice's login, made directly (no proxy yet), as a tray finds it."""
    secrets = MemorySecretStore()
    session = AuthSession(
        server_url=server.url,
        username="alice",
        endpoints=Endpoints(),
        secrets=secrets,
        settings=StreamSettings(),
    )

    async def login() -> None:
        try:
            await session.login(DEMO_PASSWORD)
        finally:
            await session.aclose()

    asyncio.run(login())
    return secrets


def _tray_through(
    squid: Squid, server: EmbeddedServer, make_root: Callable[..., Root]
) -> tuple[Root, MemorySecretStore]:
    """A tray whose [network] proxy is ``squid`` (as main() sets the policy), logged in as
    alice (its settings file written), started: its stream meets squid's 407."""
    secrets = _stored_login(server)
    network = NetworkSettings(proxy=squid.url)
    network_policy.use(network, secrets=secrets, environ={}, os_settings=OsProxySettings)
    root = make_root(config=Config(network=network), secrets=secrets, transport=None)
    assert root.settings.remember_account(server.url, "alice")  # the settings file
    root.start()
    return root, secrets


def _dialog(qtbot: QtBot, root: Root) -> ProxyDialog:
    qtbot.waitUntil(lambda: root.proxy_flow.dialog is not None, timeout=BOUND_MS)
    dialog = root.proxy_flow.dialog
    assert dialog is not None and dialog.isVisible()
    return dialog


def _fill(qtbot: QtBot, dialog: ProxyDialog, user: str, password: str) -> None:
    dialog.user_edit.clear()
    qtbot.keyClicks(dialog.user_edit, user)
    dialog.password_edit.clear()
    qtbot.keyClicks(dialog.password_edit, password)
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)


def _profile_files(paths: Paths) -> list[Path]:
    return [
        f
        for folder in (paths.config_dir, paths.data_dir, paths.log_dir)
        if folder.exists()
        for f in folder.rglob("*")
        if f.is_file()
    ]


def test_the_first_407_asks_and_saving_connects_through_squid(
    qtbot: QtBot,
    make_root: Callable[..., Root],
    squid_factory: SquidFactory,
    companion_server: EmbeddedServer,
    tray_paths: Paths,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    squid = squid_factory(users={PROXY_USER: PROXY_PASSWORD})
    root, secrets = _tray_through(squid, companion_server, make_root)

    dialog = _dialog(qtbot, root)
    assert f"Proxy: {squid.url}" in dialog.proxy_label.text()
    assert dialog.proxy_label.textFormat() is Qt.TextFormat.PlainText
    assert not dialog.refused
    assert dialog.password_edit.echoMode() is QLineEdit.EchoMode.Password
    assert root.tray.state.status.error is ErrorKind.PROXY_AUTH

    # wrong ones first: the proxy refuses them, the dialog comes back once, saying so
    _fill(qtbot, dialog, PROXY_USER, WRONG_PASSWORD)
    qtbot.waitUntil(
        lambda: root.proxy_flow.dialog is not None and root.proxy_flow.dialog.refused,
        timeout=BOUND_MS,
    )
    again = root.proxy_flow.dialog
    assert again is not None and again.isVisible() and again.password_edit.text() == ""
    assert root.tray.state.status.error is ErrorKind.PROXY_REFUSED

    _fill(qtbot, again, PROXY_USER, PROXY_PASSWORD)
    qtbot.waitUntil(lambda: root.tray.state.status.state is ConnState.CONNECTED, timeout=BOUND_MS)
    assert root.proxy_flow.dialog is None
    stored = read_credentials(secrets)  # kept as proxy-login keeps them
    assert stored is not None and (stored.user, stored.password) == (PROXY_USER, PROXY_PASSWORD)

    # squid logs a request when it ends: the live stream's shows once the tray quits
    root.shutdown(5000)
    stream = f"http://127.0.0.1:{companion_server.port}/sse/connect/alice"

    def streamed_as_ann() -> bool:
        return any(r.url.startswith(stream) and r.user == PROXY_USER for r in squid.requests())

    qtbot.waitUntil(streamed_as_ann, timeout=BOUND_MS)
    assert next(r.status for r in squid.requests() if r.url.startswith(stream)) == 407

    assert root.paths.user_config_file.is_file()
    for secret in (PROXY_PASSWORD, WRONG_PASSWORD):
        assert secret not in caplog.text
        for f in _profile_files(tray_paths):
            assert secret.encode() not in f.read_bytes(), f


def test_cancel_keeps_the_error_and_a_later_407_does_not_ask_again(
    qtbot: QtBot,
    make_root: Callable[..., Root],
    squid_factory: SquidFactory,
    companion_server: EmbeddedServer,
) -> None:
    squid = squid_factory(users={PROXY_USER: PROXY_PASSWORD})
    root, secrets = _tray_through(squid, companion_server, make_root)
    dialog = _dialog(qtbot, root)
    qtbot.keyClicks(dialog.password_edit, "typed, then cancelled")
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert root.proxy_flow.dialog is None and not dialog.isVisible()
    assert dialog.password_edit.text() == ""  # forgotten as the dialog closed
    assert read_credentials(secrets) is None
    assert root.tray.state.status.state is ConnState.ERROR
    assert "proxy-login" in root.tray.status_text()

    # a reconnect nobody asked for meets the 407 again: the tray does not ask again
    statuses = _Statuses(root)
    root.follow_login(_login_key(root))  # as when the command line logged in
    qtbot.waitUntil(lambda: ErrorKind.PROXY_AUTH in statuses.errors, timeout=BOUND_MS)
    assert root.proxy_flow.dialog is None
    assert "proxy-login" in root.tray.status_text()


def _login_key(root: Root) -> str:
    cfg = root.settings.config
    return login_key(cfg.server_url, cfg.username)


class _Statuses:
    """The error kinds of the worker's statuses, as they arrive on the GUI thread."""

    def __init__(self, root: Root) -> None:
        self._spy = Spy(root.worker.statusChanged)

    @property
    def errors(self) -> list[Any]:
        return [s.error for s in self._spy.values]


def test_the_dialog_in_chinese(qtbot: QtBot, qapp: QApplication, tmp_path: Path) -> None:
    i18n.install(qapp, "zh_CN")
    try:
        dialog = ProxyDialog("http://proxy.example.org:3128", refused=True)
        qtbot.addWidget(dialog)
        dialog.show()
        assert dialog.windowTitle() == "代理服务器凭据 — Tray Notifier"
        assert dialog.save_button.text() == "保存(&S)"
        assert dialog.proxy_label.text() == "代理服务器：http://proxy.example.org:3128"
        assert "拒绝" in dialog.refused_label.text()
        qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
        assert dialog.error_label.text() == "请输入代理服务器用户名。"
        shot = tmp_path / "proxy-dialog-zh_CN.png"
        assert dialog.grab().save(str(shot))
    finally:
        i18n.uninstall(qapp)


def test_a_password_login_that_meets_the_407_asks_too(
    qtbot: QtBot,
    make_root: Callable[..., Root],
    squid_factory: SquidFactory,
    companion_server: EmbeddedServer,
) -> None:
    squid = squid_factory(users={PROXY_USER: PROXY_PASSWORD})
    secrets = MemorySecretStore()
    network = NetworkSettings(proxy=squid.url)
    network_policy.use(network, secrets=secrets, environ={}, os_settings=OsProxySettings)
    root = make_root(config=Config(network=network), secrets=secrets, transport=None)
    root.start()  # no account yet: the login dialog
    login = root.login_dialog
    assert login is not None
    root.login(companion_server.url, "alice", DEMO_PASSWORD)
    dialog = _dialog(qtbot, root)
    assert login.error_label.text().startswith("The proxy on the way asks for a user name")
    _fill(qtbot, dialog, PROXY_USER, PROXY_PASSWORD)
    qtbot.waitUntil(lambda: root.proxy_flow.dialog is None, timeout=BOUND_MS)
    assert read_credentials(secrets) is not None
    assert root.login_dialog is login and login.isVisible()  # where the person logs in again
    root.login(companion_server.url, "alice", DEMO_PASSWORD)  # the person logs in again
    qtbot.waitUntil(lambda: root.tray.state.status.state is ConnState.CONNECTED, timeout=BOUND_MS)
    assert root.login_dialog is None
