"""Single sign-on in the publisher console (DESIGN.md "Single sign-on"): the page runs the
authorization code flow with PKCE itself against a real OpenID provider (npm ``oidc-provider``
on loopback, tests/fixtures/oidc.py), comes back to ``/console/`` and trades the ID token at
``POST /auth/oidc`` for the companion server's own login, in headless Chromium.

carol (group ``comms``, the publisher group) signs in and publishes; alice (staff) is told in
words that her account may not publish and whom to ask; a cancelled sign-in, a forged answer
with markup, a tampered ``state`` and a name owned by a local password account are each refused
in plain words; a server that takes no passwords shows no password form; and nothing of the
round trip (code, state, verifier, tokens) is left in the address, the history entry or web
storage once signed in.

Screenshot: set ``TN_CONSOLE_SCREENSHOTS=docs/screenshots`` to write ``console-sso.png``
there (otherwise into the test's temporary folder), as tests/web/test_console.py does.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest

from app.server.embedded import EmbeddedServer
from tests.fixtures.browser import POLL, Page
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
from tests.fixtures.oidc import (
    CONSOLE_CLIENT_ID,
    PUBLISHER_GROUP,
    OidcProvider,
    sign_in_on_page,
)
from tests.fixtures.server import ServerFactory

pytestmark = [pytest.mark.browser]

WAIT = 15.0  # seconds: the bound of every wait here


# ------------------------------------------------------------------ helpers


async def settled(page: Page, expression: str, what: str, *, unless: str | None = None) -> Any:
    """:meth:`Page.wait_for` across navigations (the console leaves for the provider and comes
    back): an evaluation in a document that is going away counts as "not yet"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    check = expression if unless is None else f"({unless}) ? {{unless: true}} : ({expression})"
    while True:
        try:
            value = await page.evaluate(check)
        except RuntimeError:  # the execution context went with a navigation
            value = None
        if isinstance(value, dict) and value.get("unless"):
            raise AssertionError(f"{what}: {unless} instead; the page logged {page.log[-20:]}")
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"{what}: not within {WAIT:g} s; the page logged {page.log[-20:]}")
        await asyncio.sleep(POLL)


def sso_server(
    server_factory: ServerFactory, provider: OidcProvider, **options: Any
) -> EmbeddedServer:
    """A companion server that trusts ``provider``, its console registered there."""
    oidc = provider.server_settings(password_login=options.pop("password_login", True))
    server = server_factory(oidc=oidc, **options)
    provider.add_console_redirect(f"{server.url}/console/")
    return server


async def go_to_provider(page: Page, provider: OidcProvider) -> None:
    """Press the console's sign-in button; returns on the provider's sign-in form."""
    await click(page, "#sso-start")
    origin = js(provider.issuer)
    await settled(
        page,
        f"location.origin === new URL({origin}).origin && !!document.getElementById('op-login')",
        "the provider's sign-in form shows",
        unless="!!document.body.dataset.ssoFailed",
    )


async def sign_in_through_provider(
    page: Page, server: EmbeddedServer, provider: OidcProvider, user: str
) -> None:
    """From the console's sign-in screen, through the provider's form as ``user`` (with their
    password there), back to the console."""
    await go_to_provider(page, provider)
    await sign_in_on_page(page, username=user, password=provider.user(user).password)
    await settled(
        page,
        f"location.origin === {js(server.url)} && document.body.dataset.view !== 'loading'",
        "the provider sent the browser back",
    )


async def leftovers(page: Page) -> dict[str, Any]:
    """What of the round trip the page still shows or keeps."""
    result: dict[str, Any] = await page.evaluate(
        "({href: location.href, storage: sessionStorage.length, local: localStorage.length,"
        " cookie: document.cookie, state: history.state})"
    )
    return result


def nothing_kept(server: EmbeddedServer) -> dict[str, Any]:
    """What :func:`leftovers` finds once a round trip is over: the console's own address with
    no query, nothing in web storage or cookies, no history state."""
    return {"href": f"{server.url}/console/", "storage": 0, "local": 0, "cookie": "", "state": None}


# ------------------------------------------------------------------ tests


async def test_the_console_may_reach_the_provider_and_nothing_more(
    server_factory: ServerFactory, oidc_provider: OidcProvider
) -> None:
    server = sso_server(server_factory, oidc_provider)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(oidc_provider.issuer))
    timeout = aiohttp.ClientTimeout(total=WAIT)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(f"{server.url}/auth/config") as reply:
            assert reply.status == 200
            assert (await reply.json())["oidc"]["console_client_id"] == CONSOLE_CLIENT_ID
        for name in ["", "console.js", "sso.js"]:
            async with http.get(f"{server.url}/console/{name}") as reply:
                assert reply.status == 200, name
                assert reply.headers["Content-Security-Policy"] == (
                    "default-src 'none'; script-src 'self'; style-src 'self';"
                    f" connect-src 'self' {origin}; img-src 'self'; form-action 'none';"
                    " frame-ancestors 'none'; base-uri 'none'"
                )
        async with http.get(f"{server.url}/healthz") as reply:
            assert origin not in reply.headers["Content-Security-Policy"]


