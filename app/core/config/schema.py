"""The settings as typed, immutable values: :class:`Config` and its sections.

Each field of :class:`Config` is a setting (a section's fields are ``section.name``), except
those marked ``origin`` in their metadata. The table of settings by dotted key, with their
parsers and checks, is derived from these dataclasses (:mod:`app.core.config.values`): a new
field is a new setting, read, checked and saved with no other change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from app.core.model import Priority

#: the environment variables that set one setting each, for this run only (never saved)
ENVIRONMENT: Mapping[str, str] = {
    "TRAY_NOTIFIER_SERVER": "server_url",
    "SSE_HEARTBEAT_TIMEOUT": "stream.heartbeat_timeout",
}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
AUTH_STYLES = ("companion", "token", "oidc")
#: ``[auth] bearer`` with ``style = "oidc"``: the companion server's own session, or the
#: provider's access token (a backend that trusts the provider)
BEARERS = ("session", "access_token")
#: the scopes a sign-in asks for unless ``[auth] scopes`` (or the server) says otherwise
DEFAULT_SCOPES = ("openid", "profile", "email", "offline_access")
BODY_FORMATS = ("text", "html")


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Server paths, as templates, so the tray works against an existing Spring-style backend."""

    login: str = "/auth/login"
    refresh: str = "/auth/refresh"
    logout: str = "/auth/logout"
    connect: str = "/sse/connect/{user_id}"
    close: str = "/sse/close/{user_id}"
    close_method: str = "POST"
    announcements: str = "/announcements"  # GET: catch-up and history; POST: publish
    # the batched receipts (delivered, displayed, read, acknowledged); "": this backend has none
    receipts: str = "/receipts"
    # one acknowledgement; "": this backend has none (acknowledged on this computer only)
    ack: str = "/announcements/{id}/ack"


@dataclass(frozen=True, slots=True)
class StreamSettings:
    heartbeat_timeout: float = 45.0  # no byte for this long: drop and reconnect
    connect_timeout: float = 10.0
    max_event_bytes: int = 8 * 1024 * 1024  # data bytes of one event; larger ones are dropped
    send_last_event_id_query: bool = False  # also send lastEventId=... (event-source-polyfill)
    ca_bundle: str = ""  # PEM file of a private certificate authority; verification stays on


#: ``[network] proxy``: beside these, a proxy's URL (``http://proxy.example.org:3128``)
PROXY_MODES = ("system", "none")
#: ``[network] pac_url``: beside a URL, WPAD discovery
PAC_AUTO = "auto"


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """``[network]``: how the tray reaches its servers (docs/network.md).

    ``proxy``: ``"system"`` (``pac_url`` when set, else the environment variables, else the
    OS settings, with their exclusions), ``"none"`` (always direct), or a proxy's URL (for
    every address, loopback included; exclusions from ``NO_PROXY`` only). ``pac_url``: a
    proxy auto-config file's URL, or ``"auto"`` for WPAD discovery; used with ``"system"``.
    """

    proxy: str = "system"
    pac_url: str = ""


@dataclass(frozen=True, slots=True)
class OkTest:
    """A login reply is a success only when the JSON Pointer ``pointer`` finds ``value``."""

    pointer: str
    value: Any


def _default_login_body() -> dict[str, Any]:
    return {"username": "{username}", "password": "{password}"}


