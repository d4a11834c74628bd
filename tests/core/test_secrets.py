"""Secret stores: the in-memory one, and KeyringSecretStore on real keyring backends."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from keyring.backends import fail

from app.core.secret_service import keyring_configured, open_backend
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
    assert "Cannot save your login in the system keyring: the keyring is locked" in out
    assert "unlock" in out


# ---------------------------------------------------------------------- the direct Secret Service


def test_the_direct_secret_service_and_keyring_read_each_others_logins(
    gnome_keyring: KeyringRunner, tmp_path: Path
) -> None:
    """On Linux the store talks to the Secret Service itself (keyring's discovery is not
    loaded), with keyring's own items: what either one stores, the other reads and deletes."""
    out = _python(
        gnome_keyring,
        """
        import sys
        from app.core.secrets import KeyringSecretStore
        store = KeyringSecretStore()
        ours = store._keyring()
        print(type(ours).__name__, "keyring.core" in sys.modules)
        from keyring.backends.SecretService import Keyring
        theirs = Keyring()
        store.set("alice@https://example.org", "from us")
        print(theirs.get_password("tray-notifier", "alice@https://example.org"))
        theirs.set_password("tray-notifier", "bob@https://example.org", "from keyring")
        print(store.get("bob@https://example.org"))
        store.delete("bob@https://example.org")
        print(theirs.get_password("tray-notifier", "bob@https://example.org"))
        theirs.delete_password("tray-notifier", "alice@https://example.org")
        print(store.get("alice@https://example.org"))
        store.delete("alice@https://example.org")  # not there: nothing to do
        """,
        unlock=True,
        tmp_path=tmp_path,
    )
    assert out.splitlines() == [
        "SecretServiceBackend False",
        "from us",
        "from keyring",
        "None",
        "None",
    ]


def test_a_configured_keyring_still_decides(gnome_keyring: KeyringRunner, tmp_path: Path) -> None:
    out = _python(
        gnome_keyring,
        """
        import os
        os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
        from app.core.secrets import KeyringSecretStore, SecretStoreUnavailable
        try:
            KeyringSecretStore().get("k")
        except SecretStoreUnavailable as exc:
            print(exc)
        """,
        unlock=True,
        tmp_path=tmp_path,
    )
    assert "no system keyring is available" in out


@pytest.mark.parametrize(
    ("env", "files", "configured"),
    [
        ({}, [], False),
        ({"PYTHON_KEYRING_BACKEND": "keyring.backends.kwallet.DBusKeyring"}, [], True),
        ({"KEYRING_PROPERTY_PREFERRED_COLLECTION": "/x"}, [], True),
        ({}, [".config/python_keyring/keyringrc.cfg"], True),
        ({"XDG_CONFIG_HOME": "{home}/conf"}, ["conf/python_keyring/keyringrc.cfg"], True),
        ({"XDG_CONFIG_HOME": "{home}/conf"}, [".config/python_keyring/keyringrc.cfg"], False),
        ({}, [".local/share/python_keyring/keyringrc.cfg"], True),  # keyring's old place
    ],
)
def test_when_keyring_is_configured(
    tmp_path: Path, env: dict[str, str], files: list[str], configured: bool
) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("[backend]\ndefault-keyring=keyring.backends.null.Keyring\n")
    env = {k: v.format(home=tmp_path) for k, v in env.items()}
    assert keyring_configured(env, home=tmp_path) is configured


def test_keyring_decides_off_linux() -> None:
    assert open_backend("win32") is None
    assert open_backend("darwin") is None
