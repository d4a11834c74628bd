"""End to end through the composition root against the companion server: the tray's delivered,
read and acknowledged receipts show in the publisher's reach within seconds, and receipts made
while the server is down arrive once it is back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.config import Config, Paths
from app.core.model import ConnState
from app.core.secrets import MemorySecretStore
from app.server.embedded import EmbeddedServer
from app.ui.root import Root
from app.ui.worker import StreamWorker
from tests.fixtures.qt import Spy
from tests.fixtures.server import DEMO_PASSWORD
from tests.fixtures.transport import RecordingTransport

WAIT = 15_000

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support", ".*systemTrayWindowChanged")


class Reach:
    """The publisher's view of reach, over HTTP."""

    def __init__(self, server: EmbeddedServer) -> None:
        self.server = server

    def row(self, ann_id: str, user: str = "alice") -> dict[str, Any]:
        with httpx.Client(base_url=self.server.url, timeout=5.0) as client:
            login = client.post(
                "/auth/login", json={"username": "publisher", "password": DEMO_PASSWORD}
            )
            token = login.json()["access_token"]
            reach = client.get(
                f"/announcements/{ann_id}/reach", headers={"Authorization": f"Bearer {token}"}
            )
            assert reach.status_code == 200, reach.text
        rows = {r["user_id"]: r for r in reach.json()["users"]}
        return dict(rows[user])

    def has(self, ann_id: str, field: str) -> bool:
        return self.row(ann_id)[field] is not None


def log_in(qtbot: QtBot, root: Root, url: str) -> None:
    dialog = root.login_dialog
    assert dialog is not None
    dialog.server_edit.setText(url)
    dialog.user_edit.setText("alice")
    dialog.password_edit.setText(DEMO_PASSWORD)
    qtbot.mouseClick(dialog.login_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: root.tray.state.status.state is ConnState.CONNECTED, timeout=WAIT)


def quick_receipts(make_root: Callable[..., Root], transport: RecordingTransport) -> Root:
    """A tray whose receipts are gathered for 50 ms, not a second: the tests wait on what the
    server has, not on the tray's batching."""
    secrets = MemorySecretStore()
    worker = StreamWorker(config=Config(), secrets=secrets, transport=transport, receipt_delay=0.05)
    return make_root(worker=worker, secrets=secrets)


def test_delivered_read_and_acknowledged_reach_the_publisher(
    qtbot: QtBot,
    server_factory: Any,
    make_root: Callable[..., Root],
    caplog: pytest.LogCaptureFixture,
    tray_paths: Paths,
    recording_transport: RecordingTransport,
) -> None:
    caplog.set_level(logging.INFO, logger="app.core.receipts")
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100)
    reach = Reach(server)
    root = quick_receipts(make_root, recording_transport)
    delivered = Spy(root.notifier.delivered)
    root.start()
    log_in(qtbot, root, server.url)

    # publish: the tray stores it, and its delivered receipt is in reach within seconds
    ann = server.publish("Lunch", "Soup in the canteen.", audience={"groups": ["it"]})
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)
    assert not reach.has(ann, "read_at")
    qtbot.waitUntil(lambda: reach.has(ann, "delivered_at"), timeout=WAIT)
    assert reach.row(ann)["read_at"] is None and reach.row(ann)["online"] is True
    # the toast was put before the person: shown, in the reach too (issue 22)
    qtbot.waitUntil(lambda: reach.has(ann, "displayed_at"), timeout=WAIT)

    # opened in the history: read
    root.show_history()
    assert root.history is not None
    root.history.show_announcement(ann)
    qtbot.waitUntil(lambda: reach.has(ann, "read_at"), timeout=WAIT)
    assert reach.row(ann)["acked_at"] is None

    # urgent, acknowledged in its window: acknowledged
    urgent = server.publish("Evacuate", "Leave now.", priority="urgent")
    qtbot.waitUntil(lambda: urgent in root.urgent, timeout=WAIT)
    qtbot.mouseClick(root.urgent[urgent].ack_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: reach.has(urgent, "acked_at"), timeout=WAIT)

    # the server down: a read receipt is kept, and arrives once it is back
    later = server.publish("Later", "Read while the server is down.")
    qtbot.waitUntil(lambda: len(delivered.calls) == 3, timeout=WAIT)
    qtbot.waitUntil(lambda: reach.has(later, "delivered_at"), timeout=WAIT)
    store = root.store
    assert store is not None
    server.stop()
    qtbot.waitUntil(lambda: root.tray.state.status.state is not ConnState.CONNECTED, timeout=WAIT)
    caplog.clear()
    root.history.show_announcement(later)
    qtbot.waitUntil(  # a batch is attempted and fails: kept
        lambda: any("not sent" in r.getMessage() for r in caplog.records), timeout=WAIT
    )
    assert (later, "read") in store.pending_receipts()
    server = server_factory(
        data_dir=server.data_dir, port=server.port, retry_ms=100, ping_interval=0.5
    )
    reach = Reach(server)
    qtbot.waitUntil(lambda: reach.has(later, "read_at"), timeout=WAIT)
    qtbot.waitUntil(lambda: store.pending_receipts() == [], timeout=WAIT)


def test_held_back_by_do_not_disturb_is_received_but_not_shown(
    qtbot: QtBot,
    server_factory: Any,
    make_root: Callable[..., Root],
    recording_transport: RecordingTransport,
) -> None:
    """ "Received" is not "shown" (issue 22): with Do not disturb on, a normal announcement is
    delivered and not displayed until it is shown; an urgent one is shown at once."""
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=100)
    reach = Reach(server)
    root = quick_receipts(make_root, recording_transport)
    root.start()
    log_in(qtbot, root, server.url)
    root.settings.set_do_not_disturb(True)
    held = server.publish("Lunch", "Soup.", audience={"groups": ["it"]})
    urgent = server.publish("Fire drill", "Now.", priority="urgent", audience={"groups": ["it"]})
    qtbot.waitUntil(lambda: reach.has(urgent, "displayed_at"), timeout=WAIT)
    qtbot.waitUntil(lambda: reach.has(held, "delivered_at"), timeout=WAIT)
    assert not reach.has(held, "displayed_at")
