"""The organisation's directory in the publisher console, in headless Chromium against the
embedded server reading a real OpenLDAP (``slapd``, :mod:`tests.fixtures.ldap`): the compose
form says when the directory was read and how many people it holds, and **Sync now** reads it
again (``POST /directory/sync``), with its answer or the server's reason in words; a server
without a directory shows none of it.

Screenshot: ``TN_CONSOLE_SCREENSHOTS=docs/screenshots`` writes ``console-directory.png`` there
(otherwise into the test's temporary folder).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

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
from tests.fixtures.ldap import Slapd, group_dn, person_dn
from tests.fixtures.server import ServerFactory
from tests.web.test_console import log_in_as_publisher, press
from tests.web.test_console_tools import api

pytestmark = [pytest.mark.browser]

NEWCOMER = "zoe.new"


def _newcomer_in_platform() -> str:
    """LDIF: a new person, added to dept-platform as IT would."""
    return (
        f"dn: {person_dn(NEWCOMER)}\nchangetype: add\nobjectClass: inetOrgPerson\n"
        f"uid: {NEWCOMER}\ncn: Zoé New\nsn: New\ndisplayName: Zoé New\n\n"
        f"dn: {group_dn('dept-platform')}\nchangetype: modify\nadd: member\n"
        f"member: {person_dn(NEWCOMER)}\n"
    )


async def _group_count(page: Page, name: str) -> str:
    return await text_of(page, f'#group-list input[value="{name}"] ~ .muted')


async def _status_people(page: Page) -> int:
    return int(
        await page.evaluate("document.getElementById('directory-sync-status').dataset.people")
    )


async def _expected_status(page: Page, sync: dict[str, Any]) -> str:
    """The status line for ``sync`` (GET /directory's), the time in the console's format."""
    when = await page.evaluate(
        "new Intl.DateTimeFormat('en', { dateStyle: 'medium', timeStyle: 'short' })"
        f".format(new Date({js(sync['synced_at'])} * 1000))"
    )
    return f"Directory: synced {when}, {sync['people']} people"


async def test_sync_now_reads_the_directory_again(
    server_factory: ServerFactory, slapd_directory: Slapd, browser_page: Page, tmp_path: Path
) -> None:
    server = server_factory(ldap=slapd_directory.settings(), demo_users=True)
    await asyncio.to_thread(server.sync_directory)
    page = browser_page
    await log_in_as_publisher(page, server)

    # the compose form says when the directory was read, and how many people it holds
    await page.wait_for("document.body.dataset.directorySync === 'synced'", "the sync status")
    assert not await page.evaluate("document.getElementById('directory-sync').hidden")
    before = (await api(server, "GET", "/directory"))["sync"]
    people = before["people"]
    assert people == 300  # the generated organisation, less alice (a local account's name)
    assert await text_of(page, "#directory-sync-status") == await _expected_status(page, before)
    assert await _status_people(page) == people
    assert await _group_count(page, "dept-platform") == "25 members"
    assert await text_of(page, "#directory-sync-now") == "Sync now"
    assert await page.evaluate("document.getElementById('directory-sync-result').hidden")

    # IT adds someone; Sync now (from the keyboard) reads them in: the counts follow
    await asyncio.to_thread(slapd_directory.modify, _newcomer_in_platform())
    await page.evaluate("document.getElementById('directory-sync-now').focus()")
    await press(page, "Enter", "Enter", 13, text="\r")
    await page.wait_for(
        "Number(document.body.dataset.directorySyncs || 0) === 1", "the directory was synced"
    )
    after = (await api(server, "GET", "/directory"))["sync"]
    assert after["people"] == people + 1
    assert await text_of(page, "#directory-sync-result") == (
        f"The directory was read: {people + 1} people in {after['groups']} groups."
    )
    assert await page.evaluate("document.getElementById('directory-sync-result').dataset.kind") == (
        "ok"
    )
    assert await text_of(page, "#directory-sync-status") == await _expected_status(page, after)
    assert await _group_count(page, "dept-platform") == "26 members"
    # the focus stays on the button, which says Sync now again
    assert await page.evaluate("document.activeElement.id") == "directory-sync-now"
    assert await text_of(page, "#directory-sync-now") == "Sync now"
    await type_into(page, "f-title", "New starters: welcome breakfast on Monday")
    await type_into(page, "f-body", "Coffee and croissants at 9:00 in the canteen, floor 1.")
    await screenshot(page, screenshot_dir(tmp_path) / "console-directory.png", height=1160)

    # the newcomer can be picked by name at once
    await click(page, 'input[name="audience"][value="users"]')
    await page.wait_for(
        f"!!document.querySelector('#user-list input[value={js(NEWCOMER)}]')", "the newcomer"
    )

    # the directory is down: the server's reason in words, the last good sync kept
    await asyncio.to_thread(slapd_directory.stop)
    await click(page, "#directory-sync-now")
    await page.wait_for(
        "Number(document.body.dataset.directorySyncs || 0) === 2", "the sync was tried"
    )
    failed = await text_of(page, "#directory-sync-result")
    assert failed.startswith("The directory could not be read: "), failed
    assert "last read is still used" in failed
    assert await page.evaluate("document.getElementById('directory-sync-result').dataset.kind") == (
        "error"
    )
    problem = await text_of(page, "#directory-sync-problem")
    assert problem.startswith("The last attempt to read it ("), problem
    assert await text_of(page, "#directory-sync-status") == await _expected_status(page, after)

    # in Chinese
    await page.evaluate(
        "(() => { const s = document.getElementById('language'); s.value = 'zh_CN';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert await text_of(page, "#directory-sync-now") == "立即同步"
    zh = await text_of(page, "#directory-sync-status")
    assert zh.startswith("目录：已于 ") and zh.endswith(f" 同步，共 {people + 1} 人"), zh
    assert (await text_of(page, "#directory-sync-result")).startswith("无法读取目录：")
    no_policy_violations(page)


async def test_no_directory_no_sync(companion_server: EmbeddedServer, browser_page: Page) -> None:
    page = browser_page
    await log_in_as_publisher(page, companion_server)
    assert await page.evaluate("document.getElementById('directory-sync').hidden")
    assert await page.evaluate("document.body.dataset.directorySync") == ""
    no_policy_violations(page)
