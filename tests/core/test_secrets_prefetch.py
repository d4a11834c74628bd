"""KeyringSecretStore.prefetch: the stored login read early (while the GUI starts) answers the
next read of it once, from memory; a write or a removal in between is never hidden by it."""

from __future__ import annotations

import pytest

from app.core.secrets import KeyringSecretStore, SecretStoreUnavailable
from tests.fixtures.keyring_backends import CountingBackend


def test_a_prefetched_login_answers_the_next_read_once() -> None:
    backend = CountingBackend()
    store = KeyringSecretStore(backend=backend)
    store.set("k", "tokens")
    store.prefetch("k")
    assert backend.reads == 1
    assert store.get("k") == "tokens"
    assert backend.reads == 1  # from memory
    assert store.get("k") == "tokens"
    assert backend.reads == 2  # once only: later reads ask the keyring


def test_no_stored_login_is_prefetched_too() -> None:
    backend = CountingBackend()
    store = KeyringSecretStore(backend=backend)
    store.prefetch("k")
    assert store.get("k") is None
    assert backend.reads == 1


@pytest.mark.parametrize("change", ["set", "delete"])
def test_a_write_after_the_prefetch_is_what_the_next_read_sees(change: str) -> None:
    backend = CountingBackend()
    store = KeyringSecretStore(backend=backend)
    store.set("k", "old")
    store.prefetch("k")
    if change == "set":
        store.set("k", "new")
        assert store.get("k") == "new"
    else:
        store.delete("k")
        assert store.get("k") is None


def test_a_locked_keyring_is_not_hidden_by_the_prefetch() -> None:
    backend = CountingBackend()
    backend.locked = True
    store = KeyringSecretStore(backend=backend)
    store.prefetch("k")  # quiet here: the read that needs it says what to do
    with pytest.raises(SecretStoreUnavailable, match="locked"):
        store.get("k")
