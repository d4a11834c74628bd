"""The OpenID Connect client protocol of the tray: a native, public client (no secret).

- :func:`discover`: the provider's metadata (``{issuer}/.well-known/openid-configuration``), whose
  ``issuer`` must equal the configured one exactly.
- :func:`browser_sign_in`: the authorization code flow with PKCE (S256) for native apps (RFC
  8252). A loopback listener on ``127.0.0.1`` (:mod:`app.core.oidc_callback`) receives the
  redirect at ``http://127.0.0.1:{port}/callback``; ``state`` and ``nonce`` are random per
  sign-in. A callback with a wrong or missing ``state`` is answered with a short page and
  ignored (the wait goes on); one with ``error`` ends the wait with the provider's reason. The
  code is exchanged at the token endpoint with its verifier, and the ID token's ``nonce``
  checked (decoded without checking its signature: the server that receives it checks that).
- :func:`device_sign_in`: device authorization (RFC 8628): a code for the person to enter
  elsewhere, then polling that honours ``authorization_pending`` and ``slow_down``.
- :func:`refresh` and :func:`revoke` (RFC 7009): for a backend that takes the provider's own
  access token (``[auth] bearer = "access_token"``).
- :func:`server_sign_in`: how a companion server signs people in (``GET /auth/config``).

Every wait on the person is bounded (:data:`WAIT_TIMEOUT` by default) and cancellable (an
``asyncio.Event``, or cancelling the task), and runs on :class:`Waits`' clock and sleep, so
tests drive time without sleeping. Every HTTP call goes through :func:`app.core.http.call`.
No token, code or verifier appears in a log line, an exception message or any URL but the
provider's authorization address (which holds only public values).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
import time
import webbrowser
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from app.core import http
from app.core.config.schema import DEFAULT_SCOPES
from app.core.config.values import https_problem
from app.core.errors import ErrorKind, ProtocolError, ServerError, TrayNotifierError

# the sign-in's errors, re-exported: their home is app.core.errors (the one tree)
from app.core.errors import NoSingleSignOn as NoSingleSignOn
from app.core.errors import ProviderError as ProviderError
from app.core.errors import SignInCancelled as SignInCancelled
from app.core.errors import SignInError as SignInError
from app.core.errors import SignInTimedOut as SignInTimedOut
from app.core.login_failure import LoginFailure
from app.core.oidc_callback import LoopbackListener, callback_error, clean_words

log = logging.getLogger(__name__)

T = TypeVar("T")

#: how long a sign-in waits for the person (the browser's redirect, the device code), seconds
WAIT_TIMEOUT = 300.0
#: the companion server's routes: how it signs people in, and the ID token exchange
SERVER_CONFIG_PATH = "/auth/config"
SERVER_SIGN_IN_PATH = "/auth/oidc"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_POLL_INTERVAL = 5.0  # RFC 8628 3.2: when the provider names none
SLOW_DOWN_STEP = 5.0  # RFC 8628 3.5: added to the interval on each slow_down


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class SignInFailure:
    """A sign-in that ended without a login, as a typed message for the UI: ``kind`` (the
    error's, :func:`~app.core.errors.kind_of`) says how (cancelled, timed out, refused by the
    provider, not offered...); ``failure`` classifies it as a login failure (network, a
    refusal by the server, the keyring)."""

    server_url: str
    kind: ErrorKind
    failure: LoginFailure
    reason: str = ""  # the identity provider's own words, when it gave any


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class Provider:
    """An identity provider as this client uses it."""

    issuer: str
    client_id: str
    scopes: tuple[str, ...] = DEFAULT_SCOPES


@dataclass(frozen=True, slots=True)
class SignInOptions:
    """How a server signs people in (``GET /auth/config``, or the ``[auth]`` settings):
    with a password, and with ``provider`` when it is not None."""

    server_url: str
    password: bool = True
    provider: Provider | None = None


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What discovery says (only what this client uses)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    device_authorization_endpoint: str = ""
    revocation_endpoint: str = ""


@dataclass(frozen=True, slots=True)
class BrowserPrompt:
    """The provider's sign-in page was opened (or should be, by hand: ``url``)."""

    url: str
    issuer: str