async def test_carol_signs_in_at_the_provider_and_publishes(
    server_factory: ServerFactory,
    oidc_provider: OidcProvider,
    browser_page: Page,
    tmp_path: Path,
) -> None:
    server, page = sso_server(server_factory, oidc_provider), browser_page
    await open_console(page, server)
    assert await page.evaluate("document.body.dataset.ways") == "oidc password"
    assert await text_of(page, "#sso-start") == "Sign in with your organisation account"
    # the organisation's account first, the server's own passwords below it
    assert await page.evaluate(
        "!!(document.getElementById('sso').compareDocumentPosition("
        "document.getElementById('login-form')) & Node.DOCUMENT_POSITION_FOLLOWING)"
    )
    assert not await page.evaluate("document.getElementById('login-form').hidden")
    await screenshot(page, screenshot_dir(tmp_path) / "console-sso.png")

    await sign_in_through_provider(page, server, oidc_provider, "carol")
    await page.wait_for(
        "document.body.dataset.view === 'app'",
        "carol is signed in to the console",
        unless="!!document.body.dataset.ssoFailed || !!document.body.dataset.refused",
    )
    assert await text_of(page, "#who") == "Signed in as carol"
    # nothing of the round trip is left: not in the address, the history entry or web storage
    assert await leftovers(page) == nothing_kept(server)

    # publish to her own group, as after a password login
    await page.wait_for(
        f"!!document.querySelector('#group-list input[value={js(PUBLISHER_GROUP)}]')",
        "the directory names the publisher group",
    )
    await type_into(page, "f-title", "Town hall at noon")
    await click(page, f"#group-list input[value={js(PUBLISHER_GROUP)}]")
    ann_id = await send(page)
    await click(page, "#tab-sent")
    await page.wait_for(
        f"!!document.querySelector('#sent-rows tr[data-id={js(ann_id)}]')",
        "the sent list shows it",
    )
    assert await text_of(page, f"#sent-rows tr[data-id={js(ann_id)}] .title-cell button") == (
        "Town hall at noon"
    )
    # still nothing kept beyond the page's memory
    assert (await leftovers(page))["storage"] == 0
    no_policy_violations(page)


async def test_a_person_who_may_not_publish_is_told_whom_to_ask(
    server_factory: ServerFactory, oidc_provider: OidcProvider, browser_page: Page
) -> None:
    server, page = sso_server(server_factory, oidc_provider), browser_page
    await open_console(page, server)
    await sign_in_through_provider(page, server, oidc_provider, "alice")
    await page.wait_for(
        "document.body.dataset.refused === 'not-publisher'",
        "alice is told she may not publish",
        unless="document.body.dataset.view === 'app' || !!document.body.dataset.ssoFailed",
    )
    message = await text_of(page, "#login-error")
    assert message.startswith("Your organisation account “alice” may not publish"), message
    assert "Ask your IT team to add you to a publisher group" in message
    assert await page.evaluate("document.body.dataset.view") == "login"
    assert await page.evaluate("document.getElementById('app-view').hidden")
    # the button is ready for another account, and nothing of the round trip is kept
    assert await page.evaluate("!document.getElementById('sso-start').disabled")
    assert (await leftovers(page))["href"] == f"{server.url}/console/"
    no_policy_violations(page)


async def test_a_cancelled_sign_in_is_said_in_words(
    server_factory: ServerFactory, oidc_provider: OidcProvider, browser_page: Page
) -> None:
    server, page = sso_server(server_factory, oidc_provider), browser_page
    await open_console(page, server)
    await go_to_provider(page, oidc_provider)
    await click(page, "#op-abort")  # the person cancels at the provider
    await settled(
        page,
        "document.body.dataset.ssoFailed === 'provider'",
        "the cancelled sign-in is reported",
        unless="document.body.dataset.view === 'app'",
    )
    message = await text_of(page, "#login-error")
    assert message.startswith("You were not signed in: the sign-in was cancelled"), message
    assert "End-User aborted interaction" in message
    assert await leftovers(page) == nothing_kept(server)
    no_policy_violations(page)


