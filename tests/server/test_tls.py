"""HTTPS with ``--tls-cert``/``--tls-key`` (a throw-away self-signed certificate made here),
and the warning for plain HTTP on an address that is not loopback. Backend-independent."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import httpx
import pytest

from app.server.config import ServerConfig
from app.server.runtime import is_loopback
from tests.fixtures.server import ServerFactory
from tests.fixtures.tls import self_signed
from tests.server.conftest import TIMEOUT, bearer, login, publish


@pytest.fixture
def server_backend() -> str:
    return "sqlite"


def test_the_server_serves_https_with_the_given_certificate(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    server = server_factory(demo_users=True, tls_cert=cert, tls_key=key)
    assert server.url.startswith("https://127.0.0.1:")
    trust = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=server.url, timeout=TIMEOUT, verify=trust) as client:
        boss = login(client, "publisher")
        ann_id = publish(client, boss)
        listed = client.get("/announcements", headers=bearer(boss)).json()
        assert [a["id"] for a in listed] == [ann_id]
    plain = server.url.replace("https://", "http://")
    with httpx.Client(timeout=TIMEOUT) as client, pytest.raises(httpx.HTTPError):
        client.get(plain + "/healthz")  # no plain HTTP beside it
    with httpx.Client(timeout=TIMEOUT) as client, pytest.raises(httpx.ConnectError):
        client.get(server.url + "/healthz")  # an untrusted certificate is refused by clients


def test_a_certificate_that_does_not_fit_is_a_clear_error(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    cert, _ = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    _, other_key = self_signed(tmp_path / "other")
    with pytest.raises(ValueError, match="cannot use the TLS certificate"):
        server_factory(tls_cert=cert, tls_key=other_key)
    with pytest.raises(ValueError, match="give both or neither"):
        ServerConfig(tls_cert=cert)


def test_plain_http_on_a_non_loopback_address_warns(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.server.runtime"):
        server_factory(host="127.0.0.1")
        assert not [r for r in caplog.records if "plain HTTP" in r.getMessage()]
        server = server_factory(host="0.0.0.0")
        with httpx.Client(timeout=TIMEOUT) as client:
            assert client.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200
    warned = [r.getMessage() for r in caplog.records if "plain HTTP" in r.getMessage()]
    assert len(warned) == 1
    assert "0.0.0.0" in warned[0] and "--tls-cert" in warned[0]


def test_loopback_addresses() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.2", "example.org"))
