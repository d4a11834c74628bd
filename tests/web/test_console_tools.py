"""The officer's tools in the publisher console (issue 25; ``app/server/console/tools.js``) in
headless Chromium against the real server: a draft saved, reopened and sent; a template saved
and used; an announcement scheduled, listed, cancelled, and another one sent by the server at
its time; the audit log with its CSV; the sent list searched and paged through 1,500
announcements.

Screenshots: ``TN_CONSOLE_SCREENSHOTS=docs/screenshots`` writes ``console-drafts.png``,
``console-scheduled.png`` and ``console-audit.png`` there (otherwise into the test's temporary
folder).
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.server.embedded import EmbeddedServer
from tests.fixtures.browser import Page
from tests.fixtures.console_page import (
    click,
    js,
    no_policy_violations,
    screenshot,
    screenshot_dir,
    text_of,
    type_into,
)
from tests.fixtures.server import ManualClock, ServerFactory
from tests.web.test_console import (
    HTML_SINKS,
    allow_downloads,
    downloaded,
    log_in_as_publisher,
    token_of,
)

pytestmark = [pytest.mark.browser]

WAIT = 15.0


async def set_local_time(page: Page, element_id: str, when: datetime) -> None:
    """A datetime-local field set as a person picks a time (an input event)."""
    value = when.strftime("%Y-%m-%dT%H:%M")
    await page.evaluate(
        f"(() => {{ const e = document.getElementById({js(element_id)}); e.value = {js(value)};"
        " e.dispatchEvent(new Event('input', { bubbles: true })); })()"
    )


async def counter(page: Page, name: str) -> int:
    return int(await page.evaluate(f"Number(document.body.dataset.{name} || 0)"))


async def wait_loaded(page: Page, name: str, before: int, what: str) -> None:
    await page.wait_for(f"Number(document.body.dataset.{name} || 0) > {before}", what)


async def rows(page: Page, selector: str) -> list[str]:
    found = await page.evaluate(
        f"[...document.querySelectorAll({js(selector)})].map((r) => r.dataset.id)"
    )
    return [str(x) for x in found]


async def api(
    server: EmbeddedServer, method: str, path: str, body: Any = None, user: str = "publisher"
) -> Any:
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        headers = {"Authorization": f"Bearer {await token_of(http, server, user)}"}
        async with http.request(method, server.url + path, json=body, headers=headers) as reply:
            assert reply.status < 300, await reply.text()
            if reply.content_type == "application/json":
                return await reply.json()
            return await reply.text()


async def test_the_tools_are_served_as_the_page_is(companion_server: EmbeddedServer) -> None:
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for name in ("tools.js", "tools_words.js"):
            async with http.get(f"{companion_server.url}/console/{name}") as reply:
                assert reply.status == 200
                assert reply.headers["Content-Type"] == "text/javascript; charset=utf-8"
                text = await reply.text()
            for sink in HTML_SINKS:
                assert sink not in text, (name, sink)


async def test_a_draft_is_saved_reopened_and_sent_and_a_template_starts_one(
    companion_server: EmbeddedServer, browser_page: Page, tmp_path: Path
) -> None:
    server, page = companion_server, browser_page
    await log_in_as_publisher(page, server)
    loads = await counter(page, "formsLoads")

    # a draft: saved, the form cleared, reopened from the list with its audience
    await type_into(page, "f-title", "Boiler maintenance")
    await type_into(page, "f-body", "No hot water on Tuesday morning.")
    await click(page, '#group-list input[value="it"]')
    await click(page, "#save-draft")
    draft_id = await page.wait_for("document.body.dataset.savedDraft", "the draft was saved")
    assert "Draft “Boiler maintenance” saved." in await text_of(page, "#flash")
    assert "Editing the draft" in await text_of(page, "#draft-status")
    await wait_loaded(page, "formsLoads", loads, "the drafts were listed again")
    await click(page, "#clear")
    await page.wait_for("document.getElementById('f-title').value === ''", "the form is clear")
    assert await page.evaluate("document.body.dataset.openDraft") == ""
    await click(page, "#tab-saved")
    await page.wait_for(
        f"!!document.querySelector('#draft-list li[data-id=\"{draft_id}\"]')", "the draft listed"
    )
    await click(page, f'#draft-list li[data-id="{draft_id}"] [data-action="open"]')
    await page.wait_for(
        "document.getElementById('f-title').value === 'Boiler maintenance'", "the draft reopened"
    )
    assert await page.evaluate("document.querySelector('#group-list input[value=\"it\"]').checked")
    assert await text_of(page, "#recipient-count") == "This will go to 1 person: alice."
    # changed and saved again: the same draft
    await type_into(page, "f-title", "Boiler maintenance on Tuesday")
    await click(page, "#save-draft")
    await page.wait_for(
        "document.getElementById('flash').textContent.includes('on Tuesday')", "saved again"
    )
    drafts = await api(server, "GET", "/drafts")
    assert [(d["id"], d["content"]["title"]) for d in drafts] == [
        (draft_id, "Boiler maintenance on Tuesday")
    ]
    assert drafts[0]["content"]["audience"] == {"groups": ["it"]}
    # sent: the announcement goes out and the draft is done with
    await click(page, "#send")
    await page.wait_for("document.body.dataset.lastSent", "the draft was sent")
    await page.wait_for("document.body.dataset.openDraft === ''", "no draft is open")
    assert await api(server, "GET", "/drafts") == []

    # a template: saved from the compose form under a name, then starts a new announcement
    await type_into(page, "f-title", "Outage: e-mail")
    await type_into(page, "f-body", "E-mail is down. We are on it; next update within an hour.")
    await page.evaluate("document.getElementById('f-priority').value = 'high'")
    await click(page, 'input[name="audience"][value="all"]')
    # another draft of this publisher's, so that the screenshot shows both lists
    await api(
        server,
        "POST",
        "/drafts",
        {"content": {"title": "Lift 3 out of service", "body": "Until Friday; use lift 2."}},
    )
    await click(page, "#tab-saved")
    await type_into(page, "template-name", "Outage")
    await click(page, "#save-template")
    template_id = await page.wait_for("document.body.dataset.savedTemplate", "template saved")
    await page.wait_for(
        f"!!document.querySelector('#template-list li[data-id=\"{template_id}\"]')"
        " && document.querySelectorAll('#draft-list li[data-id]').length === 1",
        "the draft and the template listed",
    )
    await screenshot(page, screenshot_dir(tmp_path) / "console-drafts.png", height=560)
    await click(page, "#tab-compose")
    await click(page, "#clear")
    await page.wait_for("document.getElementById('f-title').value === ''", "the form is clear")
    await page.wait_for(
        f"!!document.querySelector('#f-template option[value=\"{template_id}\"]')",
        "the template is offered",
    )
    await page.evaluate(
        f"(() => {{ const s = document.getElementById('f-template'); s.value = {js(template_id)};"
        " s.dispatchEvent(new Event('change', { bubbles: true })); })()"
    )
    await page.wait_for(
        "document.getElementById('f-title').value === 'Outage: e-mail'", "the template filled it"
    )
    assert await page.evaluate("document.getElementById('f-priority').value") == "high"
    assert await page.evaluate(
        "document.querySelector('input[name=\"audience\"]:checked').value"
    ) == ("all")
    assert await text_of(page, "#flash") == "Started from the template “Outage”."
    assert await text_of(page, "#pt-title") == "Outage: e-mail"  # the preview follows
    no_policy_violations(page)


async def test_schedule_cancel_and_sent_at_its_time_then_the_audit_log(
    server_factory: ServerFactory, browser_page: Page, tmp_path: Path
) -> None:
    clock = ManualClock()
    server = server_factory(demo_users=True, ping_interval=0.5, clock=clock, schedule_interval=3600)
    page = browser_page
    for name in ["comms.officer", "duty.manager"]:
        await asyncio.to_thread(server.add_user, name, "demo", (), True)
    await log_in_as_publisher(page, server)

    # two scheduled from the form: the button says so, the answer is "scheduled for"
    later = datetime.now() + timedelta(hours=2)
    for title in ("Fire drill on Thursday at 10:00", "Wrong date: fire drill"):
        await type_into(page, "f-title", title)
        await type_into(page, "f-body", "Leave by the nearest exit; meet at the car park.")
        await click(page, '#group-list input[value="it"]')
        await set_local_time(page, "f-send-at", later)
        assert await text_of(page, "#send") == "Schedule announcement"
        before = await page.evaluate("document.body.dataset.lastScheduled || ''")
        await click(page, "#send")
        await page.wait_for(
            f"(document.body.dataset.lastScheduled || '') !== {js(before)}", "it was scheduled"
        )
        assert (await text_of(page, "#flash")).startswith("Scheduled for ")
        assert await text_of(page, "#send") == "Send announcement"
    schedules = await api(server, "GET", "/scheduled")
    assert [s["announcement"]["title"] for s in schedules] == [
        "Fire drill on Thursday at 10:00",
        "Wrong date: fire drill",
    ]
    assert all(s["announcement"]["audience"] == {"groups": ["it"]} for s in schedules)
    keep, drop = schedules[0]["id"], schedules[1]["id"]

    # listed under Scheduled; one cancelled after a confirm
    await click(page, "#tab-scheduled")
    await page.wait_for(
        "document.querySelectorAll('#scheduled-rows tr').length === 2", "both are listed"
    )
    assert "Groups: it" in await text_of(page, f'#scheduled-rows tr[data-id="{keep}"]')
    await screenshot(page, screenshot_dir(tmp_path) / "console-scheduled.png", height=560)
    await click(page, f'#scheduled-rows tr[data-id="{drop}"] [data-action="cancel"]')
    await page.wait_for("document.getElementById('confirm').open", "the confirm opens")
    assert "Wrong date: fire drill" in await text_of(page, "#confirm-text")
    await click(page, "#confirm-ok")
    await page.wait_for(
        f"document.body.dataset.cancelledSchedule === {js(drop)}", "it was cancelled"
    )
    await page.wait_for(
        "document.querySelectorAll('#scheduled-rows tr').length === 1", "one is left"
    )

    # corrections and reminders come from the API (their console views are another's)
    sent_now = await asyncio.to_thread(
        server.publish, "Canteen closed on Thursday", "Bring lunch.", audience={"groups": ["it"]}
    )
    await api(
        server,
        "PATCH",
        f"/announcements/{sent_now}",
        {"title": "Canteen closed on Friday"},
        "comms.officer",
    )
    await api(
        server, "POST", f"/announcements/{sent_now}/remind", {"who": "unread"}, "duty.manager"
    )
    await api(server, "DELETE", f"/announcements/{sent_now}", None, "duty.manager")
    # its time comes (the server's clock): the server sends it, whoever has the page open
    clock.advance(3 * 3600)
    (published,) = await asyncio.to_thread(server.run_schedule)

    # the audit log: newest first, in words, with the announcement and the schedule
    await click(page, "#tab-audit")
    await page.wait_for(
        "document.querySelectorAll('#audit-rows tr').length === 8", "the audit log shows"
    )
    actions = await page.evaluate(
        "[...document.querySelectorAll('#audit-rows tr')].map((r) =>"
        " [r.dataset.action, r.children[1].textContent, r.children[2].textContent])"
    )
    assert actions == [
        ["published", "publisher", "Published"],
        ["revoked", "duty.manager", "Revoked"],
        ["reminded", "duty.manager", "Reminded"],
        ["corrected", "comms.officer", "Corrected"],
        ["published", "publisher", "Published"],
        ["cancelled", "publisher", "Cancelled"],
        ["scheduled", "publisher", "Scheduled"],
        ["scheduled", "publisher", "Scheduled"],
    ]
    # a time the server wrote in a detail ("{ISO} · {title}") reads as the console's other times
    entries = (await api(server, "GET", "/audit"))["entries"]
    details = await page.evaluate(
        "[...document.querySelectorAll('#audit-rows tr')].map((r) => {"
        " const d = r.querySelector('td.detail'); const t = d.querySelector('time');"
        " return [d.textContent, t ? t.getAttribute('datetime') : null]; })"
    )
    assert [d[0] for d in details[:5]] == [e["detail"] for e in entries[:5]]  # titles, counts
    assert sum(1 for _, datetime_attr in details if datetime_attr) == 3  # cancelled, scheduled
    for entry, (shown, datetime_attr) in zip(entries, details, strict=True):
        if entry["action"] not in ("scheduled", "cancelled"):
            assert datetime_attr is None
            continue
        iso, title = entry["detail"].split(" · ", 1)
        assert iso.endswith("Z") and "T" in iso  # the server writes ISO 8601 UTC
        local = await page.evaluate(
            "new Intl.DateTimeFormat('en', { dateStyle: 'short', timeStyle: 'short' })"
            f".format(new Date({js(iso)}))"
        )
        assert datetime_attr == iso
        assert shown == f"{local} · {title}", shown
        assert iso not in shown
    first = await page.evaluate("document.querySelector('#audit-rows tr').children[3].textContent")
    assert first == f"No. {published} · schedule {keep}"
    assert await page.evaluate("document.getElementById('audit-older').disabled")

    # the CSV: a real download of what /audit.csv answers
    downloads = tmp_path / "downloads"
    await allow_downloads(page, downloads)
    await click(page, "#audit-export")
    name = await page.wait_for("document.body.dataset.auditExported", "the CSV was exported")
    csv_text = await downloaded(downloads, name)
    assert csv_text == await api(server, "GET", "/audit.csv")
    assert len(csv_text.splitlines()) == 9

    await screenshot(page, screenshot_dir(tmp_path) / "console-audit.png", height=760)

    # in Chinese
    await page.evaluate(
        "(() => { const s = document.getElementById('language'); s.value = 'zh_CN';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert await text_of(page, "#tab-audit") == "操作记录"
    assert await text_of(page, '#audit-rows tr[data-action="revoked"] .action') == "撤回"
    no_policy_violations(page)


async def test_the_sent_list_searches_and_pages_through_1500(
    server_factory: ServerFactory, browser_page: Page
) -> None:
    server, page = server_factory(demo_users=True, ping_interval=0.5), browser_page

    def publish_many() -> list[str]:
        return [
            server.publish(
                f"Gas leak drill {n}" if n % 100 == 7 else f"Notice {n}",
                f"Body of notice {n}",
                audience={"groups": ["it" if n % 2 else "hr"]},
            )
            for n in range(1500)
        ]

    ids = await asyncio.to_thread(publish_many)
    await log_in_as_publisher(page, server)
    loads = await counter(page, "sentLoads")
    await click(page, "#tab-sent")
    await wait_loaded(page, "sentLoads", loads, "the sent list loaded")
    await page.wait_for("document.querySelectorAll('#sent-rows tr').length === 50", "a page of 50")
    assert await rows(page, "#sent-rows tr") == ids[::-1][:50]
    assert await page.evaluate("document.getElementById('sent-newer').disabled")

    # older, page by page, to the very first: nothing skipped, nothing twice, each page quick
    seen = await rows(page, "#sent-rows tr")
    slowest = 0.0
    while not await page.evaluate("document.getElementById('sent-older').disabled"):
        loads = await counter(page, "sentLoads")
        started = time.monotonic()
        await click(page, "#sent-older")
        await wait_loaded(page, "sentLoads", loads, "the older page loaded")
        await page.wait_for(
            f"document.querySelector('#sent-rows tr')?.dataset.id !== {js(seen[-50])}",
            "the older rows show",
        )
        slowest = max(slowest, time.monotonic() - started)
        seen += await rows(page, "#sent-rows tr")
    assert seen == ids[::-1]
    assert slowest < 5.0, slowest
    # and newer again
    loads = await counter(page, "sentLoads")
    await click(page, "#sent-newer")
    await wait_loaded(page, "sentLoads", loads, "the newer page loaded")
    await page.wait_for(
        f"document.querySelector('#sent-rows tr')?.dataset.id === {js(ids[99])}",
        "the page after the first",
    )

    # search: 15 of 1,500, case-insensitive, then back to everything
    loads = await counter(page, "sentLoads")
    await type_into(page, "sent-search", "GAS LEAK")
    await click(page, "#sent-search-go")
    await wait_loaded(page, "sentLoads", loads, "the search answered")
    await page.wait_for("document.querySelectorAll('#sent-rows tr').length === 15", "15 match")
    matches = [i for n, i in enumerate(ids) if n % 100 == 7]
    assert await rows(page, "#sent-rows tr") == matches[::-1]
    assert "matching “GAS LEAK”" in await text_of(page, "#sent-page-info")
    assert json.loads(await page.evaluate("document.body.dataset.sentPage"))["q"] == "GAS LEAK"
    loads = await counter(page, "sentLoads")
    await type_into(page, "sent-search", "no such words")
    await click(page, "#sent-search-go")
    await wait_loaded(page, "sentLoads", loads, "the empty search answered")
    await page.wait_for("!document.getElementById('sent-empty').hidden", "nothing matches")
    assert await text_of(page, "#sent-empty") == "No sent announcement matches “no such words”."
    no_policy_violations(page)
