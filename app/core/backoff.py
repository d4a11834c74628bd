"""When to reconnect: a pure object, with the clock and the random source passed in.

- No wait is ever shorter than :data:`MIN_WAIT` (1 s), whatever the server says (``retry: 0``,
  ``Retry-After: 0``): one client must never turn into a load generator.
- After a stream that worked ends: the server's ``retry:`` time, plus jitter of at most a
  quarter of it (so many clients do not come back in the same millisecond).
- After consecutive failures (refused, reset, 5xx): exponential with full jitter ABOVE that
  time, ``uniform(base, min(cap, base * 2 ** n))`` after the n-th failure, capped at
  :data:`DEFAULT_CAP` (18 s; see :func:`failure_cap` for why). The cap bounds how late a
  client comes back after an outage of any length, so it is short: the jitter spreads a
  fleet's reconnects over the window, it does not delay them (issue 21: a cap of 300 s kept
  trays away for 3 minutes after the server was back, and a backend that does not replay lost
  every notice of those minutes).
  (The stream engine counts a stream that ends at once, having delivered nothing, as a failure.)
  The server's ``retry:`` time is a floor: no wait is ever shorter (full jitter from zero would
  come back within milliseconds when the server asked for hundreds), and a ``retry:`` longer
  than the cap wins (at most :data:`RETRY_AFTER_MAX`).
- ``Retry-After`` (seconds or an HTTP date) of a 429 or 503 is honoured: the wait is at least
  that long (at most an hour, against a misconfigured server).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from app.core.config import StreamSettings

DEFAULT_RETRY = 3.0
SUCCESS_JITTER = 0.25
RETRY_AFTER_MAX = 3600.0  # the longest wait a server can ask for (Retry-After, retry:)
MIN_WAIT = 1.0  # the shortest wait before any reconnect, seconds: ``retry: 0`` is raised to it

# The failure cap, derived from the promise "connected again within RECONNECT_WINDOW of the
# server's return, after an outage of any length". What separates the server's return from the
# next successful attempt is at most: an attempt already under way that still fails (a connect
# that times out: the connect timeout; a refused one fails at once), then the longest wait (the
# cap), then the successful attempt itself (TCP and TLS handshakes, the response headers):
#     connect_timeout + cap + ATTEMPT_SLACK <= RECONNECT_WINDOW
#     cap = 30 - 10 (StreamSettings.connect_timeout's default) - 2 = 18 s
RECONNECT_WINDOW = 30.0  # seconds from the server's return to connected (the client rules)
ATTEMPT_SLACK = 2.0  # the successful attempt's own handshakes and response headers
DEFAULT_CAP = RECONNECT_WINDOW - StreamSettings().connect_timeout - ATTEMPT_SLACK  # 18 s
MIN_CAP = 2 * DEFAULT_RETRY  # a window of at least [3 s, 6 s]: a fleet still spreads


def failure_cap(connect_timeout: float) -> float:
    """The failure cap for a connect timeout: the 30 s promise kept with a longer timeout too.

    ``RECONNECT_WINDOW - connect_timeout - ATTEMPT_SLACK``, at most :data:`DEFAULT_CAP` and at
    least :data:`MIN_CAP` (a connect timeout over 22 s cannot keep the promise: the waits then
    still spread, from 3 to 6 s).
    """
    return max(MIN_CAP, min(DEFAULT_CAP, RECONNECT_WINDOW - connect_timeout - ATTEMPT_SLACK))


class Backoff:
    """Computes each wait before a reconnect; holds only the base and the failure count."""

    def __init__(
        self,
        *,
        base: float = DEFAULT_RETRY,
        cap: float = DEFAULT_CAP,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cap = max(cap, MIN_WAIT)
        self.base = _retry_time(base)
        self.failures = 0
        self._rng = rng
        self._clock = clock

    def set_retry_ms(self, milliseconds: int) -> None:
        """The server's ``retry:`` field: the new base wait (never below MIN_WAIT)."""
        self.base = _retry_time(milliseconds / 1000.0)

    def after_success(self) -> float:
        """A stream that worked has ended: forget failures; wait the retry time plus jitter."""
        self.failures = 0
        return max(MIN_WAIT, self.base * (1.0 + SUCCESS_JITTER * self._rng()))

    def after_failure(self, retry_after: str | None = None) -> float:
        """One more consecutive failure; ``retry_after`` is the raw header value, if any.

        The wait is the retry time plus a random share of the exponential window above it:
        never below the retry time (nor MIN_WAIT), at most ``cap`` unless the server asks for
        longer (a longer ``retry:`` time, or ``Retry-After``).
        """
        self.failures += 1
        ceiling = max(self.base, min(self.cap, self.base * 2.0 ** min(self.failures, 32)))
        delay = self.base + (ceiling - self.base) * self._rng()
        server_wait = parse_retry_after(retry_after, now=self._clock()) if retry_after else None
        if server_wait is not None:
            delay = max(delay, min(server_wait, RETRY_AFTER_MAX))
        return max(MIN_WAIT, delay)

    def reset(self) -> None:
        """Reconnect at once next time (network back, wake from sleep)."""
        self.failures = 0


def _retry_time(seconds: float) -> float:
    """A ``retry:`` time as a wait: at least MIN_WAIT, at most RETRY_AFTER_MAX."""
    return min(max(seconds, MIN_WAIT), RETRY_AFTER_MAX)


def parse_retry_after(value: str, *, now: float) -> float | None:
    """``Retry-After``: delay-seconds (ASCII digits) or an HTTP date; None when unusable."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, when.timestamp() - now)
