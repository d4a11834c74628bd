"""Where tokens live: the OS keyring, behind a three-method interface.

Nothing else in the program stores a token. The keyring service is ``tray-notifier`` and there
is one entry per server and user (:func:`login_key`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from app import APP_ID
from app.core.errors import ErrorKind, TrayNotifierError

log = logging.getLogger(__name__)

SERVICE = APP_ID

_UNAVAILABLE_HINT = (
    "Start or unlock your desktop's keyring (GNOME Keyring, KWallet, Windows Credential "
    "Manager, macOS Keychain) and try again, or log in for this run only."
)


class SecretStoreUnavailable(TrayNotifierError):
    """The OS keyring cannot be used (none installed, locked, or the unlock prompt dismissed)."""

    kind = ErrorKind.KEYRING


class SecretStore(Protocol):
    """Get, set and delete secrets by key; implementations raise SecretStoreUnavailable."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...

    def delete(self, key: str) -> None: ...

    def prefetch(self, key: str) -> None:
        """Read ``key`` ahead (while the GUI starts), when reading it takes a while; the next
        :meth:`get` answers. Never raises."""


def login_key(server_url: str, username: str) -> str:
    """The key of one login: the user and the server's origin and path, normalised."""
    url = server_url.strip().rstrip("/")
    scheme, sep, rest = url.partition("://")
    if sep:
        host, slash, path = rest.partition("/")
        url = f"{scheme.lower()}://{host.lower()}{slash}{path}"
    return f"{username}@{url}"


class KeyringSecretStore:
    """The OS keyring through ``keyring``; ``backend`` picks one explicitly (tests, settings)."""

    def __init__(self, *, service: str = SERVICE, backend: Any = None) -> None:
        self.service = service
        self._backend = backend
        self._early: dict[str, str | None] = {}  # read by prefetch(), for the next get()
        self._early_lock = threading.Lock()
        self._choose_lock = threading.Lock()

    def prefetch(self, key: str) -> None:
        """Read ``key`` now (the stored login, while the GUI starts): the next :meth:`get` of
        it answers from memory, once. A keyring that fails here fails again in that get."""
        try:
            value = self.get(key)
        except SecretStoreUnavailable:
            return
        with self._early_lock:
            self._early[key] = value

    def _keyring(self) -> Any:
        if self._backend is None:
            with self._choose_lock:
                if self._backend is None:
                    self._backend = self.choose_backend()
        return self._backend

    @staticmethod
    def choose_backend() -> Any:
        """The backend this system gives (at first use, on the worker thread): on Linux the
        Secret Service directly, with keyring's own items, unless keyring is to decide
        (:mod:`app.core.secret_service`); keyring's discovery costs about 150 ms."""
        from app.core import secret_service

        direct = secret_service.open_backend()
        if direct is not None:
            return direct
        import keyring

        return keyring.get_keyring()

    def get(self, key: str) -> str | None:
        with self._early_lock:
            if key in self._early:
                return self._early.pop(key)
        with _translated("read your login from"):
            value: str | None = self._keyring().get_password(self.service, key)
            return value

    def set(self, key: str, value: str) -> None:
        self._forget_early(key)
        with _translated("save your login in"):
            self._keyring().set_password(self.service, key, value)

    def delete(self, key: str) -> None:
        self._forget_early(key)
        with _translated("remove your login from"):
            try:
                self._keyring().delete_password(self.service, key)
            except _errors().PasswordDeleteError:
                log.debug("no stored secret to delete")

    def _forget_early(self, key: str) -> None:
        with self._early_lock:
            self._early.pop(key, None)


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn keyring's errors into SecretStoreUnavailable with a message saying what to do."""
    try:
        yield
    except OSError as exc:  # the session bus (the direct Secret Service)
        raise _unavailable(action, f"the keyring failed ({type(exc).__name__}: {exc})") from exc
    except Exception as exc:  # imported late: the error classes only when an error came
        direct = _secret_service_errors(exc)
        if direct is not None:
            raise _unavailable(action, direct) from exc
        errors = _errors()
        if not isinstance(exc, errors.KeyringError):
            raise
        if isinstance(exc, errors.NoKeyringError):
            reason = "no system keyring is available"
        elif isinstance(exc, errors.KeyringLocked):
            reason = "the keyring is locked"
        elif isinstance(exc, errors.InitError):
            reason = f"the keyring could not be opened ({exc})"
        else:
            reason = f"the keyring failed ({type(exc).__name__}: {exc})"
        raise _unavailable(action, reason) from exc


def _secret_service_errors(exc: Exception) -> str | None:
    """Why the direct Secret Service failed, when ``exc`` is one of its errors (secretstorage's
    or the bus's); None for any other."""
    if type(exc).__module__.partition(".")[0] not in ("secretstorage", "jeepney"):
        return None
    from secretstorage import exceptions

    if isinstance(exc, exceptions.LockedException | exceptions.PromptDismissedException):
        return "the keyring is locked"
    if isinstance(exc, exceptions.SecretServiceNotAvailableException):
        return "no system keyring is available"
    return f"the keyring failed ({type(exc).__name__}: {exc})"


def _errors() -> Any:
    import keyring.errors

    return keyring.errors


def _unavailable(action: str, reason: str) -> SecretStoreUnavailable:
    return SecretStoreUnavailable(
        f"Cannot {action} the system keyring: {reason}. {_UNAVAILABLE_HINT}"
    )


class MemorySecretStore:
    """Secrets in memory only: for tests, and for "this run only" when no keyring works."""

    def __init__(self, initial: dict[str, str] | None = None) -> None:
        self._values = dict(initial or {})
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._values.get(key)

    def set(self, key: str, value: str) -> None:
        with self._lock:
            self._values[key] = value

    def delete(self, key: str) -> None:
        with self._lock:
            self._values.pop(key, None)

    def prefetch(self, key: str) -> None:
        """Nothing to do: a read from memory is instant."""