@dataclass(frozen=True, slots=True, eq=True)
class AuthProfile:
    """``[auth]``: how to log in. ``companion`` (our ``/auth/*`` API, the ``[endpoints]``
    login, refresh and logout paths), ``token``: any login endpoint that answers JSON with a
    token, read with JSON Pointers (see docs/existing-backend.md), or ``oidc``: the
    organisation's identity provider (single sign-on, :mod:`app.core.oidc`).

    With ``oidc``: ``issuer`` and ``client_id`` name the provider (empty: the server's
    ``/auth/config`` says them), ``scopes`` are asked for (the default: the server's, else
    :data:`DEFAULT_SCOPES`), ``redirect_ports`` are where the browser's redirect comes back,
    and ``bearer`` says what the server takes: ``session`` (the companion server's own
    tokens, ``POST /auth/oidc``) or ``access_token`` (the provider's, renewed at the provider;
    the user id then comes from ``user_id``, a JSON Pointer into the ID token's claims, or
    the ``preferred_username`` claim when it is empty).
    """

    style: str = "companion"
    login_path: str = "/login"
    login_body: dict[str, Any] = field(default_factory=_default_login_body)
    token: str = "/token"  # noqa: S105 - a JSON Pointer to the access token, not a secret
    ok: OkTest | None = None  # the reply is a success only when this holds
    message: str = ""  # JSON Pointer to the backend's own words when login fails
    user_info_path: str = ""  # a GET with the token whose reply holds the user id
    user_id: str = ""  # JSON Pointer to the user id; empty: the user name
    relogin: bool = False  # on 401 log in again with the password kept in the keyring
    # style "oidc" (and a companion server that offers single sign-on)
    issuer: str = ""  # the identity provider; empty: the server's /auth/config names it
    client_id: str = ""  # the tray's registration at the provider; empty: the server's
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    redirect_ports: str = "0"  # "0": any free port; "53100" or "53100-53109"
    bearer: str = "session"  # "session" or "access_token"

    __hash__ = None  # type: ignore[assignment]  # holds a table

    @property
    def refusal_pointer(self) -> str:
        """Where an HTTP 200 answer says its token was refused (``{"code": 401}``): the ``ok``
        test's pointer, else ``/code`` (Spring's and RuoYi's envelope)."""
        return self.ok.pointer if self.ok is not None else "/code"

    def describe(self) -> str:
        """One line for people: which server type is configured."""
        if self.style == "token":
            return f"token login ({self.login_path})"
        if self.style == "oidc":
            return f"organisation sign-in ({self.issuer or 'the provider the server names'})"
        return "companion"

    @property
    def provider_bearer(self) -> bool:
        """The backend takes the identity provider's access token (``style = "oidc"`` with
        ``bearer = "access_token"``): renewed and revoked at the provider."""
        return self.style == "oidc" and self.bearer == "access_token"


@dataclass(frozen=True, slots=True)
class PayloadProfile:
    """``[payload]``: JSON Pointers into an event's data; all empty: the companion format."""

    id: str = ""
    title: str = ""
    body: str = ""
    priority: str = ""
    priorities: dict[str, Priority] = field(default_factory=dict)  # backend value -> ours
    url: str = ""
    body_format: str = "text"  # "text" or "html": turned into plain text, never rendered

    __hash__ = None  # type: ignore[assignment]  # holds a table

    @property
    def is_set(self) -> bool:
        """True when any pointer is set (or HTML bodies): the profile reads the data."""
        pointers = (self.id, self.title, self.body, self.priority, self.url)
        return any(pointers) or self.body_format != "text"


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # spans midnight


@dataclass(frozen=True, slots=True)
class Config:
    """The settings. Each field is a setting, except those marked ``origin`` in their metadata:
    they say where values came from and are never written to a file."""

    server_url: str = ""
    username: str = ""
    # addresses the same server had before (IT moved it): a login and a history kept under one
    # of them move to ``server_url`` at the next start, once (app/core/relocation.py)
    previous_server_urls: tuple[str, ...] = ()
    endpoints: Endpoints = field(default_factory=Endpoints)
    stream: StreamSettings = field(default_factory=StreamSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    auth: AuthProfile = field(default_factory=AuthProfile)
    payload: PayloadProfile = field(default_factory=PayloadProfile)
    # tray
    start_at_login: bool = False
    do_not_disturb: bool = False
    quiet_hours: QuietHours | None = None
    toast_min_priority: Priority = Priority.LOW  # priorities below this do not pop up
    # a toast waits this long for more arrivals, so a burst gives one summary (urgent: never)
    toast_settle_ms: int = 300
    language: str = ""  # "" follows the system; "en" or "zh_CN"
    retention_days: int = 90
    log_level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR or CRITICAL
    # where values came from
    locked: frozenset[str] = field(default=frozenset(), metadata={"origin": True})
    """Settings IT locked in a system layer: dotted keys (``stream.ca_bundle``) or sections."""
    environment: frozenset[str] = field(default=frozenset(), metadata={"origin": True})
    """Settings an environment variable set for this run (dotted keys)."""
    problems: tuple[str, ...] = field(default=(), metadata={"origin": True})
    """What could not be used in a system layer (IT's file): each setting named there fell
    back to the layer below it; the tray says so (tooltip, log) and keeps running."""

    def with_changes(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    def is_locked(self, key: str) -> bool:
        """True when IT locked the setting ``key`` (like ``stream.ca_bundle``) or its section."""
        return lock_for(self.locked, key) is not None

    def set_by_environment(self, key: str) -> str | None:
        """The environment variable that set ``key`` for this run, or None."""
        if key not in self.environment:
            return None
        return next((var for var, k in ENVIRONMENT.items() if k == key), None)


def lock_for(locked: frozenset[str], key: str) -> str | None:
    """The lock entry covering ``key`` (the key itself or its section), or None."""
    if key in locked:
        return key
    section = key.partition(".")[0]
    return section if section in locked else None
