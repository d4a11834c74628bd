"""Project override of PyInstaller's ``PySide6.QtNetwork`` hook: the same plugin filter as
hook-PySide6.QtGui.py (here: the GLib and ConnMan network-information backends)."""

from __future__ import annotations

import runpy
from pathlib import Path

# the hooks folder is not a package: load the shared filter by path
_qt_plugins = runpy.run_path(str(Path(__file__).with_name("qt_plugins.py")))
hiddenimports, binaries, datas = _qt_plugins["collect"](__file__)
