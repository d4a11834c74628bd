"""Starting and stopping one server: backend, signing key, aiohttp site. Used by
``python -m app server`` (``main.py``) and by :class:`~app.server.embedded.EmbeddedServer`."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import ssl
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from aiohttp import web, web_response

from app.server.api import API, Api
from app.server.application import create_app
from app.server.auth import (
    TokenIssuer,
    hash_password,
    load_signing_key,
    save_signing_key,
    verify_password,
)
from app.server.broker import REMEMBER, Broker
from app.server.config import SIGNING_KEY_FILE, ServerConfig
from app.server.connections import (
    ConnectionGuard,
    RepeatLog,
    RequestErrorLog,
    default_cap,
    loop_exception_handler,
    raise_fd_limit,
)
from app.server.directory import DirectorySync
from app.server.model import User
from app.server.oidc import IdTokenVerifier
from app.server.schedule import Scheduler
from app.server.sqlite_broker import SqliteBroker

log = logging.getLogger(__name__)


class MissingExtra(Exception):
    """An option needs an optional dependency that is not installed; the message says which
    extra to install."""


SERVER_NAME = "tray-notifier"  # the Server header of every answer
DEMO_PASSWORD = "demo"  # noqa: S105 - the documented password of the demo accounts
DEMO_USERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("alice", ("it",), False),
    ("bob", ("hr",), False),
    ("publisher", (), True),
)


def open_broker(config: ServerConfig, *, session_memory: float = REMEMBER) -> Broker:
    """The backend the config asks for: Redis Streams with ``redis_url``, else SQLite, built
    with how long it remembers a publish's idempotency key (``config.http.idempotency_ttl``)
    and an ended session (``session_memory``). A running server passes its access token
    lifetime and a minute (every token of the session has expired by then); the offline
    commands (``add-user``, ``end-sessions``) keep the default day, as they cannot know the
    token lifetime of the servers that read what they write."""
    idempotency_ttl = config.http.idempotency_ttl
    redis = config.redis()
    if redis is not None:
        try:
            from app.server.redis_broker import RedisBroker  # the optional "redis" extra
        except ModuleNotFoundError as exc:
            if exc.name is None or not exc.name.startswith("redis"):
                raise
            raise MissingExtra(
                "the Redis backend needs the redis package: pip install 'tray-notifier[redis]'"
            ) from None
        return RedisBroker(redis, session_memory=session_memory, idempotency_ttl=idempotency_ttl)
    return SqliteBroker(
        config.database, session_memory=session_memory, idempotency_ttl=idempotency_ttl
    )


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
) -> tuple[User, bool]:
    """Create the user, or update it; the user and whether its sessions were ended. A new
    password ends every login session of an existing user, on every server process (as
    :func:`end_sessions`): whoever knew the old one is out. ValueError when ``name`` is a
    person of the identity provider's (never merged with a local account)."""
    loop = asyncio.get_running_loop()
    old = await broker.get_user(name)
    if old is not None and old.subject:
        raise ValueError(
            f"{name} is a person of the identity provider (they sign in with their organisation"
            " account): a local account needs another name"
        )
    if old is not None and old.directory:
        raise ValueError(
            f"{name} is a person of the organisation's directory (LDAP): a local account needs"
            " another name (docs/directory.md)"
        )
    user = await loop.run_in_executor(None, make_user, name, password, tuple(groups), publisher)
    await broker.save_user(user)
    changed = old is not None and not await loop.run_in_executor(
        None, verify_password, password, old.password_hash
    )
    if changed:
        await end_sessions(broker, name)
    return user, changed


async def end_sessions(broker: Broker, name: str) -> None:
    """End every login session of ``name`` on every server process, running or not: its
    refresh tokens are revoked, its access tokens refused and its streams closed (within a
    second on a running SQLite server; at once through Redis)."""
    await broker.end_user_sessions(name, now=time.time())
    log.info("every login session of %r ended", name)


