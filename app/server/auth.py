"""Server-side credentials: scrypt password hashes, the signing key, JWT access tokens and
random refresh tokens (stored only as SHA-256 hashes).

Nothing here logs a token or a password, and no exception message carries one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jwt

from app.core.files import private_path, write_private
from app.server.config import SIGNING_KEY_FILE
from app.server.model import PUBLISHER_ROLE, Principal, User

log = logging.getLogger(__name__)

# scrypt cost: n=2**14, r=8 is 16 MiB and about 50 ms per hash on these machines
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The access token is missing, malformed, badly signed or expired (HTTP 401)."""


# ---------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return "$".join(
        ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str | None) -> bool:
    """Constant-time check. With ``stored=None`` (unknown user) or ``""`` (a person of the
    identity provider, who has no password here) it still spends the same time, and fails."""
    stored = stored or None
    try:
        scheme, n, r, p, salt, digest = (stored or _DUMMY_HASH).split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        actual = _scrypt(password, _unb64(salt), int(n), int(r), int(p))
    except ValueError:
        log.error("a stored password hash is malformed; reset that user's password")
        return False
    return stored is not None and hmac.compare_digest(actual, expected)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_DUMMY_HASH = "$".join(
    ["scrypt", str(_SCRYPT_N), str(_SCRYPT_R), str(_SCRYPT_P), _b64(b"\0" * 16), _b64(b"\0" * 32)]
)


# ---------------------------------------------------------------- signing key


def load_signing_key(data_dir: Path) -> bytes:
    """The HS256 key in ``data_dir/signing.key``: created on first start with mode 0600, and
    tightened to 0600 at every start (an older version may have left it readable)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SIGNING_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        private_path(path, create=False)
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 64:
            raise ValueError(
                f"the signing key {path} is damaged: delete it (every login then ends)"
            ) from None
        return key.encode("ascii")
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    log.info("created a new token signing key in %s", path)
    return load_signing_key(data_dir)


def save_signing_key(data_dir: Path, key: bytes) -> None:
    """Replace ``data_dir/signing.key`` with ``key`` (mode 0600, atomically: a reader sees the
    old key or the new one, never half of one)."""
    write_private(data_dir / SIGNING_KEY_FILE, key.decode("ascii") + "\n")


# ---------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class AccessClaims:
    principal: Principal
    expires_at: float  # epoch seconds
    issued_at: float = 0.0  # epoch seconds


class TokenIssuer:
    """Issues and checks HS256 access tokens (sub, groups, roles, sid, iat, exp)."""

    def __init__(self, key: bytes, *, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self.ttl = ttl
        self._clock = clock

    def issue(self, user: User, *, session_id: str) -> tuple[str, float]:
        """A new access token for ``user`` and its lifetime in seconds."""
        now = self._clock()
        claims = {
            "sub": user.name,
            "groups": sorted(user.groups),
            "roles": user.roles,
            "sid": session_id,
            "iat": now,  # not rounded: "every token issued up to now" must be exact
            "exp": now + self.ttl,
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM), self.ttl

    def verify(self, token: str) -> AccessClaims:
        """Check signature and expiry; raises InvalidToken with a message safe to show."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                # the times are checked below against this issuer's clock, not PyJWT's
                options={
                    "require": ["sub", "exp", "sid", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError:
            raise InvalidToken("the access token is not valid: log in again") from None
        exp = claims["exp"]
        if not isinstance(exp, int | float) or exp <= self._clock():
            raise InvalidToken("the access token has expired: refresh it or log in again")
        groups, roles = claims.get("groups", []), claims.get("roles", [])
        sid, iat = claims["sid"], claims["iat"]
        if (
            not isinstance(groups, list)
            or not isinstance(roles, list)
            or not isinstance(sid, str)
            or not sid
            or not isinstance(iat, int | float)
        ):
            raise InvalidToken("the access token is not valid: log in again")
        principal = Principal(
            user_id=str(claims["sub"]),
            groups=frozenset(str(g) for g in groups),
            publisher=PUBLISHER_ROLE in roles,
            session_id=sid,
        )
        return AccessClaims(principal, float(exp), float(iat))


def new_refresh_token() -> tuple[str, str]:
    """A random refresh token and the hash to store."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_session_id() -> str:
    return secrets.token_urlsafe(12)
