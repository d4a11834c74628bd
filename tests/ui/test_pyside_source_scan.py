"""PySide6 no longer reads (and keeps in linecache) the source of each module imported after
it: app.ui.pyside_scan decides "uses PySide6" from the module's namespace. The hook it replaces
is a PySide6 internal: these tests fail when a release changes it (then revisit that module)."""

from __future__ import annotations

import linecache
import sys
from pathlib import Path

import pytest

from app.ui import pyside_scan


def test_modules_imported_later_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feature = sys.modules.get("shibokensupport.feature")
    assert feature is not None and hasattr(feature, "pyside_feature_dict"), (
        "this PySide6 has no __feature__ support: app/ui/pyside_scan.py may go"
    )
    assert feature._mod_uses_pyside is pyside_scan.uses_pyside  # replaced by importing app.ui
    assert pyside_scan.skip_source_scan()
    (tmp_path / "t14_uses_qt.py").write_text("from PySide6.QtCore import QObject\n")
    (tmp_path / "t14_plain.py").write_text("import json\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("t14_uses_qt", "t14_plain"):
        __import__(name)  # the import statement's way: PySide6's hook sees only that one
        monkeypatch.delitem(sys.modules, name)
    assert str(tmp_path / "t14_uses_qt.py") not in linecache.cache
    assert str(tmp_path / "t14_plain.py") not in linecache.cache
    marks = feature.pyside_feature_dict
    assert marks.get("t14_uses_qt") == 0  # uses PySide6: features could be switched there
    assert marks.get("t14_plain") == -1  # does not: ignored
