"""Translations: the Chinese catalog loads and translates; English keeps the source text."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QLocale

from app import resources
from app.core.model import Priority
from app.ui import i18n
from app.ui.widgets import format_time, priority_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_language(qapp):
    yield qapp
    i18n.uninstall(qapp)
    assert QCoreApplication.translate("Priority", "Urgent") == "Urgent"


@pytest.mark.parametrize(
    ("wanted", "system", "expected"),
    [
        ("zh_CN", "en_US", "zh_CN"),
        ("en", "zh_CN", "en"),
        ("", "zh_CN", "zh_CN"),
        ("", "zh_SG", "zh_CN"),
        ("", "zh_TW", "en"),  # traditional script: we ship no catalog for it
        ("", "de_DE", "en"),
        ("", "C", "en"),
    ],
)
def test_resolve(wanted: str, system: str, expected: str) -> None:
    assert i18n.resolve(wanted, QLocale(system)) == expected


def test_chinese_catalog_translates(app_language) -> None:
    assert i18n.install(app_language, "zh_CN") == "zh_CN"
    assert QCoreApplication.translate("Priority", "Urgent") == "紧急"
    assert priority_name(Priority.URGENT) == "紧急"
    assert QCoreApplication.translate("LoginDialog", "Enter your password.") == "请输入密码。"
    assert QLocale().name() == "zh_CN"


def test_english_is_the_source_with_plurals(app_language) -> None:
    i18n.install(app_language, "zh_CN")
    assert i18n.install(app_language, "en") == "en"  # replaces the Chinese catalog
    assert priority_name(Priority.URGENT) == "Urgent"
    one = QCoreApplication.translate("Tray", "%n unread announcement(s)", "", 1)
    many = QCoreApplication.translate("Tray", "%n unread announcement(s)", "", 5)
    assert (one, many) == ("1 unread announcement", "5 unread announcements")


def test_windows_show_chinese(qtbot, app_language, tmp_path) -> None:
    from app.ui.login_dialog import LoginDialog

    i18n.install(app_language, "zh_CN")
    d = LoginDialog()
    qtbot.addWidget(d)
    assert d.login_button.text() == "登录(&L)"
    assert d.windowTitle() == "登录 — Tray Notifier"


def test_every_message_is_translated() -> None:
    path = resources.path("translations", "tray_notifier_zh_CN.ts")
    ts = ET.parse(path)  # noqa: S314 - our own file
    unfinished = []
    for message in ts.getroot().iter("message"):
        translation = message.find("translation")
        if translation is None or translation.get("type") in ("unfinished", "vanished"):
            unfinished.append(message.findtext("source"))
    assert unfinished == []
    assert resources.path("translations", "tray_notifier_zh_CN.qm").is_file()


@pytest.fixture
def default_locale():
    """Gives ``QLocale.setDefault``; the default locale is restored afterwards."""
    saved = QLocale()
    yield QLocale.setDefault
    QLocale.setDefault(saved)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en_US", r"11/24/26,? 9:59\sAM"),  # month first, 12-hour clock
        ("en_GB", r"24/11/2026,? 09:59"),  # day first
        ("zh_CN", r"2026/11/24 09:59"),  # year first
        ("C", r"24 Nov 2026, 09:59"),  # not the C locale's own "24 11 2026 09:59"
    ],
)
def test_dates_follow_the_locale(default_locale, locale: str, expected: str) -> None:
    default_locale(QLocale(locale))
    local_time = datetime(2026, 11, 24, 9, 59).astimezone()  # shown in the local time zone
    text = format_time(local_time)
    assert re.fullmatch(expected, text), text
    assert format_time(local_time.astimezone(UTC)) == text  # the same moment, from UTC
    assert format_time(None) == ""


# One locale for words and dates: however Chinese (or English) was chosen, dates read the same.
# The system's locale is read from the environment once per process: each case is a process.
_FORMAT_UNDER = """
import sys
from datetime import UTC, datetime
from PySide6.QtWidgets import QApplication
from app.ui import i18n
from app.ui.widgets import format_time
app = QApplication([])
for language in sys.argv[1:]:
    used = i18n.install(app, "" if language == "system" else language)
    print(used, format_time(datetime(2026, 12, 5, 8, 28, tzinfo=UTC)), sep="|")
"""


def _dates_under(env: dict[str, str], *languages: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG"))}
    clean.update(TZ="UTC", QT_QPA_PLATFORM="offscreen", **env)
    done = subprocess.run(
        [sys.executable, "-c", _FORMAT_UNDER, *languages],
        env=clean,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_chinese_dates_however_chinese_was_chosen() -> None:
    chinese = "zh_CN|2026/12/5 08:28"
    # LANGUAGE=zh_CN with LANG=C.UTF-8 (the C locale's "5 12 2026 08:28" underneath), and
    # 简体中文 chosen in Settings on that system and on a plain C one
    by_system = _dates_under({"LANGUAGE": "zh_CN", "LANG": "C.UTF-8"}, "system", "zh_CN")
    by_settings = _dates_under({"LANG": "C.UTF-8"}, "zh_CN")
    assert by_system == [chinese, chinese]
    assert by_settings == [chinese]


def test_english_dates_however_english_was_chosen() -> None:
    english = "en|5 Dec 2026, 08:28"
    # no language (C), English chosen in Settings, and English chosen over a Chinese system
    assert _dates_under({"LANG": "C.UTF-8"}, "system", "en") == [english, english]
    assert _dates_under({"LANGUAGE": "zh_CN", "LANG": "C.UTF-8"}, "en") == [english]
    # an English region keeps its own order, chosen either way
    british = "en|05/12/2026 08:28"
    assert _dates_under({"LANG": "en_GB.UTF-8"}, "system", "en") == [british, british]


@pytest.mark.parametrize(
    ("chosen", "system", "expected"),
    [
        ("zh_CN", "zh_CN", "zh_CN"),
        ("zh_CN", "C", "zh_CN"),
        ("zh_CN", "en_US", "zh_CN"),
        ("en", "en_GB", "en_GB"),
        ("en", "C", "C"),
        ("en", "de_DE", "C"),  # English words: English dates, not German ones
        ("en", "zh_CN", "C"),
    ],
)
def test_date_locale_is_the_ui_language(chosen: str, system: str, expected: str) -> None:
    assert i18n.date_locale(chosen, QLocale(system)).name() == QLocale(expected).name()