async def agree_signing_key(
    broker: Broker, data_dir: Path, local: bytes, *, created: bool = False
) -> bytes:
    """The token signing key of this process: its own ``local`` one (``data_dir/signing.key``;
    ``created``: just made by this start), unless the backend is shared by several processes
    that already agreed on another (Redis: the first process to start put its key there).
    Then the shared key wins: it replaces the local file, which stays a copy of it (should
    Redis lose it, the next process to start puts the same key back), and a log line says so.
    A process that kept its own key instead would issue tokens every other process refuses
    with 401, silently."""
    path = data_dir / SIGNING_KEY_FILE
    shared = await broker.shared_signing_key(local)
    if shared != local:
        save_signing_key(data_dir, shared)
        if not created:
            log.warning(
                "the token signing key in %s is not the one the other server processes on"
                " this Redis use: using theirs, now also saved in that file (access tokens"
                " this process signed with its old key are refused; clients refresh them)",
                path,
            )
        else:
            log.info("using the token signing key shared through Redis (a copy in %s)", path)
    return shared


async def create_demo_users(broker: Broker) -> list[User]:
    return [
        (await save_user(broker, name, DEMO_PASSWORD, groups, publisher))[0]
        for name, groups, publisher in DEMO_USERS
    ]


class Runtime:
    """One running server on the current event loop; build it with :meth:`start`."""

    def __init__(
        self,
        runner: web.AppRunner,
        server: asyncio.AbstractServer,
        broker: Broker,
        api: Api,
        guard: ConnectionGuard,
        *,
        port: int,
        host: str,
        tls: bool,
    ):
        self._runner = runner
        self._server = server
        self.broker = broker
        self.api = api
        self.guard = guard
        self.port = port
        self.host = host
        self.tls = tls
        self._directory_task: asyncio.Task[None] | None = None
        # sends scheduled announcements at their time (app/server/schedule.py)
        self.scheduler: Scheduler | None = None
        self._schedule_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @classmethod
    async def start(
        cls,
        config: ServerConfig,
        *,
        clock: Callable[[], float] = time.time,
        demo_users: bool = False,
    ) -> Runtime:
        """Open the backend, load (or create) the signing key and listen; then create the demo
        users if asked, and only then report ready on ``/healthz``. ``clock`` (epoch seconds)
        issues and checks the tokens (tests pass one they move on by hand)."""
        settings = config.http
        ssl_context = tls_context(config)  # a bad certificate stops here, before anything
        private_dir(config.data_dir)
        created = not (config.data_dir / SIGNING_KEY_FILE).exists()
        local_key = load_signing_key(config.data_dir)  # a damaged one stops the start here
        fd_limit = raise_fd_limit()
        backlog = min(settings.backlog, max(fd_limit // 8, 8)) if fd_limit else settings.backlog
        cap = default_cap(fd_limit, settings.fd_reserve + backlog)
        if settings.max_connections is not None:
            if settings.max_connections > cap:
                log.warning(
                    "max_connections %d is too close to the open-file limit %s: using %d",
                    settings.max_connections,
                    fd_limit,
                    cap,
                )
            cap = min(cap, settings.max_connections)
        loop = asyncio.get_running_loop()
        if config.ldap is not None:
            _need_ldap3()
        # every answer's Server header, the ones aiohttp writes itself (a malformed request's
        # 400) included: it names no Python, aiohttp or program version to help an attacker
        web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined] # read there
        repeat_log = RepeatLog(log, interval=settings.log_interval)
        loop.set_exception_handler(loop_exception_handler(repeat_log))
        # every token of a session has expired a minute after its lifetime
        broker = open_broker(config, session_memory=settings.token_ttl + 60)
        try:
            await broker.start()
            key = await agree_signing_key(broker, config.data_dir, local_key, created=created)
            issuer = TokenIssuer(key, ttl=settings.token_ttl, clock=clock)
            directory = (
                DirectorySync(broker, config.ldap, clock=clock) if config.ldap is not None else None
            )
            # the guard first: the application counts its streams in it; it is attached to
            # the runner's server below, once the runner has made one
            guard = ConnectionGuard(
                cap=cap,
                header_timeout=settings.header_timeout,
                retry_after=settings.retry_after,
                repeat_log=repeat_log,
                request_reserve=settings.request_reserve,
            )
            app = create_app(
                broker,
                issuer,
                settings,
                clock=clock,
                cors_origins=config.cors_origins,
                metrics_token=config.metrics_token,
                guard=guard,
                oidc=IdTokenVerifier(config.oidc, clock=clock) if config.oidc else None,
                directory=directory,
            )
            runner = web.AppRunner(
                app,
                access_log=access_log(config),
                shutdown_timeout=settings.shutdown_timeout,
                handle_signals=False,
                keepalive_timeout=settings.keepalive_timeout,
                lingering_time=settings.lingering_time,
                logger=RequestErrorLog(repeat_log),
            )
            await runner.setup()
            assert runner.server is not None
            guard.attach(runner.server)
            try:
                server = await loop.create_server(
                    guard,
                    config.host,
                    config.port,
                    ssl=ssl_context,
                    reuse_address=True,
                    reuse_port=config.shares_port or None,
                    backlog=backlog,
                )
            except BaseException:
                await runner.cleanup()
                raise
        except BaseException:
            await broker.close()
            raise
        deepen_listen_queue(server, settings.listen_queue)
        port = int(server.sockets[0].getsockname()[1])
        log.info(
            "announcement server listening on %s:%d (%s; at most %d connections, fd limit %s%s)",
            config.host,
            port,
            "HTTPS" if ssl_context else "HTTP",
            cap,
            fd_limit,
            "; the port is shared with the other processes (SO_REUSEPORT)"
            if config.shares_port
            else "",
        )
        if ssl_context is None and not is_loopback(config.host):
            log.warning(
                "serving plain HTTP on %s, which is not a loopback address: passwords and"
                " tokens cross the network readable by anyone on the path. Give --tls-cert and"
                " --tls-key, or put a TLS reverse proxy in front (docs/security.md)",
                config.host,
            )
        runtime = cls(
            runner,
            server,
            broker,
            app[API],
            guard,
            port=port,
            host=config.host,
            tls=ssl_context is not None,
        )
        try:
            if demo_users:
                await create_demo_users(broker)
            if directory is not None:
                # the first sync before "ready" (unless another process on this backend did
                # one within the interval); a directory that cannot be read only warns
                await directory.tick()
                runtime._directory_task = loop.create_task(directory.run(), name="directory")
        except BaseException:
            await runtime.stop()
            raise
        runtime.scheduler = Scheduler(
            runtime.broker, runtime.api.publish_payload, clock=clock, settings=settings
        )
        runtime._schedule_task = loop.create_task(runtime.scheduler.run(), name="schedule")
        runtime.api.ready = True
        return runtime

    async def stop(self) -> None:
        """Close every stream (``event: close``, reason shutdown), the socket and the backend."""
        if self._schedule_task is not None:
            self._schedule_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._schedule_task
        if self._directory_task is not None:
            self._directory_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._directory_task
        try:
            self._server.close()
            await self._runner.cleanup()
        finally:
            await self.broker.close()


def _need_ldap3() -> None:
    """The directory (``--ldap-url``) needs the optional ``ldap`` extra."""
    from app.server.directory import load_ldap3

    try:
        load_ldap3()
    except ModuleNotFoundError:
        raise MissingExtra(
            "the directory (--ldap-url) needs the ldap3 package: pip install 'tray-notifier[ldap]'"
        ) from None


def access_log(config: ServerConfig) -> logging.Logger | None:
    """aiohttp's access logger when the config asks for it and its lines would be written:
    aiohttp builds a formatter for every connection while it has one, a stream's too."""
    logger = logging.getLogger("aiohttp.access")
    return logger if config.access_log and logger.isEnabledFor(logging.INFO) else None


def deepen_listen_queue(server: asyncio.Server, depth: int) -> None:
    """Let the kernel hold ``depth`` connections not yet accepted on each listening socket.

    asyncio gives ``listen()`` the same number it accepts per wake-up (``backlog``), which
    also decides how many descriptors the cap keeps free; the queue can be deeper without
    taking a descriptor. ``listen()`` again on the same socket (through a duplicate of its
    descriptor, closed at once) changes only the queue's depth."""
    for listening in server.sockets:
        with socket.socket(fileno=os.dup(listening.fileno())) as sock:
            sock.listen(depth)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server's TLS context from ``tls_cert``/``tls_key``; None without them. A file that
    cannot be read or does not match raises ValueError naming it."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot use the TLS certificate {config.tls_cert} with the key {config.tls_key}:"
            f" {exc}. Give a PEM certificate (chain) and its PEM private key"
        ) from None
    return context


def private_dir(path: Path) -> None:
    """Create ``path`` (and parents) and make it 0700 whatever the umask: it holds the
    signing key, the database and its WAL."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) != 0o700:
        path.chmod(0o700)
