"""Several server processes on one port (SO_REUSEPORT, issue 24): on by default with Redis,
where every process serves every user and the kernel spreads the connections; off with SQLite,
where a second process on the port is a mistake and must fail as it always did."""

from __future__ import annotations

import errno
import sys

import httpx
import pytest

from app.server.config import ServerConfig
from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreading is Linux's")

LOGINS = 32


def test_the_default_shares_the_port_only_with_redis() -> None:
    assert ServerConfig(redis_url="redis://127.0.0.1:6379/0").shares_port
    assert not ServerConfig().shares_port
    assert ServerConfig(reuse_port=True).shares_port
    assert not ServerConfig(redis_url="redis://127.0.0.1:6379/0", reuse_port=False).shares_port


def test_redis_processes_share_one_port_and_the_kernel_spreads_connections(
    server_factory: ServerFactory, server_backend: str
) -> None:
    if server_backend != "redis":
        pytest.skip("the shared port is for processes that share their state")
    first = server_factory(demo_users=True)
    second = server_factory(port=first.port)
    assert second.port == first.port
    for _ in range(LOGINS):  # each on a new connection: the kernel picks a process for each
        with httpx.Client(base_url=first.url, timeout=TIMEOUT) as client:
            reply = client.post("/auth/login", json={"username": "alice", "password": "demo"})
            assert reply.status_code == 200, reply.text
    counts = (first.metrics.logins, second.metrics.logins)
    assert sum(counts) == LOGINS and min(counts) > 0, counts


def test_a_second_sqlite_process_on_the_port_fails(server_factory: ServerFactory) -> None:
    first = server_factory()
    with pytest.raises(OSError) as refused:
        EmbeddedServer(data_dir=first.data_dir.with_name("other"), port=first.port).start()
    assert refused.value.errno == errno.EADDRINUSE
