"""The auth session and the engine against the real companion server on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable

import httpx
import pytest

from app.core.auth import AuthSession, Tokens
from app.core.config import Endpoints, StreamSettings
from app.core.errors import LoginRequired, WrongCredentials
from app.core.http import Reply
from app.core.model import Announcement, ConnState, ControlEvent, RawEvent, Status, StreamEvent
from app.core.secrets import MemorySecretStore, login_key
from app.core.stream import Outcome, OutcomeKind, StreamEngine
from app.server.embedded import EmbeddedServer
from tests.fixtures.scripted import Conn, ScriptedServer
from tests.fixtures.server import DEMO_PASSWORD, ManualClock, ServerFactory

Scripted = Callable[..., ScriptedServer]

SETTINGS = StreamSettings(heartbeat_timeout=10.0, connect_timeout=5.0)


def session_for(
    server: EmbeddedServer,
    secrets: MemorySecretStore,
    *,
    user: str = "alice",
    clock: Callable[[], float] | None = None,
) -> AuthSession:
    extra = {"clock": clock} if clock else {}
    return AuthSession(
        server_url=server.url,
        username=user,
        endpoints=Endpoints(),
        secrets=secrets,
        settings=SETTINGS,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
def companion_server(server_factory: ServerFactory) -> EmbeddedServer:
    """The companion server with the demo users, telling clients to come back after 50 ms."""
    return server_factory(demo_users=True, ping_interval=0.5, retry_ms=50)


@pytest.fixture
async def alice(companion_server: EmbeddedServer) -> AsyncIterator[AuthSession]:
    session = session_for(companion_server, MemorySecretStore())
    await session.login(DEMO_PASSWORD)
    yield session
    await session.aclose()


class Collector:
    """Records an engine's events and statuses; stops it when ``until`` says so."""

    def __init__(self, until: Callable[[Collector], bool]) -> None:
        self.events: list[tuple[RawEvent, StreamEvent]] = []
        self.statuses: list[Status] = []
        self.until = until
        self.engine: StreamEngine | None = None
        self.changed = asyncio.Event()

    def on_event(self, raw: RawEvent, typed: StreamEvent) -> None:
        self.events.append((raw, typed))
        self._check()

    def on_status(self, status: Status) -> None:
        self.statuses.append(status)
        self._check()

    def _check(self) -> None:
        self.changed.set()
        if self.engine is not None and self.until(self):
            self.engine.stop()

    def titles(self) -> list[str]:
        return [ev.title for _, ev in self.events if isinstance(ev, Announcement)]

    def controls(self) -> list[str]:
        return [ev.name for _, ev in self.events if isinstance(ev, ControlEvent)]

    async def wait_for(self, condition: Callable[[Collector], bool], timeout: float = 20) -> None:
        async def loop() -> None:
            while not condition(self):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


def engine_for(session: AuthSession, collector: Collector, **options: object) -> StreamEngine:
    engine = StreamEngine(
        url=session.stream_url(),
        settings=SETTINGS,
        token_source=session,
        on_event=collector.on_event,
        on_status=collector.on_status,
        rng=lambda: 0.0,
        **options,  # type: ignore[arg-type]
    )
    collector.engine = engine
    return engine


async def publish(server: EmbeddedServer, titles: Iterable[str]) -> list[str]:
    return [await asyncio.to_thread(server.publish, t, f"body of {t}") for t in titles]


# ------------------------------------------------------------------ session


async def test_login_stores_tokens_in_the_secret_store(companion_server: EmbeddedServer) -> None:
    secrets = MemorySecretStore()
    session = session_for(companion_server, secrets)
    try:
        assert not session.has_stored_login()
        tokens = await session.login(DEMO_PASSWORD)
        assert tokens.user_id == "alice" and session.user_id == "alice"
        stored = secrets.get(login_key(companion_server.url, "alice"))
        assert stored is not None and json.loads(stored)["refresh_token"] == tokens.refresh_token
        assert tokens.access_token not in repr(tokens)
        assert session.stream_url() == companion_server.url + "/sse/connect/alice"
    finally:
        await session.aclose()
    # a new session (a restart of the program) finds the stored login
    again = session_for(companion_server, secrets)
    try:
        assert again.has_stored_login()
        assert await again.access_token() == tokens.access_token
    finally:
        await again.aclose()


async def test_wrong_password(companion_server: EmbeddedServer) -> None:
    session = session_for(companion_server, MemorySecretStore())
    try:
        with pytest.raises(WrongCredentials, match="check both"):
            await session.login("not the password")
        assert not session.has_stored_login()
    finally:
        await session.aclose()


