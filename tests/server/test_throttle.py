"""Login throttling, against the real server on loopback with an injected clock: after a
handful of failures a 429 with Retry-After and a doubling wait; never a lockout by a stranger
(another address logs in; the wait ends); each throttle logged once with the address.

The backend plays no part: SQLite only."""

from __future__ import annotations

import logging

import httpx
import pytest

from app.server.config import HttpSettings
from app.server.throttle import LoginThrottle
from tests.fixtures.server import ManualClock, ServerFactory
from tests.server.conftest import TIMEOUT

FREE = HttpSettings().login_free_failures


@pytest.fixture
def server_backend() -> str:
    return "sqlite"


def _client(url: str, address: str) -> httpx.Client:
    """A client whose requests come from ``address`` (any 127.x.y.z is loopback on Linux)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, timeout=TIMEOUT, transport=transport)


def _login(client: httpx.Client, password: str, user: str = "alice") -> httpx.Response:
    return client.post("/auth/login", json={"username": user, "password": password})


def test_failures_are_throttled_with_backoff_and_the_owner_elsewhere_gets_in(
    server_factory: ServerFactory, server_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    server = server_factory(demo_users=True, clock=server_clock)
    with (
        _client(server.url, "127.0.0.2") as stranger,
        _client(server.url, "127.0.0.3") as owner,
        caplog.at_level(logging.WARNING, logger="app.server.throttle"),
    ):
        assert [_login(stranger, "guess").status_code for _ in range(FREE)] == [401] * FREE
        throttled = _login(stranger, "guess")
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "1"
        assert "too many failed logins" in throttled.json()["error"]
        assert _login(stranger, "demo").status_code == 429  # even the right password waits
        assert _login(stranger, "guess").status_code == 429  # not counted: same wait
        # the owner, at another address, is not held back by the stranger
        assert _login(owner, "demo").status_code == 200
        # the wait ends by itself, and doubles with the next failure
        server_clock.advance(1.01)
        assert _login(stranger, "guess").status_code == 401
        assert _login(stranger, "guess").headers["Retry-After"] == "2"
        server_clock.advance(2.01)
        assert _login(stranger, "guess").status_code == 401
        assert _login(stranger, "guess").headers["Retry-After"] == "4"
        server_clock.advance(4.01)
        assert _login(stranger, "demo").status_code == 200  # and success resets it
        assert _login(stranger, "guess").status_code == 401
    logged = [r.getMessage() for r in caplog.records if "throttled" in r.getMessage()]
    assert len(logged) == 3  # one per throttle, not one per refused try
    assert all("127.0.0.2" in m and "'alice'" in m for m in logged)


def test_one_address_trying_many_accounts_is_throttled(
    server_factory: ServerFactory, server_clock: ManualClock
) -> None:
    server = server_factory(demo_users=True, clock=server_clock, login_address_failures=8)
    with _client(server.url, "127.0.0.4") as sprayer, _client(server.url, "127.0.0.5") as bob:
        codes = [_login(sprayer, "x", user=f"user{n}").status_code for n in range(8)]
        assert codes == [401] * 8
        assert _login(sprayer, "x", user="someone-new").status_code == 429
        assert _login(bob, "demo", user="bob").status_code == 200


def bounded_throttle(now: list[float]) -> LoginThrottle:
    """5 free failures, 20 from one address, waits from 1 s up to 300 s, forgotten after an
    hour; time is ``now[0]``."""
    return LoginThrottle(
        free_failures=5,
        address_failures=20,
        backoff=1.0,
        backoff_max=300.0,
        forget=3600.0,
        clock=lambda: now[0],
    )


def test_the_longest_wait_is_bounded_and_old_failures_are_forgotten() -> None:
    now = [0.0]
    throttle = bounded_throttle(now)
    for _ in range(40):  # a stranger who never stops
        throttle.failed("alice", "10.0.0.9")
    assert throttle.retry_after("alice", "10.0.0.9") == 300
    assert throttle.retry_after("alice", "10.0.0.10") == 0  # the owner, elsewhere
    now[0] = 301.0
    assert throttle.retry_after("alice", "10.0.0.9") == 0  # never a permanent lockout
    throttle.failed("alice", "10.0.0.9")
    assert throttle.retry_after("alice", "10.0.0.9") == 300
    now[0] = 301.0 + 3601
    assert throttle.retry_after("alice", "10.0.0.9") == 0


def test_many_addresses_guessing_one_account_do_not_lock_out_a_known_address() -> None:
    now = [0.0]
    throttle = bounded_throttle(now)
    throttle.succeeded("alice", "10.0.0.1")  # the owner's usual address
    for n in range(60):  # a botnet: 3 tries from each of 20 addresses
        throttle.failed("alice", f"10.1.0.{n % 20}")
    assert throttle.retry_after("alice", "10.2.0.1") > 0  # a new address waits
    assert throttle.retry_after("alice", "10.0.0.1") == 0  # the owner does not
