"""Starting and stopping one server: backend, signing key, aiohttp site. Used by
``python -m app server`` (``main.py``) and by :class:`~app.server.embedded.EmbeddedServer`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from aiohttp import web

from app.server.auth import TokenIssuer, hash_password, load_signing_key
from app.server.broker import Broker
from app.server.config import ServerConfig
from app.server.http import API, Api, create_app
from app.server.model import User
from app.server.redis_broker import RedisBroker
from app.server.sqlite_broker import SqliteBroker

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo"  # noqa: S105 - the documented password of the demo accounts
DEMO_USERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("alice", ("it",), False),
    ("bob", ("hr",), False),
    ("publisher", (), True),
)


def open_broker(config: ServerConfig) -> Broker:
    """The backend the config asks for: Redis Streams with ``redis_url``, else SQLite."""
    redis = config.redis()
    if redis is not None:
        return RedisBroker(redis)
    return SqliteBroker(config.database)


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
    async def start(
        cls, config: ServerConfig, *, clock: Callable[[], float] = time.time
    ) -> Runtime:
        """Open the backend, load (or create) the signing key and listen. ``clock`` (epoch
        seconds) issues and checks the tokens (tests pass one they move on by hand)."""
        key = load_signing_key(config.data_dir)
        broker = open_broker(config)
        settings = config.http
        try:
            await broker.start()
            issuer = TokenIssuer(key, ttl=settings.token_ttl, clock=clock)
            app = create_app(broker, issuer, settings, clock=clock)
            runner = web.AppRunner(
                app,
                access_log=logging.getLogger("aiohttp.access") if config.access_log else None,
                shutdown_timeout=settings.shutdown_timeout,
                handle_signals=False,
            )
            await runner.setup()
            site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
            try:
                await site.start()
            except BaseException:
                await runner.cleanup()
                raise
        except BaseException:
            await broker.close()
            raise
        port = int(runner.addresses[0][1])
        log.info("announcement server listening on %s:%d", config.host, port)
        return cls(runner, broker, app[API], port, config.host)

    async def stop(self) -> None:
        """Close every stream (``event: close``, reason shutdown), the socket and the backend."""
        try:
            await self._runner.cleanup()
        finally:
            await self.broker.close()
