"""``python -m app server``: run the companion server, or ``add-user`` to manage accounts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from app.exit_codes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from app.server.config import HttpSettings, ServerConfig
from app.server.model import BrokerUnavailable
from app.server.runtime import (
    DEMO_PASSWORD,
    DEMO_USERS,
    Runtime,
    create_demo_users,
    open_broker,
    save_user,
)

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        config.redis()
    except ValueError as exc:
        _say(f"error: --redis: {exc}", err=True)
        return EXIT_USAGE
    try:
        if args.server_command == "add-user":
            return _add_user(args, config)
        return asyncio.run(_serve(config, demo_users=args.demo_users))
    except (OSError, BrokerUnavailable) as exc:
        hint = "; is redis-server running there?" if isinstance(exc, BrokerUnavailable) else ""
        _say(f"error: {exc}{hint}", err=True)
        return EXIT_FAILURE


def _config(args: argparse.Namespace) -> ServerConfig:
    """The command's options over the defaults (``app/cli.py`` takes its defaults from the
    same :class:`ServerConfig`)."""
    data_dir = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
    return ServerConfig(
        **data_dir,
        host=args.host,
        port=args.port,
        db_path=Path(args.db) if args.db else None,
        redis_url=args.redis or None,
        http=HttpSettings(token_ttl=args.token_ttl, ping_interval=args.ping_interval),
        access_log=True,
    )


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

    async def add() -> None:
        broker = open_broker(config)
        try:
            await save_user(broker, args.name, password, args.group, args.publisher)
        finally:
            await broker.close()

    asyncio.run(add())
    groups = ", ".join(args.group) or "none"
    role = "publisher" if args.publisher else "staff"
    where = "Redis" if config.redis_url else config.database
    _say(f"saved user {args.name} (groups: {groups}; role: {role}) in {where}")
    return EXIT_OK


async def _serve(config: ServerConfig, *, demo_users: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime = await Runtime.start(config)
    try:
        if demo_users:
            await create_demo_users(runtime.broker)
            for name, groups, publisher in DEMO_USERS:
                what = "publisher role" if publisher else f"group {', '.join(groups)}"
                _say(f"demo user {name} ({what}), password {DEMO_PASSWORD!r}")
        _say(f"Tray Notifier announcement server listening on {runtime.url}")
        await stop.wait()
        log.info("stopping: closing every stream")
    finally:
        await runtime.stop()
    return EXIT_OK


def _say(text: str, *, err: bool = False) -> None:
    """One line for the person running the command (stdout, or stderr for errors), flushed."""
    stream = sys.stderr if err else sys.stdout
    stream.write(text + "\n")
    stream.flush()
