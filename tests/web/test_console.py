"""The publisher console (``GET /console/``, issue 13) in headless Chromium against the real
companion server: the page is served by the server itself, so every call is same-origin.

A communications officer logs in, composes an announcement for a group (the recipient count
shows before sending), sends it, and watches its reach change live while a listening client
(alice's stream, with her receipts posted as the tray posts them) receives, reads and
acknowledges it; exports the CSV; revokes. Staff accounts are told they are not publishers;
the page speaks Simplified Chinese; markup in a title stays text.

Screenshots: set ``TN_CONSOLE_SCREENSHOTS=docs/screenshots`` to write ``console-compose.png``
and ``console-reach.png`` there (otherwise into the test's temporary folder).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.server.embedded import EmbeddedServer
from tests.fixtures.browser import Page
from tests.fixtures.console_page import (
    SSO_PENDING_KEY,
    click,
    js,
    no_policy_violations,
    open_console,
    screenshot,
    screenshot_dir,
    send,
    text_of,
    type_into,
)
from tests.fixtures.server import DEMO_PASSWORD, ManualClock, ServerFactory

pytestmark = [pytest.mark.browser]

WAIT = 15.0  # seconds: the bound of every wait here
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)

# what would turn text into markup, or keep a token beyond the page's memory
HTML_SINKS = (
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "localStorage",
    "sessionStorage",
    "document.cookie",
)


# ------------------------------------------------------------------ helpers


def session_storage_keys(source: str) -> list[str]:
    """The keys under which a script uses ``sessionStorage`` (its comments left out); fails
    when it uses it otherwise than with ``getItem``, ``setItem`` or ``removeItem`` and a key
    held in one ``const`` (sso.js keeps the sign-in round trip there, under one key)."""
    code = re.sub(r"/\*.*?\*/|(?:^|(?<=\s))//[^\n]*", "", source, flags=re.S | re.M)
    mentions = re.findall(r"\bsessionStorage\b", code)
    names = re.findall(r"\bsessionStorage\.(?:getItem|setItem|removeItem)\((\w+)[,)]", code)
    assert mentions and len(names) == len(mentions), mentions
    keys = []
    for name in sorted(set(names)):
        assigned = re.findall(rf"(\w*)\s+\b{name}\s*=(?!=)\s*'([^'\\]*)'", code)
        assert len(assigned) == 1 and assigned[0][0] == "const", (name, assigned)
        assert len(re.findall(rf"\b{name}\s*=(?!=)", code)) == 1, name
        keys.append(assigned[0][1])
    return keys


async def press(page: Page, key: str, code: str, key_code: int, text: str = "") -> None:
    """One key pressed and released, as the keyboard sends it."""
    for kind in ("keyDown", "keyUp"):
        await page.send(
            "Input.dispatchKeyEvent",
            type=kind,
            key=key,
            code=code,
            windowsVirtualKeyCode=key_code,
            **({"text": text} if kind == "keyDown" and text else {}),
        )


async def log_in(page: Page, user: str) -> None:
    await type_into(page, "login-user", user)
    await type_into(page, "login-password", DEMO_PASSWORD)
    await click(page, "#login-submit")


async def log_in_as_publisher(page: Page, server: EmbeddedServer) -> None:
    await open_console(page, server)
    await log_in(page, "publisher")
    await page.wait_for(
        "document.body.dataset.view === 'app'"
        " && document.querySelectorAll('#group-list input').length > 0",
        "the console opened with the directory's groups",
        unless="!document.getElementById('login-error').hidden",
    )


async def cell(page: Page, ann_id: str, column: str) -> str:
    return await text_of(page, f'#sent-rows tr[data-id="{ann_id}"] .n-{column}')


async def token_of(http: aiohttp.ClientSession, server: EmbeddedServer, user: str) -> str:
    credentials = {"username": user, "password": DEMO_PASSWORD}
    async with http.post(f"{server.url}/auth/login", json=credentials) as reply:
        assert reply.status == 200, await reply.text()
        token: str = (await reply.json())["access_token"]
        return token


@contextlib.asynccontextmanager
async def listening_client(
    http: aiohttp.ClientSession, server: EmbeddedServer, user: str
) -> AsyncIterator[tuple[str, asyncio.Queue[dict[str, Any]]]]:
    """``user``'s SSE stream, open: yields their token and a queue of the announcements it
    receives (the JSON of each ``message`` event)."""
    token = await token_of(http, server, user)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    connected = asyncio.Event()

    async def listen() -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with http.get(
            f"{server.url}/sse/connect/{user}", headers=headers, timeout=timeout
        ) as reply:
            assert reply.status == 200
            event, data = "message", []
            async for raw in reply.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif not line:
                    if event == "connected":
                        connected.set()
                    elif data and event == "message":
                        received.put_nowait(json.loads("\n".join(data)))
                    event, data = "message", []

    task = asyncio.create_task(listen(), name=f"{user} listens")
    try:
        async with asyncio.timeout(WAIT):
            await connected.wait()
        yield token, received
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def post_receipts(
    http: aiohttp.ClientSession, server: EmbeddedServer, token: str, **ids: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.post(f"{server.url}/receipts", json=ids, headers=headers) as reply:
        assert reply.status == 200, await reply.text()


async def allow_downloads(page: Page, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    await page.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(folder))


async def downloaded(folder: Path, name: str) -> str:
    """The text of ``folder/name`` once the browser has finished writing it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    target = folder / name
    while not (target.is_file() and not list(folder.glob("*.crdownload"))):
        if loop.time() >= deadline:
            raise AssertionError(f"{name} was not downloaded: {sorted(folder.iterdir())}")
        await asyncio.sleep(0.05)
    return target.read_bytes().decode("utf-8")  # as sent: CRLF line ends kept


