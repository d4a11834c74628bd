"""Secret stores: the in-memory one, and KeyringSecretStore on real keyring backends."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from keyring.backends import fail

from app.core.secrets import (
    KeyringSecretStore,
    MemorySecretStore,
    SecretStoreUnavailable,
    login_key,
)
from tests.fixtures.keyring import KeyringRunner


def test_memory_store_get_set_delete() -> None:
    store = MemorySecretStore()
    assert store.get("k") is None
    store.set("k", "v")
    assert store.get("k") == "v"
    store.delete("k")
    store.delete("k")  # deleting what is not there is fine
    assert store.get("k") is None


def test_login_key_is_one_entry_per_server_and_user() -> None:
    assert login_key("HTTPS://Example.ORG/", "alice") == "alice@https://example.org"
    assert login_key("https://example.org/api", "alice") == "alice@https://example.org/api"
    assert login_key("https://example.org", "bob") != login_key("https://example.org", "alice")


@pytest.mark.parametrize("action", ["get", "set", "delete"])
def test_no_keyring_gives_a_clear_message(action: str) -> None:
    store = KeyringSecretStore(backend=fail.Keyring())
    with pytest.raises(SecretStoreUnavailable) as info:
        if action == "set":
            store.set("k", "v")
        else:
            getattr(store, action)("k")
    message = str(info.value)
    assert "no system keyring is available" in message
    assert "unlock" in message and "this run only" in message


def _python(gnome_keyring: KeyringRunner, script: str, *, unlock: bool, tmp_path: Path) -> str:
    """Run ``script`` against a fresh gnome-keyring (a real backend); its standard output."""
    (tmp_path / "script.py").write_text(textwrap.dedent(script))
    result = gnome_keyring([sys.executable, "script.py"], unlock=unlock)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_keyring_store_round_trip_on_gnome_keyring(
    gnome_keyring: KeyringRunner, tmp_path: Path
) -> None:
    out = _python(
        gnome_keyring,
        """
        from app.core.secrets import KeyringSecretStore
        store = KeyringSecretStore()
        store.set("alice@https://example.org", "tokens")
        print(store.get("alice@https://example.org"))
        store.delete("alice@https://example.org")
        print(store.get("alice@https://example.org"))
        """,
        unlock=True,
        tmp_path=tmp_path,
    )
    assert out.split() == ["tokens", "None"]


def test_locked_gnome_keyring_gives_a_clear_message(
    gnome_keyring: KeyringRunner, tmp_path: Path
) -> None:
    out = _python(
        gnome_keyring,
        """
        from app.core.secrets import KeyringSecretStore, SecretStoreUnavailable
        try:
            KeyringSecretStore().set("k", "v")
        except SecretStoreUnavailable as exc:
            print(exc)
        """,
        unlock=False,
        tmp_path=tmp_path,
    )
    assert "Cannot save your login in the system keyring" in out
    assert "unlock" in out
