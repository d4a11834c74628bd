"""The project's error tree: every error a person can meet, each saying what to do.

One module holds every class, so that callers catch by meaning (``except ServerUnreachable``)
and a new error has one obvious home. ``str(exc)`` is always a complete sentence for people;
messages never contain a token, a password or a URL query: they are shown and logged.

::

    TrayNotifierError
    ├── ConfigError            a setting holds a value we cannot use (also a ValueError)
    │   └── UnsafeConfigFile       a layer's file another local user could have written
    ├── LoginRequired          no usable login: log in (again)
    │   └── StoredPasswordRefused  the password kept for relogin no longer logs in
    ├── WrongCredentials       the server refused the user name and password
    ├── ServerUnreachable      no answer: network, address, or the server is down
    ├── CertificateError       TLS verification failed (add the organisation's CA bundle)
    ├── ProxyAuthRequired      the proxy asks for credentials (HTTP 407): proxy-login
    │   └── ProxyCredentialsRefused  it refused the stored ones (407 again with them)
    ├── NotAnnouncementServer  the server answered, but not like an announcement server
    ├── AccessDenied           HTTP 403: this account may not do that
    ├── NotFound               HTTP 404: the URL or an endpoint template is wrong
    ├── InputRefused           HTTP 400: the server refused what we sent (``field`` says where)
    ├── ProtocolError          the server broke the protocol (status, redirect, JSON)
    │   └── ReplyTooLarge          an answer larger than any the server should give
    ├── ServerError            HTTP 5xx on a call: trying later may work
    ├── HistoryStoreError      the local history cannot be opened or used
    │   └── HistoryDamagedError    the file is damaged: move it aside, a new one is started
    ├── AutostartError         start at login could not be changed
    └── SignInError            the organisation sign-in (single sign-on) did not finish
        ├── SignInCancelled        the person (or the program, quitting) cancelled it
        ├── SignInTimedOut         not finished in time, or the device code expired
        ├── ProviderError          the identity provider refused or failed (its words)
        └── NoSingleSignOn         neither the server nor the settings name a provider

``SecretStoreUnavailable`` (the OS keyring cannot be used) is a ``TrayNotifierError`` too; it
lives beside the keyring interface in :mod:`app.core.secrets`.

Each class names its :class:`ErrorKind` (``exc.kind``; :func:`kind_of` for any exception): a
status or a failure carries the kind across threads, and the UI words it in the person's
language without reading the English message.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ErrorKind(enum.StrEnum):
    """What kind of error a person met: the UI words each kind itself (translated), while
    ``str(exc)`` keeps the English details for the log. Every class below names its kind."""

    OTHER = "other"  # one of ours without a kind of its own: its message says it all
    CONFIG = "config"
    LOGIN_REQUIRED = "login_required"
    STORED_PASSWORD_REFUSED = "stored_password_refused"  # noqa: S105 - a kind, not a secret
    WRONG_CREDENTIALS = "wrong_credentials"
    UNREACHABLE = "unreachable"
    CERTIFICATE = "certificate"
    PROXY_AUTH = "proxy_auth"
    PROXY_REFUSED = "proxy_refused"  # the proxy refused the stored proxy credentials
    NOT_SERVER = "not_server"
    ACCESS_DENIED = "access_denied"
    NOT_FOUND = "not_found"
    INPUT_REFUSED = "input_refused"
    PROTOCOL = "protocol"
    SERVER_ERROR = "server_error"
    HISTORY = "history"
    AUTOSTART = "autostart"
    SIGN_IN = "sign_in"  # a sign-in failed in a way of its own: its message says it all
    SIGN_IN_CANCELLED = "sign_in_cancelled"
    SIGN_IN_TIMED_OUT = "sign_in_timed_out"
    PROVIDER_REFUSED = "provider_refused"
    NO_SINGLE_SIGN_ON = "no_single_sign_on"
    KEYRING = "keyring"  # SecretStoreUnavailable (app.core.secrets)
    UNEXPECTED = "unexpected"  # not one of ours: a bug; the traceback is in the log


def kind_of(exc: BaseException) -> ErrorKind:
    """The kind of any exception: ours say it; anything else is UNEXPECTED."""
    return exc.kind if isinstance(exc, TrayNotifierError) else ErrorKind.UNEXPECTED


def proxy_of(exc: BaseException | None) -> str:
    """The proxy that asked for credentials, when ``exc`` is a 407 (:class:`ProxyAuthRequired`);
    "" for any other exception."""
    return exc.proxy if isinstance(exc, ProxyAuthRequired) else ""


class TrayNotifierError(Exception):
    """Base of every error the program raises on purpose; ``str(exc)`` is a complete message."""

    kind: ClassVar[ErrorKind] = ErrorKind.OTHER


class ConfigError(TrayNotifierError, ValueError):
    """A configuration file, variable or option holds a value we cannot use; the message names
    the file (or variable), the setting, and what to do.

    Also a :class:`ValueError`, as it always was: ``except ValueError`` still catches it.
    """

    kind = ErrorKind.CONFIG


class UnsafeConfigFile(ConfigError):
    """A layer's file that another local user could have written (POSIX): it is never read.
    The user's own file stops the program; a system layer is ignored with a warning."""


