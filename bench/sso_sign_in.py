"""The cost of checking an ID token at sign-in (issue 20), against bare baselines in one run.

Runs the test suite's real OpenID provider (npm ``oidc-provider``, ``tests/web``: run
``scripts/dev test`` once, or ``npm ci --prefix tests/web``) and an embedded companion server
that trusts it, then times:

- in process: :meth:`IdTokenVerifier.verify` (keys cached) against a bare ``jwt.decode`` of
  the same token with the same key (the floor: the RSA signature check itself);
- over HTTP on loopback: ``POST /auth/oidc`` (check, replay mark, user upsert, the server's own
  tokens) against ``POST /auth/login`` (a password: scrypt) and ``GET /auth/config`` (the
  floor: a request and a small JSON answer).

and, with ``--sign-ins N`` (needs Debian's ``chromium``), the tray's whole sign-in from the
click to the first byte of its stream, the person's part in the browser excluded: the
provider's page is filled in by headless Chromium, and the time from the browser opening to
the redirect arriving at the loopback listener is taken out (discovery, listener, code
exchange, ``POST /auth/oidc``, storing the login and connecting are what remain).

    .venv/bin/python bench/sso_sign_in.py --rounds 200 --sign-ins 5
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt

from app.core.auth import AuthSession
from app.core.config import Endpoints, StreamSettings
from app.core.oidc_callback import LoopbackListener
from app.core.secrets import MemorySecretStore
from app.server.config import OidcSettings
from app.server.embedded import EmbeddedServer
from app.server.oidc import IdTokenVerifier
from tests.fixtures.browser import Chromium
from tests.fixtures.oidc import TRAY_CLIENT_ID, OidcProvider, browser_command, complete_sign_in


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


async def _sign_in_to_connected(
    server: EmbeddedServer, provider: OidcProvider, chromium: Chromium
) -> tuple[float, float]:
    """One tray sign-in as alice: (click to connected, of which the browser's part), seconds."""
    marks: dict[str, float] = {}
    answer = LoopbackListener._answer

    def timed_answer(self: LoopbackListener, head: bytes) -> tuple[str, str]:
        marks.setdefault("redirected", time.perf_counter())
        return answer(self, head)

    def open_browser(url: str) -> bool:
        marks["opened"] = time.perf_counter()
        return webbrowser.GenericBrowser(browser_command(chromium)).open(url)

    session = AuthSession(
        server_url=server.url,
        username="",
        endpoints=Endpoints(),
        secrets=MemorySecretStore(),
        settings=StreamSettings(),
    )
    person = asyncio.ensure_future(
        asyncio.to_thread(
            complete_sign_in,
            chromium,
            url_prefix=provider.issuer,
            username="alice",
            password=provider.user("alice").password,
        )
    )
    LoopbackListener._answer = timed_answer  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        tokens = await session.sign_in(on_prompt=lambda prompt: None, open_browser=open_browser)
        async with (
            httpx.AsyncClient(timeout=30) as client,
            client.stream(
                "GET",
                session.stream_url(),
                headers={"Authorization": f"Bearer {tokens.access_token}"},
            ) as stream,
        ):
            async for _ in stream.aiter_raw():
                break
        total = time.perf_counter() - start
    finally:
        LoopbackListener._answer = answer  # type: ignore[method-assign]
        await person
        await session.aclose()
    return total, marks["redirected"] - marks["opened"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--sign-ins", type=int, default=0, help="tray sign-ins through Chromium")
    args = parser.parse_args()
    rounds = args.rounds
    journeys: list[float] = []
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
                if args.sign_ins:
                    chromium = Chromium(shutil.which("chromium") or "chromium", Path(tmp) / "c")
                    try:
                        for _ in range(args.sign_ins):
                            total, browser = asyncio.run(
                                _sign_in_to_connected(server, provider, chromium)
                            )
                            journeys.append(total - browser)
                    finally:
                        chromium.stop()
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
    if journeys:
        print(f"the tray's sign-in, click to connected, browser step excluded ({len(journeys)})")
        print(
            f"  median {statistics.median(journeys) * 1000:.0f} ms, all: "
            + ", ".join(f"{j * 1000:.0f}" for j in journeys)
            + " ms"
        )


if __name__ == "__main__":
    main()
