"""The core against a scripted Spring/RuoYi-style backend (tests/fixtures/spring.py): token
login, the payload profile, greetings, silence without keepalives, relogin, close (issue 11)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core import config, http
from app.core.auth import AuthSession, Tokens
from app.core.config import Config, StreamSettings
from app.core.connection import GREETING_WINDOW, Connection
from app.core.errors import LoginRequired, NotAnnouncementServer, WrongCredentials
from app.core.login_failure import FailureKind, LoginFailure
from app.core.model import Announcement, ConnState, RawEvent, Status, StreamEvent
from app.core.secrets import MemorySecretStore, login_key
from app.core.store import HistoryStore
from app.core.stream import OutcomeKind, StreamEngine
from tests.fixtures.server import ManualClock
from tests.fixtures.spring import GREETING, PROFILE, SpringBackend

Spring = Callable[..., SpringBackend]


def profile_config(backend: SpringBackend, **changes: Any) -> Config:
    """The tray's configuration for ``backend``, from the profile's tables as a file has them."""
    tables = json.loads(json.dumps(PROFILE))
    for dotted, value in changes.items():
        section, _, key = dotted.partition("__")
        tables[section][key] = value
    return config.from_dict({"server_url": backend.url, "username": "admin", **tables})


def session(cfg: Config, secrets: MemorySecretStore, user: str = "admin") -> AuthSession:
    return AuthSession(
        server_url=cfg.server_url,
        username=user,
        endpoints=cfg.endpoints,
        secrets=secrets,
        settings=cfg.stream,
        profile=cfg.auth,
    )


# ---------------------------------------------------------------- token login


async def test_token_login_reads_the_token_and_the_numeric_user_id(spring: Spring) -> None:
    backend = spring()
    secrets = MemorySecretStore()
    s = session(profile_config(backend), secrets)
    try:
        tokens = await s.login("admin123")
    finally:
        await s.aclose()
    assert tokens.user_id == "1"  # RuoYi's /getInfo /user/userId, not the user name
    assert s.stream_url() == f"{backend.url}/sse/connect/1"
    stored = Tokens.from_secret(secrets.get(login_key(backend.url, "admin")) or "")
    assert stored is not None and stored.access_token == tokens.access_token
    assert stored.password == "admin123"  # relogin: kept in the keyring beside the token
    assert "admin123" not in repr(stored) and tokens.access_token not in repr(stored)
    assert backend.logins[0].body == {"username": "admin"}
    assert backend.infos[0].authorization == f"Bearer {tokens.access_token}"


async def test_an_http_200_refusal_is_told_in_the_backends_words(spring: Spring) -> None:
    backend = spring()
    secrets = MemorySecretStore()
    s = session(profile_config(backend), secrets)
    try:
        with pytest.raises(WrongCredentials, match="用户不存在/密码错误"):
            await s.login("wrong")
    finally:
        await s.aclose()
    assert secrets.get(login_key(backend.url, "admin")) is None  # nothing stored on failure


async def test_a_token_pointer_that_finds_nothing_is_a_clear_error(spring: Spring) -> None:
    backend = spring()
    secrets = MemorySecretStore()
    s = session(profile_config(backend, auth__token="/data/access_token"), secrets)
    try:
        with pytest.raises(NotAnnouncementServer, match="no token at '/data/access_token'"):
            await s.login("admin123")
    finally:
        await s.aclose()
    assert secrets.get(login_key(backend.url, "admin")) is None


async def test_without_relogin_a_refused_token_means_login_required(spring: Spring) -> None:
    backend = spring()
    secrets = MemorySecretStore()
    s = session(profile_config(backend, auth__relogin=False), secrets)
    try:
        tokens = await s.login("admin123")
        assert tokens.password == ""  # no password kept without relogin
        backend.expire_tokens()
        with pytest.raises(LoginRequired):
            await s.refresh()
        assert not s.has_stored_login()
    finally:
        await s.aclose()
    assert len(backend.logins) == 1


@pytest.mark.parametrize("json_401", [True, False])
async def test_a_refused_close_is_renewed_once_and_repeated(spring: Spring, json_401: bool) -> None:
    """Every authorised call reads a refusal as the stream does (HTTP 401, or RuoYi's HTTP 200
    ``{"code": 401}``), logs in again once and repeats: the close at quit once answered "close
    endpoint answered HTTP 200" while the backend had refused it and kept the stream."""
    backend = spring(json_401=json_401)
    s = session(profile_config(backend), MemorySecretStore())
    try:
        first = await s.login("admin123")
        backend.expire_tokens()
        await s.close_streams()
    finally:
        await s.aclose()
    assert [c.authorization for c in backend.closes] == [
        f"Bearer {first.access_token}",
        f"Bearer {(current_tokens(s)).access_token}",
    ]
    assert len(backend.logins) == 2  # renewed once


