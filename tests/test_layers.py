"""The layers, pinned (README "Layers"): data flows server -> core -> ui, and nothing runs back.

Read from every module's imports, those inside functions included (a lazy import is an import)."""

from __future__ import annotations

import ast
from pathlib import Path

import app

APP = Path(app.__file__).parent
# the commands: entry modules at app/ level, which only the entry point and each other import
ENTRY = {"app.cli", "app.__main__", "app.demo", "app.listen", "app.publish", "app.selftest"}


def _imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        names = found.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
    return found


IMPORTS = _imports()


def _breaking(layer: str, *forbidden: str) -> dict[str, set[str]]:
    return {
        module: bad
        for module, names in IMPORTS.items()
        if module.startswith(layer)
        and (bad := {n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden)})
    }


def test_core_imports_neither_qt_nor_ui_nor_server() -> None:
    assert _breaking("app.core", "PySide6", "shiboken6", "app.ui", "app.server") == {}


def test_the_server_imports_neither_ui_nor_the_commands() -> None:
    assert _breaking("app.server", "PySide6", "app.ui", *ENTRY, "app.account") == {}


def test_the_ui_imports_no_server_and_no_command() -> None:
    assert _breaking("app.ui", "app.server", *ENTRY) == {}


def test_nothing_but_the_entry_point_imports_the_command_line() -> None:
    importers = {m for m, names in IMPORTS.items() if "app.cli" in names}
    assert importers == {"app.__main__"}


def test_the_check_reads_real_imports() -> None:
    """A guard for the guard: the reader finds imports it must find."""
    assert {"PySide6.QtCore", "app.core.autostart"} <= IMPORTS["app.ui.root"]
    assert _breaking("app.ui", "PySide6")  # the ui does import Qt: the check sees it
