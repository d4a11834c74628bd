"""The reconnect timing, with an injected clock and random source."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from app.core.backoff import (
    ATTEMPT_SLACK,
    DEFAULT_CAP,
    MIN_CAP,
    MIN_WAIT,
    RECONNECT_WINDOW,
    RETRY_AFTER_MAX,
    Backoff,
    failure_cap,
    parse_retry_after,
)
from app.core.config import StreamSettings


def test_after_success_waits_retry_time_plus_at_most_a_quarter() -> None:
    assert Backoff(base=3.0, rng=lambda: 0.0).after_success() == 3.0
    assert Backoff(base=3.0, rng=lambda: 1.0).after_success() == pytest.approx(3.75)


def test_server_retry_sets_the_base() -> None:
    backoff = Backoff(rng=lambda: 0.0)
    backoff.set_retry_ms(1500)
    assert backoff.after_success() == 1.5


def test_failures_grow_exponentially_with_full_jitter_above_the_retry_time() -> None:
    top = Backoff(base=3.0, cap=300.0, rng=lambda: 1.0)
    assert [top.after_failure() for _ in range(9)] == [6, 12, 24, 48, 96, 192, 300, 300, 300]
    half = Backoff(base=3.0, cap=300.0, rng=lambda: 0.5)
    assert [half.after_failure() for _ in range(3)] == [4.5, 7.5, 13.5]  # 3 + half the window
    bottom = Backoff(base=3.0, rng=lambda: 0.0)
    assert [bottom.after_failure() for _ in range(3)] == [3.0, 3.0, 3.0]  # never below retry


def test_a_failure_never_waits_less_than_the_servers_retry_time() -> None:
    """The measured bug: a 503 retried 19 ms later while the server asked for 300 ms."""
    rng = random.Random(7)
    backoff = Backoff(rng=rng.random)
    backoff.set_retry_ms(300)
    waits = []
    for _ in range(200):
        waits += [backoff.after_failure() for _ in range(12)]
        backoff.after_success()
    assert min(waits) >= 0.3
    assert max(waits) <= DEFAULT_CAP
    assert max(waits) > DEFAULT_CAP - 2  # the window did grow towards the cap


def test_retry_zero_still_backs_off_on_failures() -> None:
    backoff = Backoff(rng=lambda: 1.0)
    backoff.set_retry_ms(0)
    assert [backoff.after_failure() for _ in range(3)] == [2.0, 4.0, 8.0]
    assert backoff.after_success() == 1.25  # a stream that worked: the floor, plus jitter


@pytest.mark.parametrize("retry_ms", [0, 1, 10, 999])
def test_no_wait_is_ever_below_one_second(retry_ms: int) -> None:
    """The audit's bug: ``retry: 0`` and a close made 4,300-5,400 connections in 6 s."""
    backoff = Backoff(rng=lambda: 0.0, clock=lambda: 1000.0)
    backoff.set_retry_ms(retry_ms)
    waits = [backoff.after_success(), backoff.after_failure(), backoff.after_failure("0")]
    waits += [backoff.after_failure(formatdate(900.0, usegmt=True)), backoff.after_success()]
    backoff.reset()
    waits.append(backoff.after_failure())
    assert waits == [MIN_WAIT] * len(waits) == [1.0] * 6


def test_a_base_below_the_floor_is_raised_to_it() -> None:
    assert Backoff(base=0.0, rng=lambda: 0.0).after_success() == 1.0
    assert Backoff(base=0.2, cap=0.5, rng=lambda: 1.0).after_failure() == 1.0


def test_success_resets_the_failure_count() -> None:
    backoff = Backoff(base=2.0, rng=lambda: 1.0)
    for _ in range(5):
        backoff.after_failure()
    backoff.after_success()
    assert backoff.after_failure() == 4.0


def test_reset_for_reconnect_now() -> None:
    backoff = Backoff(base=2.0, rng=lambda: 1.0)
    backoff.after_failure()
    backoff.after_failure()
    backoff.reset()
    assert backoff.after_failure() == 4.0


def test_retry_after_seconds_is_a_minimum() -> None:
    backoff = Backoff(base=3.0, rng=lambda: 0.1)
    assert backoff.after_failure("120") == 120.0
    assert backoff.after_failure("junk") == pytest.approx(3.0 + 0.1 * 9)  # jitter alone
    assert backoff.after_failure("1") == pytest.approx(3.0 + 0.1 * 15)  # never below retry


def test_a_huge_failure_count_stays_at_the_cap() -> None:
    backoff = Backoff(base=3.0, rng=lambda: 1.0)
    for _ in range(5000):
        wait = backoff.after_failure()
    assert wait == DEFAULT_CAP == 18.0


def test_retry_after_http_date_uses_the_clock() -> None:
    now = 1_700_000_000.0
    backoff = Backoff(base=3.0, rng=lambda: 0.0, clock=lambda: now)
    assert backoff.after_failure(formatdate(now + 90, usegmt=True)) == pytest.approx(90.0)


def test_retry_after_is_bounded_to_an_hour() -> None:
    assert Backoff(rng=lambda: 0.0).after_failure("999999") == 3600.0


