"""The listen queue (issue 24): a fleet coming back after a restart waits in the kernel's queue
of each process instead of having its handshakes dropped (and retried seconds later, in step).
Read with ``ss`` (iproute2), as IT would check it: a listening socket's Send-Q is its queue."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.server.config import HttpSettings
from tests.fixtures.server_process import ServerProcess


def _queue_depth(port: int) -> int:
    out = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    state, _recv_q, send_q = out[:3]
    assert state == "LISTEN", out
    return int(send_q)


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (apt-get install iproute2)")
def test_the_server_listens_with_a_deep_queue_and_still_serves(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, "--data-dir", str(tmp_path / "srv"))
    try:
        port = urlsplit(server.url).port
        assert port is not None
        somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
        # the kernel bounds it by somaxconn; asyncio alone would have given 128 (the backlog)
        assert _queue_depth(port) == min(HttpSettings().listen_queue, somaxconn)
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        server.close()
