"""The exit codes: one home that every command imports, and that imports nothing back."""

from __future__ import annotations

import ast
from pathlib import Path

from app import cli, exit_codes
from app.exit_codes import EXIT_AUTH, EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL, EXIT_USAGE

APP = Path(exit_codes.__file__).parent


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_the_documented_values() -> None:
    codes = (EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_AUTH, EXIT_PROTOCOL)
    assert codes == (0, 1, 2, 3, 4)
    words = ("done", "failure", "usage", "authentication", "protocol")
    for code, word in zip(codes, words, strict=True):
        assert f"{code} {word}" in exit_codes.SUMMARY


def test_the_entry_point_shares_them() -> None:
    assert (cli.EXIT_OK, cli.EXIT_AUTH, cli.EXIT_PROTOCOL) == (EXIT_OK, EXIT_AUTH, EXIT_PROTOCOL)
    assert exit_codes.SUMMARY in " ".join(cli.build_parser().format_help().split())


def test_exit_codes_import_nothing_of_the_app() -> None:
    assert not {n for n in _imports(APP / "exit_codes.py") if n.startswith("app")}


def test_no_command_imports_the_entry_point() -> None:
    """The entry point imports the commands, never the other way round (no import cycle)."""
    importers = sorted(
        str(path.relative_to(APP.parent))
        for path in APP.rglob("*.py")
        if path.name not in ("cli.py", "__main__.py") and "app.cli" in _imports(path)
    )
    assert importers == []
