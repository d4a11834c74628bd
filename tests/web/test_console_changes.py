"""Correct and Remind in the publisher console (issue 25), in headless Chromium against the
embedded server: the correction form comes prefilled and asks for a confirmation; Remind says
how many it would reach before it sends; both in English and in Chinese, server text as text.

Screenshots: ``TN_CONSOLE_SCREENSHOTS=docs/screenshots`` writes ``console-correct.png``,
``console-remind.png`` and ``console-reach-changes.png`` there (otherwise into the test's
temporary folder).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

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
from tests.fixtures.ldap import Slapd, group_dn, person_dn
from tests.fixtures.server import DEMO_PASSWORD, ServerFactory
from tests.web.test_console import WAIT, log_in_as_publisher, post_receipts, token_of


async def _reach(http: aiohttp.ClientSession, server: EmbeddedServer, ann_id: str) -> dict:
    token = await token_of(http, server, "publisher")
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{server.url}/announcements/{ann_id}/reach", headers=headers) as reply:
        assert reply.status == 200, await reply.text()
        return dict(await reply.json())


async def _listed(http: aiohttp.ClientSession, server: EmbeddedServer, ann_id: str) -> dict:
    """The announcement as GET /announcements lists it to a publisher."""
    token = await token_of(http, server, "publisher")
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{server.url}/announcements", headers=headers) as reply:
        assert reply.status == 200, await reply.text()
        (item,) = [a for a in await reply.json() if a["id"] == ann_id]
        return dict(item)


async def _local_time(page: Page, iso: str, *, short: bool = False, lang: str = "en") -> str:
    """``iso`` as the console writes a time (formatTime in console.js)."""
    style = "short" if short else "medium"
    return str(
        await page.evaluate(
            f"new Intl.DateTimeFormat({js(lang)}, {{ dateStyle: {js(style)}, timeStyle: 'short' }})"
            f".format(new Date({js(iso)}))"
        )
    )


async def _reminded_cells(page: Page) -> dict[str, str]:
    """The Reminded column of the reach's table, by user."""
    found = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#people-rows tr')]"
        ".map((r) => [r.dataset.user, r.querySelector('td.reminded').textContent]))"
    )
    return {str(k): str(v) for k, v in found.items()}