async def test_refresh_rotates_and_the_old_refresh_token_dies(
    companion_server: EmbeddedServer, alice: AuthSession
) -> None:
    old = alice._current()
    assert old is not None
    new_access = await alice.refresh()
    assert new_access != old.access_token
    async with httpx.AsyncClient(base_url=companion_server.url, timeout=10) as client:
        reused = await client.post("/auth/refresh", json={"refresh_token": old.refresh_token})
    assert reused.status_code == 401


async def test_concurrent_refreshes_send_the_refresh_token_once(alice: AuthSession) -> None:
    first, second = await asyncio.gather(alice.refresh(), alice.refresh())
    assert first == second  # the second waited and took the first one's result


async def test_refused_refresh_means_login_required_and_forgets(
    companion_server: EmbeddedServer, alice: AuthSession
) -> None:
    tokens = alice._current()
    assert tokens is not None
    async with httpx.AsyncClient(base_url=companion_server.url, timeout=10) as client:
        await client.post("/auth/logout", json={"refresh_token": tokens.refresh_token})
    with pytest.raises(LoginRequired, match="log in again"):
        await alice.refresh()
    assert not alice.has_stored_login()
    with pytest.raises(LoginRequired):
        await alice.access_token()


async def test_access_token_refreshes_shortly_before_expiry(
    companion_server: EmbeddedServer,
) -> None:
    now = [1_000_000.0]
    session = session_for(companion_server, MemorySecretStore(), clock=lambda: now[0])
    try:
        tokens = await session.login(DEMO_PASSWORD)
        assert await session.access_token() == tokens.access_token
        now[0] = tokens.expires_at - 30  # inside the last minute (a 900 s token)
        refreshed = await session.access_token()
        assert refreshed != tokens.access_token
        assert await session.access_token() == refreshed
    finally:
        await session.aclose()


def test_margin_shrinks_for_short_lived_tokens() -> None:
    tokens = Tokens("a", "r", expires_at=102.0, user_id="u", issued_at=100.0)
    assert not tokens.needs_refresh(101.5)
    assert tokens.needs_refresh(101.7)


# ------------------------------------------------------------------ engine + session + server


async def test_engine_receives_announcements_and_resumes_after_close(
    companion_server: EmbeddedServer, alice: AuthSession
) -> None:
    c = Collector(until=lambda c: len(c.titles()) >= 3)
    engine = engine_for(alice, c)
    task = asyncio.create_task(engine.run())
    await c.wait_for(lambda c: "connected" in c.controls())
    await publish(companion_server, ["one"])
    await c.wait_for(lambda c: c.titles() == ["one"])
    # the server ends the stream (as at token expiry); the engine resumes after "one"
    await asyncio.to_thread(companion_server.close_streams, "alice")
    await c.wait_for(lambda c: c.controls().count("connected") == 2)
    await publish(companion_server, ["two", "three"])
    outcome = await asyncio.wait_for(task, 20)
    assert outcome.kind is OutcomeKind.STOPPED
    assert c.titles() == ["one", "two", "three"]
    assert engine.last_event_id == c.events[-1][0].id


async def _no_wait(seconds: float) -> None:
    """The engine's wait before a reconnect, passed at once (its length is tested elsewhere)."""
    await asyncio.sleep(0)


async def test_expired_token_gets_one_refresh_on_401(
    server_factory: ServerFactory, server_clock: ManualClock
) -> None:
    server = server_factory(demo_users=True, ping_interval=0.2, clock=server_clock)
    # the session's clock stands still, so it never refreshes before the server says 401
    session = session_for(server, MemorySecretStore(), clock=lambda: 0.0)
    try:
        await session.login(DEMO_PASSWORD)
        first = await session.access_token()
        c = Collector(until=lambda c: "after expiry" in c.titles())
        task = asyncio.create_task(engine_for(session, c, sleep=_no_wait).run())
        await c.wait_for(lambda c: "connected" in c.controls())
        server_clock.advance(server.config.http.token_ttl + 1)  # every token it issued expired
        await c.wait_for(lambda c: c.controls().count("connected") >= 2, timeout=30)
        await publish(server, ["after expiry"])
        outcome: Outcome = await asyncio.wait_for(task, 20)
        assert outcome.kind is OutcomeKind.STOPPED
        assert await session.access_token() != first
        assert c.titles() == ["after expiry"]
    finally:
        await session.aclose()