def current_tokens(s: AuthSession) -> Tokens:
    tokens = s._current()
    assert tokens is not None
    return tokens


async def test_a_close_refused_after_renewal_is_said_and_logout_still_happens(
    spring: Spring, caplog: pytest.LogCaptureFixture
) -> None:
    backend = spring(json_401=True)
    s = session(profile_config(backend, endpoints__logout="/logout"), MemorySecretStore())
    try:
        await s.login("admin123")
        backend.users["admin"].password = "changed"  # the renewal fails: refused for good
        backend.expire_tokens()
        with caplog.at_level("WARNING"):
            await s.logout()
    finally:
        await s.aclose()
    assert not s.has_stored_login()
    assert len(backend.closes) == 1  # refused, and the renewal was refused: not repeated
    assert any("GET /sse/close/{user_id} failed" in r.getMessage() for r in caplog.records)
    assert not any("answered HTTP 200" in r.getMessage() for r in caplog.records)


async def test_logout_calls_the_backends_own_logout(spring: Spring) -> None:
    backend = spring()
    s = session(profile_config(backend, endpoints__logout="/logout"), MemorySecretStore())
    try:
        tokens = await s.login("admin123")
        await s.logout()
    finally:
        await s.aclose()
    assert [c.authorization for c in backend.logouts] == [f"Bearer {tokens.access_token}"]
    assert not s.has_stored_login()


# ---------------------------------------------------------------- the stream


async def test_the_stream_socket_has_tcp_keepalive(spring: Spring) -> None:
    backend = spring()
    client = http.make_client(StreamSettings())
    try:
        async with client.stream("GET", f"{backend.url}/sse/connect/1") as response:
            sock = response.extensions["network_stream"].get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            if hasattr(socket, "TCP_KEEPIDLE"):
                idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
                assert idle == http.KEEPALIVE_IDLE
    finally:
        await client.aclose()


async def test_silence_shorter_than_the_profiles_timeout_causes_no_reconnect(
    spring: Spring,
) -> None:
    """No keepalive for 2 s with a 10 s read timeout: the stream stays; the next notice
    arrives at once on the same connection. (With the old 45 s, the same holds for 45 s.)"""
    backend = spring(greeting=None)
    cfg = profile_config(backend, stream__heartbeat_timeout=10.0)
    secrets = MemorySecretStore()
    s = session(cfg, secrets)
    await s.login("admin123")
    got: list[StreamEvent] = []
    statuses: list[Status] = []

    def on_event(raw: RawEvent, typed: StreamEvent) -> None:
        got.append(typed)
        engine.stop()

    engine = StreamEngine(
        url=s.stream_url(),
        settings=cfg.stream,
        token_source=s,
        on_event=on_event,
        on_status=statuses.append,
        payload=cfg.payload,
    )
    run = asyncio.ensure_future(engine.run())
    await asyncio.to_thread(backend.wait_for, lambda: backend.open_streams() == 1)
    # the backend stays silent for 2 s, then sends a notice
    notice = {"noticeId": 1, "noticeTitle": "after silence", "noticeContent": "x"}
    asyncio.get_running_loop().call_later(2.0, backend.notice, notice)
    outcome = await asyncio.wait_for(run, 10)
    await s.aclose()
    assert outcome.kind is OutcomeKind.STOPPED
    assert len(backend.connects) == 1
    assert [st.state for st in statuses].count(ConnState.CONNECTING) == 1
    assert isinstance(got[0], Announcement) and got[0].title == "after silence"


# ---------------------------------------------------------------- one login's connection


