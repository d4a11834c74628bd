"""Project override of PyInstaller's ``PySide6.QtGui`` hook: collect only the Qt plugins the
tray needs.

PyInstaller's own hook collects every plugin type linked to QtGui. Some of them pull in large
libraries during dependency analysis: the GTK3 platform theme brings the build machine's GTK,
cairo and pango; the EGLFS, linuxfb, VNC and Wayland platforms bring their device and Wayland
libraries; the PDF image format brings QtPdf. Dropping them here, before the analysis follows
their imports, is what keeps the bundle small. A Wayland session then runs the app through
XWayland, which also lets our own toast window position itself.

The plugin list is in qt_plugins.py, shared with hook-PySide6.QtNetwork.py. A hook in the
project's hooks folder takes precedence over the built-in one for the same module, so this file
replaces ``PyInstaller/hooks/hook-PySide6.QtGui.py`` entirely.
"""

from __future__ import annotations

import runpy
from pathlib import Path

# the hooks folder is not a package: load the shared filter by path
_qt_plugins = runpy.run_path(str(Path(__file__).with_name("qt_plugins.py")))
hiddenimports, binaries, datas = _qt_plugins["collect"](__file__)