async def test_logout_ends_the_stream_and_requires_a_login(
    companion_server: EmbeddedServer, alice: AuthSession
) -> None:
    tokens = alice._current()
    assert tokens is not None
    c = Collector(until=lambda c: False)
    task = asyncio.create_task(engine_for(alice, c).run())
    await c.wait_for(lambda c: "connected" in c.controls())
    await alice.logout()
    outcome = await asyncio.wait_for(task, 20)
    assert outcome.kind is OutcomeKind.LOGIN_REQUIRED
    assert c.statuses[-1].state is ConnState.LOGIN_REQUIRED
    assert "close" in c.controls()  # the close endpoint ended the stream
    assert not alice.has_stored_login()
    async with httpx.AsyncClient(base_url=companion_server.url, timeout=10) as client:
        reused = await client.post("/auth/refresh", json={"refresh_token": tokens.refresh_token})
    assert reused.status_code == 401


async def test_stream_of_another_user_is_access_denied(
    companion_server: EmbeddedServer, alice: AuthSession
) -> None:
    c = Collector(until=lambda c: False)
    engine = StreamEngine(
        url=companion_server.url + "/sse/connect/bob",
        settings=SETTINGS,
        token_source=alice,
        on_event=c.on_event,
        on_status=c.on_status,
    )
    outcome = await asyncio.wait_for(engine.run(), 20)
    assert outcome.kind is OutcomeKind.FATAL
    assert "403" in str(outcome.error)


async def test_cancelled_refresh_still_stores_the_rotated_tokens(scripted: Scripted) -> None:
    release = threading.Event()
    answer = {"access_token": "new-access", "refresh_token": "new-refresh", "expires_in": 900}

    async def slow_refresh(conn: Conn) -> None:
        await asyncio.to_thread(release.wait, 10)
        await conn.respond(200, json.dumps(answer).encode(), content_type="application/json")

    server = scripted(slow_refresh)
    key = login_key(server.url, "alice")
    old = Tokens("old-access", "old-refresh", expires_at=time.time() + 900, user_id="alice")
    secrets = MemorySecretStore({key: old.to_secret()})
    session = AuthSession(
        server_url=server.url,
        username="alice",
        endpoints=Endpoints(),
        secrets=secrets,
        settings=SETTINGS,
    )
    try:
        task = asyncio.create_task(session.refresh())
        assert await asyncio.to_thread(server.wait_requests, 1)
        task.cancel()  # e.g. quit while the refresh token is on its way
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        # the next caller waits for that exchange and gets its result: nothing is sent twice
        assert await asyncio.wait_for(session.refresh(), 10) == "new-access"
        assert len(server.requests) == 1
        stored = secrets.get(key)
        assert stored is not None and json.loads(stored)["refresh_token"] == "new-refresh"
    finally:
        release.set()
        await session.aclose()


async def test_authorized_request_refreshes_once_on_401(
    server_factory: ServerFactory, server_clock: ManualClock
) -> None:
    server = server_factory(demo_users=True, clock=server_clock)
    # the session's clock stands still, so only the server's 401 can make it refresh
    session = session_for(server, MemorySecretStore(), clock=lambda: 0.0)
    try:
        await session.login(DEMO_PASSWORD)
        first = await session.access_token()
        ann_id = await asyncio.to_thread(server.publish, "Read me", "and acknowledge")
        server_clock.advance(server.config.http.token_ttl + 1)
        async with httpx.AsyncClient(base_url=server.url, timeout=5) as client:
            headers = {"Authorization": f"Bearer {first}"}
            assert (await client.get("/announcements", headers=headers)).status_code == 401
        reply = await session.request("POST", "/announcements/{id}/ack", id=ann_id)
        assert isinstance(reply, Reply) and reply.ok  # typed: never an httpx.Response
        assert reply.status == 200
        assert reply.json["id"] == ann_id
        assert await session.access_token() != first  # refreshed once, then retried
    finally:
        await session.aclose()


async def test_authorized_request_without_a_valid_refresh_is_login_required(
    companion_server: EmbeddedServer, alice: AuthSession
) -> None:
    tokens = alice._current()
    assert tokens is not None
    async with httpx.AsyncClient(base_url=companion_server.url, timeout=5) as client:
        # another client used (rotated) the refresh token: ours is now refused
        used = await client.post("/auth/refresh", json={"refresh_token": tokens.refresh_token})
        assert used.status_code == 200
    alice._tokens = Tokens("not-a-token", tokens.refresh_token, tokens.expires_at, "alice")
    with pytest.raises(LoginRequired):
        await alice.request("POST", "/announcements/{id}/ack", id="1")
    assert not alice.has_stored_login()


# ------------------------------------------------------------------ resume point and catch-up


def _done_catching_up(c: Collector) -> bool:
    if not c.events:
        return False
    raw, typed = c.events[-1]
    return isinstance(typed, ControlEvent) and typed.name == "sync" and '"more":false' in raw.data


