"""The auth session: login, refresh with rotation, proactive refresh, logout.

Tokens live only in the :class:`~app.core.secrets.SecretStore` (the OS keyring) and in this
object's memory; they travel only in request bodies of the auth endpoints and in the
``Authorization`` header. Endpoint paths are templates (:class:`~app.config.Endpoints`), so the
session also works against an existing Spring-style backend.

Callers get typed results, never an ``httpx.Response``: tokens, a :class:`~app.core.http.Reply`
(status and JSON) of :meth:`AuthSession.request`, or the answer of a specific call
(:meth:`AuthSession.publish`); refusals are errors of :mod:`app.core.errors`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import httpx

from app.config import Endpoints, StreamSettings
from app.core import http
from app.core.errors import (
    AccessDenied,
    InputRefused,
    LoginRequired,
    NotAnnouncementServer,
    NotFound,
    ProtocolError,
    ServerError,
    TrayNotifierError,
    WrongCredentials,
)
from app.core.http import Reply
from app.core.model import Draft
from app.core.secrets import SecretStore, login_key

log = logging.getLogger(__name__)

REFRESH_MARGIN = 60.0  # refresh this long before expiry...
REFRESH_MARGIN_FRACTION = 0.2  # ...or this share of the lifetime, when tokens live shorter


@dataclass(frozen=True, slots=True)
class Tokens:
    """One login's tokens. ``expires_at`` and ``issued_at`` are epoch seconds."""

    access_token: str
    refresh_token: str
    expires_at: float
    user_id: str
    issued_at: float = 0.0

    def __repr__(self) -> str:  # never show a token in a log line or a traceback
        return f"Tokens(user_id={self.user_id!r}, expires_at={self.expires_at!r}, ...)"

    def needs_refresh(self, now: float) -> bool:
        lifetime = max(0.0, self.expires_at - self.issued_at)
        margin = min(REFRESH_MARGIN, REFRESH_MARGIN_FRACTION * lifetime)
        return now >= self.expires_at - margin

    def to_secret(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_secret(cls, text: str) -> Tokens | None:
        try:
            obj = json.loads(text)
            return cls(
                access_token=str(obj["access_token"]),
                refresh_token=str(obj["refresh_token"]),
                expires_at=float(obj["expires_at"]),
                user_id=str(obj["user_id"]),
                issued_at=float(obj.get("issued_at", 0.0)),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("the stored login is unreadable; a new login is needed")
            return None


class AuthSession:
    """One user's login on one server. Methods are coroutines for one asyncio loop.

    Concurrent refreshes are merged: a refresh token is single-use (rotation), so sending it
    twice would log the user out.
    """

    def __init__(
        self,
        *,
        server_url: str,
        username: str,
        endpoints: Endpoints,
        secrets: SecretStore,
        settings: StreamSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.username = username
        self.endpoints = endpoints
        self._secrets = secrets
        self._clock = clock
        self._key = login_key(self.server_url, username)
        self._client = http.make_client(
            settings, read_timeout=http.REQUEST_TIMEOUT, transport=transport
        )
        self._tokens: Tokens | None = None
        self._refresh_lock = asyncio.Lock()

    # ------------------------------------------------------------------ state

    @property
    def user_id(self) -> str:
        tokens = self._current()
        return tokens.user_id if tokens else self.username

    def has_stored_login(self) -> bool:
        return self._current() is not None

    def stream_url(self) -> str:
        """The stream URL of this user, from the ``connect`` endpoint template."""
        return self._url(self.endpoints.connect)

    def _current(self) -> Tokens | None:
        if self._tokens is None:
            stored = self._secrets.get(self._key)
            self._tokens = Tokens.from_secret(stored) if stored else None
        return self._tokens

    def _remember(self, tokens: Tokens) -> Tokens:
        self._tokens = tokens  # usable for this run even if the keyring refuses it
        self._secrets.set(self._key, tokens.to_secret())
        return tokens

    def _forget(self) -> None:
        self._tokens = None
        self._secrets.delete(self._key)

    # ------------------------------------------------------------------ calls

    async def login(self, password: str) -> Tokens:
        """Log in and store the tokens. Raises WrongCredentials, ServerUnreachable, ..."""
        response = await self._post(
            self.endpoints.login, {"username": self.username, "password": password}
        )
        if response.status_code in (400, 401, 403):
            raise WrongCredentials()
        return self._remember(self._tokens_from(response, self.username))

    async def access_token(self) -> str:
        """A valid access token, refreshed first when it expires soon. Raises LoginRequired."""
        tokens = self._current()
        if tokens is None:
            raise LoginRequired(f"Not logged in as {self.username}: log in first.")
        if tokens.needs_refresh(self._clock()):
            return await self.refresh()
        return tokens.access_token

    async def refresh(self) -> str:
        """Exchange the refresh token (rotation); raises LoginRequired when it is refused.

        Shielded: once the single-use refresh token is sent, the answer is stored (and the lock
        held until then) even if the caller is cancelled meanwhile (logout, quit, reconnect).
        """
        before = self._current()
        seen = before.access_token if before else None
        return await asyncio.shield(self._refresh_once(seen))

    async def _refresh_once(self, seen: str | None) -> str:
        async with self._refresh_lock:
            tokens = self._current()
            if tokens is None:
                raise LoginRequired(f"Not logged in as {self.username}: log in first.")
            if tokens.access_token != seen and not tokens.needs_refresh(self._clock()):
                return tokens.access_token  # another caller refreshed while we waited
            response = await self._post(
                self.endpoints.refresh, {"refresh_token": tokens.refresh_token}
            )
            if response.status_code in (400, 401, 403):
                self._forget()
                raise LoginRequired()
            return self._remember(self._tokens_from(response, tokens.user_id)).access_token

    async def logout(self, *, end_streams: bool = True) -> None:
        """End this user's streams (close endpoint; not with ``end_streams=False``), revoke the
        refresh token, forget both.

        Server failures are logged, not raised: the local logout always happens.
        """
        tokens = self._current()
        if tokens is not None:
            auth = {"Authorization": f"Bearer {tokens.access_token}"}
            if end_streams:
                close_path = self._path(self.endpoints.close, user_id=tokens.user_id)
                method = self.endpoints.close_method.upper()
                await self._best_effort(method, close_path, auth, None)
            body = {"refresh_token": tokens.refresh_token}
            await self._best_effort("POST", self.endpoints.logout, auth, body)
        self._forget()

    async def request(
        self, method: str, template: str, *, json: Any = None, **values: str
    ) -> Reply:
        """An authorized call to ``template`` filled with ``values`` (URL-quoted), with an
        optional JSON body; the server's answer as a :class:`~app.core.http.Reply`.

        A 401 refreshes the token once and repeats the call; LoginRequired when refresh fails.
        Network failures raise ServerUnreachable or CertificateError; the caller judges the
        status (the receipt queue, :mod:`app.core.receipts`) or uses a specific call below.
        """
        path = self._path(template, **values)
        token = await self.access_token()
        reply = await self._authorized(method, path, token, json)
        if reply.status == 401:
            reply = await self._authorized(method, path, await self.refresh(), json)
        return reply

    async def publish(self, draft: Draft) -> str:
        """Publish ``draft`` (the ``announcements`` endpoint, POST); the new announcement's id.

        Raises AccessDenied (not a publisher account), InputRefused (HTTP 400: ``field`` names
        what the server refused), ProtocolError (any other answer), LoginRequired.
        """
        path = self.endpoints.announcements
        reply = await self.request("POST", path, json=draft.to_json())
        reason = reply.reason()
        if reply.status == 401:  # the token was refused even after a refresh
            raise LoginRequired(f"login refused: {reason or 'log in again'}")
        if reply.status == 403:
            raise AccessDenied(f"not allowed: {reason or 'this needs a publisher account'}")
        if reply.status == 400:
            field = reply.json.get("field") if isinstance(reply.json, dict) else None
            where = f" (field {field})" if field else ""
            raise InputRefused(
                f"the server refused the announcement{where}: {reason}",
                field if isinstance(field, str) else None,
            )
        if reply.ok and isinstance(reply.json, dict) and reply.json.get("id") not in (None, ""):
            return str(reply.json["id"])
        raise ProtocolError(
            f"unexpected answer from the server to {path}: HTTP {reply.status}. Is the server "
            "URL the announcement server?"
        )

    async def close_streams(self) -> None:
        """Call the close endpoint: the server ends this login's streams (quit, not logout)."""
        if self.has_stored_login():
            reply = await self.request(
                self.endpoints.close_method, self.endpoints.close, user_id=self.user_id
            )
            log.info("close endpoint answered HTTP %d", reply.status)

    async def _authorized(self, method: str, path: str, token: str, body: Any = None) -> Reply:
        request = self._client.build_request(
            method.upper(),
            self.server_url + path,
            headers={"Authorization": f"Bearer {token}"},
            json=body,
        )
        return Reply.of(await http.send(self._client, request))

    async def aclose(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------------ helpers

    def _path(self, template: str, **values: str) -> str:
        return template.format(**{k: quote(v, safe="") for k, v in values.items()})

    def _url(self, template: str) -> str:
        return self.server_url + self._path(template, user_id=self.user_id)

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        request = self._client.build_request("POST", self.server_url + path, json=body)
        response = await http.send(self._client, request)
        if response.status_code >= 500:
            raise ServerError(
                f"the server failed (HTTP {response.status_code}) at {path}: try again later."
            )
        if response.status_code == 404:
            raise NotFound(
                f"the server has no {path} (HTTP 404): check the server URL and the endpoint "
                "settings."
            )
        return response

    async def _best_effort(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None
    ) -> None:
        request = self._client.build_request(
            method, self.server_url + path, headers=headers, json=body
        )
        try:
            response = await http.send(self._client, request)
        except TrayNotifierError as exc:
            log.warning("logout: %s %s failed: %s", method, path, exc)
            return
        if response.is_error:
            log.warning("logout: %s %s answered HTTP %d", method, path, response.status_code)

    def _tokens_from(self, response: httpx.Response, fallback_user: str) -> Tokens:
        if response.status_code != 200:
            raise ProtocolError(
                f"unexpected answer HTTP {response.status_code} from {response.url.path}: "
                "check the server URL."
            )
        try:
            obj = response.json()
            now = self._clock()
            return Tokens(
                access_token=str(obj["access_token"]),
                refresh_token=str(obj["refresh_token"]),
                expires_at=now + float(obj.get("expires_in", 900)),
                user_id=str(obj.get("user_id") or fallback_user),
                issued_at=now,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NotAnnouncementServer(
                f"{response.url.path} did not answer with tokens: check that the server URL "
                "points at an announcement server."
            ) from exc
