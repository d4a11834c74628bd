"""The freedesktop Secret Service (GNOME Keyring, KWallet 6, KeePassXC...) spoken directly.

On Linux the keyring library stores a login with its ``SecretService`` backend, through
secretstorage (an encrypted session on the D-Bus session bus). Choosing that backend costs more
than using it: keyring's discovery reads the metadata of every installed package
(importlib_metadata, email, zipp, jaraco...), about 12 MiB and 150 ms of a tray's start. So when
nothing asks keyring to decide otherwise, :func:`open_backend` gives a backend that does exactly
what keyring's does, with the same items: the default collection (unlocked, with its prompt,
when locked), the attributes ``service``, ``username`` and ``application`` and the label
keyring writes, so a login stored by either one is read by the other.

keyring decides (:func:`open_backend` returns None) off Linux, when it is configured
(``PYTHON_KEYRING_BACKEND``, a ``KEYRING_PROPERTY_*`` variable, a ``keyringrc.cfg``), in a KDE
session where its KWallet backend could load, and when no Secret Service answers on the bus.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

#: keyring's ``SecretService.Keyring.appid``: the items stay keyring's own
APPID = "Python keyring library"


def keyring_configured(env: dict[str, str] | None = None, home: Path | None = None) -> bool:
    """Whether keyring is told what to use: by environment or by its configuration file (in
    its config folder, or the old one in its data folder, which it refuses with an error)."""
    env = dict(os.environ) if env is None else env
    if env.get("PYTHON_KEYRING_BACKEND") or any(k.startswith("KEYRING_PROPERTY_") for k in env):
        return True
    home = Path.home() if home is None else home
    config = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    return any((root / "python_keyring" / "keyringrc.cfg").exists() for root in (config, data))


def open_backend(platform: str = sys.platform) -> SecretServiceBackend | None:
    """The direct backend, or None when keyring should decide (see the module's words)."""
    if not platform.startswith("linux") or keyring_configured():
        return None
    desktops = os.environ.get("XDG_CURRENT_DESKTOP", "").split(":")
    if "KDE" in desktops and importlib.util.find_spec("dbus") is not None:
        return None  # keyring would prefer its KWallet backend there
    try:
        import secretstorage
    except ImportError:
        return None
    try:
        with closing(secretstorage.dbus_init()) as connection:
            if not secretstorage.check_service_availability(connection):
                return None
    except (secretstorage.exceptions.SecretStorageException, OSError, ValueError):
        return None  # keyring then finds what there is, or says there is nothing
    return SecretServiceBackend()


class SecretServiceBackend:
    """``get_password``, ``set_password`` and ``delete_password`` as keyring's SecretService
    backend does them. Raises secretstorage's errors (``LockedException`` when the unlock
    prompt was dismissed), jeepney's ``DBusErrorResponse`` or OSError (the bus); deleting what
    is not there does nothing."""

    def get_password(self, service: str, username: str) -> str | None:
        with self._collection() as collection:
            for item in collection.search_items({"username": username, "service": service}):
                _unlock(item)
                secret: bytes = item.get_secret()
                return secret.decode("utf-8")
            return None

    def set_password(self, service: str, username: str, password: str) -> None:
        attributes = {"username": username, "service": service, "application": APPID}
        label = f"Password for '{username}' on '{service}'"
        with self._collection() as collection:
            collection.create_item(label, attributes, password.encode("utf-8"), replace=True)

    def delete_password(self, service: str, username: str) -> None:
        with self._collection() as collection:
            for item in collection.search_items({"username": username, "service": service}):
                item.delete()
                return  # the first one, as keyring does

    @contextmanager
    def _collection(self) -> Iterator[Any]:
        import secretstorage

        with closing(secretstorage.dbus_init()) as connection:
            collection = secretstorage.get_default_collection(connection)
            if collection.is_locked():
                collection.unlock()
                if collection.is_locked():  # the prompt was dismissed
                    raise secretstorage.exceptions.LockedException("the collection is locked")
            yield collection


def _unlock(item: Any) -> None:
    if item.is_locked():
        item.unlock()
        if item.is_locked():
            from secretstorage.exceptions import LockedException

            raise LockedException("the item is locked")
