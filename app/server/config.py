"""The server's configuration, typed, in one place: every default and every tuning value of
``app/server`` is written here once.

- :class:`ServerConfig`: where to listen, where state lives, the backend; the ``server``
  command's options (``app/cli.py`` takes its defaults from here), ``EmbeddedServer`` and
  ``Runtime`` build and read it.
- :class:`HttpSettings`: tokens, the stream (ping, retry, queue bound, replay page) and request
  limits, read by the HTTP layer (``app/server/api.py``, ``streams.py``, ``bodies.py``).
- :class:`RedisSettings`: the Redis Streams backend (retention, timeouts, the fan-out loop).

The server's data folder is its own (:func:`default_data_dir`); it does not read the tray's
configuration.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import platformdirs

from app import APP_ID

# the tray's variable too: one folder for everything of a test or a portable install
HOME_VARIABLE = "TRAY_NOTIFIER_HOME"
SIGNING_KEY_FILE = "signing.key"
DATABASE_FILE = "server.db"
SQLITE_BUSY_TIMEOUT_MS = 5000  # a writer waits this long for another's lock


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$TRAY_NOTIFIER_HOME/data/server`` when that is set, else the user data folder of the
    platform (``~/.local/share/tray-notifier/server`` on Linux)."""
    env = os.environ if environ is None else environ
    home = env.get(HOME_VARIABLE)
    if home:
        return Path(home) / "data" / "server"
    return Path(platformdirs.user_data_dir(APP_ID, appauthor=False)) / "server"


