"""``python -m app demo``: the embedded server with demo users on a free loopback port, and the
tray logged in as alice, with a sample announcement every ``--interval`` seconds (an urgent one
among them). Needs no input. ``--headless``: no Qt, the listener prints the events instead.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import itertools
import logging
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from app import APP_NAME, logs
from app.core.config import Config, Paths
from app.core.model import Priority
from app.core.secrets import (
    KeyringSecretStore,
    MemorySecretStore,
    SecretStore,
    SecretStoreUnavailable,
    login_key,
)
from app.exit_codes import EXIT_OK
from app.server.embedded import EmbeddedServer

log = logging.getLogger(__name__)

DEMO_USER = "alice"
DEMO_PASSWORD = "demo"  # noqa: S105 - the documented password of the demo accounts
FIRST_DELAY = 2.0  # seconds before the first sample: time to log in

SAMPLES: tuple[tuple[str, str, Priority, str | None], ...] = (
    (
        "Welcome to Tray Notifier",
        "This is a demo. New announcements pop up here and stay in the history window.",
        Priority.NORMAL,
        None,
    ),
    (
        "Fire drill on Thursday at 10:00",
        "Leave by the nearest stairs and meet at the car park. It takes about 15 minutes.",
        Priority.HIGH,
        None,
    ),
    (
        "Canteen menu this week",
        "Monday: lentil soup. Tuesday: pasta. Wednesday: curry. Thursday: fish. Friday: pizza.",
        Priority.LOW,
        "https://example.org/canteen",
    ),
    (
        "Server maintenance tonight",
        "Email and the intranet are unavailable from 22:00 to 23:30. Save your work before then.",
        Priority.NORMAL,
        None,
    ),
    (
        "URGENT: water leak on floor 3",
        "Do not use the east stairs. Facilities are on their way. Acknowledge that you read this.",
        Priority.URGENT,
        None,
    ),
    (
        "New holiday request form",
        "From next month, holiday requests go through the HR portal.",
        Priority.NORMAL,
        "https://example.org/hr/holidays",
    ),
)


def samples() -> Iterator[tuple[str, str, Priority, str | None]]:
    return itertools.cycle(SAMPLES)


class Publisher:
    """Publishes a sample announcement every ``interval`` seconds on its own thread."""

    def __init__(self, server: EmbeddedServer, interval: float) -> None:
        self._server = server
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        wait = FIRST_DELAY
        for title, body, priority, url in samples():
            if self._stop.wait(wait):
                return
            wait = self._interval
            try:
                ann_id = self._server.publish(title, body, priority=priority.value, url=url)
            except (RuntimeError, ValueError, OSError):
                log.warning("demo: cannot publish a sample", exc_info=True)
                continue
            log.info("demo: published %s %r (%s)", ann_id, title, priority)


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - the demo tells people what it started


def _announce(server: EmbeddedServer, folder: Path) -> None:
    _say(f"{APP_NAME} demo server: {server.url}")
    _say(f"Demo users (password '{DEMO_PASSWORD}'): alice (group it), bob (group hr), publisher")
    _say("Publish your own:")
    _say(
        f"  echo {DEMO_PASSWORD} | {self_command()} publish --server {server.url} --all "
        "--password-stdin --title 'Hello' --body 'From the command line'"
    )
    _say(f"Demo data and logs: {folder}")


def self_command() -> str:
    """How to run this program again from a shell, as it runs now: the frozen binary, the
    installed ``tray-notifier`` script when it is this environment's, else this Python with
    ``-m app`` (with the checkout on ``PYTHONPATH`` when the package is not installed)."""
    if getattr(sys, "frozen", False):
        return shlex.quote(sys.executable)
    script = shutil.which(SCRIPT_NAME)
    if script is not None and Path(script).parent == Path(sys.executable).parent:
        return SCRIPT_NAME
    command = f"{shlex.quote(sys.executable)} -m app"
    try:
        importlib.metadata.distribution(SCRIPT_NAME)
    except importlib.metadata.PackageNotFoundError:  # run from a checkout
        root = Path(__file__).resolve().parent.parent
        if Path.cwd().resolve() != root:
            return f"PYTHONPATH={shlex.quote(str(root))} {command}"
    return command


SCRIPT_NAME = "tray-notifier"  # pyproject.toml [project.scripts], and the distribution's name


def demo_secrets() -> SecretStore:
    """The keyring when it works here, else memory for this run (logged)."""
    store = KeyringSecretStore()
    try:
        store.get("demo-probe")
    except SecretStoreUnavailable as exc:
        log.warning("demo: %s Keeping the demo login in memory for this run.", exc)
        return MemorySecretStore()
    return store


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="tray-notifier-demo-") as tmp:
        folder = Path(tmp)
        paths = Paths(folder / "config", folder / "data", folder / "logs", ())
        logs.add_file(paths.log_dir / "demo.log")
        server = EmbeddedServer(data_dir=folder / "server", demo_users=True)
        server.start()
        publisher = Publisher(server, args.interval)
        try:
            _announce(server, folder)
            publisher.start()
            if args.headless:
                return _run_headless(server, args.exit_after)
            return _run_tray(server, paths, args.exit_after)
        finally:
            publisher.stop()
            server.stop()


def _run_tray(server: EmbeddedServer, paths: Paths, exit_after: float | None) -> int:
    from app.ui.main import route_qt_messages, run_tray, use_offscreen_without_display

    use_offscreen_without_display()
    route_qt_messages()
    secrets = demo_secrets()
    config = Config(server_url=server.url, username=DEMO_USER)
    try:
        return run_tray(
            config=config,
            paths=paths,
            secrets=secrets,
            exit_after=exit_after,
            single_instance=False,
            password=DEMO_PASSWORD,
        )
    finally:
        try:  # leave no demo login behind in a real keyring
            secrets.delete(login_key(server.url, DEMO_USER))
        except SecretStoreUnavailable as exc:
            log.warning("demo: %s", exc)


def _run_headless(server: EmbeddedServer, exit_after: float | None) -> int:
    """Log in as alice (tokens in memory) and print events as ``python -m app listen`` does."""
    from app import listen
    from app.core.auth import AuthSession

    config = Config(server_url=server.url, username=DEMO_USER)

    async def main() -> int:
        session = AuthSession(
            server_url=server.url,
            username=DEMO_USER,
            endpoints=config.endpoints,
            secrets=MemorySecretStore(),
            settings=config.stream,
        )
        try:
            await session.login(DEMO_PASSWORD)
            if exit_after is not None:
                asyncio.get_running_loop().call_later(
                    exit_after, signal.raise_signal, signal.SIGTERM
                )
            listen_args = argparse.Namespace(json=False, max_events=None, last_event_id="")
            return await listen.run_engine(listen_args, config, session.stream_url(), session)
        finally:
            await session.aclose()

    code = asyncio.run(main())
    return code if code is not None else EXIT_OK
