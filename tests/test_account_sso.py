"""``python -m app login --sso`` and ``login --device`` end to end: the real OpenID provider
(tests/fixtures/oidc.py) signed in through headless Chromium, the companion server trusting it,
the login stored in a real keyring (gnome-keyring on a private bus, as the password login's
end-to-end tests do), then ``listen --server --user`` on that login. A sign-in that does not
finish (refused at the provider or by the server, cancelled) exits 3 and changes nothing."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import account
from app.cli import build_parser
from app.core import config as config_mod
from app.core.auth import Tokens
from app.core.secrets import MemorySecretStore, login_key
from app.exit_codes import EXIT_AUTH, EXIT_USAGE
from app.server.config import OidcSettings
from app.server.embedded import EmbeddedServer
from tests.fixtures.browser import Chromium, Page
from tests.fixtures.keyring import KeyringRunner
from tests.fixtures.oidc import (
    CONSOLE_CLIENT_ID,
    PUBLISHER_GROUP,
    TRAY_CLIENT_ID,
    OidcProvider,
    browser_command,
    complete_sign_in,
    enter_device_code,
)
from tests.fixtures.server import ServerFactory
from tests.fixtures.wait import wait_until

ROOT = Path(__file__).resolve().parents[1]
BOUND = 40.0


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAY_NOTIFIER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def sso_server(server_factory: ServerFactory, oidc_provider: OidcProvider) -> EmbeddedServer:
    settings = OidcSettings(
        issuer=oidc_provider.issuer,
        client_id=TRAY_CLIENT_ID,
        console_client_id=CONSOLE_CLIENT_ID,
        username_claim="preferred_username",
        groups_claim="groups",
        publisher_groups=(PUBLISHER_GROUP,),
        password_login=True,
    )
    return server_factory(oidc=settings)


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def _open_streams(server: EmbeddedServer) -> int:
    text = httpx.get(f"{server.url}/metrics", timeout=BOUND).text
    found = re.search(r"^tray_notifier_connections (\d+)", text, re.MULTILINE)
    return int(found.group(1)) if found else 0


class Background:
    """A function run on a thread; ``result()`` joins it and raises what it raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._out: list[Any] = []
        self._failed: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self._out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - raised again in result()
            self._failed.append(exc)

    def result(self, timeout: float = BOUND) -> Any:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the helper thread did not finish"
        if self._failed:
            raise self._failed[0]
        return self._out[0] if self._out else None


def _publish_once_listening(server: EmbeddedServer) -> list[str]:
    """Once a stream is open: one announcement for group hr, then one for group it."""
    server.add_user("hank", "hank-pw", groups=["hr"])  # group hr exists, alice is not in it
    wait_until(lambda: _open_streams(server) >= 1, timeout=BOUND, what="a stream opened")
    return [
        server.publish("For hr", "not alice's", audience={"groups": ["hr"]}),
        server.publish("For it", "alice's", audience={"groups": ["it"]}),
    ]


# ---------------------------------------------------------------------- end to end


@pytest.mark.browser
def test_login_sso_then_listen_receives_what_the_idp_groups_allow(
    sso_server: EmbeddedServer,
    oidc_provider: OidcProvider,
    chromium: Chromium,
    gnome_keyring: KeyringRunner,
) -> None:
    """``login --sso`` opens the provider's page with ``BROWSER``; alice signs in there; the
    login is stored in the keyring; ``listen --server --user alice`` then gets the announcement
    for her provider group ``it`` and not the one for ``hr``."""
    alice = oidc_provider.user("alice")
    person = Background(
        lambda: complete_sign_in(
            chromium,
            url_prefix=oidc_provider.issuer,
            username="alice",
            password=alice.password,
            timeout=BOUND,
        )
    )
    publisher = Background(lambda: _publish_once_listening(sso_server))
    py = sys.executable
    script = (
        f'"{py}" -m app login --sso --server "$0" && '
        f'exec "{py}" -m app listen --server "$0" --user alice --json --max-events 2'
    )
    result = gnome_keyring(
        ["env", f"BROWSER={browser_command(chromium)}", "sh", "-c", script, sso_server.url]
    )
    person.result()
    hr, it = publisher.result()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Logged in as alice at {sso_server.url}.")
    events = [json.loads(line) for line in lines[1:]]
    assert [e["event"] for e in events] == ["connected", "message"]
    assert events[1]["id"] == it and json.loads(events[1]["data"])["title"] == "For it"
    assert "For hr" not in result.stdout and hr != it
    # the provider's address on stderr too; no token there or on stdout
    assert f"  {oidc_provider.issuer}/" in result.stderr
    assert "eyJ" not in result.stdout + result.stderr