async def test_correct_and_remind_from_a_sent_announcement(
    companion_server: EmbeddedServer, browser_page: Page
) -> None:
    server, page = companion_server, browser_page
    ann = await asyncio.to_thread(
        server.publish,
        "Fire drill at 10",
        "Meet in the yard.",
        audience={"groups": ["it", "hr"]},  # alice and bob
        url="https://example.org/drill",
    )
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        alice = await token_of(http, server, "alice")
        await post_receipts(http, server, alice, read=[ann])  # bob has not read it

        await log_in_as_publisher(page, server)
        await click(page, "#tab-sent")
        await page.wait_for(
            f"document.querySelector('#sent-rows tr[data-id={js(ann)}] .n-read')"
            "?.dataset.value === '1'",
            "the reach is shown",
        )
        await click(page, f"#sent-rows tr[data-id={js(ann)}] .title-cell button")
        # Remind says whom it would reach before anything is sent
        await page.wait_for(
            "document.getElementById('remind').textContent === 'Remind (1 not read)…'",
            "the count on Remind",
        )

        # not corrected yet: no Updated line; nobody reminded: the Reminded column is empty
        assert await page.evaluate("document.getElementById('details-updated').hidden")
        assert await page.evaluate(
            "[...document.querySelectorAll('table.people thead th')]"
            ".filter((th) => !th.hidden).map((th) => th.textContent)"
        ) == ["Person", "Groups", "Received", "Shown", "Read", "Reminded", "Connected now"]
        assert await _reminded_cells(page) == {"alice": "", "bob": ""}

        # Correct: the form holds the announcement as sent; a confirmation before it goes
        await click(page, "#correct")
        await page.wait_for("document.getElementById('correct-dialog').open", "the form")
        prefilled = await page.evaluate(
            "['c-title', 'c-body', 'c-link', 'c-priority']"
            ".map((id) => document.getElementById(id).value)"
        )
        assert prefilled == [
            "Fire drill at 10",
            "Meet in the yard.",
            "https://example.org/drill",
            "normal",
        ]
        hostile = "<b>Fire drill</b> at 11 <img src=x onerror=alert(1)>"
        await type_into(page, "c-title", hostile)
        await click(page, "#correct-send")
        await page.wait_for("document.getElementById('confirm').open", "the confirmation")
        assert "Fire drill at 10" in await text_of(page, "#confirm-text")
        await click(page, "#confirm-ok")
        await page.wait_for(
            f"document.body.dataset.corrected === {js(ann + ':1')}",
            "the correction was sent",
            unless="!document.getElementById('correct-error').hidden",
        )
        assert not await page.evaluate("document.getElementById('correct-dialog').open")
        await page.wait_for(
            f"document.getElementById('details-title').textContent === {js(hostile)}",
            "the corrected title, as text",
        )
        assert (
            await page.evaluate("document.querySelectorAll('#details img, #sent img').length") == 0
        )
        reach = await _reach(http, server, ann)
        assert reach["read"] == 1  # read before the correction: still read
        # the reach's header says when it was corrected, and which revision it is
        listed = await _listed(http, server, ann)
        assert listed["revision"] == 1
        updated = f"Updated {await _local_time(page, listed['updated_at'])} (revision 1)"
        await page.wait_for(
            f"document.getElementById('details-updated').textContent === {js(updated)}",
            "the Updated line",
        )
        assert not await page.evaluate("document.getElementById('details-updated').hidden")

        # nothing changed: said, nothing sent
        await click(page, "#correct")
        await page.wait_for("document.getElementById('correct-dialog').open", "the form again")
        await click(page, "#correct-send")
        await page.wait_for(
            "!document.getElementById('correct-error').hidden", "nothing to correct"
        )
        assert "Nothing was changed" in await text_of(page, "#correct-error")
        await click(page, "#correct-cancel")

        # Remind: the count again, in the confirmation; then only bob is reminded
        await click(page, "#remind")
        await page.wait_for("document.getElementById('confirm').open", "the confirmation")
        assert "The 1 people who have not read" in await text_of(page, "#confirm-text")
        await click(page, "#confirm-ok")
        await page.wait_for(
            f"document.body.dataset.reminded === {js(ann + ':1')}", "the reminder was sent"
        )
        rows = {r["user_id"]: r for r in (await _reach(http, server, ann))["users"]}
        assert (rows["bob"]["reminders"], rows["alice"]["reminders"]) == (1, 0)
        # the Reminded column: how many, and the last one in the table's time format
        await page.wait_for(
            "document.querySelector('#people-rows tr[data-user=\"bob\"] td.reminded')"
            "?.dataset.reminders === '1'",
            "bob's reminder in the reach",
        )
        bob_time = await _local_time(page, rows["bob"]["reminded_at"], short=True)
        assert await _reminded_cells(page) == {"alice": "", "bob": f"1× · {bob_time}"}
        # a second reminder: the count, and the last time
        second = await asyncio.to_thread(server.remind, ann)
        assert second == 1
        await click(page, "#refresh")
        await page.wait_for(
            "document.querySelector('#people-rows tr[data-user=\"bob\"] td.reminded')"
            "?.dataset.reminders === '2'",
            "bob's second reminder",
        )
        rows = {r["user_id"]: r for r in (await _reach(http, server, ann))["users"]}
        bob_time = await _local_time(page, rows["bob"]["reminded_at"], short=True)
        assert await _reminded_cells(page) == {"alice": "", "bob": f"2× · last {bob_time}"}
        # the CSV has them too
        token = await token_of(http, server, "publisher")
        async with http.get(
            f"{server.url}/announcements/{ann}/reach.csv",
            headers={"Authorization": f"Bearer {token}"},
        ) as reply:
            csv_rows = {
                line.split(",")[0]: line.split(",") for line in (await reply.text()).splitlines()
            }
        assert csv_rows["user_id"][-2:] == ["reminded_at", "reminders"]
        assert csv_rows["bob"][-2:] == [rows["bob"]["reminded_at"], "2"]
        assert csv_rows["alice"][-2:] == ["", "0"]
        flash = await text_of(page, "#flash")
        assert flash.startswith("1 reminded of") and json.dumps(hostile)[1:-1] in json.dumps(flash)

    # the same in Chinese
    await page.evaluate(
        "(() => { const s = document.getElementById('language'); s.value = 'zh_CN';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    await page.wait_for(
        "document.getElementById('remind').textContent === '提醒（1 人未读）…'", "Chinese Remind"
    )
    assert await text_of(page, "#correct") == "更正…"
    assert await text_of(page, "#correct-heading") == "更正这条通知"
    zh_time = await _local_time(page, listed["updated_at"], lang="zh-CN")
    assert await text_of(page, "#details-updated") == f"更新于 {zh_time}（第 1 版）"
    assert (await _reminded_cells(page))["bob"].startswith("2 次 · 最近一次 ")
    no_policy_violations(page)


def _floor_wardens() -> str:
    """LDIF adding two people of the organisation's directory, who never signed in, and their
    group ``floor-wardens``."""
    people = {"ines.moreau": ("Inès", "Moreau"), "tomas.novak": ("Tomáš", "Novák")}
    blocks = [
        f"dn: {person_dn(uid)}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: {uid}\n"
        f"cn: {given} {family}\nsn: {family}\ndisplayName: {given} {family}"
        for uid, (given, family) in people.items()
    ]
    members = "".join(f"\nmember: {person_dn(uid)}" for uid in people)
    blocks.append(
        f"dn: {group_dn('floor-wardens')}\nchangetype: add\nobjectClass: groupOfNames\n"
        f"cn: floor-wardens{members}"
    )
    return "\n\n".join(blocks) + "\n"


