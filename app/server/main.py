"""``python -m app server``: run the companion server, or ``add-user`` to manage accounts."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path

from app.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from app.server.config import HttpSettings, LdapSettings, OidcSettings, ServerConfig
from app.server.model import BrokerUnavailable, StorageDamaged
from app.server.runtime import (
    DEMO_PASSWORD,
    DEMO_USERS,
    MissingExtra,
    Runtime,
    end_sessions,
    open_broker,
    save_user,
)

log = logging.getLogger(__name__)


METRICS_TOKEN_VARIABLE = "TRAY_NOTIFIER_METRICS_TOKEN"  # noqa: S105 - a variable's name


def run(args: argparse.Namespace) -> int:
    try:
        config = _config(args)
    except ValueError as exc:
        _say(f"error: {exc}", err=True)
        return EXIT_USAGE
    try:
        config.redis()
    except ValueError as exc:
        _say(f"error: --redis: {exc}", err=True)
        return EXIT_USAGE
    try:
        if args.server_command == "add-user":
            return _add_user(args, config)
        if args.server_command == "end-sessions":
            return _end_sessions(args, config)
        return asyncio.run(_serve(config, demo_users=args.demo_users))
    except (MissingExtra, StorageDamaged) as exc:
        _say(f"error: {exc}", err=True)
        return EXIT_FAILURE
    except ValueError as exc:  # a TLS file that does not fit, a damaged signing key
        _say(f"error: {exc}", err=True)
        return EXIT_USAGE
    except (OSError, BrokerUnavailable) as exc:
        hint = "; is redis-server running there?" if isinstance(exc, BrokerUnavailable) else ""
        _say(f"error: {exc}{hint}", err=True)
        return EXIT_FAILURE


def _config(args: argparse.Namespace) -> ServerConfig:
    """The command's options over the defaults (``app/cli.py`` takes its defaults from the
    same :class:`ServerConfig`); ValueError names a bad option."""
    data_dir: dict[str, Path] = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    http = HttpSettings(
        token_ttl=args.token_ttl,
        ping_interval=args.ping_interval,
        **({"max_connections": args.max_connections} if args.max_connections else {}),
        header_timeout=args.header_timeout,
        max_streams_per_user=args.max_streams_per_user,
        max_streams_per_session=min(
            args.max_streams_per_user, HttpSettings().max_streams_per_session
        ),
    )
    return ServerConfig(
        **data_dir,
        host=args.host,
        port=args.port,
        db_path=Path(args.db) if args.db else None,
        redis_url=args.redis or None,
        http=http,
        access_log=True,
        cors_origins=tuple(args.cors_origin),
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        metrics_token=_metrics_token(args.metrics_token_file),
        oidc=_oidc(args),
        ldap=_ldap(args),
        reuse_port=args.reuse_port,
    )


def _oidc(args: argparse.Namespace) -> OidcSettings | None:
    """The identity provider the options name, or None; ValueError names a bad option."""
    if args.oidc_issuer is None:
        given = [
            name
            for name, value in (
                ("--oidc-client-id", args.oidc_client_id),
                ("--oidc-console-client-id", args.oidc_console_client_id),
                ("--oidc-publisher-group", args.oidc_publisher_group),
                ("--no-password-login", args.no_password_login),
            )
            if value
        ]
        if given:
            raise ValueError(f"{given[0]} needs --oidc-issuer (the identity provider)")
        return None
    return OidcSettings(
        issuer=args.oidc_issuer,
        client_id=args.oidc_client_id or "",
        console_client_id=args.oidc_console_client_id,
        username_claim=args.oidc_username_claim,
        groups_claim=args.oidc_groups_claim,
        publisher_groups=tuple(args.oidc_publisher_group),
        password_login=not args.no_password_login,
    )


_LDAP_NEEDED = (
    ("--ldap-bind-dn", "ldap_bind_dn"),
    ("--ldap-bind-password-file", "ldap_bind_password_file"),
    ("--ldap-user-base", "ldap_user_base"),
    ("--ldap-group-base", "ldap_group_base"),
)


def _ldap(args: argparse.Namespace) -> LdapSettings | None:
    """The directory the options name, or None; ValueError names a bad or missing option.
    The password file is read once here, so that a wrong one stops the start (exit 2)."""
    url = getattr(args, "ldap_url", None)
    if url is None:
        given = [
            option
            for option, name in (
                *_LDAP_NEEDED,
                ("--ldap-user-filter", "ldap_user_filter"),
                ("--ldap-group-filter", "ldap_group_filter"),
                ("--ldap-login-attribute", "ldap_login_attribute"),
                ("--ldap-sync-interval", "ldap_sync_interval"),
            )
            if getattr(args, name, None) is not None
        ]
        if given:
            raise ValueError(f"{given[0]} needs --ldap-url (the directory's address)")
        return None
    for option, name in _LDAP_NEEDED:
        if not getattr(args, name, None):
            raise ValueError(f"{option} is needed with --ldap-url")
    defaults = {
        "login_attribute": args.ldap_login_attribute,
        "sync_interval": args.ldap_sync_interval,
        "user_filter": args.ldap_user_filter,
        "group_filter": args.ldap_group_filter,
    }
    settings = LdapSettings(
        url=url,
        bind_dn=args.ldap_bind_dn,
        bind_password_file=Path(args.ldap_bind_password_file),
        user_base=args.ldap_user_base,
        group_base=args.ldap_group_base,
        **{k: v for k, v in defaults.items() if v is not None},
    )
    settings.read_password()  # a file that cannot be read stops here, naming the option
    mode = _file_mode(settings.bind_password_file)
    if mode is not None and mode & 0o077:
        log.warning(
            "--ldap-bind-password-file %s can be read by others (mode %o): chmod 600 it",
            settings.bind_password_file,
            mode,
        )
    return settings


def _file_mode(path: Path) -> int | None:
    if os.name != "posix":
        return None
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return None


def _metrics_token(path: str | None) -> str | None:
    """The token /metrics requires: the file's first line, else the environment variable."""
    if path is not None:
        try:
            token = Path(path).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"--metrics-token-file {path}: cannot read a token ({exc})") from None
        if not token:
            raise ValueError(f"--metrics-token-file {path}: the first line is empty")
        return token
    return os.environ.get(METRICS_TOKEN_VARIABLE) or None


