"""Qt user interface: tray, toasts, windows, and the one worker thread.

Importing the package first turns off PySide6's reading of every later module's source
(:mod:`app.ui.pyside_scan`): before any module of the interface, which are the ones it would
read."""

from app.ui.pyside_scan import skip_source_scan

skip_source_scan()
