"""*Diagnose connection…*: the menu entry opens the doctor's report for the current settings
(run for real against the companion server), *Copy report* puts it on the clipboard, and the
stored login's token never shows. The window's picture: docs/screenshots/diagnose-window.png."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from app.core.auth import Tokens
from app.core.config import Config, NetworkSettings
from app.core.secrets import MemorySecretStore, login_key
from app.server.embedded import EmbeddedServer
from tests.fixtures.qt import menu_action

ROOT = Path(__file__).resolve().parents[2]
SECRET = "at-never-shown-0123456789"


def test_the_menu_entry_shows_the_report_and_copies_it(
    qtbot: QtBot, make_root: Any, companion_server: EmbeddedServer, tmp_path: Path
) -> None:
    url = companion_server.url
    config = Config(server_url=url, username="alice", network=NetworkSettings(proxy="none"))
    tokens = Tokens(SECRET, "rt-" + SECRET, time.time() + 3600, "alice", time.time())
    secrets = MemorySecretStore({login_key(url, "alice"): tokens.to_secret()})
    root = make_root(config=config, secrets=secrets)
    menu_action(root.tray, "Diagnose connection…").trigger()
    window = root.diagnosis
    assert window is not None and window.isVisible()
    qtbot.waitUntil(lambda: bool(window.report_text), timeout=30_000)
    text = window.text.toPlainText()
    assert "[OK  ] tcp: connected to the server" in text
    assert "[OK  ] server:" in text and "[WARN] tls: not encrypted" in text
    assert SECRET not in text  # the stored login's token: the server refuses it, never shown
    window.copy_button.click()
    assert QGuiApplication.clipboard().text() == window.report_text
    window.resize(900, 560)
    shots = tmp_path / "diagnose-window.png"
    assert window.grab().save(str(shots))
    assert shots.stat().st_size > 0
