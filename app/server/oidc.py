"""Checking the organisation's ID tokens (DESIGN.md "Single sign-on"): :class:`IdTokenVerifier`.

A tray or the console signs in at the provider and hands the ID token to ``POST /auth/oidc``;
this module decides whether it proves who the person is. Every check of the contract is here,
in one place:

- the provider's keys come from its discovery document's ``jwks_uri`` (the document's ``issuer``
  must be the configured one), are cached, and are fetched again when a token names a key id
  this server does not know, at most once per ``jwks_refetch`` (a flood of made-up key ids
  costs the provider one request a minute);
- a token is verified only with the key its ``kid`` names and only with that key's own
  algorithm (its JWK ``alg``, else the one its type implies): never ``none``, never an HMAC
  (a public key used as an HMAC secret is the classic forgery), never the token's own word;
- ``iss`` exact; ``aud`` holds one of the server's client ids (and ``azp``, required when there
  are several audiences, is one of them); ``exp`` and ``nbf`` with at most ``leeway`` seconds
  of difference; ``iat`` within the last ``max_age`` seconds; ``sub`` and the username claim
  present.

PyJWT (already the server's token library) parses the keys (:class:`jwt.PyJWK`) and checks the
signature; the time checks run on the server's own clock, so tests move it by hand. Replay (each
ID token accepted once, on every process) is the broker's :meth:`~app.server.broker.Broker.
use_once`, called by the API with :attr:`Identity.fingerprint`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from app.server.config import OidcSettings
from app.server.model import subject_key

log = logging.getLogger(__name__)

MAX_DOCUMENT = 1024 * 1024  # bytes of a discovery document or a key set
# a JWK's type (and curve) -> the one algorithm it signs with, when the JWK names none
_IMPLIED_ALGORITHM = {
    ("RSA", None): "RS256",
    ("EC", "P-256"): "ES256",
    ("EC", "P-384"): "ES384",
    ("EC", "P-521"): "ES512",
    ("OKP", "Ed25519"): "EdDSA",
    ("OKP", "Ed448"): "EdDSA",
}
_ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class IdTokenRefused(Exception):
    """The ID token does not prove who signs in (HTTP 401); the message says why, in words
    safe to show (it never holds the token)."""


class ProviderUnreachable(Exception):
    """The provider's discovery document or keys cannot be fetched now (HTTP 503)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified ID token names."""

    subject: str  # subject_key(issuer, sub)
    username: str
    groups: frozenset[str]
    publisher: bool
    fingerprint: str  # the token's replay key: its jti, else a hash of the whole token
    expires_at: float  # epoch seconds: the fingerprint may be forgotten after this


