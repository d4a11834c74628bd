"""The cost of the per-request session check (is this token's login session ended?).

Times, in-process and without HTTP, what every authenticated request does with its token:
the JWT check alone, then the JWT check plus the ended-session lookup, with --ended sessions
already ended (the lookup is two dictionary reads). Prints microseconds per request.

    .venv/bin/python bench/session_check.py --ended 100000 --requests 200000
"""

from __future__ import annotations

import argparse
import secrets
import time

from app.server.auth import TokenIssuer
from app.server.hub import Hub
from app.server.model import User


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ended", type=int, default=100_000, help="sessions already ended")
    parser.add_argument("--requests", type=int, default=200_000)
    args = parser.parse_args()
    now = time.time()
    hub = Hub()
    for n in range(args.ended):
        hub.end_session(f"user{n % 1000}", secrets.token_urlsafe(12), until=now + 900, now=now)
    hub.end_user_sessions("someone", before=now, until=now + 900, now=now)
    issuer = TokenIssuer(secrets.token_hex(32).encode(), ttl=900)
    token, _ = issuer.issue(User("alice", "x", frozenset({"it"})), session_id="live-session")
    claims = issuer.verify(token)

    start = time.perf_counter()
    for _ in range(args.requests):
        hub.session_ended(claims.principal, issued_at=claims.issued_at)
    lookup = (time.perf_counter() - start) / args.requests

    verify_n = max(args.requests // 10, 1)
    start = time.perf_counter()
    for _ in range(verify_n):
        issuer.verify(token)
    verify = (time.perf_counter() - start) / verify_n

    print(f"ended sessions held: {args.ended}")
    print(f"session lookup     : {lookup * 1e6:8.3f} us per request")
    print(f"JWT verify (HS256) : {verify * 1e6:8.3f} us per request")
    print(f"lookup share       : {lookup / (lookup + verify):8.1%} of the token check")


if __name__ == "__main__":
    main()