# ------------------------------------------------------------------ tests


async def test_the_console_is_served_with_its_own_policy(companion_server: EmbeddedServer) -> None:
    url = companion_server.url
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(f"{url}/console", allow_redirects=False) as reply:
            assert reply.status == 301
            assert reply.headers["Location"] == "console/"
        async with http.get(f"{url}/console/") as page:
            assert page.status == 200
            assert page.headers["Content-Type"] == "text/html; charset=utf-8"
            assert page.headers["Content-Security-Policy"] == CONSOLE_CSP
            assert page.headers["X-Content-Type-Options"] == "nosniff"
            html = await page.text()
        assert "<script>" not in html and " style=" not in html  # nothing inline
        for name, kind in [
            ("console.js", "text/javascript"),
            ("sso.js", "text/javascript"),
            ("i18n.js", "text/javascript"),
            ("console.css", "text/css"),
        ]:
            async with http.get(f"{url}/console/{name}") as reply:
                assert reply.status == 200, name
                assert reply.headers["Content-Type"] == f"{kind}; charset=utf-8"
                text = await reply.text()
            for sink in HTML_SINKS:
                if name == "sso.js" and sink == "sessionStorage":
                    assert session_storage_keys(text) == [SSO_PENDING_KEY]
                else:
                    assert sink not in text, (name, sink)
        for missing in ["nothing.js", "..%2Fhttp.py", "console.js.bak", "sub/console.js"]:
            async with http.get(f"{url}/console/{missing}") as reply:
                assert reply.status == 404, missing
        # the API's own answers keep the API's policy
        async with http.get(f"{url}/healthz") as reply:
            assert "script-src" not in reply.headers["Content-Security-Policy"]


