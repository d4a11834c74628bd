"""Starting and stopping one server: backend, signing key, aiohttp site. Used by
``python -m app server`` (``main.py``) and by :class:`~app.server.embedded.EmbeddedServer`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from app.config import Paths
from app.server.auth import TokenIssuer, hash_password, load_signing_key
from app.server.broker import Broker, User
from app.server.http import API, Api, ServerSettings, create_app
from app.server.redis_broker import RedisBroker, RedisSettings
from app.server.sqlite_broker import SqliteBroker

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo"  # noqa: S105 - the documented password of the demo accounts
DEMO_USERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("alice", ("it",), False),
    ("bob", ("hr",), False),
    ("publisher", (), True),
)


def default_data_dir() -> Path:
    """The server's folder: the app's data folder + ``/server`` (``TRAY_NOTIFIER_HOME`` aware)."""
    return Paths.default().data_dir / "server"


@dataclass(frozen=True, slots=True)
class ServerOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    db_path: Path | None = None  # default: data_dir / "server.db"
    redis_url: str | None = None  # set: the Redis Streams backend instead of SQLite
    settings: ServerSettings = field(default_factory=ServerSettings)
    access_log: bool = False

    @property
    def database(self) -> Path:
        return self.db_path or self.data_dir / "server.db"


def open_broker(options: ServerOptions) -> Broker:
    """The backend the options ask for: Redis Streams with ``redis_url``, else SQLite."""
    if options.redis_url is not None:
        return RedisBroker(RedisSettings.from_url(options.redis_url))
    return SqliteBroker(options.database)


def make_user(
    name: str, password: str, groups: Iterable[str] = (), publisher: bool = False
) -> User:
    """A user record with a fresh scrypt hash (slow on purpose: run it off the event loop)."""
    if not name.strip():
        raise ValueError("a user name must not be empty")
    if not password:
        raise ValueError("a password must not be empty")
    return User(name, hash_password(password), frozenset(groups), publisher)


async def save_user(
    broker: Broker, name: str, password: str, groups: Iterable[str] = (), publisher: bool = False
) -> User:
    loop = asyncio.get_running_loop()
    user = await loop.run_in_executor(None, make_user, name, password, tuple(groups), publisher)
    await broker.save_user(user)
    return user


async def create_demo_users(broker: Broker) -> list[User]:
    return [
        await save_user(broker, name, DEMO_PASSWORD, groups, publisher)
        for name, groups, publisher in DEMO_USERS
    ]


class Runtime:
    """One running server on the current event loop; build it with :meth:`start`."""

    def __init__(self, runner: web.AppRunner, broker: Broker, api: Api, port: int, host: str):
        self._runner = runner
        self.broker = broker
        self.api = api
        self.port = port
        self.host = host

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    async def start(cls, options: ServerOptions) -> Runtime:
        """Open the backend, load (or create) the signing key and listen."""
        key = load_signing_key(options.data_dir)
        broker = open_broker(options)
        try:
            await broker.start()
            app = create_app(
                broker, TokenIssuer(key, ttl=options.settings.token_ttl), options.settings
            )
            runner = web.AppRunner(
                app,
                access_log=logging.getLogger("aiohttp.access") if options.access_log else None,
                shutdown_timeout=5.0,
                handle_signals=False,
            )
            await runner.setup()
            site = web.TCPSite(runner, options.host, options.port, reuse_address=True)
            try:
                await site.start()
            except BaseException:
                await runner.cleanup()
                raise
        except BaseException:
            await broker.close()
            raise
        port = int(runner.addresses[0][1])
        log.info("announcement server listening on %s:%d", options.host, port)
        return cls(runner, broker, app[API], port, options.host)

    async def stop(self) -> None:
        """Close every stream (``event: close``, reason shutdown), the socket and the backend."""
        try:
            await self._runner.cleanup()
        finally:
            await self.broker.close()