async def test_a_provider_error_with_markup_stays_text(
    server_factory: ServerFactory, oidc_provider: OidcProvider, browser_page: Page
) -> None:
    """An error answer for the round trip the page started: its words are shown as
    characters, never as markup; the same answer to a page that started nothing is refused
    without them."""
    server, page = sso_server(server_factory, oidc_provider), browser_page
    words = "<img src=x onerror=alert(1)> call 555-0100 now"
    answer = f"{server.url}/console/?error=server_error&error_description={quote(words)}"
    # a link someone else made: no sign-in was started here, so its words are not shown
    await page.goto(f"{answer}&state=guess")
    await page.wait_for("document.body.dataset.ssoFailed === 'state'", "the answer is refused")
    assert await text_of(page, "#login-error") == (
        "This sign-in answer was not asked for by this page (or it was used already), so it"
        " was refused. Please sign in again."
    )

    pending = {"verifier": "v" * 43, "state": "s" * 43, "nonce": "n" * 43, "lang": "en"}
    await page.evaluate(f"sessionStorage.setItem({js(SSO_PENDING_KEY)}, {js(json.dumps(pending))})")
    await page.goto(f"{answer}&state={'s' * 43}")
    await page.wait_for("document.body.dataset.ssoFailed === 'provider'", "the error shows")
    assert await text_of(page, "#login-error") == (
        f"Your organisation’s sign-in page did not sign you in: {words}"
    )
    assert await page.evaluate("document.querySelectorAll('#login-view img').length") == 0
    assert (await leftovers(page))["href"] == f"{server.url}/console/"
    no_policy_violations(page)


async def test_a_tampered_state_is_refused(
    server_factory: ServerFactory, oidc_provider: OidcProvider, browser_page: Page
) -> None:
    """The provider's real answer with another ``state`` (someone else's sign-in slipped into
    this browser): refused before the code is used, and the round trip is over."""
    server, page = sso_server(server_factory, oidc_provider), browser_page
    await open_console(page, server)
    # before any script of the page runs, the answer's state is changed in the address
    script = await page.send(
        "Page.addScriptToEvaluateOnNewDocument",
        source=(
            f"if (location.origin === {js(server.url)}) {{"
            " const q = new URLSearchParams(location.search);"
            " if (q.has('code')) { q.set('state', 'forged' + q.get('state'));"
            " history.replaceState(null, '', location.pathname + '?' + q); } }"
        ),
    )
    try:
        await sign_in_through_provider(page, server, oidc_provider, "carol")
        await page.wait_for(
            "document.body.dataset.ssoFailed === 'state'",
            "the tampered state is refused",
            unless="document.body.dataset.view === 'app'",
        )
    finally:
        await page.send("Page.removeScriptToEvaluateOnNewDocument", identifier=script["identifier"])
    assert await text_of(page, "#login-error") == (
        "This sign-in answer does not match the sign-in this page started (its state"
        " differs), so it was refused. Please sign in again."
    )
    assert await page.evaluate("document.body.dataset.view") == "login"
    assert await leftovers(page) == nothing_kept(server)
    no_policy_violations(page)


async def test_a_name_of_a_local_account_is_refused_in_words(
    server_factory: ServerFactory, oidc_provider: OidcProvider, browser_page: Page
) -> None:
    """The demo users include a local alice with a password: the provider's alice may not
    take her name (409), and the console says so."""
    server = sso_server(server_factory, oidc_provider, demo_users=True)
    page = browser_page
    await open_console(page, server)
    await sign_in_through_provider(page, server, oidc_provider, "alice")
    await page.wait_for(
        "document.body.dataset.ssoFailed === 'conflict'",
        "the name conflict is reported",
        unless="document.body.dataset.view === 'app'",
    )
    message = await text_of(page, "#login-error")
    assert message.startswith("The announcement server refused the sign-in: "), message
    assert "an account with a password on this server; ask your IT team" in message
    no_policy_violations(page)


async def test_no_password_form_when_the_server_takes_no_passwords(
    server_factory: ServerFactory, oidc_provider: OidcProvider, browser_page: Page
) -> None:
    server = sso_server(server_factory, oidc_provider, password_login=False)
    page = browser_page
    await open_console(page, server, "?lang=zh_CN")
    assert await page.evaluate("document.body.dataset.ways") == "oidc"
    assert await page.evaluate("document.getElementById('login-form').hidden")
    assert await page.evaluate("document.getElementById('login-or').hidden")
    assert not await page.evaluate("document.getElementById('sso').hidden")
    assert await text_of(page, "#sso-start") == "使用组织账号登录"
    assert await page.evaluate("document.activeElement.id") == "sso-start"
    # the language chosen before leaving is the one the page comes back in
    await sign_in_through_provider(page, server, oidc_provider, "carol")
    await page.wait_for(
        "document.body.dataset.view === 'app'",
        "carol is signed in",
        unless="!!document.body.dataset.ssoFailed",
    )
    assert await text_of(page, "#who") == "已登录：carol"
    no_policy_violations(page)


async def test_a_server_without_single_sign_on_shows_only_the_password_form(
    server_factory: ServerFactory, browser_page: Page
) -> None:
    server, page = server_factory(demo_users=True), browser_page
    await open_console(page, server)
    assert await page.evaluate("document.body.dataset.ways") == "password"
    assert await page.evaluate("document.getElementById('sso').hidden")
    assert not await page.evaluate("document.getElementById('login-form').hidden")
    assert await page.evaluate("document.activeElement.id") == "login-user"