@dataclass(frozen=True, slots=True)
class DevicePrompt:
    """What the person does elsewhere: open ``verification_uri`` and enter ``user_code``."""

    verification_uri: str
    user_code: str
    verification_uri_complete: str = ""
    expires_in: float = 0.0


Prompt = BrowserPrompt | DevicePrompt


@dataclass(frozen=True, slots=True)
class ProviderTokens:
    """The provider's answer to a sign-in or a refresh. ``claims``: the ID token's, unverified
    (the server verifies the signature); empty when a refresh brought no ID token."""

    access_token: str
    id_token: str = ""
    refresh_token: str = ""
    expires_in: float | None = None
    claims: Mapping[str, Any] = field(default_factory=dict)

    __hash__ = None  # type: ignore[assignment]  # holds a table

    def __repr__(self) -> str:  # never show a token in a log line or a traceback
        return f"ProviderTokens(subject={self.claims.get('sub')!r}, ...)"


@dataclass(frozen=True, slots=True)
class Waits:
    """The time of a sign-in's waits: at most ``timeout`` seconds on the person, measured on
    ``clock`` and waited with ``sleep`` (tests pass their own pair)."""

    timeout: float = WAIT_TIMEOUT
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


OnPrompt = Callable[[Prompt], None]
OpenBrowser = Callable[[str], bool]


# ---------------------------------------------------------------------------- the server


async def server_sign_in(client: httpx.AsyncClient, server_url: str) -> SignInOptions:
    """How the companion server at ``server_url`` signs people in (``GET /auth/config``). A
    server without that route (HTTP 404: an older one, or another backend) takes passwords
    only. Raises ServerUnreachable, CertificateError, ServerError, ProtocolError."""
    base = server_url.rstrip("/")
    reply = await http.call(client, client.build_request("GET", base + SERVER_CONFIG_PATH))
    if reply.status in (404, 405):
        return SignInOptions(base)
    if reply.status >= 500:
        raise ServerError(
            f"the server failed (HTTP {reply.status}) at {SERVER_CONFIG_PATH}: try again later."
        )
    answer = reply.json
    if not reply.ok or not isinstance(answer, dict):
        raise ProtocolError(
            f"unexpected answer HTTP {reply.status} from {SERVER_CONFIG_PATH}: check the server "
            "URL."
        )
    password = answer.get("password", True)
    oidc = answer.get("oidc")
    provider = None
    if isinstance(oidc, dict):
        issuer, client_id = oidc.get("issuer"), oidc.get("client_id")
        scopes = oidc.get("scopes")
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s for s in scopes):
            scopes = list(DEFAULT_SCOPES)
        if isinstance(issuer, str) and issuer and isinstance(client_id, str) and client_id:
            check_issuer(issuer, where=f"the server's {SERVER_CONFIG_PATH}")
            provider = Provider(issuer, client_id, tuple(scopes))
        else:
            log.warning("%s names no usable issuer and client_id: ignored", SERVER_CONFIG_PATH)
    return SignInOptions(base, password=password is not False, provider=provider)


def check_issuer(issuer: str, *, where: str) -> str:
    """``issuer`` when it is an ``https://`` address (or ``http://`` on this computer) without
    a query or fragment, else ProtocolError naming ``where`` it came from."""
    problem = https_problem(issuer)
    if problem:
        raise ProtocolError(f"the identity provider named by {where} {problem}")
    return issuer


# ---------------------------------------------------------------------------- discovery


async def discover(client: httpx.AsyncClient, issuer: str) -> ProviderMetadata:
    """The provider's metadata from ``{issuer}/.well-known/openid-configuration``; its
    ``issuer`` must equal ``issuer`` exactly, its endpoints be https (or on this computer).
    Raises ProtocolError (saying what is wrong), ServerUnreachable, CertificateError."""
    check_issuer(issuer, where="the settings")
    where = issuer.rstrip("/") + "/.well-known/openid-configuration"
    reply = await http.call(client, client.build_request("GET", where))
    doc = reply.json
    if not reply.ok or not isinstance(doc, dict):
        raise ProtocolError(
            f"the identity provider {issuer} gave no discovery document (HTTP {reply.status} "
            "from its .well-known/openid-configuration): check the issuer setting."
        )
    if doc.get("issuer") != issuer:
        raise ProtocolError(
            f"the identity provider's discovery document names another issuer "
            f"({_short(doc.get('issuer'))}) than {issuer}: the issuer must be written exactly "
            "as the provider writes it (check the trailing slash)."
        )
    endpoints: dict[str, str] = {}
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "device_authorization_endpoint",
        "revocation_endpoint",
    ):
        value = doc.get(name)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or https_problem(value):
            raise ProtocolError(
                f"the identity provider's {name} ({_short(value)}) is not an https:// address."
            )
        endpoints[name] = value
    for needed in ("authorization_endpoint", "token_endpoint"):
        if needed not in endpoints:
            raise ProtocolError(f"the identity provider's discovery document has no {needed}.")
    return ProviderMetadata(issuer=issuer, **endpoints)


