"""The error tree of the core: every error a user can meet, each saying what to do.

Messages never contain a token, a password or a URL query: they are shown to people and logged.
"""

from __future__ import annotations


class TrayNotifierError(Exception):
    """Base of every error the core raises on purpose; ``str(exc)`` is a complete message."""


class LoginRequired(TrayNotifierError):
    """No usable login: none stored, or the server refused the refresh token."""

    def __init__(
        self, message: str = "Your login has expired or was revoked: log in again."
    ) -> None:
        super().__init__(message)


class WrongCredentials(TrayNotifierError):
    """The server refused the user name and password."""

    def __init__(
        self, message: str = "The user name or password is wrong: check both and try again."
    ) -> None:
        super().__init__(message)


class ServerUnreachable(TrayNotifierError):
    """No answer from the server: connection refused, reset, timed out, or no network."""


class CertificateError(TrayNotifierError):
    """TLS verification failed. Verification is never turned off; a CA bundle can be added."""


class NotAnnouncementServer(TrayNotifierError):
    """The server answered, but not like an announcement server (e.g. a proxy's login page)."""


class AccessDenied(TrayNotifierError):
    """HTTP 403: the token is valid but may not read this stream."""


class NotFound(TrayNotifierError):
    """HTTP 404: the stream URL (or an endpoint template) is wrong."""


class ProtocolError(TrayNotifierError):
    """The server broke the protocol: an unexpected status, a bad redirect, malformed JSON."""


class ServerError(TrayNotifierError):
    """The server failed (HTTP 5xx) while answering an auth call; trying later may work."""
