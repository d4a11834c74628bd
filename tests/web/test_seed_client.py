"""The seed's own web client against the companion server, in a real browser (issue 11).

``seed_client.html`` / ``seed_client.js`` use the npm package ``event-source-polyfill`` 1.0.31
(``package-lock.json``, installed by ``npm ci``) exactly as the seed's Vue page does: login by
fetch, ``EventSourcePolyfill`` on ``/sse/connect/{userId}`` with the Bearer header and an hour's
``heartbeatTimeout``, ``onmessage``, then ``close()`` and ``POST /sse/close/{userId}``. Headless
Chromium loads the page from a second loopback origin (``web_origin``), so every call is a
cross-origin one with a CORS preflight; the server allows that origin with ``cors_origins``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from tests.fixtures.browser import Page, WebOrigin
from tests.fixtures.server import DEMO_PASSWORD, ServerFactory

pytestmark = [pytest.mark.browser]

PAGE = "seed_client.html"
WAIT = 15.0  # seconds: the bound of every wait here
STATE = "JSON.parse(JSON.stringify(window.seedClient))"  # the page's state without its close()


async def metric(url: str, name: str) -> float:
    """One figure of the server's ``/metrics`` (Prometheus text)."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http,
        http.get(f"{url}/metrics") as reply,
    ):
        text = await reply.text()
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == f"tray_notifier_{name}":
            return float(value)
    raise AssertionError(f"/metrics has no tray_notifier_{name}:\n{text}")


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Until ``check()`` holds, every 50 ms for at most WAIT seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not await check():
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not within {WAIT:.0f} s")
        await asyncio.sleep(0.05)


def cors_headers(headers: Any) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower().startswith("access-control-")}


async def test_seed_client_logs_in_receives_an_announcement_and_closes(
    server_factory: ServerFactory, web_origin: WebOrigin, browser_page: Page
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, cors_origins=(web_origin.origin,))
    page = browser_page
    await page.goto(web_origin.url(PAGE, server=server.url, user="alice", password=DEMO_PASSWORD))

    await page.wait_for(
        "window.seedClient.phase === 'open'",
        "the page connected its stream",
        unless="window.seedClient.phase === 'failed'",
    )

    async def one_stream() -> bool:
        return await metric(server.url, "connections") == 1

    await eventually(one_stream, "the server counts the page's stream")

    # published only now, with the page connected: it must arrive live, not as a replay
    title = "Fire drill at 3 pm — 消防演习"
    ann_id = await asyncio.to_thread(
        server.publish, title, "Leave by the stairs.", audience={"groups": ["it"]}
    )
    messages = await page.wait_for(
        "window.seedClient.messages.length > 0 && window.seedClient.messages",
        "the announcement reached the page's onmessage",
        unless="window.seedClient.errors.length > 0",
    )
    announcement = json.loads(messages[0])
    assert announcement["id"] == ann_id
    assert announcement["title"] == title
    assert announcement["body"] == "Leave by the stairs."

    reply = await page.evaluate("window.seedClient.close()")
    assert reply is not None, page.log
    assert reply["status"] == 200
    assert reply["body"]["code"] == 200

    async def no_stream() -> bool:
        return await metric(server.url, "connections") == 0

    await eventually(no_stream, "the stream ended on the server after close")
    state = await page.evaluate(STATE)
    assert state["phase"] == "closed"
    assert state["errors"] == [], page.log
    assert state["opened"] == 1  # one connection all along: no reconnect
    assert len(state["messages"]) == 1


async def test_an_origin_that_is_not_allowed_gets_no_cors_headers(
    server_factory: ServerFactory, web_origin: WebOrigin, browser_page: Page
) -> None:
    # the same page server under another host name: another origin, one letter from the right one
    allowed = f"http://localhost:{web_origin.port}"
    server = server_factory(demo_users=True, ping_interval=0.5, cors_origins=(allowed,))
    page = browser_page
    await page.goto(web_origin.url(PAGE, server=server.url, user="alice", password=DEMO_PASSWORD))

    await page.wait_for("window.seedClient.phase === 'failed'", "the page reported the failure")
    state = await page.evaluate(STATE)
    assert state["messages"] == []
    assert state["opened"] == 0
    assert state["errors"] and state["errors"][0].startswith("login: "), state
    # the browser stopped at the preflight: the login itself was never sent
    assert await metric(server.url, "logins_total") == 0
    assert await metric(server.url, "login_failures_total") == 0
    assert await metric(server.url, "connections_total") == 0

    # what the browser saw, asked directly: no Access-Control-* header for this origin
    origin = {"Origin": web_origin.origin}
    preflight = {
        **origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    credentials = {"username": "alice", "password": DEMO_PASSWORD}
    login = f"{server.url}/auth/login"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http:
        async with http.options(login, headers=preflight) as answer:
            assert cors_headers(answer.headers) == {}
        async with http.post(login, json=credentials, headers=origin) as answer:
            assert answer.status == 200
            assert cors_headers(answer.headers) == {}
            token = (await answer.json())["access_token"]
        stream_headers = {**origin, "Authorization": f"Bearer {token}"}
        async with http.get(f"{server.url}/sse/connect/alice", headers=stream_headers) as answer:
            assert answer.status == 200
            assert cors_headers(answer.headers) == {}