# ---------------------------------------------------------------------------- flows


def _pkce() -> tuple[str, str]:
    """A code verifier (RFC 7636: 43 to 128 unreserved characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)  # 64 characters
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier, challenge


def authorization_url(
    metadata: ProviderMetadata,
    provider: Provider,
    *,
    redirect_uri: str,
    state: str,
    nonce: str,
    challenge: str,
) -> str:
    """The provider's sign-in page for this sign-in: public values only (no secret)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(provider.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    endpoint = metadata.authorization_endpoint
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


async def browser_sign_in(
    client: httpx.AsyncClient,
    provider: Provider,
    metadata: ProviderMetadata,
    *,
    open_browser: OpenBrowser,
    on_prompt: OnPrompt,
    redirect_ports: str = "0",
    cancel: asyncio.Event | None = None,
    waits: Waits | None = None,
) -> ProviderTokens:
    """Sign in with the system browser: the code flow with PKCE, the redirect to a loopback
    listener, the code exchanged, the ID token's nonce checked. ``open_browser(url)`` opens the
    provider's page (it runs on a thread: it may block); ``on_prompt`` hears the address.

    Raises SignInCancelled, SignInTimedOut, ProviderError, and the network's errors.
    """
    waits = waits or Waits()
    _check_cancel(cancel)
    deadline = waits.clock() + waits.timeout
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier, challenge = _pkce()
    async with LoopbackListener(
        state=state, issuer=provider.issuer, ports=redirect_ports
    ) as listener:
        url = authorization_url(
            metadata,
            provider,
            redirect_uri=listener.redirect_uri,
            state=state,
            nonce=nonce,
            challenge=challenge,
        )
        on_prompt(BrowserPrompt(url, provider.issuer))
        opener = asyncio.ensure_future(_open(open_browser, url))
        try:
            timer = _sleep_until(deadline, waits)
            code = await _until(listener.code(), cancel=cancel, timer=timer, waits=waits)
        finally:
            if not opener.done():  # a browser command still running: it is not ours to wait for
                opener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opener
        redirect_uri = listener.redirect_uri
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": provider.client_id,
        "code_verifier": verifier,
    }
    tokens = await _token_call(client, metadata, form, what="the sign-in")
    _check_cancel(cancel)
    return _checked(tokens, provider, nonce=nonce)


async def _open(open_browser: OpenBrowser, url: str) -> None:
    try:
        opened = await asyncio.to_thread(open_browser, url)
    except (OSError, webbrowser.Error) as exc:  # the address is shown all the same
        log.warning("the browser could not be opened (%s): open the address by hand", exc)
        return
    if not opened:
        log.warning("no browser could be opened: open the address by hand")


