"""The tray as a person runs it, in its own process on a real (private) desktop, against the real
companion server: logged in with ``python -m app login`` (tokens in a real gnome-keyring), then
``python -m app``. What a crash, a kill and a flood must never do: lose an urgent notice, lose or
repeat an announcement, or take the tray down.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app import APP_NAME
from app.server.embedded import EmbeddedServer
from tests.fixtures.desktop import Desktop, LineReader
from tests.fixtures.server import DEMO_PASSWORD
from tests.fixtures.tray_process import TrayProcess, TrayRunner, wait_until

pytestmark = [pytest.mark.desktop, pytest.mark.slow, pytest.mark.timeout(180)]

WAIT = 40.0  # seconds: a Qt start on a busy 2-core machine
SOAK_COUNT = 5000
CATCH_UP_COUNT = 2500
URGENT_WINDOW = "Urgent announcement"


def streams_opened(server: EmbeddedServer) -> int:
    """The server's count of SSE streams opened so far (a counter: a kill cannot lower it)."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    match = re.search(r"^(?:\w+_)?connections_total (\d+)", text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


def log_in(runner: TrayRunner, server: EmbeddedServer) -> None:
    done = runner.run(
        "login", "--server", server.url, "--user", "alice", "--password-stdin",
        stdin=f"{DEMO_PASSWORD}\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert DEMO_PASSWORD not in done.stdout + done.stderr


def start_connected(runner: TrayRunner, server: EmbeddedServer) -> TrayProcess:
    before = streams_opened(server)
    tray = runner.start()
    tray.wait_for("connecting as alice", WAIT)
    wait_until(lambda: streams_opened(server) > before, WAIT, "the tray's stream is open")
    return tray


def history_ids(runner: TrayRunner) -> list[str]:
    files = list((runner.home / "data" / "history").glob("*.sqlite3"))
    assert len(files) == 1, files
    with sqlite3.connect(f"file:{files[0]}?mode=ro", uri=True, timeout=10) as conn:
        return [str(r[0]) for r in conn.execute("SELECT id FROM announcements")]


def windows_named(desktop: Desktop, name: str) -> list[str]:
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", name],
        env=desktop.env(),
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return found.stdout.split()


def notify_monitor(desktop: Desktop) -> LineReader:
    return desktop.monitor(
        "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"
    )


def test_an_urgent_notice_open_at_a_kill_9_comes_back_and_sigterm_exits_0(
    desktop: Desktop, tray_runner: TrayRunner, companion_server: EmbeddedServer
) -> None:
    log_in(tray_runner, companion_server)
    tray = start_connected(tray_runner, companion_server)
    calls = notify_monitor(desktop)
    title = "URGENT: gas leak in building B"
    companion_server.publish(title, "Leave by the north exit.", priority="urgent")
    calls.wait_for(title, WAIT)
    wait_until(lambda: bool(windows_named(desktop, URGENT_WINDOW)), WAIT, "the urgent window")

    tray.kill()  # the window is open, nothing acknowledged
    wait_until(lambda: not windows_named(desktop, URGENT_WINDOW), WAIT, "the window went away")

    again = start_connected(tray_runner, companion_server)
    calls.wait_for(title, WAIT)  # a native notification once more
    wait_until(lambda: bool(windows_named(desktop, URGENT_WINDOW)), WAIT, "the window is back")
    assert history_ids(tray_runner).count(history_ids(tray_runner)[0]) == 1
    assert again.stop() == 0


def test_thousands_of_announcements_with_the_history_open_are_each_stored_once(
    desktop: Desktop, tray_runner: TrayRunner, companion_server: EmbeddedServer
) -> None:
    log_in(tray_runner, companion_server)
    tray = start_connected(tray_runner, companion_server)
    second = tray_runner.run()  # a second launch brings the history window forward
    assert second.returncode == 0, second.stdout + second.stderr
    wait_until(lambda: bool(windows_named(desktop, "Announcements")), WAIT, "history window")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        published = list(
            pool.map(
                lambda i: companion_server.publish(f"Soak {i}", f"Body {i}", priority="low"),
                range(SOAK_COUNT),
            )
        )
    wait_until(lambda: len(history_ids(tray_runner)) >= SOAK_COUNT, 90, f"{SOAK_COUNT} stored")
    elapsed = time.monotonic() - started
    stored = history_ids(tray_runner)
    assert sorted(stored) == sorted(published)  # each one, once
    assert tray.alive, tray.output.seen[-20:]
    print(f"soak: {SOAK_COUNT} published and stored in {elapsed:.1f} s with the history open")
    assert tray.stop() == 0


def test_a_long_absence_is_caught_up_at_once_each_stored_once_with_one_summary(
    tray_runner: TrayRunner, companion_server: EmbeddedServer
) -> None:
    log_in(tray_runner, companion_server)
    first = start_connected(tray_runner, companion_server)
    assert first.stop() == 0
    missed = [
        companion_server.publish(f"Missed {i}", "While the tray was down.", priority="low")
        for i in range(CATCH_UP_COUNT)
    ]  # more than two of the server's replay pages
    started = time.monotonic()
    again = tray_runner.start()
    wait_until(lambda: len(history_ids(tray_runner)) >= CATCH_UP_COUNT, WAIT, "all missed stored")
    elapsed = time.monotonic() - started
    assert sorted(history_ids(tray_runner)) == sorted(missed)
    summary = again.wait_for("toast (", WAIT)
    assert summary.endswith(f"for a summary: {CATCH_UP_COUNT} new announcements"), summary
    assert again.stop() == 0
    again.wait_for(f"{APP_NAME} stopped", WAIT)
    later = []
    while not again.output.lines.empty():
        later.append(again.output.lines.get())
    assert not [line for line in later if "toast (" in line]  # that one summary, nothing else
    print(f"catch-up: {CATCH_UP_COUNT} missed stored {elapsed:.1f} s after the start")
