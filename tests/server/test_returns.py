"""The spread of a fleet's return after a shutdown (app/server/returns.py)."""

from __future__ import annotations

from app.server.config import HttpSettings
from app.server.returns import ReturnSpread


def test_a_small_office_comes_back_as_before() -> None:
    spread = ReturnSpread(HttpSettings(), rng=lambda: 0.999)
    spread.begin(3)
    assert spread.window_ms == 3.0  # a thousand streams a second: 3 ms for 3
    assert spread.retry_ms() == 3002


def test_the_window_grows_with_the_streams_closed_and_is_bounded() -> None:
    draws = iter([0.0, 0.5, 0.999])
    spread = ReturnSpread(HttpSettings(return_rate=1000.0), rng=lambda: next(draws))
    spread.begin(16_000)
    assert spread.window_ms == 16_000.0
    assert [spread.retry_ms() for _ in range(3)] == [3000, 11000, 18984]
    spread.begin(1_000_000)
    assert spread.window_ms == HttpSettings().return_window * 1000.0


def test_every_wait_is_at_least_the_usual_retry_time() -> None:
    spread = ReturnSpread(HttpSettings(retry_ms=5000, return_rate=10.0), rng=lambda: 0.0)
    spread.begin(0)
    assert spread.window_ms == 0.0 and spread.retry_ms() == 5000
    spread.begin(-1)  # (never negative)
    assert spread.retry_ms() == 5000