class LoginRequired(TrayNotifierError):
    """No usable login: none stored, or the server refused the refresh token."""

    kind = ErrorKind.LOGIN_REQUIRED

    def __init__(
        self, message: str = "Your login has expired or was revoked: log in again."
    ) -> None:
        super().__init__(message)


class StoredPasswordRefused(LoginRequired):
    """Logging in again with the password kept in the keyring (``relogin``) was refused: it
    was changed, or the account locked. Nothing is stored any more: the person logs in."""

    kind = ErrorKind.STORED_PASSWORD_REFUSED


class WrongCredentials(TrayNotifierError):
    """The server refused the user name and password; ``reason`` holds its own words, when it
    gave any (a token-style backend's ``msg``)."""

    kind = ErrorKind.WRONG_CREDENTIALS

    def __init__(
        self,
        message: str = "The user name or password is wrong: check both and try again.",
        *,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.reason = reason


class ServerUnreachable(TrayNotifierError):
    """No answer from the server: connection refused, reset, timed out, or no network."""

    kind = ErrorKind.UNREACHABLE


class CertificateError(TrayNotifierError):
    """TLS verification failed. Verification is never turned off; a CA bundle can be added."""

    kind = ErrorKind.CERTIFICATE


class ProxyAuthRequired(TrayNotifierError):
    """The proxy on the way answered HTTP 407: it wants credentials that were not stored, or
    refused the stored ones. ``python -m app proxy-login`` stores them (the keyring).
    ``proxy``: the proxy's address (never with a user name or password in it), for people."""

    kind = ErrorKind.PROXY_AUTH

    def __init__(self, message: str, *, proxy: str = "") -> None:
        super().__init__(message)
        self.proxy = proxy


class ProxyCredentialsRefused(ProxyAuthRequired):
    """The proxy answered HTTP 407 although the stored proxy credentials were sent: they are
    wrong (or that account is locked)."""

    kind = ErrorKind.PROXY_REFUSED


class NotAnnouncementServer(TrayNotifierError):
    """The server answered, but not like an announcement server (e.g. a proxy's login page)."""

    kind = ErrorKind.NOT_SERVER


class AccessDenied(TrayNotifierError):
    """HTTP 403: the token is valid but may not read this stream (or make this call)."""

    kind = ErrorKind.ACCESS_DENIED


class NotFound(TrayNotifierError):
    """HTTP 404: the stream URL (or an endpoint template) is wrong."""

    kind = ErrorKind.NOT_FOUND


class InputRefused(TrayNotifierError):
    """HTTP 400 on a call: the server refused what was sent. ``field`` names the part it
    refused (``"url"``), or is None for the whole request."""

    kind = ErrorKind.INPUT_REFUSED

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ProtocolError(TrayNotifierError):
    """The server broke the protocol: an unexpected status, a bad redirect, malformed JSON."""

    kind = ErrorKind.PROTOCOL


class ReplyTooLarge(ProtocolError):
    """An ordinary call's answer passed the size limit (:data:`app.core.http.MAX_REPLY_BYTES`,
    counted after decoding gzip): not read further. The server URL is most likely wrong."""


class ServerError(TrayNotifierError):
    """The server failed (HTTP 5xx) while answering a call; trying later may work."""

    kind = ErrorKind.SERVER_ERROR


class HistoryStoreError(TrayNotifierError):
    """The history file cannot be opened or used; the message names the file and what to do."""

    kind = ErrorKind.HISTORY


class HistoryDamagedError(HistoryStoreError):
    """The file is not a readable SQLite history (damaged, truncated, or another kind of file):
    the caller may move it aside (:func:`app.core.sqlite_files.move_aside`) and start a new
    history."""


class AutostartError(TrayNotifierError):
    """Start at login could not be changed; the message says where, why and what to do."""

    kind = ErrorKind.AUTOSTART


class SignInError(TrayNotifierError):
    """The organisation sign-in (:mod:`app.core.oidc`) did not finish; nothing stored changed.
    ``reason`` holds the identity provider's own words, when it gave any."""

    kind = ErrorKind.SIGN_IN

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


class SignInCancelled(SignInError):
    """The person (or the program, quitting) cancelled the sign-in."""

    kind = ErrorKind.SIGN_IN_CANCELLED

    def __init__(self, message: str = "The sign-in was cancelled; nothing was changed.") -> None:
        super().__init__(message)


class SignInTimedOut(SignInError):
    """The person did not finish the sign-in in time, or the device code expired."""

    kind = ErrorKind.SIGN_IN_TIMED_OUT


class ProviderError(SignInError):
    """The identity provider refused the sign-in or answered with an error; ``reason`` holds
    its words."""

    kind = ErrorKind.PROVIDER_REFUSED


class NoSingleSignOn(SignInError):
    """Neither the server (``/auth/config``) nor the settings (``[auth] issuer``) name an
    identity provider, or the provider offers no way in of the kind asked for."""

    kind = ErrorKind.NO_SINGLE_SIGN_ON