async def test_publisher_sends_to_a_group_and_watches_reach_live(
    companion_server: EmbeddedServer, browser_page: Page, tmp_path: Path
) -> None:
    server, page = companion_server, browser_page
    await log_in_as_publisher(page, server)

    # compose: the recipient count is known before sending
    await type_into(page, "f-title", "Network maintenance tonight")
    await type_into(page, "f-body", "The VPN is down from 22:00 to 23:00.")
    await type_into(page, "f-link", "https://intranet.example.org/it/maintenance")
    assert await text_of(page, "#recipient-count") == "No recipients chosen yet."
    await click(page, '#group-list input[value="it"]')
    count = await page.wait_for(
        "document.getElementById('recipient-count').dataset.count", "the count shows"
    )
    assert count == "1"
    assert await text_of(page, "#recipient-count") == "This will go to 1 person: alice."
    # the preview follows the form
    assert await text_of(page, "#pt-title") == "Network maintenance tonight"
    assert await text_of(page, "#pt-body") == "The VPN is down from 22:00 to 23:00."
    assert await page.evaluate("document.getElementById('preview-urgent-block').hidden")

    ann_id = await send(page)
    assert not await page.evaluate("document.getElementById('confirm').open")  # no confirm

    # the sent list shows it, with its reach: 1 recipient, nothing received yet
    await click(page, "#tab-sent")
    row = f'#sent-rows tr[data-id="{ann_id}"]'
    await page.wait_for(
        f"document.querySelector('{row} .n-recipients')?.dataset.value === '1'",
        "the sent list shows the announcement with its recipient",
    )
    assert await text_of(page, f"{row} .title-cell") == "Network maintenance tonight"
    assert await cell(page, ann_id, "delivered") == "0"
    await page.wait_for("document.getElementById('live').dataset.live === 'on'", "live is on")
    await click(page, f"{row} .title-cell button")
    await page.wait_for(
        "document.querySelector('#not-received li')?.textContent === 'alice'",
        "alice is listed as not received",
    )
    loads = await page.evaluate("document.body.dataset.sentLoads")

    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        listening_client(http, server, "alice") as (alice, received),
    ):
        # alice's stream is open: the page shows her connected after its next reach update;
        # a publish while she listens reaches her live, and her receipt reaches the page live
        async with asyncio.timeout(WAIT):
            # she connected after the publish: the tray would find it over REST; here the test
            # posts the delivered receipt for the id it was given
            await post_receipts(http, server, alice, delivered=[ann_id])
        await page.wait_for(
            f"document.querySelector('{row} .n-delivered')?.dataset.value === '1'",
            "the delivered count rose live",
        )
        await page.wait_for(
            "!!document.querySelector('#people-rows tr[data-user=\"alice\"] .dot.on')",
            "alice shows as connected in the details",
        )
        assert await text_of(page, "#not-received li") == "Everyone has received it."

        await post_receipts(http, server, alice, displayed=[ann_id], read=[ann_id])
        await page.wait_for(
            f"document.querySelector('{row} .n-read')?.dataset.value === '1'",
            "the read count rose live",
        )
        assert await cell(page, ann_id, "displayed") == "1"
        # a normal announcement asks nobody to acknowledge it: no "0 acknowledged"
        assert await cell(page, ann_id, "acknowledged") == "not asked"
        assert await page.evaluate("document.getElementById('not-acked-block').hidden")
        assert received.empty()  # published before she listened: nothing replayed to her
        # live: the list itself was never reloaded, only this announcement's reach
        assert await page.evaluate("document.body.dataset.sentLoads") == loads

        # CSV export: a real download of what /reach.csv answers
        downloads = tmp_path / "downloads"
        await allow_downloads(page, downloads)
        await click(page, "#export")
        name = await page.wait_for("document.body.dataset.exported", "the CSV was exported")
        csv_text = await downloaded(downloads, name)
        headers = {"Authorization": f"Bearer {await token_of(http, server, 'publisher')}"}
        async with http.get(
            f"{server.url}/announcements/{ann_id}/reach.csv", headers=headers
        ) as reply:
            assert csv_text == await reply.text()
        lines = csv_text.splitlines()
        assert len(lines) == 2 and lines[1].startswith("alice,alice,it,")

        # revoke, after a confirm: kept in the list, marked withdrawn
        await click(page, "#revoke")
        await page.wait_for("document.getElementById('confirm').open", "the confirm opens")
        assert "Network maintenance tonight" in await text_of(page, "#confirm-text")
        await click(page, "#confirm-ok")
        await page.wait_for(f"!!document.querySelector('{row}.revoked')", "marked withdrawn")
        assert "was revoked" in await text_of(page, "#flash")
        revoke = await asyncio.wait_for(received.get(), WAIT)
        assert revoke == {"type": "revoke", "id": ann_id}

    # log out: back to the login form, and the token is gone from the server's point of view
    await click(page, "#logout")
    await page.wait_for("document.body.dataset.view === 'login'", "logged out")
    no_policy_violations(page)


