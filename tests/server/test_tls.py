"""HTTPS with ``--tls-cert``/``--tls-key`` (a throw-away self-signed certificate made here),
and the warning for plain HTTP on an address that is not loopback. Backend-independent."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.server.config import ServerConfig
from app.server.runtime import is_loopback
from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT, bearer, login, publish


@pytest.fixture
def server_backend() -> str:
    return "sqlite"


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_the_server_serves_https_with_the_given_certificate(
    server_factory: ServerFactory, tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
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
    cert, _ = _self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    _, other_key = _self_signed(tmp_path / "other")
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
