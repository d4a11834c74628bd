"""The tray as a person runs it, in its own process on a real (private) desktop, against the real
companion server: logged in with ``python -m app login`` (tokens in a real gnome-keyring), then
``python -m app``. What a crash, a kill and a flood must never do: lose an urgent notice, lose or
repeat an announcement, or take the tray down.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from app import APP_NAME
from app.core import config as app_config
from app.server.embedded import EmbeddedServer
from tests.fixtures.desktop import Desktop, LineReader
from tests.fixtures.server import DEMO_PASSWORD
from tests.fixtures.spring import PROFILE, SpringBackend
from tests.fixtures.tray_process import TrayProcess, TrayRunner
from tests.fixtures.wait import wait_until
from tests.server.conftest import metric

pytestmark = [pytest.mark.desktop, pytest.mark.slow, pytest.mark.timeout(180)]

WAIT = 40.0  # seconds: a Qt start on a busy 2-core machine
SOAK_COUNT = 5000
CATCH_UP_COUNT = 2500
URGENT_WINDOW = "Urgent announcement"


def streams_opened(server: EmbeddedServer) -> int:
    """The server's count of SSE streams opened so far (a counter: a kill cannot lower it)."""
    return gauge(server, "connections_total")


def gauge(server: EmbeddedServer, name: str) -> int:
    with httpx.Client(base_url=server.url, timeout=5) as client:
        return int(metric(client, name))


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


def notify_monitor(desktop: Desktop) -> LineReader:
    calls = desktop.monitor(
        "type='method_call',interface='org.freedesktop.Notifications',member='Notify'"
    )
    # watching only once it is a monitor (it then loses its own name): a Notify made before
    # that would be missed
    calls.wait_for("member=NameLost", WAIT)
    return calls


def test_an_urgent_notice_open_at_a_kill_9_comes_back_and_sigterm_exits_0(
    desktop: Desktop, tray_runner: TrayRunner, companion_server: EmbeddedServer
) -> None:
    log_in(tray_runner, companion_server)
    tray = start_connected(tray_runner, companion_server)
    calls = notify_monitor(desktop)
    title = "URGENT: gas leak in building B"
    companion_server.publish(title, "Leave by the north exit.", priority="urgent")
    calls.wait_for(title, WAIT)
    wait_until(lambda: bool(desktop.windows_named(URGENT_WINDOW)), WAIT, "the urgent window")

    tray.kill()  # the window is open, nothing acknowledged
    wait_until(lambda: not desktop.windows_named(URGENT_WINDOW), WAIT, "the window went away")

    again = start_connected(tray_runner, companion_server)
    calls.wait_for(title, WAIT)  # a native notification once more
    wait_until(lambda: bool(desktop.windows_named(URGENT_WINDOW)), WAIT, "the window is back")
    assert history_ids(tray_runner).count(history_ids(tray_runner)[0]) == 1
    assert again.stop() == 0


def test_thousands_of_announcements_with_the_history_open_are_each_stored_once(
    desktop: Desktop, tray_runner: TrayRunner, companion_server: EmbeddedServer
) -> None:
    log_in(tray_runner, companion_server)
    tray = start_connected(tray_runner, companion_server)
    second = tray_runner.run()  # a second launch brings the history window forward
    assert second.returncode == 0, second.stdout + second.stderr
    wait_until(lambda: bool(desktop.windows_named("Announcements")), WAIT, "history window")

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


def test_the_login_and_logout_commands_and_the_running_tray_act_as_one(
    tray_runner: TrayRunner, companion_server: EmbeddedServer
) -> None:
    """``logout`` once left the running tray connected with the token it held (3.7 s later it
    reconnected), and ``login`` left a logged-out tray "Not logged in" until a restart (issue
    21): the commands tell the running tray, and it follows at once."""
    log_in(tray_runner, companion_server)
    tray = start_connected(tray_runner, companion_server)
    out = tray_runner.run("logout")
    assert out.returncode == 0, out.stderr
    assert "The running tray stopped and forgot it." in out.stdout
    tray.wait_for("the command line logged out", WAIT)
    wait_until(lambda: gauge(companion_server, "connections") == 0, WAIT, "the stream closed")
    opened = streams_opened(companion_server)
    done = tray_runner.run(
        "login", "--server", companion_server.url, "--user", "bob", "--password-stdin",
        stdin=f"{DEMO_PASSWORD}\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "The running tray connects with this login now." in done.stdout
    tray.wait_for("connecting as bob", WAIT)
    wait_until(lambda: gauge(companion_server, "connections") == 1, WAIT, "bob's stream")
    assert streams_opened(companion_server) == opened + 1  # bob's: none between the two
    assert tray.stop() == 0


def test_logout_on_the_command_line_stops_a_tray_that_would_log_in_again(
    tray_runner: TrayRunner, spring: Callable[..., SpringBackend]
) -> None:
    """The issue's case: a RuoYi-style backend with ``relogin`` and a logout endpoint. The
    running tray kept the password in memory and logged itself in again after ``logout``."""
    backend = spring()
    config = tray_runner.home / "config" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tables = {**PROFILE, "endpoints": {**PROFILE["endpoints"], "logout": "/logout"}}
    config.write_text(app_config.dumps({"server_url": backend.url, **tables}), encoding="utf-8")
    done = tray_runner.run("login", "--user", "admin", "--password-stdin", stdin="admin123\n")
    assert done.returncode == 0, done.stderr
    tray = tray_runner.start()
    tray.wait_for("connecting as admin", WAIT)
    assert backend.wait_for(lambda: backend.open_streams() == 1, WAIT)
    out = tray_runner.run("logout")
    assert out.returncode == 0, out.stderr
    assert "The running tray stopped and forgot it." in out.stdout
    tray.wait_for("the command line logged out", WAIT)
    assert backend.wait_for(lambda: backend.open_streams() == 0, WAIT)
    assert [c.path for c in backend.logouts] == ["/logout"]  # the command's, once
    again = tray_runner.run("login", "--user", "admin", "--password-stdin", stdin="admin123\n")
    assert again.returncode == 0, again.stderr
    assert backend.wait_for(lambda: backend.open_streams() == 1, WAIT)
    assert len(backend.logins) == 2  # the two commands': the tray never logged in by itself
    assert backend.connects[-1].authorization == backend.infos[-1].authorization  # the new one
    assert tray.stop() == 0