class Recorder:
    """A Connection's listener that tests can wait on."""

    def __init__(self) -> None:
        self.received: list[Announcement] = []
        self.statuses: list[Status] = []
        self.failures: list[LoginFailure] = []
        self.acknowledged: list[str] = []
        self._changed = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout)

    def _tell(self) -> None:
        self._changed.set()

    def status(self, status: Status) -> None:
        self.statuses.append(status)
        self._tell()

    def announcement(self, ann: Announcement) -> None:
        self.received.append(ann)
        self._tell()

    def login_failed(self, failure: LoginFailure) -> None:
        self.failures.append(failure)
        self._tell()

    def announcements(self, anns: list[Announcement]) -> None:
        for ann in anns:
            self.announcement(ann)

    def revoked(self, ann_id: str) -> None: ...
    def updated(self, ann: Announcement) -> None: ...
    def reminded(self, ann: Announcement) -> None: ...
    def logged_in(self, username: str) -> None: ...
    def logged_out(self) -> None: ...
    def receipt_sent(self, ann_id: str) -> None:
        self.acknowledged.append(ann_id)
        self._tell()

    def catch_up_started(self) -> None: ...
    def catch_up_finished(self) -> None: ...

    def connected(self) -> int:
        return sum(1 for s in self.statuses if s.state is ConnState.CONNECTED)


@pytest.mark.parametrize("profile", ["ruoyi", "companion paths"])
async def test_a_backend_without_receipt_calls_gets_none(
    spring: Spring, tmp_path: Path, caplog: pytest.LogCaptureFixture, profile: str
) -> None:
    """RuoYi has no ``POST /receipts`` nor an acknowledge call: every run logged a 404 warning
    on the backend (issue 21). ``[endpoints] receipts = ""`` and ``ack = ""`` say so: no call,
    no warning, and Acknowledge is kept on this computer."""
    backend = spring(greeting=None)
    changes = {} if profile == "ruoyi" else {"endpoints__receipts": "/receipts"}
    if profile != "ruoyi":
        changes["endpoints__ack"] = "/announcements/{id}/ack"
    recorder = Recorder()
    conn = Connection(
        recorder, config=profile_config(backend, **changes), secrets=MemorySecretStore(),
        receipt_delay=0.01,
    )  # fmt: skip
    store = HistoryStore(tmp_path / "history.sqlite3")
    with caplog.at_level("INFO", logger="app.core.receipts"):
        await conn.login(backend.url, "admin", "admin123", store)
        await recorder.until(lambda: recorder.connected() == 1)
        backend.notice({"noticeId": 5, "noticeTitle": "消防演习", "noticeContent": "周四"})
        await recorder.until(lambda: len(recorder.received) == 1)
        store.mark_read("5")
        store.queue_ack("5")
        await recorder.until(lambda: recorder.acknowledged == ["5"])
        await conn.end(logout=False)
    store.close()
    called = sorted({(c.method, c.path) for c in backend.unknown})
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    if profile == "ruoyi":
        assert called == [] and warned == []
    else:  # what a profile without them did: the calls 404, the warning every run
        assert called == [("POST", "/announcements/5/ack"), ("POST", "/receipts")]
        assert any("has no /receipts" in w for w in warned)


async def test_a_ruoyi_backend_end_to_end(spring: Spring, tmp_path: Path) -> None:
    """Each notice once with its text; the greeting once; a token expiry healed by relogin with
    no user action; quit calls close with the token."""
    backend = spring()
    cfg = profile_config(backend)
    recorder, clock = Recorder(), ManualClock(1000.0)
    conn = Connection(recorder, config=cfg, secrets=MemorySecretStore(), clock=clock)
    store = HistoryStore(tmp_path / "history.sqlite3")
    await conn.login(backend.url, "admin", "admin123", store)
    await recorder.until(lambda: len(recorder.received) == 1)
    assert recorder.received[0].body == GREETING  # the first greeting is shown once

    clock.advance(GREETING_WINDOW + 1)  # later notices are not greetings
    for n in (1, 2):
        backend.notice(
            {"noticeId": n, "noticeTitle": f"通知 {n}", "noticeContent": f"<p>第{n}条&amp;</p>"}
        )
    backend.notice("plain words")
    backend.notice("plain words")  # no id: new each time
    backend.notice({"noticeId": 2, "noticeTitle": "通知 2", "noticeContent": "again"})  # known
    await recorder.until(lambda: len(recorder.received) == 5)
    got = [(a.title, a.body) for a in recorder.received[1:]]
    words = ("", "plain words")
    assert got == [("通知 1", "第1条&"), ("通知 2", "第2条&"), words, words]

    backend.drop_streams()  # reconnect: the same greeting must not be shown again
    conn.reconnect_now()  # (skips the engine's 3 s wait, as a wake-up does)
    await recorder.until(lambda: recorder.connected() == 2)
    backend.notice({"noticeId": 3, "noticeTitle": "after reconnect", "noticeContent": "x"})
    await recorder.until(lambda: len(recorder.received) == 6)
    assert recorder.received[5].title == "after reconnect"

    backend.expire_tokens()
    backend.drop_streams()  # the next connect gets 401: relogin, no user action
    conn.reconnect_now()
    await recorder.until(lambda: recorder.connected() == 3)
    assert len(backend.logins) == 2
    refused, renewed = backend.connects[-2:]
    assert refused.authorization != renewed.authorization  # the new login's token
    backend.notice({"noticeId": 4, "noticeTitle": "after relogin", "noticeContent": "y"})
    await recorder.until(lambda: len(recorder.received) == 7)
    assert [a.body for a in recorder.received].count(GREETING) == 1
    assert not any(s.state is ConnState.LOGIN_REQUIRED for s in recorder.statuses)

    await conn.end(logout=False)  # quit
    assert len(backend.closes) == 1
    assert backend.closes[0].path == "/sse/close/1"
    assert backend.closes[0].authorization == backend.connects[-1].authorization
    assert [s.announcement.id for s in store.list()].count("2") == 1
    store.close()


