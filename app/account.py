"""``python -m app login`` and ``python -m app logout``: the tray's login, from a terminal.

``login`` logs in exactly as the tray's login dialog does: the tokens go to the OS keyring (never
to a file, argv or the log), and the server and user name to the user's settings, so the tray,
``listen --server --user`` and the next start connect without asking. The password is read from
standard input (``--password-stdin``) or asked for in a terminal; it never appears in argv.

Both use the configured backend profile (``[auth]``, see docs/existing-backend.md): against a
token-style backend the login reply's token (and, with ``relogin``, the password) goes to the
keyring, and a refusal exits 3 with the backend's own message on stderr.

``login --sso`` signs in with the organisation's identity provider instead (the provider the
server's ``/auth/config`` or ``[auth]`` names): the system browser opens the provider's page
(``webbrowser``, which honours ``BROWSER``; the address is printed on stderr too), and the
command waits at most 5 minutes for the redirect. ``login --device`` prints an address and a
code to enter on any other device, and waits the same way. The user is the one the sign-in
names; the login is stored as a password login is. Cancelled (Ctrl+C), timed out, refused by
the provider or by the server: exit 3 with the reason, and nothing stored changes.

``logout`` does what the tray menu's *Log out* does: the close call (the server ends this
user's streams), the logout call (the refresh token is revoked), and the tokens leave the
keyring. The history stays.

Exit codes: 0 done, 1 the server cannot be reached, 2 usage, 3 refused (wrong password, no
stored login, no keyring), 4 protocol or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import signal
import sys
import webbrowser
from collections.abc import Awaitable, Callable, Iterator

from app.core import config as config_mod
from app.core import http, oidc
from app.core.auth import AuthSession
from app.core.config import Config, Paths
from app.core.errors import (
    ConfigError,
    LoginRequired,
    ServerError,
    ServerUnreachable,
    TrayNotifierError,
    WrongCredentials,
)
from app.core.relocation import follow_the_server
from app.core.secrets import (
    KeyringSecretStore,
    SecretStore,
    SecretStoreUnavailable,
    login_key,
)
from app.exit_codes import EXIT_AUTH, EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL, EXIT_USAGE
from app.logs import escape_controls, redact

log = logging.getLogger(__name__)


def _say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 - a command-line tool's answer


def _tell(text: str, *args: object) -> None:
    """A failure, as the plain sentence on stderr (a person or IT's script reads it: no time
    stamp, no level, no logger name); the log file gets it too."""
    message = redact(escape_controls(text % args if args else text))  # server words too
    log.debug("%s", message)
    print(message, file=sys.stderr, flush=True)  # noqa: T201 - a command-line tool's answer


def _target(
    args: argparse.Namespace, config: Config, *, need_user: bool = True
) -> tuple[str, str] | None:
    """The server and user the command is for (the user "" with ``need_user=False``: a
    sign-in names it); None, said why, when the command line cannot be followed."""
    server = (args.server or config.server_url).strip()
    user = (args.user or config.username).strip() if need_user else ""
    fixed = config.is_locked("server_url") or config.set_by_environment("server_url")
    if fixed and args.server and server.rstrip("/") != config.server_url.rstrip("/"):
        _tell(
            "the server is set to %s by your IT department (or the environment) and cannot be "
            "changed here: leave out --server",
            config.server_url,
        )
        return None
    if not server and not need_user:
        _tell("no server: give --server URL (or set server_url in the settings)")
        return None
    if not server or (need_user and not user):
        _tell(
            "no server or user name: give --server URL and --user NAME (or set server_url and "
            "username in the settings)"
        )
        return None
    if not server.startswith(("http://", "https://")):
        _tell("--server %r must start with https:// (or http:// on loopback)", server)
        return None
    return server, user


def _session(
    config: Config, paths: Paths, server: str, user: str, secrets: SecretStore | None
) -> AuthSession:
    """The session the tray would use for this server and user (the keyring by default), once
    a login kept under a previous address of the server has followed it (as the tray does).
    ``user`` "": a sign-in, which learns the user (nothing to follow)."""
    store = secrets if secrets is not None else KeyringSecretStore()
    http.use_network(config.network, secrets=store)  # [network], the proxy login
    if user:
        target = config.with_changes(server_url=server, username=user)
        follow_the_server(target, paths.data_dir, store)
    return AuthSession(
        server_url=server,
        username=user,
        endpoints=config.endpoints,
        secrets=store,
        settings=config.stream,
        profile=config.auth,
    )


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return getpass.getpass("Password: ")


def _settings_and_target(
    args: argparse.Namespace, *, need_user: bool = True
) -> tuple[config_mod.Paths, Config, str, str] | int:
    """The settings, and the server and user the command is for; or the exit code why not."""
    try:
        paths = config_mod.Paths.default()
        config = config_mod.load(paths)
    except ConfigError as exc:
        _tell("%s", exc)
        return EXIT_PROTOCOL
    target = _target(args, config, need_user=need_user)
    if target is None:
        return EXIT_USAGE
    return (paths, config, *target)


def run_login(
    args: argparse.Namespace,
    *,
    secrets: SecretStore | None = None,
    open_browser: oidc.OpenBrowser = webbrowser.open,
    waits: oidc.Waits | None = None,
) -> int:
    """``login``: with a password, or (``--sso``, ``--device``) with the organisation's
    identity provider (``open_browser`` opens its page; ``waits`` bound the wait)."""
    if getattr(args, "sso", False) or getattr(args, "device", False):
        return _run_sign_in(args, secrets=secrets, open_browser=open_browser, waits=waits)
    prepared = _settings_and_target(args)
    if isinstance(prepared, int):
        return prepared
    paths, config, server, user = prepared
    if http.in_clear(server):
        log.warning(
            "%s is not encrypted (http://): the password travels in plain text. Use https:// "
            "unless your IT department says otherwise.",
            server,
        )
    password = _read_password(args)
    if not password:
        _tell("no password given: pass it on standard input with --password-stdin")
        return EXIT_USAGE
    code = asyncio.run(_login(_session(config, paths, server, user, secrets), password))
    if code != EXIT_OK:
        return code
    return _stored(paths, config, server, user)


def _stored(paths: Paths, config: Config, server: str, user: str) -> int:
    """After a login was stored: the settings name its server and user (the tray, ``listen
    --server --user`` and the next start use it), and a running tray is told."""
    if (server, user) != (config.server_url, config.username):
        try:
            config_mod.save_user(config.with_changes(server_url=server, username=user), paths)
        except (OSError, ConfigError) as exc:
            _tell("logged in, but the settings could not be saved: %s", exc)
            return EXIT_FAILURE
    if _tell_tray(paths, login_key(server, user), stored=True):
        _say(f"Logged in as {user} at {server}. The running tray connects with this login now.")
    else:
        _say(f"Logged in as {user} at {server}. The tray connects with this login when it starts.")
    return EXIT_OK


# ---------------------------------------------------------------- single sign-on


def _run_sign_in(
    args: argparse.Namespace,
    *,
    secrets: SecretStore | None,
    open_browser: oidc.OpenBrowser,
    waits: oidc.Waits | None,
) -> int:
    """``login --sso`` / ``login --device``: sign in, store the login under the user the
    sign-in names, save the server and user, tell a running tray."""
    if args.user:
        _tell("--user is not used with --sso or --device: the sign-in names the user")
        return EXIT_USAGE
    prepared = _settings_and_target(args, need_user=False)
    if isinstance(prepared, int):
        return prepared
    paths, config, server, _ = prepared
    if http.in_clear(server):
        log.warning(
            "%s is not encrypted (http://): your sign-in travels in plain text. Use https:// "
            "unless your IT department says otherwise.",
            server,
        )
    session = _session(config, paths, server, "", secrets)
    code = asyncio.run(
        _sign_in(session, device=args.device, open_browser=open_browser, waits=waits)
    )
    if code != EXIT_OK:
        return code
    return _stored(paths, config, server, session.username)


async def _sign_in(
    session: AuthSession,
    *,
    device: bool,
    open_browser: oidc.OpenBrowser,
    waits: oidc.Waits | None,
) -> int:
    cancel = asyncio.Event()
    minutes = (waits or oidc.Waits()).timeout / 60

    async def sign_in() -> None:
        with _cancelled_by_signals(cancel):
            await session.sign_in(
                on_prompt=lambda prompt: _show(prompt, minutes),
                device=device,
                open_browser=open_browser,
                cancel=cancel,
                waits=waits,
            )

    return await _exit_code(session, sign_in(), refused=(oidc.SignInError,))


def _show(prompt: oidc.Prompt, minutes: float) -> None:
    """What the person does now, on stderr (never in the log: a device code is a secret for
    a few minutes)."""
    wait = f"Waiting at most {minutes:g} minutes (Ctrl+C cancels)..."
    if isinstance(prompt, oidc.BrowserPrompt):
        lines = [
            "Sign in with your organisation account in the browser window that opened.",
            "If none opened, open this address in a browser on this computer:",
            f"  {prompt.url}",
            wait,
        ]
    else:
        lines = [
            "To sign in, open this address on any device:",
            f"  {prompt.verification_uri}",
            f"and enter the code: {prompt.user_code}",
        ]
        if prompt.verification_uri_complete:
            lines += ["(or open, with the code in it:", f"  {prompt.verification_uri_complete})"]
        lines.append(wait)
    print("\n".join(lines), file=sys.stderr, flush=True)  # noqa: T201 - the person's next step


@contextlib.contextmanager
def _cancelled_by_signals(cancel: asyncio.Event) -> Iterator[None]:
    """Ctrl+C (and SIGTERM) cancel the sign-in (exit 3, nothing stored) rather than kill the
    command, where the loop can take signals (not on Windows: Ctrl+C interrupts there)."""
    loop = asyncio.get_running_loop()
    taken = []
    for number in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(number, cancel.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue
        taken.append(number)
    try:
        yield
    finally:
        for number in taken:
            loop.remove_signal_handler(number)


def _tell_tray(paths: Paths, login: str, *, stored: bool) -> bool:
    """Tell the tray running for these settings (the single-instance channel) that the login
    ``login`` was stored, or is being ended; False when no tray runs. Qt's local socket is
    loaded only here."""
    from app.ui.single_instance import LOGIN, LOGOUT, default_key, tell_running

    return tell_running(default_key(str(paths.data_dir)), LOGIN if stored else LOGOUT, login)


async def _login(session: AuthSession, password: str) -> int:
    return await _exit_code(session, session.login(password))


async def _exit_code(
    session: AuthSession,
    call: Awaitable[object],
    *,
    refused: tuple[type[Exception], ...] = (),
) -> int:
    """Await ``call`` (the session's login or sign-in), then close the session; the exit code,
    with a failure told on stderr: 3 refused (wrong credentials, no keyring, or one of
    ``refused``), 1 the server cannot be reached or failed, 4 protocol or configuration."""
    refusals: tuple[type[Exception], ...] = (*refused, WrongCredentials, SecretStoreUnavailable)
    try:
        await call
    except refusals as exc:
        _tell("%s", exc)
        return EXIT_AUTH
    except (ServerUnreachable, ServerError) as exc:
        _tell("%s", exc)
        return EXIT_FAILURE
    except (TrayNotifierError, ConfigError) as exc:
        _tell("%s", exc)
        return EXIT_PROTOCOL
    finally:
        await session.aclose()
    return EXIT_OK


def run_logout(args: argparse.Namespace, *, secrets: SecretStore | None = None) -> int:
    prepared = _settings_and_target(args)
    if isinstance(prepared, int):
        return prepared
    paths, config, server, user = prepared
    told: list[bool] = []

    def tell_tray() -> None:  # once the stored login is known, before any call is made
        told.append(_tell_tray(paths, login_key(server, user), stored=False))

    code = asyncio.run(_logout(_session(config, paths, server, user, secrets), tell_tray))
    if code == EXIT_OK:
        tray = " The running tray stopped and forgot it." if any(told) else ""
        _say(f"Logged out {user} at {server}. The history stays on this computer.{tray}")
    return code


async def _logout(session: AuthSession, tell_tray: Callable[[], None]) -> int:
    try:
        if not session.has_stored_login():
            _tell("no stored login for %s at %s", session.username, session.server_url)
            return EXIT_AUTH
        # the running tray stops first: it must not reconnect, nor log in again with the
        # password it keeps, while the calls below end the login
        tell_tray()
        await session.logout()
    except (SecretStoreUnavailable, LoginRequired) as exc:
        _tell("%s", exc)
        return EXIT_AUTH
    finally:
        await session.aclose()
    return EXIT_OK
