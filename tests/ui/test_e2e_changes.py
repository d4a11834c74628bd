"""End to end through the composition root against the companion server (issue 25): a
correction, a reminder and a revoke published while the tray is stopped all reach it at its
next start, in order, once; live, a correction toasts once as "Updated: ...", a reminder toasts
again and brings an urgent window back to the front."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pytestqt.qtbot import QtBot

from app.core import config as config_mod
from app.core.config import Paths
from app.core.secrets import MemorySecretStore
from app.server.embedded import EmbeddedServer
from app.ui.root import Root
from tests.fixtures.qt import Spy
from tests.ui.test_e2e import WAIT, history_titles, log_in_through_dialog, wait_connected

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support", ".*systemTrayWindowChanged")

ALICE = {"users": ["alice"]}


def test_changes_made_while_the_tray_was_stopped_reach_it_in_order_once(
    qtbot: QtBot,
    companion_server: EmbeddedServer,
    make_root: Callable[..., Root],
    tray_paths: Paths,
) -> None:
    server = companion_server
    secrets = MemorySecretStore()
    first = make_root(secrets=secrets)
    first.start()
    log_in_through_dialog(qtbot, first, server.url)
    wait_connected(qtbot, first)
    delivered = Spy(first.notifier.delivered)
    cake = server.publish("Cake in the kitchen", "Until it is gone.", audience=ALICE)
    qtbot.waitUntil(lambda: len(delivered.calls) == 1, timeout=WAIT)
    assert first.shutdown(1000)

    # while the tray is stopped: publish, correct it, remind of it, revoke another
    drill = server.publish("Fire drill at 10", "Meet in the yard.", audience=ALICE)
    assert server.correct(drill, title="Fire drill at 11") == 1
    assert server.remind(drill) == 1
    assert server.revoke(cake)

    again = make_root(config=config_mod.load(tray_paths), secrets=secrets)
    log: list[tuple[str, object]] = []
    toasts = Spy(again.notifier.delivered)
    spies = [
        Spy(getattr(again.worker, name), log=log, name=name)
        for name in ("announcementReceived", "announcementsReceived", "updated", "reminded")
    ]
    spies.append(Spy(again.worker.revoked, log=log, name="revoked"))
    again.start()
    wait_connected(qtbot, again)
    qtbot.waitUntil(lambda: any(name == "revoked" for name, _ in log), timeout=WAIT)
    # in order, once each: the announcement (its current text), its correction, its reminder,
    # then the other one's revoke
    names = [name for name, _ in log]
    assert names[-3:] == ["updated", "reminded", "revoked"]
    assert names[0] in ("announcementReceived", "announcementsReceived") and len(names) == 4
    store = again.store
    assert store is not None
    stored = store.get(drill)
    assert stored is not None and stored.updated and stored.announcement.title == "Fire drill at 11"
    withdrawn = store.get(cake)
    assert withdrawn is not None and withdrawn.withdrawn
    titles = history_titles(again)
    assert titles.count("Fire drill at 11 (updated)") == 1 and "Fire drill at 10" not in titles
    assert titles.count("Cake in the kitchen") == 1
    # one toast for the new announcement, with its corrected text (its correction and its
    # reminder join it), and nothing more waiting
    qtbot.waitUntil(lambda: len(toasts.calls) == 1, timeout=WAIT)
    qtbot.waitUntil(lambda: again.notifier.policy.next_deadline() is None, timeout=WAIT)
    (toast,) = toasts.values
    assert (toast.announcement_id, toast.title) == (drill, "Fire drill at 11")

    # live: a correction toasts once as an update, a reminder again
    assert server.correct(drill, body="Meet at the front gate.") == 2
    qtbot.waitUntil(lambda: len(toasts.calls) == 2, timeout=WAIT)
    assert (toasts.values[1].title, toasts.values[1].body) == (
        "Updated: Fire drill at 11",
        "Meet at the front gate.",
    )
    assert server.remind(drill) == 1
    qtbot.waitUntil(lambda: len(toasts.calls) == 3, timeout=WAIT)
    assert toasts.values[2].title == "Reminder: Fire drill at 11"

    # an urgent one not acknowledged: a reminder brings its window to the front again
    alarm = server.publish("Evacuate", "Leave now.", priority="urgent", audience=ALICE)
    qtbot.waitUntil(lambda: alarm in again.urgent, timeout=WAIT)
    window = again.urgent[alarm]
    window.hide()  # put away (not acknowledged)
    assert server.correct(alarm, body="Leave by the east stairs.") == 1
    qtbot.waitUntil(
        lambda: window.detail.body.toPlainText() == "Leave by the east stairs.", timeout=WAIT
    )
    window.hide()
    assert server.remind(alarm, "unacknowledged") == 1
    qtbot.waitUntil(
        lambda: any(t.title == "Reminder: Evacuate" for t in toasts.values), timeout=WAIT
    )
    qtbot.waitUntil(window.isVisible, timeout=WAIT)
    assert again.urgent[alarm] is window

    # the next start repeats none of it
    assert again.shutdown(1000)
    third = make_root(config=config_mod.load(tray_paths), secrets=secrets)
    changes = [Spy(getattr(third.worker, n)) for n in ("updated", "reminded", "revoked")]
    third.start()
    wait_connected(qtbot, third)
    received = Spy(third.worker.announcementReceived)
    later = server.publish("After", "the changes", audience=ALICE)
    qtbot.waitUntil(lambda: [a.id for a in received.values] == [later], timeout=WAIT)
    assert [s.calls for s in changes] == [[], [], []]
    assert third.shutdown(1000)
