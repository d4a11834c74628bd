"""StreamWorker.prepare: the stored login is read from the keyring while the GUI starts, and
the connect that follows uses it without reading the keyring again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot

from app.core.model import ConnState
from app.core.secrets import KeyringSecretStore
from app.core.store import HistoryStore
from app.server.embedded import EmbeddedServer
from tests.fixtures.keyring_backends import CountingBackend
from tests.fixtures.qt import Spy
from tests.fixtures.server import DEMO_PASSWORD

WAIT = 15_000


def test_prepare_then_connect_reads_the_keyring_once(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_worker: Callable[..., Any],
    tmp_path: Path,
) -> None:
    backend = CountingBackend()
    store = HistoryStore(HistoryStore.path_for(tmp_path / "data", companion_server.url, "alice"))
    first = make_worker(secrets=KeyringSecretStore(backend=backend))
    statuses = Spy(first.statusChanged)
    first.login(companion_server.url, "alice", DEMO_PASSWORD, store)
    qtbot.waitUntil(
        lambda: any(s.state is ConnState.CONNECTED for s in statuses.values), timeout=WAIT
    )
    assert first.shutdown(5000)

    backend.reads = 0
    second = make_worker(secrets=KeyringSecretStore(backend=backend))
    second.prepare(companion_server.url + "/", "alice")
    statuses = Spy(second.statusChanged)
    second.connect_stored(companion_server.url, "alice", store)
    qtbot.waitUntil(
        lambda: any(s.state is ConnState.CONNECTED for s in statuses.values), timeout=WAIT
    )
    assert backend.reads == 1  # by prepare; the connect took it from memory
    assert second.start() is second.thread_handle  # started once