def check_origin(origin: str) -> str:
    """A web origin as browsers send it (``scheme://host[:port]``, the host in lower case and
    punycode); ValueError otherwise. A wildcard (``*``, ``https://*.example.org``) is refused:
    the server answers with credentials allowed, so every origin is named."""
    parts = urlsplit(origin)
    if (
        "*" in origin
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or not _is_host(parts.hostname)
        or parts.path
        or parts.query
        or parts.fragment
        or origin != f"{parts.scheme}://{parts.netloc}"
    ):
        raise ValueError(
            f"{origin!r} is not a web origin like https://intranet.example.org or"
            " http://127.0.0.1:8000 (no path, no trailing slash, no wildcard)"
        )
    return origin


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _is_host(host: str) -> bool:
    """A DNS name (lower case, punycode) or an IP address, as an Origin header carries it."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOST_NAME.fullmatch(host) is not None
    return True


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """Tunables of the HTTP layer (defaults are the production values)."""

    token_ttl: float = 900.0  # access token lifetime, seconds (--token-ttl)
    refresh_ttl: float = 30 * 86400.0  # refresh token lifetime, seconds
    ping_interval: float = 15.0  # a ": ping" comment after this long without a write
    retry_ms: int = 3000  # the stream's "retry:" advice
    # after a shutdown, the clients of the closed streams are asked to come back spread over
    # a window of one second per this many streams, at most return_window seconds
    # (app/server/returns.py)
    return_rate: float = 1000.0
    return_window: float = 20.0
    queue_size: int = 256  # deliveries a stream may fall behind before it is dropped
    replay_limit: int = 1000  # announcements replayed on connect, then "event: sync"
    replay_write_batch: int = 64  # replayed events per write to the socket
    list_limit: int = 100  # GET /announcements without ?limit=
    list_max: int = 1000  # the largest ?limit=
    max_body: int = 64 * 1024  # request body, bytes
    # a live stream's socket buffer below this takes deliveries straight from the hub
    # (asyncio's default high-water mark); above it they queue, and the stream's task waits
    direct_write_limit: int = 64 * 1024
    ping_batch: int = 500  # streams pinged between two yields to the event loop
    retry_after: int = 5  # seconds, the Retry-After of a 503 (backend unreachable)
    shutdown_timeout: float = 5.0  # seconds for open requests to finish on stop
    # connections (app/server/connections.py)
    max_connections: int | None = None  # open connections; None: below the fd limit
    # streams never take the last connections: a twentieth of the cap (at least 2) stays for
    # logins, publishes and health checks
    request_reserve: float = 0.05
    # one user's (or one login session's) open streams on a process; a new one beyond ends
    # that user's (that session's) oldest, with reason "replaced"
    max_streams_per_user: int = 8
    max_streams_per_session: int = 4
    fd_reserve: int = 64  # fds kept free under the limit by the cap (files, Redis pool)
    backlog: int = 128  # connections accepted per wake-up (at most an eighth of the fd
    # limit): kept free under the limit too, as closes land just after
    # connections the kernel holds until they are accepted (the listen queue; the kernel
    # bounds it by net.core.somaxconn): a fleet coming back after a restart waits there,
    # where with a queue of `backlog` the kernel dropped its handshakes and every client
    # tried again 1, 3, 7 seconds later in step, the processes idle in between
    listen_queue: int = 4096
    header_timeout: float = 10.0  # a new connection's request must arrive (headers) in this
    body_timeout: float = 10.0  # a request body must arrive in this
    keepalive_timeout: float = 15.0  # an idle kept-alive (non-stream) connection is closed
    lingering_time: float = 1.0  # after answering early, the rest of a body is read this long
    log_interval: float = 60.0  # a repeating error is logged once per interval, with a count
    # login throttling (app/server/throttle.py): per account and per client address
    login_free_failures: int = 5  # failures in a row before any wait
    login_backoff: float = 1.0  # the first wait, seconds; doubles with each further failure
    login_backoff_max: float = 300.0  # the longest wait (never a permanent lockout)
    login_forget: float = 3600.0  # failures older than this are forgotten
    login_address_failures: int = 20  # an address's failures (any account) before it waits
    idempotency_ttl: float = 86400.0  # seconds a publish's Idempotency-Key is remembered
    # the communications officer's tools (app/server/officer.py, app/server/schedule.py)
    schedule_interval: float = 1.0  # seconds between two looks for due scheduled announcements
    schedule_lease: float = 60.0  # a process sending a due one holds it this long at most
    schedule_horizon: float = 366 * 86400.0  # seconds ahead an announcement may be scheduled
    saved_forms_max: int = 500  # drafts per publisher, and templates in all


@dataclass(frozen=True, slots=True)
class RedisSettings:
    """Where Redis is and how the backend uses it.

    Retention keeps about ``maxlen`` announcements, or with ``max_age`` (seconds) those younger
    than that; a client that was away longer than the retention replays what is left.
    """

    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "tray-notifier:"
    maxlen: int = 100_000
    max_age: float | None = None
    timeout: float = 5.0  # every command, and connecting
    pool_timeout: float = 30.0  # waiting for a free pooled connection (queueing in a storm)
    block_ms: int = 1000  # one XREAD BLOCK; must be well under ``timeout``
    batch: int = 500  # entries per XREAD
    max_connections: int = 64
    control_maxlen: int = 10_000  # the control stream is trimmed to about this many entries
    backoff_min: float = 0.05  # the fan-out loop's first wait after losing Redis, seconds
    backoff_max: float = 2.0  # ... doubling up to this
    page_min: int = 64  # entries per XRANGE page of a listing or replay
    page_max: int = 1000

    def __post_init__(self) -> None:
        if self.block_ms / 1000 >= self.timeout:
            raise ValueError("block_ms must be shorter than the command timeout")
        if self.maxlen < 1 or (self.max_age is not None and self.max_age <= 0):
            raise ValueError("the retention (maxlen, max_age) must be positive")

    @classmethod
    def from_url(cls, url: str) -> RedisSettings:
        """Settings from ``redis://HOST:PORT/DB?maxlen=N&max_age=S&prefix=P&timeout=S`` (these
        query options are this backend's; any other is passed on to redis-py)."""
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("the Redis URL must start with redis://, rediss:// or unix://")
        ours = {"maxlen", "max_age", "prefix", "timeout"}
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = dict(q for q in query if q[0] in ours)
        rest = urlencode([q for q in query if q[0] not in ours])
        chosen: dict[str, Any] = {}
        try:
            if "prefix" in options:
                chosen["prefix"] = options["prefix"]
            if "maxlen" in options:
                chosen["maxlen"] = int(options["maxlen"])
            if "max_age" in options:
                chosen["max_age"] = float(options["max_age"])
            if "timeout" in options:
                chosen["timeout"] = float(options["timeout"])
            return cls(url=urlunsplit(parts._replace(query=rest)), **chosen)
        except ValueError as exc:
            raise ValueError(f"bad Redis URL option: {exc}") from None

    @property
    def where(self) -> str:
        """``host:port`` for messages: never the whole URL, which may hold a password."""
        parts = urlsplit(self.url)
        return parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"


