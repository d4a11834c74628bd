"""Server-side credentials: scrypt password hashes, the signing key, JWT access tokens and
random refresh tokens (stored only as SHA-256 hashes).

Access tokens are compact JWTs (RFC 7519) signed with HMAC-SHA256, written and checked here
directly (:class:`TokenIssuer`): this server reads only the tokens it wrote, so a token is
accepted only with exactly the header this server writes (no other ``alg``, ever) and the
signature this key gives its first two segments, byte for byte. A general JWT library checks
far more cases than that and took most of a stream's open (about 30 of 40 µs per token).

Nothing here logs a token or a password, and no exception message carries one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.files import private_path, write_private
from app.server.config import SIGNING_KEY_FILE
from app.server.model import PUBLISHER_ROLE, Principal, User

log = logging.getLogger(__name__)

# scrypt cost: n=2**14, r=8 is 16 MiB and about 50 ms per hash on these machines
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1
_NO_GROUPS: frozenset[str] = frozenset()  # shared: a stream holds its viewer's groups for life

# the header of every access token, as its first segment: the only one accepted
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")


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
        payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
        signed = _HEADER + b"." + base64.urlsafe_b64encode(payload).rstrip(b"=")
        return (signed + b"." + self._sign(signed)).decode("ascii"), self.ttl

    def _sign(self, signed: bytes) -> bytes:
        return base64.urlsafe_b64encode(hmac.digest(self._key, signed, "sha256")).rstrip(b"=")

    def verify(self, token: str) -> AccessClaims:
        """Check signature and expiry; raises InvalidToken with a message safe to show."""
        invalid = InvalidToken("the access token is not valid: log in again")
        try:
            signed, dot, signature = token.encode("ascii").rpartition(b".")
            header, _, payload = signed.partition(b".")
            if (
                not dot
                or header != _HEADER
                or not hmac.compare_digest(signature, self._sign(signed))
            ):
                raise invalid
            claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
        except ValueError:  # not ASCII, not base64, not JSON
            raise invalid from None
        if not isinstance(claims, dict):
            raise invalid
        sub, exp, sid, iat = (claims.get(k) for k in ("sub", "exp", "sid", "iat"))
        groups, roles = claims.get("groups", []), claims.get("roles", [])
        if (
            not isinstance(sub, str)
            or not sub
            or not isinstance(sid, str)
            or not sid
            or not isinstance(exp, int | float)
            or not isinstance(iat, int | float)
            or not isinstance(groups, list)
            or not isinstance(roles, list)
        ):
            raise invalid
        # the times are checked against this issuer's clock
        if exp <= self._clock():
            raise InvalidToken("the access token has expired: refresh it or log in again")
        principal = Principal(
            user_id=sub,
            groups=frozenset(map(str, groups)) if groups else _NO_GROUPS,
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
