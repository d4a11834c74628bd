"""``python -m app publish``: publish one announcement as a publisher account.

It goes through the core's HTTP client and auth session, as the tray's calls do: the endpoint
templates and the CA bundle come from the settings (``--ca-bundle`` wins), redirects and TLS are
handled in :mod:`app.core.http`, and the login lives in memory for this one call.

Exit codes: 0 published (the new id on stdout), 1 server unreachable or failing, 2 usage (no
password available), 3 login refused or not a publisher, 4 the server refused the input (400)
or the configuration is unusable.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import os
import sys
import uuid
from pathlib import Path

from app.core import config as app_config
from app.core import http
from app.core.auth import AuthSession
from app.core.errors import (
    AccessDenied,
    ConfigError,
    InputRefused,
    LoginRequired,
    TrayNotifierError,
    WrongCredentials,
)
from app.core.model import Draft, Priority
from app.core.secrets import KeyringSecretStore, MemorySecretStore
from app.exit_codes import EXIT_AUTH, EXIT_FAILURE, EXIT_OK, EXIT_PROTOCOL, EXIT_USAGE

CONNECT_TIMEOUT = 5.0  # seconds: a command-line call gives up sooner than the tray


def run(args: argparse.Namespace) -> int:
    server = args.server.rstrip("/")
    if not server.startswith(("http://", "https://")):
        return _fail(f"--server {server!r} must start with https:// (or http://)", EXIT_USAGE)
    password = _password(args)
    if password is None:
        return _fail(
            "no password: pipe it in with --password-stdin, give --password-file FILE, set"
            f" {PASSWORD_VARIABLE}, or run in a terminal to be asked",
            EXIT_USAGE,
        )
    try:
        cfg = app_config.load()
    except ConfigError as exc:
        return _fail(str(exc), EXIT_PROTOCOL)
    http.use_network(cfg.network, secrets=KeyringSecretStore())  # [network], the proxy login
    settings = dataclasses.replace(
        cfg.stream,
        connect_timeout=min(cfg.stream.connect_timeout, CONNECT_TIMEOUT),
        ca_bundle=args.ca_bundle or cfg.stream.ca_bundle,
    )
    try:
        session = AuthSession(
            server_url=server,
            username=args.login,
            endpoints=cfg.endpoints,
            secrets=MemorySecretStore(),
            settings=settings,
        )
    except ConfigError as exc:
        return _fail(str(exc), EXIT_PROTOCOL)
    try:
        ann_id = asyncio.run(_publish(session, password, draft_of(args)))
    except (WrongCredentials, LoginRequired) as exc:
        return _fail(f"login refused: {exc}", EXIT_AUTH)
    except AccessDenied as exc:
        return _fail(str(exc), EXIT_AUTH)
    except (InputRefused, ConfigError) as exc:
        return _fail(str(exc), EXIT_PROTOCOL)
    except TrayNotifierError as exc:  # unreachable, TLS, 5xx, not an announcement server
        return _fail(str(exc), EXIT_FAILURE)
    sys.stdout.write(ann_id + "\n")
    return EXIT_OK


def draft_of(args: argparse.Namespace) -> Draft:
    """The announcement the options describe (``--all``, ``--group`` or ``--user``)."""
    return Draft(
        title=args.title,
        body=args.body,
        priority=Priority.parse(args.priority),
        url=args.url or None,
        expires_at=args.expires_at or None,
        groups=tuple(args.group or ()),
        users=tuple(args.user or ()),
    )


async def _publish(session: AuthSession, password: str, draft: Draft) -> str:
    try:
        await session.login(password)
        try:
            # one key per call: a retry inside it (after a refresh) never publishes twice
            return await session.publish(draft, idempotency_key=uuid.uuid4().hex)
        finally:
            await session.logout(end_streams=False)  # revoke this call's refresh token
    finally:
        await session.aclose()


PASSWORD_VARIABLE = "TRAY_NOTIFIER_PASSWORD"  # noqa: S105 - the variable's name


def _password(args: argparse.Namespace) -> str | None:
    """From standard input, a file, the environment, or a terminal prompt: never from the
    command line, which every user of the machine can read."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n") or None
    if getattr(args, "password_file", None):
        try:
            lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            return None
        return lines[0] if lines and lines[0] else None
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {args.login}: ") or None
    return None


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code