DEFAULT_OIDC_SCOPES = ("openid", "profile", "email", "offline_access")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: the only hosts an ``http://`` issuer may name."""
    if host.lower() in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """The organisation's OpenID provider (DESIGN.md "Single sign-on"), from ``--oidc-*``.

    ValueError at construction names the option that is wrong: the server then does not start.
    """

    issuer: str  # exact, as the provider's discovery document and ID tokens say it
    client_id: str  # the tray's registration (a public native client)
    console_client_id: str = ""  # the console's (a public web client); "": the console has none
    username_claim: str = "preferred_username"
    groups_claim: str = "groups"
    publisher_groups: tuple[str, ...] = ()  # a person in any of these publishes
    password_login: bool = True  # False: /auth/login refuses; SSO is the only way in
    scopes: tuple[str, ...] = DEFAULT_OIDC_SCOPES
    leeway: float = 60.0  # seconds of clock difference allowed on exp and nbf
    max_age: float = 600.0  # an ID token issued longer ago than this is refused
    jwks_refetch: float = 60.0  # an unknown kid fetches the keys again at most this often
    timeout: float = 10.0  # seconds for the discovery document and the keys

    def __post_init__(self) -> None:
        parts = urlsplit(self.issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"--oidc-issuer {self.issuer!r} is not a URL like"
                " https://login.example.org/realms/staff"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"--oidc-issuer {self.issuer!r} must have no query or fragment")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"--oidc-issuer {self.issuer!r} is not https://: an identity provider is only"
                " trusted over TLS (plain http is allowed on a loopback address for tests)"
            )
        if not self.client_id.strip():
            raise ValueError("--oidc-client-id is needed with --oidc-issuer (the tray's client id)")
        if not self.username_claim or not self.groups_claim:
            raise ValueError("--oidc-username-claim and --oidc-groups-claim must not be empty")

    @property
    def audiences(self) -> tuple[str, ...]:
        """The client ids an ID token may be issued to."""
        return tuple(c for c in (self.client_id, self.console_client_id) if c)


LDAP_LOGIN_ATTRIBUTES = ("uid", "sAMAccountName")
# the people and groups a directory holds, by its kind (the login attribute says which): OpenLDAP
# and FreeIPA, or Active Directory (whose disabled accounts are left out: a leaver's account is
# often disabled before it is deleted)
LDAP_USER_FILTERS = {
    "uid": "(objectClass=inetOrgPerson)",
    "sAMAccountName": "(&(objectCategory=person)(objectClass=user)"
    "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
}
LDAP_GROUP_FILTERS = {
    "uid": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))",
    "sAMAccountName": "(objectClass=group)",
}


