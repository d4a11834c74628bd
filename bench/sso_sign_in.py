"""The cost of checking an ID token at sign-in (issue 20), against bare baselines in one run.

Runs the test suite's real OpenID provider (npm ``oidc-provider``, ``tests/web``: run
``scripts/dev test`` once, or ``npm ci --prefix tests/web``) and an embedded companion server
that trusts it, then times:

- in process: :meth:`IdTokenVerifier.verify` (keys cached) against a bare ``jwt.decode`` of
  the same token with the same key (the floor: the RSA signature check itself);
- over HTTP on loopback: ``POST /auth/oidc`` (check, replay mark, user upsert, the server's own
  tokens) against ``POST /auth/login`` (a password: scrypt) and ``GET /auth/config`` (the
  floor: a request and a small JSON answer).

    .venv/bin/python bench/sso_sign_in.py --rounds 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt

from app.server.config import OidcSettings
from app.server.embedded import EmbeddedServer
from app.server.oidc import IdTokenVerifier
from tests.fixtures.oidc import TRAY_CLIENT_ID, OidcProvider


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered) * 1000:7.3f} ms   p95 {p95 * 1000:7.3f} ms"


def _time(call: Callable[[], object], rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    rounds = args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        provider = OidcProvider(Path(tmp) / "idp")
        try:
            settings = OidcSettings(issuer=provider.issuer, client_id=TRAY_CLIENT_ID)
            tokens = [provider.mint_id_token(user="alice", jti=f"t{n}") for n in range(rounds + 1)]

            verifier = IdTokenVerifier(settings)
            loop = asyncio.new_event_loop()
            loop.run_until_complete(verifier.verify(tokens[0]))  # fetches the keys once
            it = iter(tokens[1:])
            checked = _time(lambda: loop.run_until_complete(verifier.verify(next(it))), rounds)
            public = provider.private_key.public_key()
            it = iter(tokens[1:])
            bare = _time(
                lambda: jwt.decode(next(it), public, algorithms=["RS256"], audience=TRAY_CLIENT_ID),
                rounds,
            )
            loop.close()

            with EmbeddedServer(data_dir=Path(tmp) / "server", oidc=settings) as server:
                server.add_user("svc", "a-service-password")
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    client.post("/auth/oidc", json={"id_token": tokens[0]})  # keys fetched
                    fresh = iter(
                        provider.mint_id_token(user="alice", jti=f"h{n}") for n in range(rounds)
                    )
                    sso = _time(
                        lambda: client.post("/auth/oidc", json={"id_token": next(fresh)}),
                        rounds,
                    )
                    password = _time(
                        lambda: client.post(
                            "/auth/login",
                            json={"username": "svc", "password": "a-service-password"},
                        ),
                        min(rounds, 50),
                    )
                    floor = _time(lambda: client.get("/auth/config"), rounds)
        finally:
            provider.stop()
    print(f"ID token check, in process ({rounds} tokens, RS256 2048)")
    print(f"  IdTokenVerifier.verify   {_ms(checked)}")
    print(f"  bare jwt.decode          {_ms(bare)}")
    print(f"  ratio                    {statistics.median(checked) / statistics.median(bare):.2f}x")
    print("sign-in over HTTP on loopback")
    print(f"  POST /auth/oidc          {_ms(sso)}")
    print(f"  POST /auth/login         {_ms(password)}   (scrypt)")
    print(f"  GET /auth/config         {_ms(floor)}   (floor)")


if __name__ == "__main__":
    main()
