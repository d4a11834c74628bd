"""``python -m app demo``'s parts against a real embedded server: the samples, the publisher
thread, and the headless path's listener (events arrive as ``listen`` prints them)."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
from pathlib import Path

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring

from app import demo, listen
from app.core.auth import AuthSession
from app.core.config import Config
from app.core.model import Priority
from app.core.secrets import MemorySecretStore
from app.exit_codes import EXIT_OK
from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ServerFactory


def test_samples_cycle_with_typed_priorities() -> None:
    first = [next(s) for s in [demo.samples()] for _ in range(len(demo.SAMPLES) + 1)]
    assert first[: len(demo.SAMPLES)] == list(demo.SAMPLES)
    assert first[-1] == demo.SAMPLES[0]  # cycles for ever
    assert all(isinstance(p, Priority) for _, _, p, _ in demo.SAMPLES)
    assert Priority.URGENT in {p for _, _, p, _ in demo.SAMPLES}  # the urgent window is shown


async def _listen_as_alice(server: EmbeddedServer, out: io.StringIO, events: int) -> int:
    config = Config(server_url=server.url, username=demo.DEMO_USER)
    session = AuthSession(
        server_url=server.url,
        username=demo.DEMO_USER,
        endpoints=config.endpoints,
        secrets=MemorySecretStore(),
        settings=config.stream,
    )
    try:
        await session.login(demo.DEMO_PASSWORD)
        args = argparse.Namespace(json=True, max_events=events, last_event_id="")
        return await listen.run_engine(args, config, session.stream_url(), session)
    finally:
        await session.aclose()


def test_publisher_publishes_the_samples_to_alice(
    server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "FIRST_DELAY", 0.0)
    server = server_factory(demo_users=True)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    publisher = demo.Publisher(server, interval=0.01)
    publisher.start()
    try:
        # connected, the catch-up's sync, then announcements: stop after the third sample
        code = asyncio.run(asyncio.wait_for(_listen_as_alice(server, out, 5), 30))
    finally:
        publisher.stop()
    assert code == EXIT_OK
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    titles = [
        json.loads(e["data"])["title"]
        for e in lines
        if e["event"] == "message" and e["data"].startswith("{")
    ]
    assert titles, lines
    # the stream starts at the newest announcement: the first samples may come before it;
    # what arrives is the samples' cycle, in order, from wherever it joined
    cycle = [t for t, _, _, _ in demo.SAMPLES]
    start = cycle.index(titles[0])
    assert titles == [cycle[(start + i) % len(cycle)] for i in range(len(titles))]


def test_demo_secrets_fall_back_to_memory_without_a_keyring() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())  # the backend keyring picks when none is installed
    try:
        assert isinstance(demo.demo_secrets(), MemorySecretStore)
    finally:
        keyring.set_keyring(previous)


def test_the_printed_publish_command_works_as_printed(tmp_path: Path) -> None:
    """The command the demo prints runs in a shell from any folder (here: ``--help``)."""
    command = f"{demo.self_command()} publish --help"
    result = subprocess.run(  # noqa: S602 - the printed line, as a person runs it
        command,
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--password-stdin" in result.stdout
    assert "visible to every user" in " ".join(result.stdout.split())
