"""The error tree: one module, one base, the old import paths still working."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from app.core import autostart, config, errors, store
from app.core.errors import (
    AutostartError,
    ConfigError,
    HistoryDamagedError,
    HistoryStoreError,
    InputRefused,
    LoginRequired,
    TrayNotifierError,
    WrongCredentials,
)

CORE = Path(errors.__file__).parent


def _error_classes() -> list[type[BaseException]]:
    return [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    ]


def test_every_error_is_in_the_tree_and_in_its_picture() -> None:
    classes = _error_classes()
    assert len(classes) >= 15
    doc = errors.__doc__ or ""
    for cls in classes:
        assert issubclass(cls, TrayNotifierError), cls
        assert cls.__name__ in doc, f"{cls.__name__} is missing from the tree in the docstring"


def test_old_import_paths_name_the_same_classes() -> None:
    assert config.ConfigError is ConfigError
    assert store.HistoryStoreError is HistoryStoreError
    assert store.HistoryDamagedError is HistoryDamagedError
    assert autostart.AutostartError is AutostartError
    assert issubclass(HistoryDamagedError, HistoryStoreError)


def test_config_error_is_still_a_value_error() -> None:
    with pytest.raises(ValueError, match="server_url"):
        config.from_dict({"server_url": "ftp://x"})


def test_no_other_core_module_defines_an_error() -> None:
    """One tree in one module; the keyring's error stays beside the keyring interface."""
    allowed = {("secrets.py", "SecretStoreUnavailable")}
    found = set()
    for path in CORE.glob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and (b.id.endswith(("Error", "Exception")))
                for b in node.bases
            ):
                found.add((path.name, node.name))
    assert found <= allowed


def test_default_messages_say_what_to_do() -> None:
    assert "log in again" in str(LoginRequired())
    assert "try again" in str(WrongCredentials())


def test_input_refused_names_the_field() -> None:
    exc = InputRefused("the server refused the announcement (field url): not a link", "url")
    assert exc.field == "url"
    assert "field url" in str(exc)


def test_history_errors_say_what_to_do(tmp_path: Path) -> None:
    damaged = tmp_path / "h.sqlite3"
    damaged.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(HistoryDamagedError, match="Move it aside") as info:
        store.HistoryStore(damaged)
    assert isinstance(info.value, TrayNotifierError)


def test_every_error_names_its_kind_for_the_ui() -> None:
    """The UI words an error from its kind, in the person's language: every class of the tree
    has one (its own, or its parent's for a narrower case), no two classes declare the same,
    and anything that is not ours is unexpected."""
    from app.core.errors import ErrorKind, kind_of
    from app.core.secrets import SecretStoreUnavailable

    classes = [c for c in _error_classes() if issubclass(c, TrayNotifierError)]
    assert all(isinstance(c.kind, ErrorKind) for c in classes)
    every: list[type[TrayNotifierError]] = [*classes, SecretStoreUnavailable]
    declared = [c.kind for c in every if "kind" in vars(c)]
    assert len(declared) == len(set(declared))
    assert kind_of(SecretStoreUnavailable("locked")) is ErrorKind.KEYRING
    assert kind_of(HistoryDamagedError("damaged")) is ErrorKind.HISTORY
    assert kind_of(WrongCredentials()) is ErrorKind.WRONG_CREDENTIALS
    assert kind_of(RuntimeError("a bug")) is ErrorKind.UNEXPECTED
