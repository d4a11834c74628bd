"""Why a login failed, as a typed message the UI can word for people (no Qt here)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.core.config import ConfigError
from app.core.errors import (
    CertificateError,
    NotAnnouncementServer,
    NotFound,
    ProtocolError,
    ProxyAuthRequired,
    ProxyCredentialsRefused,
    ServerUnreachable,
    WrongCredentials,
    proxy_of,
)
from app.core.secrets import SecretStoreUnavailable


class FailureKind(enum.StrEnum):
    WRONG_CREDENTIALS = "wrong_credentials"
    UNREACHABLE = "unreachable"
    CERTIFICATE = "certificate"
    NOT_SERVER = "not_server"  # answered, but not like an announcement server
    PROXY_AUTH = "proxy_auth"  # the proxy on the way asked for credentials (HTTP 407)
    KEYRING = "keyring"  # logged in, but the tokens cannot be kept in the keyring
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class LoginFailure:
    """A failed login: its kind and the core's full message (already says what to do)."""

    kind: FailureKind
    message: str
    server_url: str = ""
    username: str = ""
    reason: str = ""  # the server's own words for a refusal, when it gave any
    proxy: str = ""  # PROXY_AUTH: the proxy that asked (its address, no credentials)
    proxy_refused: bool = False  # PROXY_AUTH: it refused the stored proxy credentials


_KINDS: tuple[tuple[type[Exception], FailureKind], ...] = (
    (WrongCredentials, FailureKind.WRONG_CREDENTIALS),
    (ProxyAuthRequired, FailureKind.PROXY_AUTH),
    (CertificateError, FailureKind.CERTIFICATE),
    (ServerUnreachable, FailureKind.UNREACHABLE),
    (NotAnnouncementServer, FailureKind.NOT_SERVER),
    (NotFound, FailureKind.NOT_SERVER),
    (ProtocolError, FailureKind.NOT_SERVER),
    (SecretStoreUnavailable, FailureKind.KEYRING),
    (ConfigError, FailureKind.OTHER),
)


def classify(exc: Exception, *, server_url: str = "", username: str = "") -> LoginFailure:
    """The LoginFailure for an exception raised by a login attempt."""
    kind = next((k for t, k in _KINDS if isinstance(exc, t)), FailureKind.OTHER)
    reason = exc.reason if isinstance(exc, WrongCredentials) else ""
    message = str(exc) or type(exc).__name__
    refused = isinstance(exc, ProxyCredentialsRefused)
    return LoginFailure(kind, message, server_url, username, reason, proxy_of(exc), refused)