async def test_a_refused_login_tells_the_backends_words(spring: Spring, tmp_path: Path) -> None:
    backend = spring()
    recorder = Recorder()
    secrets = MemorySecretStore()
    conn = Connection(recorder, config=profile_config(backend), secrets=secrets)
    store = HistoryStore(tmp_path / "history.sqlite3")
    await conn.login(backend.url, "admin", "nope", store)
    assert recorder.failures[0].kind is FailureKind.WRONG_CREDENTIALS
    assert "用户不存在/密码错误" in recorder.failures[0].message
    assert recorder.statuses[-1].state is ConnState.LOGIN_REQUIRED
    assert not backend.connects
    store.close()


def test_the_fixture_refuses_a_wrong_password_with_http_200(spring: Spring) -> None:
    """The fixture behaves as RuoYi does (a real server: a plain POST reaches it)."""
    backend = spring()
    reply = httpx.post(f"{backend.url}/login", json={"username": "ry", "password": "x"})
    assert reply.status_code == 200 and reply.json()["code"] == 500


async def test_a_json_401_on_the_stream_is_a_refused_token(spring: Spring, tmp_path: Path) -> None:
    """RuoYi's filter answers an expired token with HTTP 200 and ``{"code": 401}``: relogin,
    not an error state."""
    backend = spring(json_401=True, greeting=None)
    recorder = Recorder()
    conn = Connection(recorder, config=profile_config(backend), secrets=MemorySecretStore())
    store = HistoryStore(tmp_path / "history.sqlite3")
    await conn.login(backend.url, "admin", "admin123", store)
    await recorder.until(lambda: recorder.connected() == 1)
    backend.expire_tokens()
    backend.drop_streams()
    conn.reconnect_now()
    await recorder.until(lambda: recorder.connected() == 2)
    assert len(backend.logins) == 2
    assert not any(s.state is ConnState.ERROR for s in recorder.statuses)
    await conn.end(logout=False)
    store.close()


async def test_the_greeting_is_not_shown_again_after_a_restart(
    spring: Spring, tmp_path: Path
) -> None:
    """The greetings' fingerprints live in the history file: the next start (a new Connection
    on the same store) does not toast the same greeting; a different greeting is new."""
    backend = spring()
    path = tmp_path / "history.sqlite3"
    secrets = MemorySecretStore()
    for run in range(2):
        recorder = Recorder()
        conn = Connection(recorder, config=profile_config(backend), secrets=secrets)
        store = HistoryStore(path)
        await conn.login(backend.url, "admin", "admin123", store)
        await recorder.until(lambda: recorder.connected() == 1)  # noqa: B023
        backend.notice({"noticeId": 100 + run, "noticeTitle": "marker", "noticeContent": "m"})
        await recorder.until(lambda: any(a.title == "marker" for a in recorder.received))  # noqa: B023
        bodies = [a.body for a in recorder.received]
        assert bodies.count(GREETING) == (1 if run == 0 else 0)
        await conn.end(logout=False)
        store.close()
    backend.greeting = "欢迎回来"  # a greeting with other words is new
    recorder = Recorder()
    conn = Connection(recorder, config=profile_config(backend), secrets=secrets)
    store = HistoryStore(path)
    await conn.connect_stored(backend.url, "admin", store)
    await recorder.until(lambda: [a.body for a in recorder.received] == ["欢迎回来"])
    await conn.end(logout=False)
    store.close()