@dataclass(frozen=True, slots=True)
class LdapSettings:
    """The organisation's directory (DESIGN.md "Directory"; docs/directory.md), from
    ``--ldap-*``. ValueError at construction names the option that is wrong: the server then
    does not start. The bind password is read from ``bind_password_file`` at each sync (never
    from the command line, never logged)."""

    url: str  # ldaps://dc1.example.org, or ldap://... (StartTLS unless on a loopback address)
    bind_dn: str
    bind_password_file: Path
    user_base: str
    group_base: str
    user_filter: str = ""  # "": the default for the login attribute (LDAP_USER_FILTERS)
    group_filter: str = ""  # "": the default (LDAP_GROUP_FILTERS)
    login_attribute: str = "uid"
    sync_interval: float = 900.0  # seconds between two syncs (and the start's, and on demand)
    timeout: float = 30.0  # seconds for connecting and for each answer of the directory
    page_size: int = 500  # entries per page of a paged search

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ValueError(
                f"--ldap-url {self.url!r} is not a directory address like"
                " ldaps://dc1.example.org or ldap://ldap.example.org:389"
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise ValueError(f"--ldap-url {self.url!r} has a bad port") from None
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(
                f"--ldap-url {self.url!r}: give only the scheme, host and port (the bases and"
                " filters have options of their own)"
            )
        for option, value in (
            ("--ldap-bind-dn", self.bind_dn),
            ("--ldap-user-base", self.user_base),
            ("--ldap-group-base", self.group_base),
        ):
            if "=" not in value:
                raise ValueError(
                    f"{option} {value!r} is not a distinguished name like"
                    " ou=people,dc=example,dc=org"
                )
        if self.login_attribute not in LDAP_LOGIN_ATTRIBUTES:
            raise ValueError(
                f"--ldap-login-attribute {self.login_attribute!r}: choose uid (OpenLDAP,"
                " FreeIPA) or sAMAccountName (Active Directory)"
            )
        for option, value in (
            ("--ldap-user-filter", self.user_filter),
            ("--ldap-group-filter", self.group_filter),
        ):
            if value and not _balanced_filter(value):
                raise ValueError(
                    f"{option} {value!r} is not an LDAP filter like (objectClass=inetOrgPerson)"
                )
        if not self.sync_interval > 0:
            raise ValueError("--ldap-sync-interval must be more than 0 seconds")

    @property
    def users(self) -> str:
        """The user filter in effect."""
        return self.user_filter or LDAP_USER_FILTERS[self.login_attribute]

    @property
    def groups(self) -> str:
        """The group filter in effect."""
        return self.group_filter or LDAP_GROUP_FILTERS[self.login_attribute]

    @property
    def active_directory(self) -> bool:
        return self.login_attribute == "sAMAccountName"

    @property
    def where(self) -> str:
        """``scheme://host:port`` for messages."""
        parts = urlsplit(self.url)
        default = 636 if parts.scheme == "ldaps" else 389
        return f"{parts.scheme}://{parts.hostname}:{parts.port or default}"

    def read_password(self) -> str:
        """The bind password: the file's first line. ValueError names the option when the
        file cannot be read or its first line is empty (the password itself is never said)."""
        path = self.bind_password_file
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ValueError(
                f"--ldap-bind-password-file {path}: cannot read it ({reason})"
            ) from None
        if not lines or not lines[0]:
            raise ValueError(f"--ldap-bind-password-file {path}: the first line is empty")
        return lines[0]


def _balanced_filter(text: str) -> bool:
    """A filter in parentheses whose parentheses balance (unescaped ones: RFC 4515 escapes
    them as \\28 and \\29); the directory checks the rest."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0 or (depth == 0 and i < len(text) - 1):
            return False
    return depth == 0


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One server: where it listens, where its state lives, and its tunables."""

    data_dir: Path = field(default_factory=default_data_dir)  # signing key (and the database)
    host: str = "127.0.0.1"  # loopback by default
    port: int = 8080  # 0: a free port
    db_path: Path | None = None  # default: data_dir / DATABASE_FILE
    redis_url: str | None = None  # set: the Redis Streams backend instead of SQLite
    http: HttpSettings = field(default_factory=HttpSettings)
    access_log: bool = False
    # web origins allowed to call the API and open streams (CORS); empty: none
    cors_origins: tuple[str, ...] = ()
    tls_cert: Path | None = None  # both set: serve HTTPS
    tls_key: Path | None = None
    metrics_token: str | None = None  # set: /metrics needs "Authorization: Bearer <it>"
    oidc: OidcSettings | None = None  # set: people sign in with the organisation's provider
    ldap: LdapSettings | None = None  # set: people and groups are read from the directory
    # several processes on one host share the port (SO_REUSEPORT: the kernel spreads the
    # connections); None: on with Redis on Linux, where every process serves every user, off
    # with SQLite, where a second process on the port is a mistake that must fail
    reuse_port: bool | None = None

    def __post_init__(self) -> None:
        for origin in self.cors_origins:
            check_origin(origin)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--tls-cert and --tls-key go together: give both or neither")
        if self.reuse_port and not hasattr(socket, "SO_REUSEPORT"):
            raise ValueError("--reuse-port: this system cannot share a port between processes")

    @property
    def database(self) -> Path:
        return self.db_path or self.data_dir / DATABASE_FILE

    @property
    def shares_port(self) -> bool:
        """Whether this process lets others of the same user share its port (SO_REUSEPORT)."""
        if self.reuse_port is not None:
            return self.reuse_port
        return self.redis_url is not None and sys.platform == "linux"

    def redis(self) -> RedisSettings | None:
        """The Redis backend's settings, or None for SQLite; a bad URL raises ValueError."""
        return RedisSettings.from_url(self.redis_url) if self.redis_url is not None else None
