"""Project override of PyInstaller's ``PySide6.QtNetwork`` hook: the same plugin filter as
hook-PySide6.QtGui.py (here: the GLib and ConnMan network-information backends)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PyInstaller.utils.hooks.qt import add_qt6_dependencies


def _plugin_filter():
    spec = importlib.util.spec_from_file_location(
        "tn_qt_plugins", Path(__file__).with_name("qt_plugins.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plugin_kept


_kept = _plugin_filter()
hiddenimports, _binaries, datas = add_qt6_dependencies(__file__)
binaries = [(src, dest) for src, dest in _binaries if _kept(dest, src)]