async def test_screenshots_of_correct_remind_and_the_reach_after_them(
    server_factory: ServerFactory, slapd_directory: Slapd, browser_page: Page, tmp_path: Path
) -> None:
    """Realistic views for the docs, on a server reading the organisation's directory (slapd):
    the correction form as sent, the reminder's confirmation with its count, and the reach once
    corrected and reminded, with the directory's floor wardens who never connected."""
    await asyncio.to_thread(slapd_directory.modify, _floor_wardens())
    server = server_factory(ldap=slapd_directory.settings(), demo_users=True)
    await asyncio.to_thread(server.sync_directory)
    page = browser_page
    for name in ["chen.wei", "dana.kim", "erik.berg"]:
        await asyncio.to_thread(server.add_user, name, DEMO_PASSWORD, ["it"])
    printer = await asyncio.to_thread(
        server.publish,
        "Printer on floor 2 is back",
        "Thanks for your patience.",
        audience={"groups": ["it"]},
        priority="low",
    )
    ann = await asyncio.to_thread(
        server.publish,
        "Fire drill on Thursday at 10:00",
        "The alarm will sound at 10:00. Leave by the nearest stairs and meet in the car park."
        " Floor wardens: collect your vests at reception.",
        audience={"groups": ["it", "floor-wardens"]},
        priority="high",
        url="https://intranet.example.org/safety/drill",
    )
    shots = screenshot_dir(tmp_path)
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for name, kinds in [
            ("alice", {"displayed": [ann, printer], "read": [ann, printer]}),
            ("chen.wei", {"displayed": [ann, printer], "read": [ann]}),
            ("dana.kim", {"displayed": [ann, printer]}),
            ("erik.berg", {"delivered": [ann, printer]}),
        ]:
            await post_receipts(http, server, await token_of(http, server, name), **kinds)
        reach = await _reach(http, server, ann)
        assert (reach["recipients"], reach["read"], reach["never_connected"]) == (6, 2, 2)

        await log_in_as_publisher(page, server)
        await click(page, "#tab-sent")
        row = f"#sent-rows tr[data-id={js(ann)}]"
        await page.wait_for(
            f"document.querySelector('{row} .n-read')?.dataset.value === '2'", "the reach is shown"
        )
        await click(page, f"{row} .title-cell button")
        await page.wait_for(
            "document.getElementById('remind').textContent === 'Remind (4 not read)…'"
            " && !!document.querySelector('#people-rows tr[data-user=\"ines.moreau\"]')",
            "the details with the count on Remind",
        )

        # Correct: the form as sent; the time is put right and sent after the confirmation
        await click(page, "#correct")
        await page.wait_for("document.getElementById('correct-dialog').open", "the form")
        assert await page.evaluate("document.getElementById('c-title').value") == (
            "Fire drill on Thursday at 10:00"
        )
        await screenshot(page, shots / "console-correct.png")
        await type_into(page, "c-title", "Fire drill on Thursday at 11:00")
        await type_into(
            page,
            "c-body",
            "The alarm will sound at 11:00, not 10:00. Leave by the nearest stairs and meet in"
            " the car park. Floor wardens: collect your vests at reception.",
        )
        await click(page, "#correct-send")
        await page.wait_for("document.getElementById('confirm').open", "the confirmation")
        await click(page, "#confirm-ok")
        await page.wait_for(
            f"document.body.dataset.corrected === {js(ann + ':1')}",
            "the correction was sent",
            unless="!document.getElementById('correct-error').hidden",
        )

        # Remind: the count in the confirmation, then those four are reminded
        await click(page, "#remind")
        await page.wait_for("document.getElementById('confirm').open", "the confirmation")
        assert "The 4 people who have not read" in await text_of(page, "#confirm-text")
        await screenshot(page, shots / "console-remind.png")
        await click(page, "#confirm-ok")
        await page.wait_for(
            f"document.body.dataset.reminded === {js(ann + ':4')}", "the reminder was sent"
        )
        reminded = {
            r["user_id"]: r["reminders"] for r in (await _reach(http, server, ann))["users"]
        }
        assert reminded == {
            "alice": 0,
            "chen.wei": 0,
            "dana.kim": 1,
            "erik.berg": 1,
            "ines.moreau": 1,
            "tomas.novak": 1,
        }

        # the reach after both: the corrected text, and the floor wardens who never connected
        await page.wait_for(
            "document.getElementById('details-title').textContent"
            " === 'Fire drill on Thursday at 11:00'",
            "the corrected title",
        )
        assert await text_of(page, "#not-received-title") == (
            "Not received yet (2; 2 never connected)"
        )
        assert (
            await text_of(page, '#people-rows tr[data-user="tomas.novak"] .dot')
            == "Never connected"
        )
        updated = await text_of(page, "#details-updated")
        assert updated.startswith("Updated ") and updated.endswith(" (revision 1)"), updated
        await page.wait_for(
            "document.querySelectorAll('#people-rows td.reminded[data-reminders=\"1\"]').length"
            " === 4",
            "the four reminded in the reach",
        )
        cells = await _reminded_cells(page)
        assert [u for u, text in cells.items() if text.startswith("1× · ")] == [
            "dana.kim",
            "erik.berg",
            "ines.moreau",
            "tomas.novak",
        ]
        assert cells["alice"] == cells["chen.wei"] == ""
        await screenshot(page, shots / "console-reach-changes.png", height=1200)
    no_policy_violations(page)