@pytest.mark.parametrize("value", ["", "-5", "+5", "1.5", " 12 x", "Sun, 99 Foo 2024"])
def test_unusable_retry_after(value: str) -> None:
    assert parse_retry_after(value, now=0.0) is None


def test_retry_after_date_in_the_past_is_zero() -> None:
    assert parse_retry_after(formatdate(100.0, usegmt=True), now=1000.0) == 0.0


# ------------------------------------------------------------------ issue 21: back within 30 s


def test_the_cap_is_derived_from_the_30_s_promise_and_the_connect_timeout() -> None:
    """An attempt under way that times out, then the longest wait, then the successful attempt:
    all within 30 s of the server's return."""
    timeout = StreamSettings().connect_timeout
    assert DEFAULT_CAP == failure_cap(timeout) == 18.0
    assert timeout + DEFAULT_CAP + ATTEMPT_SLACK <= RECONNECT_WINDOW == 30.0
    assert failure_cap(5.0) == DEFAULT_CAP  # a shorter timeout: more margin, same cap
    assert failure_cap(20.0) == 8.0  # a longer one: a shorter cap keeps the promise
    assert failure_cap(300.0) == MIN_CAP == 6.0  # cannot keep it: the waits still spread


def test_after_twenty_failures_no_wait_exceeds_the_cap() -> None:
    """Issue 21: a cap of 300 s kept a tray away for 3 minutes after the backend was back."""
    backoff = Backoff(rng=lambda: 1.0)  # the top of every jitter window
    waits = [backoff.after_failure() for _ in range(20)]
    assert max(waits) == waits[-1] == DEFAULT_CAP
    assert waits[:3] == [6.0, 12.0, DEFAULT_CAP]  # still exponential below the cap


def test_no_failure_wait_exceeds_the_cap_whatever_the_random_value() -> None:
    rng = random.Random(21)
    for _ in range(200):
        backoff = Backoff(rng=rng.random)
        backoff.set_retry_ms(rng.randrange(0, 18_000))
        waits = [backoff.after_failure() for _ in range(rng.randrange(1, 60))]
        assert all(max(backoff.base, MIN_WAIT) <= w <= DEFAULT_CAP for w in waits)
    for u in [0.0, 1e-12, 0.25, 0.5, 0.999999, 1.0]:  # the ends of the rng's range, too
        backoff = Backoff(rng=lambda u=u: u)  # type: ignore[misc]
        assert all(3.0 <= backoff.after_failure() <= DEFAULT_CAP for _ in range(40))


@pytest.mark.parametrize("outage", [30.0, 150.0, 3600.0, 7 * 86400.0])
@pytest.mark.parametrize("attempt", [0.0, 10.0], ids=["refused", "timed-out"])
def test_after_an_outage_of_any_length_the_next_attempt_is_within_the_window(
    outage: float, attempt: float
) -> None:
    """A client retries through an outage (each attempt failing at once, or after the connect
    timeout): its first attempt after the server's return starts within timeout + cap of it."""
    rng = random.Random(int(outage) + int(attempt))
    for _ in range(50):
        backoff = Backoff(rng=rng.random)
        now = backoff.after_success()  # the stream that worked ended with the outage
        while now < outage:  # an attempt starts at `now`, fails at `now + attempt`, waits
            now += attempt + backoff.after_failure()
        assert now - outage <= attempt + DEFAULT_CAP
        assert now - outage + ATTEMPT_SLACK <= RECONNECT_WINDOW


def test_the_fleet_spread_is_kept() -> None:
    """Full jitter stays: a thousand clients after many failures do not come back together."""
    rng = random.Random(22)
    waits = []
    for _ in range(1000):
        backoff = Backoff(rng=rng.random)
        waits.append([backoff.after_failure() for _ in range(20)][-1])
    assert len(set(waits)) == len(waits)  # not all equal: no spike at the cap
    per_second = [sum(int(w) == s for w in waits) for s in range(int(DEFAULT_CAP) + 1)]
    assert max(per_second) < 0.1 * len(waits)  # 15 s of window: about 7 % a second
    assert min(waits) < 4.0 and max(waits) > DEFAULT_CAP - 1.0  # the whole window is used


def test_a_retry_time_longer_than_the_cap_wins() -> None:
    """The server asks for longer (``retry:``): every wait is at least that, up to an hour."""
    backoff = Backoff(rng=lambda: 1.0)
    backoff.set_retry_ms(60_000)
    assert [backoff.after_failure() for _ in range(5)] == [60.0] * 5
    assert backoff.after_success() == 75.0  # plus a quarter after a stream that worked
    backoff.set_retry_ms(10**9)
    assert backoff.after_failure() == RETRY_AFTER_MAX


def test_retry_after_longer_than_the_cap_wins_after_many_failures() -> None:
    backoff = Backoff(rng=lambda: 0.5)
    for _ in range(20):
        backoff.after_failure()
    assert backoff.after_failure("120") == 120.0
    assert backoff.after_failure("5") == pytest.approx(3.0 + 0.5 * (DEFAULT_CAP - 3.0))
