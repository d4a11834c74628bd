"""Login throttling: after a handful of failed logins, wait before the next try, longer with
each further failure (HTTP 429 with ``Retry-After``).

Three counters, each with its own threshold, all on the server's clock:

- an account *from one client address*: a guesser at one address waits, while the owner at
  another address logs in as usual (a stranger can never lock an account out);
- a client address, whatever accounts it tries (one address guessing many accounts);
- an account from addresses that have not logged in to it successfully lately (many
  addresses guessing one account), with a higher threshold: an address the account's owner
  used successfully within ``forget`` seconds is not held back by it.

Waits double from ``backoff`` up to ``backoff_max``, so throttling always ends; a counter is
forgotten ``forget`` seconds after its last failure and reset by a successful login. A
throttled attempt is answered without checking the password and does not count as a
failure. Each throttle is logged once, with the address and the account.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

ACCOUNT_FAILURES_FACTOR = 10  # the any-address account threshold: this times the per-address one


@dataclass(slots=True)
class _Count:
    failures: int = 0
    last: float = 0.0
    logged_until: float = 0.0  # the throttle that ends then was logged


class LoginThrottle:
    """Failed-login counters; every method is called on the server's event loop."""

    def __init__(
        self,
        *,
        free_failures: int,
        address_failures: int,
        backoff: float,
        backoff_max: float,
        forget: float,
        clock: Callable[[], float],
    ) -> None:
        self._free = free_failures
        self._address_free = address_failures
        self._account_free = free_failures * ACCOUNT_FAILURES_FACTOR
        self._backoff = backoff
        self._backoff_max = backoff_max
        self._forget = forget
        self._clock = clock
        self._counts: dict[tuple[str, str, str], _Count] = {}
        self._known: dict[tuple[str, str], float] = {}  # (account, address) -> last success

    def retry_after(self, account: str, address: str) -> int:
        """Seconds (rounded up) before ``address`` may try ``account`` again; 0: now."""
        now = self._clock()
        self._prune(now)
        waits = [
            (self._wait(("pair", account, address), self._free, now), "pair"),
            (self._wait(("address", "", address), self._address_free, now), "address"),
        ]
        if now - self._known.get((account, address), -math.inf) > self._forget:
            waits.append((self._wait(("account", account, ""), self._account_free, now), "all"))
        wait, kind = max(waits)
        if wait <= 0:
            return 0
        self._log_once(kind, account, address, now, wait)
        return math.ceil(wait)

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        for key in (("pair", account, address), ("address", "", address), ("account", account, "")):
            count = self._counts.setdefault(key, _Count())
            count.failures += 1
            count.last = now

    def succeeded(self, account: str, address: str) -> None:
        now = self._clock()
        self._counts.pop(("pair", account, address), None)
        self._counts.pop(("address", "", address), None)
        self._known[(account, address)] = now

    def _wait(self, key: tuple[str, str, str], free: int, now: float) -> float:
        count = self._counts.get(key)
        if count is None or count.failures < free or now - count.last > self._forget:
            return 0.0
        delay = min(self._backoff * 2.0 ** (count.failures - free), self._backoff_max)
        return count.last + delay - now

    def _log_once(self, kind: str, account: str, address: str, now: float, wait: float) -> None:
        key = {"pair": ("pair", account, address), "address": ("address", "", address)}.get(
            kind, ("account", account, "")
        )
        count = self._counts[key]
        if count.logged_until >= now + wait - 1e-9:
            return
        count.logged_until = now + wait
        what = {
            "pair": f"for account {account!r} from {address}",
            "address": f"for every account from {address}",
            "all": f"for account {account!r} from addresses it has not used (now {address})",
        }[kind]
        log.warning(
            "login throttled %s after %d failures: next try in %.0f s",
            what,
            count.failures,
            wait,
        )

    def _prune(self, now: float) -> None:
        if len(self._counts) + len(self._known) < 1024:
            return
        horizon = now - self._forget
        self._counts = {k: c for k, c in self._counts.items() if c.last >= horizon}
        self._known = {k: t for k, t in self._known.items() if t >= horizon}