async def test_urgent_and_everyone_need_a_confirm(
    companion_server: EmbeddedServer, browser_page: Page
) -> None:
    server, page = companion_server, browser_page
    await log_in_as_publisher(page, server)
    await type_into(page, "f-title", "Fire alarm test at 15:00")
    await type_into(page, "f-body", "The alarm will sound for one minute.\nNo need to leave.")
    await page.evaluate(
        "(() => { const s = document.getElementById('f-priority'); s.value = 'urgent';"
        " s.dispatchEvent(new Event('change', {bubbles: true})); })()"
    )
    await click(page, 'input[name="audience"][value="all"]')
    assert await text_of(page, "#recipient-count") == "This will go to 3 people."
    assert not await page.evaluate("document.getElementById('preview-urgent-block').hidden")
    assert await text_of(page, "#pu-title") == "Fire alarm test at 15:00"

    await click(page, "#send")
    await page.wait_for("document.getElementById('confirm').open", "the confirm opens")
    confirm = await text_of(page, "#confirm-text")
    assert "everyone (3 people)" in confirm and "urgent" in confirm
    await click(page, "#confirm-cancel")  # nothing is sent
    await page.wait_for("!document.getElementById('confirm').open", "the confirm closed")
    assert await page.evaluate("document.body.dataset.lastSent ?? null") is None

    await click(page, "#send")
    await page.wait_for("document.getElementById('confirm').open", "the confirm opens again")
    await click(page, "#confirm-ok")
    ann_id = await page.wait_for("document.body.dataset.lastSent", "sent after the confirm")
    await click(page, "#tab-sent")
    await page.wait_for(
        f"document.querySelector('#sent-rows tr[data-id=\"{ann_id}\"] .n-recipients')"
        "?.dataset.value === '3'",
        "three recipients",
    )
    no_policy_violations(page)


async def test_staff_are_told_they_are_not_publishers(
    companion_server: EmbeddedServer, browser_page: Page
) -> None:
    page = browser_page
    await open_console(page, companion_server)
    await log_in(page, "alice")
    await page.wait_for("document.body.dataset.refused === 'not-publisher'", "the refusal shows")
    message = await text_of(page, "#login-error")
    assert "“alice” is not a publisher" in message
    assert await page.evaluate("document.body.dataset.view") == "login"
    assert await page.evaluate("document.getElementById('app-view').hidden")

    # keyboard: Tab moves to the password with a visible focus ring; Enter submits, and a
    # wrong password is refused in the server's words
    await page.evaluate("document.getElementById('login-user').focus()")
    await press(page, "Tab", "Tab", 9)
    assert await page.evaluate("document.activeElement.id") == "login-password"
    ring = await page.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, s.outlineWidth]; })()"
    )
    assert ring == ["solid", "3px"]
    await page.send("Input.insertText", text="wrong")
    await press(page, "Enter", "Enter", 13, text="\r")
    await page.wait_for(
        "document.getElementById('login-error').textContent.startsWith('Could not log in')",
        "a wrong password is refused",
    )
    no_policy_violations(page)