class IdTokenVerifier:
    """Verifies ID tokens of one provider; one per server process, used on its event loop."""

    def __init__(
        self,
        settings: OidcSettings,
        *,
        clock: Callable[[], float] = time.time,
        ssl: Any = True,
    ) -> None:
        """``ssl``: what aiohttp verifies the provider's certificate with (True: the default
        context, which honours ``SSL_CERT_FILE``)."""
        self.settings = settings
        self._clock = clock
        self._ssl = ssl
        self._jwks_uri: str | None = None
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = False
        self._last_refetch = -math.inf
        self._lock = asyncio.Lock()

    async def verify(self, token: str) -> Identity:
        """The person ``token`` names; raises :class:`IdTokenRefused` (or
        :class:`ProviderUnreachable` when the keys cannot be had)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise IdTokenRefused("this is not an ID token (a signed JWT)") from None
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None)
        algorithm = _algorithm(key)
        if header.get("alg") != algorithm:
            raise IdTokenRefused(
                f"the ID token is signed with {header.get('alg')!r}, but its key is for"
                f" {algorithm}: refused"
            )
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.settings.issuer,
                # the audience and the times are checked below, on this server's clock
                options={
                    "require": ["iss", "sub", "aud", "exp", "iat"],
                    "verify_aud": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidIssuerError:
            raise IdTokenRefused(
                f"the ID token was not issued by {self.settings.issuer}: refused"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise IdTokenRefused(f"the ID token has no {exc.claim!r} claim: refused") from None
        except jwt.InvalidSignatureError:
            raise IdTokenRefused("the ID token's signature does not verify: refused") from None
        except jwt.InvalidTokenError as exc:
            raise IdTokenRefused(f"the ID token is not valid ({exc}): refused") from None
        self._check_audience(claims)
        expires_at = self._check_times(claims)
        return self._identity(token, claims, expires_at)

    # keys -------------------------------------------------------------------------------
    async def _key(self, kid: str | None) -> jwt.PyJWK:
        async with self._lock:
            if not self._fetched or (kid not in self._keys and self._keys_may_have_changed()):
                await self._fetch_keys()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        key = self._keys.get(kid) if kid is not None else None
        if key is None:
            raise IdTokenRefused(
                "the ID token names a signing key the provider does not publish: refused"
            )
        return key

    def _keys_may_have_changed(self) -> bool:
        """An unknown key id fetches the keys again, at most once per ``jwks_refetch``."""
        now = self._clock()
        if now - self._last_refetch < self.settings.jwks_refetch:
            return False
        self._last_refetch = now
        return True

    async def _fetch_keys(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            if self._jwks_uri is None:
                document = await self._get(session, _discovery_url(self.settings.issuer))
                if document.get("issuer") != self.settings.issuer:
                    raise ProviderUnreachable(
                        f"the provider's discovery document names the issuer"
                        f" {document.get('issuer')!r}, not {self.settings.issuer!r}: check"
                        " --oidc-issuer (it must match exactly, trailing slash included)"
                    )
                uri = document.get("jwks_uri")
                if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                    raise ProviderUnreachable("the provider's discovery document has no jwks_uri")
                self._jwks_uri = uri
            key_set = await self._get(session, self._jwks_uri)
        keys: dict[str, jwt.PyJWK] = {}
        for jwk in key_set.get("keys", []) if isinstance(key_set.get("keys"), list) else []:
            key = _signing_key(jwk)
            if key is not None:
                keys[str(jwk.get("kid", ""))] = key
        self._keys = keys
        self._fetched = True
        log.info("fetched %d signing keys of %s", len(keys), self.settings.issuer)

    async def _get(self, session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
        try:
            async with session.get(url, ssl=self._ssl, allow_redirects=False) as reply:
                body = await reply.content.read(MAX_DOCUMENT + 1)
                if reply.status != 200:
                    raise ProviderUnreachable(
                        f"the identity provider answered {reply.status} for {url}"
                    )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnreachable(
                f"cannot reach the identity provider at {url}: {exc or type(exc).__name__}"
            ) from None
        if len(body) > MAX_DOCUMENT:
            raise ProviderUnreachable(f"the identity provider's answer at {url} is too large")
        try:
            document = json.loads(body)
        except ValueError:
            raise ProviderUnreachable(
                f"the identity provider's answer at {url} is not JSON"
            ) from None
        if not isinstance(document, dict):
            raise ProviderUnreachable(f"the identity provider's answer at {url} is not an object")
        return document

    # claims -----------------------------------------------------------------------------
    def _check_audience(self, claims: dict[str, Any]) -> None:
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        ours = self.settings.audiences
        if not any(a in ours for a in audiences):
            raise IdTokenRefused(
                "the ID token was issued to another application (its audience is not this"
                " server's client id): refused"
            )
        azp = claims.get("azp")
        if (len(audiences) > 1 or azp is not None) and azp not in ours:
            raise IdTokenRefused("the ID token was issued to another application (azp): refused")

    def _check_times(self, claims: dict[str, Any]) -> float:
        now, leeway = self._clock(), self.settings.leeway
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf", -math.inf)
        if not (_number(exp) and _number(iat) and _number(nbf)):
            raise IdTokenRefused("the ID token's times are not numbers: refused")
        assert isinstance(exp, int | float) and isinstance(iat, int | float)
        assert isinstance(nbf, int | float)
        if exp + leeway <= now:
            raise IdTokenRefused("the ID token has expired: sign in again")
        if nbf - leeway > now or iat - leeway > now:
            raise IdTokenRefused(
                "the ID token is not valid yet: this server's clock or the provider's is wrong"
            )
        if iat + self.settings.max_age + leeway < now:
            raise IdTokenRefused("the ID token was issued too long ago: sign in again")
        return float(exp) + leeway

    def _identity(self, token: str, claims: dict[str, Any], expires_at: float) -> Identity:
        sub = claims["sub"]
        claim = self.settings.username_claim
        username = claims.get(claim)
        if not isinstance(sub, str) or not sub:
            raise IdTokenRefused("the ID token has no subject (sub): refused")
        if not isinstance(username, str) or not username.strip():
            raise IdTokenRefused(
                f"the ID token has no {claim!r} claim to name you by: IT sets the provider to"
                f" send it, or the server's --oidc-username-claim"
            )
        groups = _groups(claims.get(self.settings.groups_claim))
        jti = claims.get("jti")
        fingerprint = (
            "jti:" + hashlib.sha256(jti.encode()).hexdigest()
            if isinstance(jti, str) and jti
            else "token:" + hashlib.sha256(token.encode()).hexdigest()
        )
        return Identity(
            subject=subject_key(str(claims["iss"]), sub),
            username=username.strip(),
            groups=groups,
            publisher=not groups.isdisjoint(self.settings.publisher_groups),
            fingerprint=fingerprint,
            expires_at=expires_at,
        )


def _discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _signing_key(jwk: Any) -> jwt.PyJWK | None:
    """A published key this server may verify with, or None (an encryption key, a symmetric
    key, an algorithm it does not take, or one PyJWT cannot read)."""
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or jwk.get("kty") == "oct":
        return None
    kty, crv = str(jwk.get("kty")), jwk.get("crv")
    algorithm = jwk.get("alg") or _IMPLIED_ALGORITHM.get(
        (kty, str(crv) if kty != "RSA" and crv is not None else None)
    )
    if algorithm not in _ASYMMETRIC:
        return None
    try:
        return jwt.PyJWK({**jwk, "alg": algorithm})
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        log.warning("the provider publishes a key this server cannot read (kid %r)", jwk.get("kid"))
        return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _algorithm(key: jwt.PyJWK) -> str:
    return str(key.algorithm_name)


def _groups(value: Any) -> frozenset[str]:
    """The groups claim: a list of names (or ids), one name, or absent (no groups)."""
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(str(g) for g in value if isinstance(g, str | int) and str(g))
    return frozenset()
