"""Secret stores: the in-memory one, and KeyringSecretStore on real keyring backends."""

from __future__ import annotations

import os
import shutil
import subprocess
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

ROOT = Path(__file__).resolve().parents[2]
HAVE_GNOME_KEYRING = bool(shutil.which("dbus-run-session") and shutil.which("gnome-keyring-daemon"))


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


def _in_session_bus(
    script: str, *, unlock: bool, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with a private session bus and a fresh gnome-keyring (a real backend)."""
    start = (
        "printf %s pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null"
        if unlock
        else "gnome-keyring-daemon --daemonize --components=secrets >/dev/null"
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_RUNTIME_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    (tmp_path / "script.py").write_text(textwrap.dedent(script))
    return subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", f'{start}; exec "$0" script.py', sys.executable],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


@pytest.mark.skipif(not HAVE_GNOME_KEYRING, reason="needs dbus-run-session and gnome-keyring")
def test_keyring_store_round_trip_on_gnome_keyring(tmp_path: Path) -> None:
    result = _in_session_bus(
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
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tokens", "None"]


@pytest.mark.skipif(not HAVE_GNOME_KEYRING, reason="needs dbus-run-session and gnome-keyring")
def test_locked_gnome_keyring_gives_a_clear_message(tmp_path: Path) -> None:
    result = _in_session_bus(
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
    assert result.returncode == 0, result.stderr
    assert "Cannot save your login in the system keyring" in result.stdout
    assert "unlock" in result.stdout