async def test_chinese_page_shows_markup_as_text(
    server_factory: ServerFactory, browser_page: Page
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5)
    markup = "<b>x</b><img src=x onerror=alert(1)>"
    ann_id = await asyncio.to_thread(
        server.publish, markup, "<script>alert(2)</script>", audience={"groups": ["hr"]}
    )
    page = browser_page
    await open_console(page, server, "?lang=zh_CN")
    assert await page.evaluate("document.documentElement.lang") == "zh-CN"
    assert await text_of(page, "#login-heading") == "登录"
    await log_in(page, "publisher")
    await page.wait_for("document.body.dataset.view === 'app'", "logged in")
    assert await text_of(page, "#tab-sent") == "已发送"
    assert await text_of(page, "#compose-heading") == "新通知"
    await click(page, '#group-list input[value="hr"]')
    assert await text_of(page, "#recipient-count") == "将发送给 1 人：bob。"

    await click(page, "#tab-sent")
    row = f'#sent-rows tr[data-id="{ann_id}"]'
    await page.wait_for(f"!!document.querySelector('{row}')", "the list shows it")
    assert await text_of(page, f"{row} .title-cell") == markup
    await click(page, f"{row} .title-cell button")
    await page.wait_for("!document.getElementById('details').hidden", "details open")
    assert await text_of(page, "#details-title") == markup
    assert await page.evaluate("document.querySelectorAll('main b, main img').length") == 0
    await page.wait_for(
        "document.getElementById('details-summary').textContent.includes('已收到')",
        "the reach summary in Chinese",
    )

    # the language switch goes back to English in place
    await page.evaluate(
        "(() => { const s = document.getElementById('language'); s.value = 'en';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert await text_of(page, "#tab-sent") == "Sent"
    assert await page.evaluate("document.documentElement.lang") == "en"
    no_policy_violations(page)


async def set_priority(page: Page, priority: str) -> None:
    await page.evaluate(
        "(() => { const s = document.getElementById('f-priority');"
        f" s.value = {js(priority)}; s.dispatchEvent(new Event('change', {{bubbles: true}})); }})()"
    )


async def inner_text(page: Page, selector: str) -> str:
    """What the page shows of ``selector`` (hidden parts left out), as a person reads it: its
    lines, blank ones left out."""
    value = await page.evaluate(f"document.querySelector({js(selector)})?.innerText ?? null")
    assert value is not None, f"no {selector} on the page"
    return "\n".join(line for line in str(value).splitlines() if line.strip())


async def test_the_preview_is_the_notification_as_it_will_appear(
    companion_server: EmbeddedServer, browser_page: Page
) -> None:
    """Issue 22, point 12: the preview showed a link (and a priority badge) that the real
    notification never shows. A notification is the app's name, the title and the body
    (app/ui/notifier.py), on Linux with Acknowledge for urgent ones; the urgent window
    (app/ui/urgent_window.py) adds the priority, the time, the link and its Open link
    button, and shows no expiry."""
    server, page = companion_server, browser_page
    await log_in_as_publisher(page, server)
    link = "https://intranet.example.org/it/maintenance"
    await type_into(page, "f-title", "Network maintenance tonight")
    await type_into(page, "f-body", "The VPN is down from 22:00 to 23:00.")
    await type_into(page, "f-link", link)
    await page.evaluate(
        "(() => { const e = document.getElementById('f-expiry');"
        " const d = new Date(Date.now() + 86400000); d.setHours(18, 0, 0, 0);"
        " const p = (n) => String(n).padStart(2, '0');"
        " e.value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T18:00`;"
        " e.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )
    toast = await inner_text(page, "#preview-toast")
    assert toast.split("\n") == [
        "Tray Notifier",
        "Network maintenance tonight",
        "The VPN is down from 22:00 to 23:00.",
    ]
    assert "intranet.example.org" not in toast and "Normal" not in toast
    assert await page.evaluate("document.querySelector('input[name=platform]:checked').value") == (
        "linux"  # the browser's own system first: headless Chromium on Linux here
    )
    notes = await inner_text(page, "#pt-notes")
    assert "Disappears after 8 seconds" in notes
    assert "The link is not in the notification" in notes
    assert await page.evaluate("document.getElementById('preview-urgent-block').hidden")

    # urgent: on Linux the notification offers Acknowledge and stays; the urgent window has
    # the link with Open link..., and no expiry (the real window shows none)
    await set_priority(page, "urgent")
    toast = await inner_text(page, "#preview-toast")
    assert toast.split("\n")[-1] == "Acknowledge" and "intranet" not in toast
    assert "Stays on the screen until closed" in await inner_text(page, "#pt-notes")
    window = await inner_text(page, "#preview-urgent")
    assert window.startswith("Urgent announcement — Tray Notifier\n")
    assert "Published " in window and "Network maintenance tonight" in window
    assert f"Link:\n{link}\nOpen link…" in window or f"Link: {link} Open link…" in window
    assert window.rstrip().endswith("Acknowledge") and "Expires" not in window

    # Windows: no buttons, a warning icon; macOS: no icon either
    await click(page, 'input[name="platform"][value="windows"]')
    assert await page.evaluate("document.getElementById('pt-actions').hidden")
    assert await page.evaluate("document.getElementById('pt-icon').dataset.icon") == "warning"
    assert "Acknowledge" not in await inner_text(page, "#preview-toast")
    await click(page, 'input[name="platform"][value="macos"]')
    assert await page.evaluate("document.getElementById('pt-icon').dataset.icon") == ""
    assert (await inner_text(page, "#preview-toast")).split("\n") == [
        "Tray Notifier",
        "Network maintenance tonight",
        "The VPN is down from 22:00 to 23:00.",
    ]

    # in Chinese, the tray's own words (its translation): 紧急公告, 确认收到
    await page.evaluate(
        "(() => { const s = document.getElementById('language'); s.value = 'zh_CN';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    await click(page, 'input[name="platform"][value="linux"]')
    window = await inner_text(page, "#preview-urgent")
    assert window.startswith("紧急公告 — Tray Notifier") and "打开链接…" in window
    assert (await inner_text(page, "#preview-toast")).split("\n")[-1] == "确认收到"
    no_policy_violations(page)


async def test_sent_shows_shown_asks_acknowledgement_only_when_asked_and_keeps_withdrawn(
    companion_server: EmbeddedServer, browser_page: Page
) -> None:
    """Issue 22, points 10, 11 and 13: Recipients, Received, Shown, Read, Acknowledged; no
    "0 acknowledged" for announcements that ask nobody to acknowledge; a revoked
    announcement (here by another publisher, while the page is open) stays, struck through,
    saying when and by whom, with its reach."""
    server, page = companion_server, browser_page
    normal = await asyncio.to_thread(
        server.publish, "Canteen closed on Friday", "Bring lunch.", audience={"groups": ["it"]}
    )
    urgent = await asyncio.to_thread(
        server.publish,
        "Evacuate building B",
        "Now.",
        audience={"groups": ["it"]},
        priority="urgent",
    )
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        alice = await token_of(http, server, "alice")
        await post_receipts(http, server, alice, delivered=[normal], displayed=[normal])
        await post_receipts(
            http, server, alice, displayed=[urgent], read=[urgent], acknowledged=[urgent]
        )
    await log_in_as_publisher(page, server)
    await click(page, "#tab-sent")
    heads = await page.evaluate(
        "[...document.querySelectorAll('#sent-table thead th')].map((th) => th.textContent)"
    )
    assert heads == [
        "Title",
        "Priority",
        "Sent",
        "Recipients",
        "Received",
        "Shown",
        "Read",
        "Acknowledged",
    ]
    await page.wait_for(
        f"document.querySelector('#sent-rows tr[data-id=\"{normal}\"] .n-displayed')"
        "?.dataset.value === '1'"
        f" && document.querySelector('#sent-rows tr[data-id=\"{urgent}\"] .n-acknowledged')"
        "?.dataset.value === '1'",
        "the reach of both is shown",
    )
    assert await cell(page, normal, "read") == "0"
    assert await cell(page, normal, "acknowledged") == "not asked"
    assert await cell(page, urgent, "displayed") == "1"

    await click(page, f'#sent-rows tr[data-id="{urgent}"] .title-cell button')
    await page.wait_for(
        "document.getElementById('details-summary').textContent"
        " === '1 of 1 received, 1 shown, 1 read, 1 acknowledged'",
        "the urgent one's summary",
    )
    assert not await page.evaluate("document.getElementById('not-acked-block').hidden")
    await click(page, f'#sent-rows tr[data-id="{normal}"] .title-cell button')
    await page.wait_for(
        "document.getElementById('details-summary').textContent"
        " === '1 of 1 received, 1 shown, 0 read'",
        "no acknowledgement in the normal one's summary",
    )
    assert await page.evaluate("document.getElementById('not-acked-block').hidden")
    assert await page.evaluate("document.getElementById('people-ack-head').hidden")
    people = await page.evaluate(
        "[...document.querySelectorAll('#people-rows tr[data-user=\"alice\"] > *')]"
        ".map((c) => c.textContent)"
    )
    # person, groups, received, shown, read, reminded (none: empty), online
    assert len(people) == 7 and people[4] == "—" and people[5] == ""
    assert await text_of(page, "#bar-displayed + span") == "1 / 1"

    # another publisher revokes it: the page marks it withdrawn live, and keeps its reach
    await page.wait_for("document.getElementById('live').dataset.live === 'on'", "live is on")
    assert await asyncio.to_thread(server.revoke, normal)
    row = f'#sent-rows tr[data-id="{normal}"]'
    await page.wait_for(
        f"document.querySelector('{row}')?.classList.contains('revoked')"
        f" && !!document.querySelector('{row} .withdrawn-note')?.textContent.includes('by ')",
        "marked withdrawn, with who",
    )
    note = await text_of(page, f"{row} .withdrawn-note")
    assert note.startswith("Withdrawn ") and note.endswith(" by publisher")
    struck = await page.evaluate(
        f"getComputedStyle(document.querySelector('{row} .link-button')).textDecorationLine"
    )
    assert "line-through" in struck
    assert await cell(page, normal, "displayed") == "1"  # who was shown it is kept
    assert (await text_of(page, "#details-withdrawn")).startswith(note + ".")
    assert await page.evaluate("document.getElementById('revoke').hidden")
    assert await page.evaluate(
        "document.getElementById('details-title').classList.contains('struck')"
    )

    # the same in Chinese
    await page.evaluate(
        "(() => { const s = document.getElementById('language'); s.value = 'zh_CN';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    heads = await page.evaluate(
        "[...document.querySelectorAll('#sent-table thead th')].map((th) => th.textContent)"
    )
    assert heads[3:] == ["接收者", "已收到", "已显示", "已读", "已确认"]
    assert await cell(page, normal, "acknowledged") == "无需确认"
    assert (await text_of(page, f"{row} .withdrawn-note")).startswith("publisher 于 ")
    assert await text_of(page, "#details-summary") == "1 人中 1 人已收到，1 人已显示，0 人已读"
    no_policy_violations(page)


async def test_screenshots_of_compose_and_reach(
    companion_server: EmbeddedServer, browser_page: Page, tmp_path: Path
) -> None:
    """Realistic views for the docs: an urgent draft for a group of five with its previews,
    and the reach of an announcement some of them received, were shown, read and
    acknowledged, below a withdrawn one."""
    server, page = companion_server, browser_page
    for name in ["chen.wei", "dana.kim", "erik.berg", "fatima.ali"]:
        await asyncio.to_thread(server.add_user, name, DEMO_PASSWORD, ["it"])
    printer = await asyncio.to_thread(
        server.publish,
        "Printer on floor 2 is back",
        "Thanks for your patience.",
        audience={"groups": ["it"]},
        priority="low",
    )
    canteen = await asyncio.to_thread(
        server.publish,
        "Canteen closed on Thursday",
        "Sorry: it is Friday, not Thursday.",
        audience={"groups": ["it"]},
    )
    ann_id = await asyncio.to_thread(
        server.publish,
        "Server room access changes on Monday",
        "From Monday the server room opens with your badge only. Keys will no longer work.",
        audience={"groups": ["it"]},
        priority="urgent",
        url="https://intranet.example.org/it/access",
    )
    shots = screenshot_dir(tmp_path)
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for name, kinds in [
            (
                "alice",
                {
                    "displayed": [ann_id, printer, canteen],
                    "read": [ann_id, canteen],
                    "acknowledged": [ann_id],
                },
            ),
            ("chen.wei", {"displayed": [ann_id, printer, canteen], "read": [ann_id]}),
            ("dana.kim", {"displayed": [ann_id, printer], "delivered": [canteen]}),
            # do not disturb held the toast back: delivered, not shown yet
            ("erik.berg", {"delivered": [ann_id, printer, canteen]}),
        ]:
            await post_receipts(http, server, await token_of(http, server, name), **kinds)
        assert await asyncio.to_thread(server.revoke, canteen)
        async with listening_client(http, server, "dana.kim"):
            await log_in_as_publisher(page, server)

            # compose: an urgent draft for group it, with both previews
            await type_into(page, "f-title", "Fire drill today at 15:00")
            await type_into(
                page,
                "f-body",
                "The alarm will sound at 15:00. Leave by the nearest stairs and meet in"
                " the car park.\nDo not use the lifts.",
            )
            await type_into(page, "f-link", "https://intranet.example.org/safety/drill")
            await page.evaluate(
                "(() => { const s = document.getElementById('f-priority'); s.value = 'urgent';"
                " s.dispatchEvent(new Event('change', {bubbles: true}));"
                " const e = document.getElementById('f-expiry');"
                " const d = new Date(Date.now() + 86400000); d.setHours(18, 0, 0, 0);"
                " const p = (n) => String(n).padStart(2, '0');"
                " e.value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T18:00`;"
                " e.dispatchEvent(new Event('input', {bubbles: true})); })()"
            )
            await click(page, '#group-list input[value="it"]')
            count = await text_of(page, "#recipient-count")
            assert count.startswith("This will go to 5 people: alice, chen.wei"), count
            await screenshot(page, shots / "console-compose.png", height=1080)

            # reach
            await click(page, "#tab-sent")
            row = f'#sent-rows tr[data-id="{ann_id}"]'
            await page.wait_for(
                f"document.querySelector('{row} .n-delivered')?.dataset.value === '4'"
                f" && !!document.querySelector('#sent-rows tr[data-id=\"{canteen}\"].revoked')"
                f" && document.querySelector('#sent-rows tr[data-id=\"{printer}\"] .n-displayed')"
                "?.dataset.value === '3'",
                "the reach is shown",
            )
            await click(page, f"{row} .title-cell button")
            await page.wait_for(
                "!!document.querySelector('#people-rows .dot.on')", "dana.kim is connected"
            )
            assert await text_of(page, "#not-received") == "fatima.ali"
            assert await text_of(page, "#not-shown") == "erik.bergfatima.ali"
            await screenshot(page, shots / "console-reach.png", height=1100)
    no_policy_violations(page)


async def test_the_console_outlives_its_access_token(
    server_factory: ServerFactory, server_clock: ManualClock, browser_page: Page
) -> None:
    """An officer keeps the page open for hours: when the access token expires the live feed
    ends with ``event: close``; the page refreshes its login in memory and listens again."""
    server = server_factory(demo_users=True, ping_interval=0.5, clock=server_clock)
    page = browser_page
    await log_in_as_publisher(page, server)
    await click(page, "#tab-sent")
    await page.wait_for(
        "document.body.dataset.liveOpened === '1'"
        " && document.getElementById('live').dataset.live === 'on'",
        "live is on",
    )

    server_clock.advance(16 * 60)  # past the 15 minutes of the access token
    ann_id = await asyncio.to_thread(
        server.publish, "After the break", "Still here.", audience={"users": ["bob"]}
    )
    row = f'#sent-rows tr[data-id="{ann_id}"]'
    # the reconnect catches up with the list; then a receipt reaches the page live again
    await page.wait_for(f"!!document.querySelector('{row}')", "the list caught up")
    await page.wait_for(
        "document.body.dataset.liveOpened === '2'"
        " && document.getElementById('live').dataset.live === 'on'",
        "listening again",
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WAIT)) as http:
        await post_receipts(http, server, await token_of(http, server, "bob"), delivered=[ann_id])
    await page.wait_for(
        f"document.querySelector('{row} .n-delivered')?.dataset.value === '1'",
        "the receipt arrived live with the refreshed login",
    )
    assert await page.evaluate("document.body.dataset.view") == "app"
    no_policy_violations(page)
