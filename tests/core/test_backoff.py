"""The reconnect timing, with an injected clock and random source."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest

from app.core.backoff import MIN_WAIT, Backoff, parse_retry_after


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
    half = Backoff(base=3.0, rng=lambda: 0.5)
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
    assert max(waits) <= 300.0
    assert max(waits) > 100  # the window did grow towards the cap


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
    assert backoff.after_failure("1") == pytest.approx(3.0 + 0.1 * 21)  # never below retry


def test_a_huge_failure_count_stays_at_the_cap() -> None:
    backoff = Backoff(base=3.0, rng=lambda: 1.0)
    for _ in range(5000):
        wait = backoff.after_failure()
    assert wait == 300.0


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