def _add_user(args: argparse.Namespace, config: ServerConfig) -> int:
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _say(
            "error: no password on standard input (pipe it in: echo ... | ... add-user NAME "
            "--password-stdin)",
            err=True,
        )
        return EXIT_USAGE
    if not args.name.strip():
        _say("error: the user name must not be empty", err=True)
        return EXIT_USAGE

    async def add() -> bool:
        broker = open_broker(config)
        try:
            return (await save_user(broker, args.name, password, args.group, args.publisher))[1]
        finally:
            await broker.close()

    ended = asyncio.run(add())
    groups = ", ".join(args.group) or "none"
    role = "publisher" if args.publisher else "staff"
    _say(f"saved user {args.name} (groups: {groups}; role: {role}) in {_where(config)}")
    if ended:
        _say(f"the password changed: {_ENDED.format(name=args.name)}")
    return EXIT_OK


_ENDED = (
    "every login session of {name} ended (refresh tokens revoked, access tokens refused,"
    " streams closed on every running server process within a second); {name} logs in again"
)


def _end_sessions(args: argparse.Namespace, config: ServerConfig) -> int:
    async def end() -> bool:
        broker = open_broker(config)
        try:
            if await broker.get_user(args.name) is None:
                return False
            await end_sessions(broker, args.name)
            return True
        finally:
            await broker.close()

    if not asyncio.run(end()):
        _say(f"error: there is no user {args.name} in {_where(config)}", err=True)
        return EXIT_USAGE
    _say(_ENDED.format(name=args.name))
    return EXIT_OK


def _where(config: ServerConfig) -> str:
    return "Redis" if config.redis_url else str(config.database)


async def _serve(config: ServerConfig, *, demo_users: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime = await Runtime.start(config, demo_users=demo_users)
    _collect_less()
    try:
        if demo_users:
            for name, groups, publisher in DEMO_USERS:
                what = "publisher role" if publisher else f"group {', '.join(groups)}"
                _say(f"demo user {name} ({what}), password {DEMO_PASSWORD!r}")
        _say(f"Tray Notifier announcement server listening on {runtime.url}")
        await stop.wait()
        log.info("stopping: closing every stream")
    finally:
        await runtime.stop()
    return EXIT_OK


# the cyclic garbage collector of the server process: objects allocated (less freed) before a
# young collection, and young collections before a middle one (the defaults: 700, 10)
GC_YOUNG, GC_MIDDLE = 50_000, 20


def _collect_less() -> None:
    """Tune the garbage collector for a process that holds tens of thousands of streams, each
    a few dozen long-lived objects. With the defaults, opening streams while 10,000 are held
    spent 63 µs per open collecting (460 young and 42 middle collections and a full one in a
    burst of 4,000); with these, 13 µs. What the start made (modules, the application) is
    moved out of the collector's sight for good, so a full collection scans the streams only.
    Only ``python -m app server`` does this, never a process that embeds the server."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG, GC_MIDDLE, gc.get_threshold()[2])


def _say(text: str, *, err: bool = False) -> None:
    """One line for the person running the command (stdout, or stderr for errors), flushed."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()
