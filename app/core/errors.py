"""The project's error tree: every error a person can meet, each saying what to do.

One module holds every class, so that callers catch by meaning (``except ServerUnreachable``)
and a new error has one obvious home. ``str(exc)`` is always a complete sentence for people;
messages never contain a token, a password or a URL query: they are shown and logged.

::

    TrayNotifierError
    ├── ConfigError            a setting holds a value we cannot use (also a ValueError)
    ├── LoginRequired          no usable login: log in (again)
    ├── WrongCredentials       the server refused the user name and password
    ├── ServerUnreachable      no answer: network, address, or the server is down
    ├── CertificateError       TLS verification failed (add the organisation's CA bundle)
    ├── NotAnnouncementServer  the server answered, but not like an announcement server
    ├── AccessDenied           HTTP 403: this account may not do that
    ├── NotFound               HTTP 404: the URL or an endpoint template is wrong
    ├── InputRefused           HTTP 400: the server refused what we sent (``field`` says where)
    ├── ProtocolError          the server broke the protocol (status, redirect, JSON)
    │   └── ReplyTooLarge          an answer larger than any the server should give
    ├── ServerError            HTTP 5xx on a call: trying later may work
    ├── HistoryStoreError      the local history cannot be opened or used
    │   └── HistoryDamagedError    the file is damaged: move it aside, a new one is started
    └── AutostartError         start at login could not be changed

``SecretStoreUnavailable`` (the OS keyring cannot be used) is a ``TrayNotifierError`` too; it
lives beside the keyring interface in :mod:`app.core.secrets`.
"""

from __future__ import annotations


class TrayNotifierError(Exception):
    """Base of every error the program raises on purpose; ``str(exc)`` is a complete message."""


class ConfigError(TrayNotifierError, ValueError):
    """A configuration file, variable or option holds a value we cannot use; the message names
    the file (or variable), the setting, and what to do.

    Also a :class:`ValueError`, as it always was: ``except ValueError`` still catches it.
    """


class LoginRequired(TrayNotifierError):
    """No usable login: none stored, or the server refused the refresh token."""

    def __init__(
        self, message: str = "Your login has expired or was revoked: log in again."
    ) -> None:
        super().__init__(message)


class WrongCredentials(TrayNotifierError):
    """The server refused the user name and password; ``reason`` holds its own words, when it
    gave any (a token-style backend's ``msg``)."""

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


class CertificateError(TrayNotifierError):
    """TLS verification failed. Verification is never turned off; a CA bundle can be added."""


class NotAnnouncementServer(TrayNotifierError):
    """The server answered, but not like an announcement server (e.g. a proxy's login page)."""


class AccessDenied(TrayNotifierError):
    """HTTP 403: the token is valid but may not read this stream (or make this call)."""


class NotFound(TrayNotifierError):
    """HTTP 404: the stream URL (or an endpoint template) is wrong."""


class InputRefused(TrayNotifierError):
    """HTTP 400 on a call: the server refused what was sent. ``field`` names the part it
    refused (``"url"``), or is None for the whole request."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ProtocolError(TrayNotifierError):
    """The server broke the protocol: an unexpected status, a bad redirect, malformed JSON."""


class ReplyTooLarge(ProtocolError):
    """An ordinary call's answer passed the size limit (:data:`app.core.http.MAX_REPLY_BYTES`,
    counted after decoding gzip): not read further. The server URL is most likely wrong."""


class ServerError(TrayNotifierError):
    """The server failed (HTTP 5xx) while answering a call; trying later may work."""


class HistoryStoreError(TrayNotifierError):
    """The history file cannot be opened or used; the message names the file and what to do."""


class HistoryDamagedError(HistoryStoreError):
    """The file is not a readable SQLite history (damaged, truncated, or another kind of file):
    the caller may move it aside (:func:`app.core.store.move_aside`) and start a new history."""


class AutostartError(TrayNotifierError):
    """Start at login could not be changed; the message says where, why and what to do."""
