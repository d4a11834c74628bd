"""Translations: the Chinese catalog loads and translates; English keeps the source text."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import QCoreApplication, QLocale

from app import resources
from app.core.model import Priority
from app.ui import i18n
from app.ui.widgets import format_time, priority_name


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
