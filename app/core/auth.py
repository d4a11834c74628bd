"""The auth session: login, refresh with rotation, proactive refresh, logout.

Tokens live only in the :class:`~app.core.secrets.SecretStore` (the OS keyring) and in this
object's memory; they travel only in request bodies of the auth endpoints and in the
``Authorization`` header. Endpoint paths are templates (:class:`~app.core.config.Endpoints`), so the
session also works against an existing Spring-style backend.

Two login styles (``[auth] style``, :class:`~app.core.config.AuthProfile`): ``companion`` (our
``/auth/*`` API: access and refresh tokens, rotation) and ``token``: any login endpoint that
answers JSON holding a token, read with JSON Pointers. Such a backend has no refresh endpoint:
the token is used until the server refuses it (HTTP 401); then, with ``relogin``, the session
logs in again once with the password kept in the keyring beside the token, else a login is
required. A refused login raises WrongCredentials in the backend's own words (``message``);
nothing is stored unless the login succeeded.

Single sign-on (:meth:`AuthSession.sign_in`): the organisation's identity provider signs the
person in (:mod:`app.core.oidc`: the browser with PKCE, or a device code); the provider is the
one ``[auth]`` names (``issuer``, ``client_id``), else the one the server's ``/auth/config``
names. The user is not known before: the session learns it from the sign-in, and the login is
stored under that user (:func:`~app.core.secrets.login_key` of the server and the user) exactly
as a password login is. Two ways to the server:

- ``bearer = "session"`` (the default, and any companion server): the ID token is exchanged at
  ``POST /auth/oidc`` for the server's own tokens; the user is the answer's ``user_id``.
  Refresh and logout are the companion's, as after a password login.
- ``style = "oidc"`` with ``bearer = "access_token"`` (an existing backend that trusts the
  provider): the provider's access token is the Bearer, renewed at the provider's token
  endpoint with its refresh token (kept in the keyring) and revoked at logout at its
  ``revocation_endpoint`` (RFC 7009) when it has one. The user id for ``{user_id}`` is what the
  ``user_id`` pointer finds in the ``user_info_path`` reply (when set) or in the ID token's
  claims; with no pointer, the ``preferred_username`` claim. The user name (the login key, the
  tray's menu) is the ``preferred_username`` claim, else that user id.

Callers get typed results, never an ``httpx.Response``: tokens, a :class:`~app.core.http.Reply`
(status and JSON) of :meth:`AuthSession.request`, or the answer of a specific call
(:meth:`AuthSession.publish`); refusals are errors of :mod:`app.core.errors`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import time
import webbrowser
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import httpx

from app.core import http, oidc, pointer
from app.core.config import AuthProfile, ConfigError, Endpoints, StreamSettings
from app.core.config.schema import DEFAULT_SCOPES
from app.core.errors import (
    AccessDenied,
    InputRefused,
    LoginRequired,
    NotAnnouncementServer,
    NotFound,
    ProtocolError,
    ServerError,
    StoredPasswordRefused,
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
    password: str = ""  # token style with relogin only: to log in again on a 401

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
                password=str(obj.get("password", "")),
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
        profile: AuthProfile | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.profile = profile or AuthProfile()
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
        self._metadata: dict[str, oidc.ProviderMetadata] = {}  # by issuer: discovered once

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
        if self.profile.style == "token":
            return self._remember(await self._token_login(password))
        path = self.endpoints.login
        reply = await self._post(path, {"username": self.username, "password": password})
        if reply.status in (400, 401, 403):
            raise WrongCredentials()
        return self._remember(self._tokens_from(reply, path, self.username))

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
            if self.profile.style == "token":
                return await self._relogin(tokens)
            if self.profile.provider_bearer:
                return await self._refresh_at_provider(tokens)
            path = self.endpoints.refresh
            reply = await self._post(path, {"refresh_token": tokens.refresh_token})
            if reply.status in (400, 401, 403):
                self._forget()
                raise LoginRequired()
            return self._remember(self._tokens_from(reply, path, tokens.user_id)).access_token

    async def logout(self, *, end_streams: bool = True) -> None:
        """End this user's streams (close endpoint; not with ``end_streams=False``), revoke the
        refresh token (at the server, or at the identity provider with ``bearer =
        "access_token"``), forget both.

        Server failures are logged, not raised: the local logout always happens.
        """
        if self._current() is not None:
            if end_streams:
                await self._on_the_way_out(self.endpoints.close_method, self.endpoints.close)
            tokens = self._current()  # (renewed, maybe, by the close call)
            if tokens is not None and self.profile.provider_bearer:
                if self.endpoints.logout != Endpoints().logout:
                    await self._on_the_way_out("POST", self.endpoints.logout)  # the backend's own
                await self._revoke_at_provider(self._current() or tokens)
            elif tokens is not None and self.profile.style != "token":
                auth = {"Authorization": f"Bearer {tokens.access_token}"}
                body = {"refresh_token": tokens.refresh_token}  # the token it revokes
                await self._best_effort("POST", self.endpoints.logout, auth, body)
            elif tokens is not None and self.endpoints.logout != Endpoints().logout:
                await self._on_the_way_out("POST", self.endpoints.logout)  # the backend's own
        self._forget()

    async def _on_the_way_out(self, method: str, template: str) -> None:
        """A call made on the way out (the close endpoint, a backend's logout): authorised and
        renewed once when refused, as every call; a failure is logged, never raised."""
        try:
            reply = await self.request(method, template, user_id=self.user_id)
        except TrayNotifierError as exc:
            log.warning("%s %s failed: %s", method.upper(), template, exc)
            return
        if not reply.ok:
            log.warning("%s %s answered HTTP %d", method.upper(), template, reply.status)
            return
        log.info("%s %s done (HTTP %d)", method.upper(), template, reply.status)

    async def request(
        self,
        method: str,
        template: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **values: str,
    ) -> Reply:
        """An authorized call to ``template`` filled with ``values`` (URL-quoted), with an
        optional JSON body; the server's answer as a :class:`~app.core.http.Reply`.

        A refusal (HTTP 401, or an HTTP 200 whose JSON says 401 at the ``ok`` pointer, like
        RuoYi's ``{"code": 401}``: :meth:`~app.core.http.Reply.refused`) renews the token once
        (refresh, or a new login with the kept password) and repeats the call; LoginRequired
        when the renewal fails or the renewed token is refused too. Network failures raise
        ServerUnreachable or CertificateError; the caller judges any other status (the receipt
        queue, :mod:`app.core.receipts`) or uses a specific call below.
        """
        path = self._path(template, **values)
        token = await self.access_token()
        reply = await self._authorized(method, path, token, json, headers)
        if self._refused(reply):
            log.info("%s %s refused the token: renewing it once", method.upper(), template)
            reply = await self._authorized(method, path, await self.refresh(), json, headers)
            if self._refused(reply):
                raise LoginRequired(
                    f"the server refused the renewed login too ({method.upper()} {template}):"
                    " log in again."
                )
        return reply

    def _refused(self, reply: Reply) -> bool:
        return reply.refused(self.profile.refusal_pointer)

    async def publish(self, draft: Draft, *, idempotency_key: str | None = None) -> str:
        """Publish ``draft`` (the ``announcements`` endpoint, POST); the new announcement's id.

        ``idempotency_key`` (``Idempotency-Key``): a retry with the same key (a lost answer, a
        503) returns the first announcement's id instead of publishing it twice.

        Raises AccessDenied (not a publisher account), InputRefused (HTTP 400: ``field`` names
        what the server refused), ProtocolError (any other answer), LoginRequired.
        """
        path = self.endpoints.announcements
        extra = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        reply = await self.request("POST", path, json=draft.to_json(), headers=extra)
        reason = reply.reason()
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
        """Call the close endpoint: the server ends this login's streams (quit, not logout).
        A refusal renews the token once (:meth:`request`); what happened is logged."""
        if self.has_stored_login():
            await self._on_the_way_out(self.endpoints.close_method, self.endpoints.close)

    async def _authorized(
        self,
        method: str,
        path: str,
        token: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        request = self._client.build_request(
            method.upper(),
            self.server_url + path,
            headers={**(headers or {}), "Authorization": f"Bearer {token}"},
            json=body,
        )
        return await http.call(self._client, request)

    async def aclose(self) -> None:
        await self._client.aclose()

    # ------------------------------------------------------------------ token style

    async def _token_login(self, password: str) -> Tokens:
        """Log in at the profile's ``login_path``; the Tokens (not stored yet)."""
        profile = self.profile
        body = _fill(profile.login_body, {"{username}": self.username, "{password}": password})
        path = profile.login_path
        reply = await self._post(path, body)
        words = self._words(reply)
        if reply.status in (400, 401, 403) or (
            reply.ok and profile.ok is not None and not _holds(reply.json, profile.ok)
        ):
            if words:
                raise WrongCredentials(f"The server refused the login: {words}", reason=words)
            raise WrongCredentials()
        if not reply.ok:
            raise ProtocolError(
                f"unexpected answer HTTP {reply.status} from {path}"
                + (f" ({words})" if words else "")
                + ": check the server URL and [auth] login_path."
            )
        if reply.json is None:
            raise NotAnnouncementServer(
                f"{path} did not answer with JSON: check the server URL and [auth] login_path."
            )
        token = _scalar(pointer.resolve(reply.json, profile.token))
        if not token:
            raise NotAnnouncementServer(
                f"the login reply of {path} holds no token at {profile.token!r}"
                + (f" (the server said: {words})" if words else "")
                + ": check [auth] token (a JSON Pointer) in the config file."
            )
        user_id = await self._user_id(token, reply.json)
        now = self._clock()
        return Tokens(
            access_token=token,
            refresh_token="",
            expires_at=math.inf,  # no expiry known: used until the server refuses it
            user_id=user_id,
            issued_at=now,
            password=password if profile.relogin else "",
        )

    def _words(self, reply: Reply) -> str | None:
        if self.profile.message:
            found = _scalar(pointer.resolve(reply.json, self.profile.message))
            if found:
                return found
        return reply.reason()

    async def _user_id(
        self, token: str, login_reply: Any, *, where: str = "the login reply"
    ) -> str:
        """The user id for ``{user_id}``: from the user info reply, else the login reply (or
        what ``where`` names), else the user name."""
        profile = self.profile
        if not profile.user_id:
            return self.username
        document = login_reply
        if profile.user_info_path:
            where = profile.user_info_path
            reply = await self._authorized("GET", profile.user_info_path, token)
            if not reply.ok or (profile.ok is not None and not _holds(reply.json, profile.ok)):
                words = self._words(reply)
                raise ProtocolError(
                    f"{where} answered HTTP {reply.status}"
                    + (f" ({words})" if words else "")
                    + " after the login: check [auth] user_info_path."
                )
            document = reply.json
        found = _scalar(pointer.resolve(document, profile.user_id))
        if not found:
            raise NotAnnouncementServer(
                f"{where} holds no user id at {profile.user_id!r}: check [auth] user_id (a "
                "JSON Pointer) in the config file."
            )
        return found

    async def _relogin(self, tokens: Tokens) -> str:
        """The server refused the token: log in again once with the kept password, or
        LoginRequired (and the login is forgotten)."""
        if not (self.profile.relogin and tokens.password):
            self._forget()
            raise LoginRequired()
        log.info("the server refused the token: logging in again as %s", self.username)
        try:
            fresh = await self._token_login(tokens.password)
        except WrongCredentials as exc:
            self._forget()
            raise StoredPasswordRefused(
                f"The stored password stopped working (it was changed, or the account is"
                f" locked): {exc} Log in again."
            ) from exc
        return self._remember(fresh).access_token

    # ------------------------------------------------------------------ single sign-on

    async def sign_in_options(self) -> oidc.SignInOptions:
        """How this server signs people in: with a password, and with which identity
        provider. A token-style backend: passwords only. ``bearer = "access_token"``: the
        provider ``[auth]`` names, no password (that backend has no ``/auth/config``).
        Otherwise the server's ``GET /auth/config``, where what ``[auth]`` sets wins: its
        ``issuer`` and ``client_id`` when not empty, its ``scopes`` when not the default.
        Raises ConfigError, and the network's and the server's errors."""
        profile = self.profile
        if profile.style == "token":
            return oidc.SignInOptions(self.server_url)
        if profile.provider_bearer:
            provider = self._configured_provider()
            return oidc.SignInOptions(self.server_url, password=False, provider=provider)
        offered = await oidc.server_sign_in(self._client, self.server_url)
        return dataclasses.replace(offered, provider=self._merged(offered.provider))

    async def sign_in(
        self,
        *,
        on_prompt: oidc.OnPrompt,
        device: bool = False,
        open_browser: oidc.OpenBrowser = webbrowser.open,
        cancel: asyncio.Event | None = None,
        waits: oidc.Waits | None = None,
    ) -> Tokens:
        """Sign in with the organisation's identity provider and store the login as
        :meth:`login` does, under the user the sign-in names (:attr:`username` is that user
        afterwards). The system browser (``open_browser``) and the loopback redirect, or with
        ``device`` a code the person enters elsewhere; ``on_prompt`` hears the address (and
        the code). ``cancel`` (set it from this loop) ends the wait; ``waits`` bounds it (5
        minutes by default).

        Nothing is stored unless the sign-in succeeded. Raises SignInCancelled,
        SignInTimedOut, ProviderError, NoSingleSignOn (no provider named), WrongCredentials
        (the server refused the ID token: its words), ConfigError, the network's errors.
        """
        options = await self.sign_in_options()
        provider = options.provider
        if provider is None:
            raise oidc.NoSingleSignOn(
                f"The server at {self.server_url} offers no sign-in with an organisation "
                "account: log in with a password, or ask IT to set [auth] issuer and client_id."
            )
        metadata = await self._discovered(provider)
        if device:
            got = await oidc.device_sign_in(
                self._client, provider, metadata, on_prompt=on_prompt, cancel=cancel, waits=waits
            )
        else:
            got = await oidc.browser_sign_in(
                self._client,
                provider,
                metadata,
                open_browser=open_browser,
                on_prompt=on_prompt,
                redirect_ports=self.profile.redirect_ports,
                cancel=cancel,
                waits=waits,
            )
        if self.profile.provider_bearer:
            username, tokens = await self._provider_login(got)
        else:
            username, tokens = await self._server_login(got.id_token)
        self._become(username)
        return self._remember(tokens)

    def _become(self, username: str) -> None:
        """This session is now ``username``'s (learnt from a sign-in)."""
        self.username = username
        self._key = login_key(self.server_url, username)
        self._tokens = None

    def _configured_provider(self) -> oidc.Provider:
        profile = self.profile
        if not (profile.issuer and profile.client_id):
            raise ConfigError(
                '[auth] style = "oidc" with bearer = "access_token" needs issuer and client_id '
                "in the settings (that backend has no /auth/config to name them): ask IT."
            )
        return oidc.Provider(profile.issuer, profile.client_id, profile.scopes)

    def _merged(self, offered: oidc.Provider | None) -> oidc.Provider | None:
        """The provider the server offers, with what ``[auth]`` sets winning."""
        profile = self.profile
        issuer = profile.issuer or (offered.issuer if offered else "")
        client_id = profile.client_id or (offered.client_id if offered else "")
        if not (issuer and client_id):
            return None
        scopes = profile.scopes
        if offered is not None and scopes == DEFAULT_SCOPES:
            scopes = offered.scopes
        return oidc.Provider(issuer, client_id, scopes)

    async def _discovered(self, provider: oidc.Provider) -> oidc.ProviderMetadata:
        found = self._metadata.get(provider.issuer)
        if found is None:
            found = await oidc.discover(self._client, provider.issuer)
            self._metadata[provider.issuer] = found
        return found

    async def _server_login(self, id_token: str) -> tuple[str, Tokens]:
        """The server's own tokens for the provider's ID token (``POST /auth/oidc``); the user
        is the answer's ``user_id``."""
        path = oidc.SERVER_SIGN_IN_PATH
        reply = await self._post(path, {"id_token": id_token})
        if reply.status in (400, 401, 403, 409):
            words = reply.reason() or f"HTTP {reply.status}"
            raise WrongCredentials(f"The server refused the sign-in: {words}", reason=words)
        tokens = self._tokens_from(reply, path, "")
        if not tokens.user_id:
            raise NotAnnouncementServer(
                f"{path} answered without a user_id: check that the server URL points at an "
                "announcement server."
            )
        return tokens.user_id, tokens

    async def _provider_login(self, got: oidc.ProviderTokens) -> tuple[str, Tokens]:
        """The provider's own tokens as this login (``bearer = "access_token"``): the user id
        from the ``user_id`` pointer (the user info reply, else the ID token's claims), else
        the ``preferred_username`` claim, which also names the user when present."""
        name = _scalar(got.claims.get("preferred_username"))
        if not name and not self.profile.user_id:
            raise NotAnnouncementServer(
                "the ID token holds no preferred_username claim: set [auth] user_id to a JSON "
                'Pointer into its claims, like "/sub", in the config file.'
            )
        self.username = name
        user_id = await self._user_id(got.access_token, dict(got.claims), where="the ID token")
        now = self._clock()
        return name or user_id, Tokens(
            access_token=got.access_token,
            refresh_token=got.refresh_token,
            expires_at=_expiry(now, got.expires_in),
            user_id=user_id,
            issued_at=now,
        )

    async def _refresh_at_provider(self, tokens: Tokens) -> str:
        """Renew the provider's access token with its refresh token; LoginRequired (and the
        login is forgotten) when there is none or the provider refuses it."""
        if not tokens.refresh_token:
            self._forget()
            raise LoginRequired("The organisation sign-in has expired: sign in again.")
        provider = self._configured_provider()
        try:
            got = await oidc.refresh(
                self._client, provider, await self._discovered(provider), tokens.refresh_token
            )
        except oidc.ProviderError as exc:
            self._forget()
            raise LoginRequired(
                f"The organisation sign-in ended ({exc.reason}): sign in again."
            ) from exc
        now = self._clock()
        fresh = Tokens(
            access_token=got.access_token,
            refresh_token=got.refresh_token or tokens.refresh_token,  # (when not rotated)
            expires_at=_expiry(now, got.expires_in),
            user_id=tokens.user_id,
            issued_at=now,
        )
        return self._remember(fresh).access_token

    async def _revoke_at_provider(self, tokens: Tokens) -> None:
        """Revoke the refresh token (else the access token) at the provider; failures are
        logged (the local logout happens all the same)."""
        try:
            provider = self._configured_provider()
            metadata = await self._discovered(provider)
        except TrayNotifierError as exc:
            log.warning("logout: the identity provider cannot be reached: %s", exc)
            return
        if tokens.refresh_token:
            await oidc.revoke(self._client, provider, metadata, tokens.refresh_token)
        else:
            await oidc.revoke(
                self._client, provider, metadata, tokens.access_token, hint="access_token"
            )

    # ------------------------------------------------------------------ helpers

    def _path(self, template: str, **values: str) -> str:
        return template.format(**{k: quote(v, safe="") for k, v in values.items()})

    def _url(self, template: str) -> str:
        return self.server_url + self._path(template, user_id=self.user_id)

    async def _post(self, path: str, body: dict[str, Any]) -> Reply:
        request = self._client.build_request("POST", self.server_url + path, json=body)
        reply = await http.call(self._client, request)
        if reply.status >= 500:
            raise ServerError(
                f"the server failed (HTTP {reply.status}) at {path}: try again later."
            )
        if reply.status == 404:
            raise NotFound(
                f"the server has no {path} (HTTP 404): check the server URL and the endpoint "
                "settings."
            )
        return reply

    async def _best_effort(
        self, method: str, path: str, headers: dict[str, str], body: dict[str, Any] | None
    ) -> None:
        request = self._client.build_request(
            method, self.server_url + path, headers=headers, json=body
        )
        try:
            reply = await http.call(self._client, request)
        except TrayNotifierError as exc:
            log.warning("logout: %s %s failed: %s", method, path, exc)
            return
        if reply.status >= 400:
            log.warning("logout: %s %s answered HTTP %d", method, path, reply.status)

    def _tokens_from(self, reply: Reply, path: str, fallback_user: str) -> Tokens:
        if reply.status != 200:
            raise ProtocolError(
                f"unexpected answer HTTP {reply.status} from {path}: check the server URL."
            )
        try:
            obj = reply.json
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
                f"{path} did not answer with tokens: check that the server URL "
                "points at an announcement server."
            ) from exc


def _expiry(now: float, expires_in: float | None) -> float:
    """When a provider's token expires: ``expires_in`` from ``now``; none said: used until
    refused (then renewed)."""
    return now + expires_in if expires_in else math.inf


def _fill(value: Any, placeholders: dict[str, str]) -> Any:
    """``value`` (a login body) with the placeholders filled in, inside JSON strings only."""
    if isinstance(value, str):
        for name, text in placeholders.items():
            value = value.replace(name, text)
        return value
    if isinstance(value, dict):
        return {k: _fill(v, placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, placeholders) for v in value]
    return value


def _scalar(value: Any) -> str:
    """A found string or number as text; "" for nothing, null, a table or a list."""
    if isinstance(value, bool) or value is None or value is pointer.MISSING:
        return ""
    if isinstance(value, str | int | float):
        return str(value)
    return ""


def _holds(document: Any, ok: Any) -> bool:
    """Whether the success test ``ok`` (an OkTest) holds in ``document``."""
    found = pointer.resolve(document, ok.pointer)
    if found is pointer.MISSING:
        return False
    return bool(found == ok.value or str(found) == str(ok.value))
