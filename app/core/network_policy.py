"""The process's network policy: the ``[network]`` settings and where the proxy credentials
are kept, set once by each entry point (the tray, ``listen``, ``login``, ``publish``, the
doctor) and read by :mod:`app.core.http` when it builds a client.

Light on purpose: it imports no HTTP stack, so the tray sets it on the GUI thread while the
HTTP stack loads on the worker's. Until it is set the defaults apply (``proxy = "system"``)
with no proxy credentials.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from app.core.config.schema import NetworkSettings
from app.core.secrets import SecretStore


@dataclass(frozen=True, slots=True)
class Policy:
    settings: NetworkSettings = field(default_factory=NetworkSettings)
    secrets: SecretStore | None = None
    seams: dict[str, Any] = field(default_factory=dict)  # tests: environ, os_settings, wpad
    generation: int = 0


_lock = threading.Lock()
_policy = Policy()


def use(settings: NetworkSettings, *, secrets: SecretStore | None = None, **seams: Any) -> None:
    """Set the policy: clients made from now on route by it (the routes decided again)."""
    global _policy
    with _lock:
        _policy = Policy(settings, secrets, dict(seams), _policy.generation + 1)


def current() -> Policy:
    with _lock:
        return _policy


def forget() -> None:
    """Back to the defaults (tests)."""
    use(NetworkSettings())
