"""Server processes on one Redis agree on the token signing key (issue 22, point 9), whatever
their data folders: the first process to start puts its key in Redis, every later one uses
that key (and keeps a copy in its own ``signing.key``). Before, each process with its own data
folder signed with its own key, and a token from one got 401 on the other, silently.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import httpx
import pytest
import redis

from app.server.config import SIGNING_KEY_FILE
from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ServerFactory
from tests.fixtures.server_process import ServerProcess
from tests.server.conftest import TIMEOUT, bearer, login, publish


@pytest.fixture
def server_backend() -> str:
    return "redis"  # the key is shared through Redis


def _key(data_dir: Path) -> str:
    return (data_dir / SIGNING_KEY_FILE).read_text(encoding="ascii").strip()


def _works_on(server: EmbeddedServer | ServerProcess, tokens: dict[str, str]) -> None:
    """``tokens`` (issued by another process) are accepted by ``server``: listing, a stream."""
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        listed = client.get("/announcements", headers=bearer(tokens))
        assert listed.status_code == 200, listed.text
        user = tokens["user_id"]
        with client.stream("GET", f"/sse/connect/{user}", headers=bearer(tokens)) as stream:
            assert stream.status_code == 200


def test_processes_with_their_own_data_folders_accept_each_others_tokens(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    a = server_factory(data_dir=tmp_path / "host-a", demo_users=True)
    b = server_factory(data_dir=tmp_path / "host-b")
    assert a.data_dir != b.data_dir
    with (
        httpx.Client(base_url=a.url, timeout=TIMEOUT) as on_a,
        httpx.Client(base_url=b.url, timeout=TIMEOUT) as on_b,
    ):
        alice_from_a = login(on_a, "alice")
        _works_on(b, alice_from_a)
        _works_on(a, login(on_b, "alice"))
        # a publisher logged in on B publishes on A, and the other way round
        publish(on_a, login(on_b, "publisher"))
        publish(on_b, login(on_a, "publisher"))
    # B keeps a copy of the shared key in its own folder, private to the server's user
    assert _key(b.data_dir) == _key(a.data_dir)
    assert stat.S_IMODE((b.data_dir / SIGNING_KEY_FILE).stat().st_mode) == 0o600


def test_a_process_with_another_key_of_its_own_uses_the_shared_one_and_says_so(
    server_factory: ServerFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The choice: Redis's key wins (a log line says so) rather than refusing to start. Only
    access tokens the process issued with its old key are refused, and its clients refresh
    them (refresh tokens live in Redis, not in the key)."""
    a = server_factory(data_dir=tmp_path / "host-a", demo_users=True)
    own = tmp_path / "host-b"
    own.mkdir(mode=0o700)
    (own / SIGNING_KEY_FILE).write_text("f" * 64 + "\n", encoding="ascii")
    (own / SIGNING_KEY_FILE).chmod(0o600)
    with caplog.at_level(logging.INFO, logger="app.server.runtime"):
        b = server_factory(data_dir=own)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(own / SIGNING_KEY_FILE) in line and "using theirs" in line for line in said)
    assert _key(own) == _key(a.data_dir) != "f" * 64
    with httpx.Client(base_url=b.url, timeout=TIMEOUT) as on_b:
        _works_on(a, login(on_b, "bob"))


def test_a_real_server_process_and_an_embedded_one_share_the_key(
    server_factory: ServerFactory, redis_url: str, tmp_path: Path
) -> None:
    """``python -m app server --redis`` as IT runs it, with its own ``--data-dir``."""
    embedded = server_factory(data_dir=tmp_path / "embedded", demo_users=True)
    process = ServerProcess(tmp_path, "--redis", redis_url, "--data-dir", str(tmp_path / "process"))
    try:
        with httpx.Client(base_url=process.url, timeout=TIMEOUT) as on_process:
            _works_on(embedded, login(on_process, "alice"))
        with httpx.Client(base_url=embedded.url, timeout=TIMEOUT) as on_embedded:
            _works_on(process, login(on_embedded, "bob"))
        assert process.terminate() == 0
    finally:
        process.close()
    assert _key(tmp_path / "process") == _key(embedded.data_dir)


def test_a_damaged_shared_key_stops_the_start_saying_what_to_do(
    server_factory: ServerFactory, redis_url: str
) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.set("tray-notifier:signing-key", "short")
    with pytest.raises(ValueError, match=r"redis-cli DEL tray-notifier:signing-key"):
        server_factory()
