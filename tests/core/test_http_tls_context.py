"""The clients' shared TLS context: verification on, the operating system's trust roots
(OpenSSL's default paths: SSL_CERT_FILE, SSL_CERT_DIR) loaded at the first handshake, never for
plain http."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core import http
from app.core.config import StreamSettings
from app.core.stream import OutcomeKind
from tests.fixtures.engine import first_event
from tests.fixtures.scripted import ScriptedServer, sse
from tests.fixtures.tls import private_ca

Scripted = Callable[..., ScriptedServer]


def _fresh_default(monkeypatch: pytest.MonkeyPatch, cert_file: Path) -> ssl.SSLContext:
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # a context of its own in this process
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return http.default_tls_context()


async def test_roots_load_at_the_first_handshake_and_verify(
    scripted: Scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, tls = private_ca(tmp_path)
    context = _fresh_default(monkeypatch, ca_file)
    assert http.default_tls_context() is context  # one for every client
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0  # nothing loaded yet
    server = scripted(sse("data: over tls\n\n"), tls=tls)
    outcome, data = await first_event(server.url, StreamSettings())
    assert (outcome.kind, data) == (OutcomeKind.STOPPED, ["over tls"])
    assert context.cert_store_stats()["x509_ca"] == 1  # SSL_CERT_FILE, as httpx reads it


async def test_plain_http_never_loads_the_roots(
    scripted: Scripted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file, _ = private_ca(tmp_path)
    context = _fresh_default(monkeypatch, ca_file)
    server = scripted(sse("data: plain\n\n"))
    _outcome, data = await first_event(server.url, StreamSettings())
    assert data == ["plain"]
    assert context.cert_store_stats()["x509_ca"] == 0


def test_a_ca_bundle_gets_its_own_context_loaded_at_once(tmp_path: Path) -> None:
    ca_file, _ = private_ca(tmp_path)
    context = http._verify(str(ca_file))
    assert context is not http.default_tls_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.cert_store_stats()["x509_ca"] >= 1
