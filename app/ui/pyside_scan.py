"""PySide6's source scan, turned off.

PySide6's ``__feature__`` support (``from __feature__ import snake_case``) marks each module
imported after PySide6 as using it or not, by reading the module's whole source file with
``inspect.getsource`` and looking for the word "PySide6"; the lines stay in ``linecache``. For
the tray that is about 300 files: 11 MiB of memory kept for ever and 35 ms of start-up. The mark
matters only to modules that select a feature, which this program never does; it is decided
from the module's namespace instead (:func:`uses_pyside`).

The hook is PySide6's internal ``shibokensupport.feature._mod_uses_pyside``: the package
``app.ui`` replaces it before any of its modules is imported, and
``tests/ui/test_pyside_source_scan.py`` fails when a PySide6 release no longer has it.
"""

from __future__ import annotations

import sys
import types

import PySide6.QtCore  # noqa: F401 - loads shibokensupport, where the hook lives


def uses_pyside(module: types.ModuleType) -> bool:
    """Whether ``module`` imported from PySide6, from its namespace (nothing is read)."""
    for value in list(vars(module).values()):
        name: object
        if isinstance(value, types.ModuleType):
            name = value.__name__
        elif isinstance(value, type):
            name = vars(value).get("__module__")
        else:
            continue
        if isinstance(name, str) and name.startswith("PySide6"):
            return True
    return False


def skip_source_scan() -> bool:
    """Replace PySide6's scan with :func:`uses_pyside`. Returns False (and changes nothing) on
    a PySide6 without that hook."""
    feature = sys.modules.get("shibokensupport.feature")
    if feature is None or not callable(getattr(feature, "_mod_uses_pyside", None)):
        return False
    feature._mod_uses_pyside = uses_pyside  # type: ignore[attr-defined]
    return True
