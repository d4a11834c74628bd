"""Translations: English (the source language) and Simplified Chinese.

``install(app, language)`` loads our catalog (``resources/translations/tray_notifier_<lang>.qm``;
the English one holds only plural forms) and Qt's own (standard dialogs, context menus), and
sets the default locale used for dates: one locale for words and dates (:func:`date_locale`),
however the language was chosen (Settings, or the system's ``LANGUAGE`` with ``LANG=C.UTF-8``,
whose own date formats would be the C locale's "5 12 2026 08:28").
``resources/translations/update.sh`` refreshes the catalogs from the sources.
Calling it again replaces what the previous call installed.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator

from app import resources

log = logging.getLogger(__name__)

SOURCE_LANGUAGE = "en"
LANGUAGES = ("en", "zh_CN")
CATALOG = "tray_notifier"
_TRANSLATOR_NAME = "tray-notifier-translator"


def resolve(language: str = "", system: QLocale | None = None) -> str:
    """The language to use: ``language`` ("" = the system's), matched to one we ship.

    Every Simplified Chinese locale (zh_CN, zh_SG, zh_Hans_*) gives "zh_CN"; anything else
    we do not ship gives English.
    """
    wanted = language or (system or QLocale.system()).name()
    locale = QLocale(wanted)
    if locale.language() == QLocale.Language.Chinese and locale.script() in (
        QLocale.Script.SimplifiedHanScript,
        QLocale.Script.AnyScript,
    ):
        return "zh_CN"
    return SOURCE_LANGUAGE


def date_locale(chosen: str, system: QLocale | None = None) -> QLocale:
    """The locale that formats dates for the UI language ``chosen`` (a result of
    :func:`resolve`): the system's region when it speaks that language (en_GB keeps its
    day-first dates; built from its name, so Qt's data for it, never the C formats a
    ``LANG=C.UTF-8`` leaves underneath), else the language's own: Simplified Chinese's, and
    for English on a system of another language the C locale (which
    :func:`app.ui.widgets.format_time` writes as the unambiguous "5 Dec 2026, 08:28")."""
    region = system or QLocale.system()
    speaks_it = chosen != SOURCE_LANGUAGE or region.language() == QLocale.Language.English
    if speaks_it and chosen == resolve("", region) and region.language() != QLocale.Language.C:
        return QLocale(region.name())
    if chosen == SOURCE_LANGUAGE:
        return QLocale.c()
    return QLocale(chosen)


def install(app: QCoreApplication, language: str = "") -> str:
    """Install the translations for ``language`` ("" = system) on ``app``; returns the one used."""
    uninstall(app)
    chosen = resolve(language)
    ours = resources.path("translations", f"{CATALOG}_{chosen}.qm")
    if not _load(app, str(ours.parent), ours.stem):
        log.warning("translation %s could not be loaded; showing English", ours)
        chosen = SOURCE_LANGUAGE  # the source text (only English plural forms suffer)
    if chosen != SOURCE_LANGUAGE:
        qt_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
        if not _load(app, qt_dir, f"qtbase_{chosen}"):
            log.info("Qt's own %s translation is missing; standard dialogs stay English", chosen)
    # one locale for words and dates, however the language was chosen
    QLocale.setDefault(date_locale(chosen))
    return chosen


def uninstall(app: QCoreApplication) -> None:
    """Remove what ``install`` put in place: the source text and the system's formats again."""
    for old in app.findChildren(QTranslator, _TRANSLATOR_NAME):
        QCoreApplication.removeTranslator(old)
        old.setParent(None)  # Python owns it now and frees it
    QLocale.setDefault(QLocale.system())


def _load(app: QCoreApplication, folder: str, name: str) -> bool:
    translator = QTranslator(app)
    translator.setObjectName(_TRANSLATOR_NAME)
    if translator.load(name, folder) and QCoreApplication.installTranslator(translator):
        return True
    translator.deleteLater()
    return False