async def device_sign_in(
    client: httpx.AsyncClient,
    provider: Provider,
    metadata: ProviderMetadata,
    *,
    on_prompt: OnPrompt,
    cancel: asyncio.Event | None = None,
    waits: Waits | None = None,
) -> ProviderTokens:
    """Sign in with device authorization (RFC 8628): ``on_prompt`` hears the address and the
    code the person enters elsewhere; the token endpoint is polled every ``interval`` seconds
    (5 more after each ``slow_down``) until the person finished, refused, or time ran out.

    Raises SignInCancelled, SignInTimedOut (also when the code expired), ProviderError,
    NoSingleSignOn (the provider offers no device authorization), the network's errors.
    """
    waits = waits or Waits()
    _check_cancel(cancel)
    if not metadata.device_authorization_endpoint:
        raise NoSingleSignOn(
            "The identity provider offers no device sign-in: sign in with the browser (--sso)."
        )
    start = waits.clock()
    form = {"client_id": provider.client_id, "scope": " ".join(provider.scopes)}
    request = client.build_request(
        "POST", metadata.device_authorization_endpoint, data=form, headers=_ACCEPT_JSON
    )
    reply = await http.call(client, request)
    answer = reply.json if isinstance(reply.json, dict) else {}
    if not reply.ok:
        raise _provider_refusal(reply, "the device sign-in")
    device_code, user_code = answer.get("device_code"), answer.get("user_code")
    verification_uri = answer.get("verification_uri") or answer.get("verification_url")
    if not (
        isinstance(device_code, str)
        and device_code
        and isinstance(user_code, str)
        and user_code
        and isinstance(verification_uri, str)
        and not https_problem(verification_uri, query=True)
    ):
        raise ProtocolError(
            "the identity provider's device authorization answer lacks a code or an https:// "
            "verification address."
        )
    expires_in = _number(answer.get("expires_in")) or waits.timeout
    interval = max(1.0, _number(answer.get("interval")) or DEFAULT_POLL_INTERVAL)
    complete = answer.get("verification_uri_complete")
    on_prompt(
        DevicePrompt(
            verification_uri=verification_uri,
            user_code=user_code,
            verification_uri_complete=(
                complete
                if isinstance(complete, str) and not https_problem(complete, query=True)
                else ""
            ),
            expires_in=expires_in,
        )
    )
    waits = dataclasses.replace(waits, timeout=min(waits.timeout, expires_in))
    deadline = start + waits.timeout
    poll = {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": provider.client_id}
    while True:
        left = deadline - waits.clock()
        if left <= 0:
            raise _timed_out(waits)
        await _until(waits.sleep(min(interval, left)), cancel=cancel)
        request = client.build_request(
            "POST", metadata.token_endpoint, data=poll, headers=_ACCEPT_JSON
        )
        reply = await _until(http.call(client, request), cancel=cancel)
        if reply.ok:
            _check_cancel(cancel)
            return _checked(_tokens_of(reply), provider, nonce=None)
        error = reply.json.get("error") if isinstance(reply.json, dict) else None
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_STEP
            log.info("the identity provider asked to poll more slowly: every %.0f s", interval)
            continue
        if error == "expired_token":
            raise SignInTimedOut(
                "The sign-in code expired before the sign-in was finished: start again.",
                reason="the code expired",
            )
        raise _provider_refusal(reply, "the device sign-in")


async def refresh(
    client: httpx.AsyncClient, provider: Provider, metadata: ProviderMetadata, refresh_token: str
) -> ProviderTokens:
    """New tokens for ``refresh_token`` at the provider's token endpoint. ProviderError when
    the provider refuses it (the sign-in ended: sign in again)."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": provider.client_id,
    }
    tokens = await _token_call(client, metadata, form, what="the renewal")
    if tokens.id_token:
        return _checked(tokens, provider, nonce=None)
    return tokens


async def revoke(
    client: httpx.AsyncClient,
    provider: Provider,
    metadata: ProviderMetadata,
    token: str,
    *,
    hint: str = "refresh_token",
) -> bool:
    """Revoke ``token`` at the provider (RFC 7009) when it offers a revocation endpoint; True
    when it said so. Failures are logged, never raised."""
    if not metadata.revocation_endpoint:
        log.info("the identity provider offers no revocation endpoint: nothing revoked there")
        return False
    form = {"token": token, "token_type_hint": hint, "client_id": provider.client_id}
    request = client.build_request(
        "POST", metadata.revocation_endpoint, data=form, headers=_ACCEPT_JSON
    )
    try:
        reply = await http.call(client, request)
    except TrayNotifierError as exc:
        log.warning("revoking at the identity provider failed: %s", exc)
        return False
    if not reply.ok:
        log.warning("the identity provider's revocation answered HTTP %d", reply.status)
        return False
    return True


# ---------------------------------------------------------------------------- helpers

_ACCEPT_JSON = {"Accept": "application/json"}


async def _token_call(
    client: httpx.AsyncClient, metadata: ProviderMetadata, form: dict[str, str], *, what: str
) -> ProviderTokens:
    request = client.build_request("POST", metadata.token_endpoint, data=form, headers=_ACCEPT_JSON)
    reply = await http.call(client, request)
    if not reply.ok:
        raise _provider_refusal(reply, what)
    return _tokens_of(reply)


def _tokens_of(reply: http.Reply) -> ProviderTokens:
    answer = reply.json
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        raise ProtocolError("the identity provider's token endpoint answered without tokens.")
    id_token = answer.get("id_token")
    refresh_token = answer.get("refresh_token")
    return ProviderTokens(
        access_token=answer["access_token"],
        id_token=id_token if isinstance(id_token, str) else "",
        refresh_token=refresh_token if isinstance(refresh_token, str) else "",
        expires_in=_number(answer.get("expires_in")),
    )


def _checked(tokens: ProviderTokens, provider: Provider, *, nonce: str | None) -> ProviderTokens:
    """``tokens`` with their ID token's claims, once it is known to belong to this sign-in:
    the nonce (when one was sent), the issuer and the audience. The signature is the server's
    to check (it trusts only the provider's keys)."""
    if not tokens.id_token:
        raise ProtocolError(
            "the identity provider answered without an ID token: is the openid scope asked for?"
        )
    import jwt  # at the first sign-in only: not at every start of the tray

    try:
        claims = jwt.decode(tokens.id_token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ProtocolError(f"the identity provider's ID token cannot be read ({exc}).") from None
    if nonce is not None and not hmac.compare_digest(
        str(claims.get("nonce", "")).encode(), nonce.encode()
    ):
        raise ProviderError(
            "The ID token does not belong to this sign-in (its nonce differs): it was refused.",
            reason="the ID token does not belong to this sign-in",
        )
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("iss") != provider.issuer or provider.client_id not in audiences:
        raise ProviderError(
            "The ID token was issued by another provider or for another program: it was refused.",
            reason="the ID token was issued for another program",
        )
    return ProviderTokens(
        access_token=tokens.access_token,
        id_token=tokens.id_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        claims=claims,
    )


def _provider_refusal(reply: http.Reply, what: str) -> TrayNotifierError:
    if reply.status >= 500:
        return ServerError(
            f"the identity provider failed (HTTP {reply.status}) during {what}: try again later."
        )
    answer = reply.json if isinstance(reply.json, dict) else {}
    error, description = answer.get("error"), answer.get("error_description")
    if isinstance(error, str) and error:
        return callback_error(error, description if isinstance(description, str) else "")
    return ProtocolError(f"the identity provider answered HTTP {reply.status} during {what}.")


def _short(value: Any) -> str:
    return clean_words(repr(value))[:120]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str) and re.fullmatch(r"\d{1,9}", value):
            return float(value)
        return None
    return float(value) if value > 0 else None


def _check_cancel(cancel: asyncio.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise SignInCancelled()


async def _until(
    awaitable: Awaitable[T],
    *,
    cancel: asyncio.Event | None,
    timer: Coroutine[Any, Any, None] | None = None,
    waits: Waits | None = None,
) -> T:
    """``awaitable``'s result, unless ``cancel`` is set first (SignInCancelled) or ``timer``
    (a wait on the clock of ``waits``) ends first (SignInTimedOut). No polling: the waits
    race, and the losers are cancelled."""
    work: asyncio.Future[T] = asyncio.ensure_future(awaitable)
    racing: list[asyncio.Future[Any]] = [work]
    if timer is not None:
        racing.append(asyncio.ensure_future(timer))
    if cancel is not None:
        racing.append(asyncio.ensure_future(cancel.wait()))
    try:
        await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in racing:
            if not task.done():
                task.cancel()
        await asyncio.gather(*racing, return_exceptions=True)
    _check_cancel(cancel)
    if work.done() and not work.cancelled():
        return work.result()
    raise _timed_out(waits or Waits())


def _timed_out(waits: Waits) -> SignInTimedOut:
    return SignInTimedOut(
        f"The sign-in was not finished within {waits.timeout / 60:g} minutes: start again.",
        reason="time ran out",
    )


async def _sleep_until(deadline: float, waits: Waits) -> None:
    while (left := deadline - waits.clock()) > 0:
        await waits.sleep(left)