@pytest.mark.browser
def test_login_device_then_listen(
    sso_server: EmbeddedServer,
    oidc_provider: OidcProvider,
    chromium: Chromium,
    gnome_keyring: KeyringRunner,
    tmp_path: Path,
) -> None:
    """``login --device`` prints the address and the code on stderr; bob enters it in another
    browser; the login is stored and ``listen`` uses it."""
    said = tmp_path / "device.err"
    bob = oidc_provider.user("bob")

    def person() -> str:
        found: list[re.Match[str]] = []

        def code_shown() -> bool:
            text = said.read_text(errors="replace") if said.exists() else ""
            found[:] = [m for m in [re.search(r"(\S+/device\S*)\n.*code: (\S+)", text)] if m]
            return bool(found)

        wait_until(code_shown, timeout=BOUND, what="the device code on stderr")
        uri, code = found[0].group(1), found[0].group(2)
        enter_device_code(
            chromium, verification_uri=uri, user_code=code, username="bob", password=bob.password
        )
        return code

    entered = Background(person)
    py = sys.executable
    script = (
        f'"{py}" -m app login --device --server "$0" 2>"$1" && '
        f'exec "{py}" -m app listen --server "$0" --user bob --json --max-events 1'
    )
    result = gnome_keyring(["sh", "-c", script, sso_server.url, str(said)])
    code = entered.result()
    assert result.returncode == 0, result.stderr + said.read_text(errors="replace")
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Logged in as bob at {sso_server.url}.")
    assert json.loads(lines[1])["event"] == "connected"
    assert code in said.read_text()  # said to the person, on stderr


# ---------------------------------------------------------------------- nothing changes


def _stored_before(home: Path, url: str, secrets: MemorySecretStore) -> str:
    """A login of dave kept from before, and settings naming it: what must not change."""
    kept = Tokens("at-dave", "rt-dave", 9e9, "dave", 0.0).to_secret()
    secrets.set(login_key(url, "dave"), kept)
    config_mod.save_user(config_mod.Config(server_url=url, username="dave"))
    return kept


@pytest.mark.browser
async def test_a_sign_in_refused_at_the_provider_changes_nothing_stored(
    home: Path,
    sso_server: EmbeddedServer,
    browser_page: Page,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The person presses Cancel on the provider's page: exit 3 with the provider's words;
    the keyring and the settings stay as they were."""
    secrets = MemorySecretStore()
    kept = _stored_before(home, sso_server.url, secrets)
    settings_before = config_mod.Paths.default().user_config_file.read_text()
    opened: list[str] = []
    came = asyncio.Event()
    loop = asyncio.get_running_loop()

    def open_browser(url: str) -> bool:  # on a thread of the command's own loop
        opened.append(url)
        loop.call_soon_threadsafe(came.set)
        return True

    login = asyncio.ensure_future(
        asyncio.to_thread(
            account.run_login,
            args("login", "--sso", "--server", sso_server.url),
            secrets=secrets,
            open_browser=open_browser,
        )
    )
    await asyncio.wait_for(came.wait(), BOUND)
    await browser_page.goto(opened[0])
    await browser_page.wait_for("!!document.getElementById('op-abort')", "the Cancel link")
    await browser_page.evaluate("document.getElementById('op-abort').click()")
    assert await asyncio.wait_for(login, BOUND) == EXIT_AUTH
    said = capsys.readouterr().err
    assert "Your organisation's sign-in did not succeed: End-User aborted interaction" in said
    assert secrets._values == {login_key(sso_server.url, "dave"): kept}
    assert config_mod.Paths.default().user_config_file.read_text() == settings_before


@pytest.mark.browser
def test_a_name_that_belongs_to_a_local_account_is_refused(
    home: Path,
    sso_server: EmbeddedServer,
    oidc_provider: OidcProvider,
    chromium: Chromium,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sso_server.add_user("carol", "local-pw")
    secrets = MemorySecretStore()
    person = Background(
        lambda: complete_sign_in(
            chromium,
            url_prefix=oidc_provider.issuer,
            username="carol",
            password=oidc_provider.user("carol").password,
        )
    )
    code = account.run_login(
        args("login", "--sso", "--server", sso_server.url),
        secrets=secrets,
        open_browser=webbrowser.GenericBrowser(browser_command(chromium)).open,
    )
    person.result()
    assert code == EXIT_AUTH
    last = capsys.readouterr().err.splitlines()[-1]  # after the prompt: the reason
    assert last.startswith("The server refused the sign-in: ") and "carol" in last
    assert secrets._values == {}
    assert not config_mod.Paths.default().user_config_file.exists()


@pytest.mark.browser
def test_ctrl_c_cancels_the_wait_and_stores_nothing(
    sso_server: EmbeddedServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "TRAY_NOTIFIER_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "BROWSER": "true",  # a browser that opens nothing: the person never signs in
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "login", "--sso", "--server", sso_server.url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        while not (line := proc.stderr.readline()).startswith("Waiting at most 5 minutes"):
            assert line, f"the command ended early: {''.join(lines)}"
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(BOUND)
    assert proc.returncode == EXIT_AUTH
    assert err == "The sign-in was cancelled; nothing was changed.\n"
    assert "If none opened, open this address" in "".join(lines)
    assert not (tmp_path / "home" / "config" / "config.toml").exists()


def test_a_server_without_single_sign_on_is_exit_3(
    home: Path, server_factory: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = server_factory()
    code = account.run_login(
        args("login", "--device", "--server", plain.url), secrets=MemorySecretStore()
    )
    assert code == EXIT_AUTH
    assert "offers no sign-in with an organisation account" in capsys.readouterr().err


def test_the_ways_in_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    for both in (
        ["--sso", "--password-stdin"],
        ["--device", "--password-stdin"],
        ["--sso", "--device"],
    ):
        with pytest.raises(SystemExit) as stopped:
            build_parser().parse_args(["login", *both])
        assert stopped.value.code == EXIT_USAGE
        assert "not allowed with argument" in capsys.readouterr().err
    code = account.run_login(args("login", "--sso", "--user", "alice"))
    assert code == EXIT_USAGE
    assert "the sign-in names the user" in capsys.readouterr().err