async def _position_of_a_fresh_client(session: AuthSession) -> str:
    """Connect with no stored id, take ``connected``'s id (as the tray stores it), stop."""
    c = Collector(until=lambda c: "connected" in c.controls())
    engine = engine_for(session, c)
    assert (await asyncio.wait_for(engine.run(), 20)).kind is OutcomeKind.STOPPED
    (raw, _), *_ = c.events
    assert raw.event == "connected" and raw.id and engine.last_event_id == raw.id
    return raw.id


@pytest.mark.parametrize("server_backend", ["sqlite", "redis"])
async def test_a_fresh_client_resumes_from_the_connected_position(
    companion_server: EmbeddedServer, alice: AuthSession
) -> None:
    """The measured bug: a freshly logged-in tray away for a while lost 10 of 10."""
    before = await publish(companion_server, ["old 1", "old 2"])
    position = await _position_of_a_fresh_client(alice)
    assert position == before[-1]  # the newest she may see: older ones are not replayed
    titles = [f"while away {n}" for n in range(10)]
    await publish(companion_server, titles)
    c = Collector(until=_done_catching_up)
    outcome = await asyncio.wait_for(engine_for(alice, c, last_event_id=position).run(), 20)
    assert outcome.kind is OutcomeKind.STOPPED
    assert c.titles() == titles


@pytest.mark.parametrize("server_backend", ["sqlite", "redis"])
async def test_a_fresh_client_with_nothing_to_see_yet_resumes_from_the_beginning(
    companion_server: EmbeddedServer, alice: AuthSession
) -> None:
    position = await _position_of_a_fresh_client(alice)
    assert position == "0"
    await publish(companion_server, ["first ever"])
    c = Collector(until=_done_catching_up)
    await asyncio.wait_for(engine_for(alice, c, last_event_id=position).run(), 20)
    assert c.titles() == ["first ever"]


@pytest.mark.parametrize("server_backend", ["sqlite", "redis"])
async def test_catch_up_of_2500_arrives_at_once_each_once_in_order(
    server_factory: ServerFactory, server_backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The measured bug: of 2,500 published while the tray was down, 1,000 arrived."""
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=3000)
    session = session_for(server, MemorySecretStore())
    try:
        await session.login(DEMO_PASSWORD)
        position = await _position_of_a_fresh_client(session)
        titles = [f"n{i}" for i in range(2500)]
        ids = await asyncio.to_thread(lambda: [server.publish(t, "x") for t in titles])
        flags: list[bool] = []
        c = Collector(until=_done_catching_up)
        engine = engine_for(session, c, last_event_id=position)
        hook = c.on_event

        def on_event(raw: RawEvent, typed: StreamEvent) -> None:
            flags.append(engine.catching_up)
            hook(raw, typed)

        engine._on_event = on_event
        started = time.perf_counter()
        outcome = await asyncio.wait_for(engine.run(), 60)
        elapsed = time.perf_counter() - started
    finally:
        await session.aclose()
    assert outcome.kind is OutcomeKind.STOPPED
    assert c.titles() == titles
    received = [raw.id for raw, ev in c.events if isinstance(ev, Announcement)]
    assert received == ids and len(set(received)) == 2500
    assert c.controls() == ["connected", "sync"] * 3  # 1,000 + 1,000 + 500
    # one "connected" for the whole catch-up, no wait, and the flag up until the last sync
    assert [s.state for s in c.statuses] == [
        ConnState.CONNECTING,
        ConnState.CONNECTED,
        ConnState.STOPPED,
    ]
    assert all(flags[:-1]) and not flags[-1] and not engine.catching_up
    assert elapsed < 30  # the server asked for 3 s between reconnects: none was waited
    with capsys.disabled():
        print(f"\ncatch-up of 2,500 ({server_backend}): {elapsed:.2f} s")


async def test_a_client_dropping_mid_replay_skips_nothing(server_factory: ServerFactory) -> None:
    server = server_factory(demo_users=True, ping_interval=0.5, retry_ms=50)
    session = session_for(server, MemorySecretStore())
    try:
        await session.login(DEMO_PASSWORD)
        position = await _position_of_a_fresh_client(session)
        ids = await asyncio.to_thread(lambda: [server.publish(f"n{i}", "x") for i in range(1500)])
        # away again in the middle of the second page of the catch-up
        first = Collector(until=lambda c: len(c.titles()) >= 1400)
        engine = engine_for(session, first, last_event_id=position)
        await asyncio.wait_for(engine.run(), 30)
        stored = engine.last_event_id
        live = await publish(server, ["live"])
        second = Collector(until=lambda c: "live" in c.titles())
        await asyncio.wait_for(engine_for(session, second, last_event_id=stored).run(), 30)
    finally:
        await session.aclose()
    got = [raw.id for c in (first, second) for raw, ev in c.events if isinstance(ev, Announcement)]
    assert got == [*ids, *live]  # each once, in order, nothing skipped
