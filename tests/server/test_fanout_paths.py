"""The SSE fan-out paths, read off raw sockets byte for byte.

- HTTP/1.0 (close-delimited body): the stream's own task writes everything, pings included.
- HTTP/1.1 (chunked): the hub writes deliveries straight to the socket, pre-framed as chunks,
  and one task per process pings the idle streams; the chunk framing is parsed strictly here.
- A client that stops reading: its socket buffer fills, deliveries queue, the stream is dropped
  (``overflow``) and the client resumes by ``Last-Event-ID``; the other streams are unaffected.
- A client that vanishes: the next ping finds it gone and the stream is cleaned up.

Every read has a bound (``asyncio.wait_for``); metrics are polled with a bound too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.server.embedded import EmbeddedServer
from tests.fixtures.server import DEMO_PASSWORD, ServerFactory
from tests.server.conftest import Event, StrictParser

READ_TIMEOUT = 10.0  # a bound on one read: never reached when the server behaves
WAIT_TIMEOUT = 10.0  # a bound on a condition polled over /metrics
PING_INTERVAL = 0.2
BIG_BODY = "x" * 30_000  # two fit under the 64 KiB direct-write limit, a request stays < 64 KiB
_CHUNK_SIZE_LINE = re.compile(rb"([0-9a-f]+)\r\n")


class RawStream:
    """One ``GET /sse/connect`` on a raw asyncio connection: the head is parsed by hand, a
    chunked body strictly (lower-case hex size, CRLF, data, CRLF; no extensions, no trailers),
    and the body is fed to :class:`StrictParser`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status_line = ""
        self.headers: dict[str, str] = {}
        self.body = bytearray()  # the body as the SSE reader sees it (chunk framing removed)
        self.chunks: list[bytes] = []  # each chunk's data, in order (chunked responses only)
        self.parser = StrictParser()
        self.ended = False
        self._pending: deque[Event] = deque()

    @classmethod
    async def open(
        cls,
        port: int,
        user: str,
        token: str,
        *,
        version: str = "1.1",
        last_event_id: str | None = None,
        sock: socket.socket | None = None,
        limit: int = 2**16,
    ) -> RawStream:
        if sock is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=limit)
        else:
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        stream = cls(reader, writer)
        resume = f"Last-Event-ID: {last_event_id}\r\n" if last_event_id is not None else ""
        writer.write(
            f"GET /sse/connect/{user} HTTP/{version}\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\n{resume}\r\n".encode("ascii")
        )
        await writer.drain()
        await stream._read_head()
        return stream

    async def _read_head(self) -> None:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")[:-2]
        self.status_line = lines[0]
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name.lower() not in self.headers, f"header sent twice: {line!r}"
            self.headers[name.lower()] = value.strip()

    @property
    def chunked(self) -> bool:
        return self.headers.get("transfer-encoding", "").lower() == "chunked"

    async def read_piece(self) -> bytes:
        """The next piece of body (one chunk's data when chunked); b"" at the end of the body."""
        piece = await asyncio.wait_for(self._read_piece(), READ_TIMEOUT)
        if not piece:
            self.ended = True
        self.body += piece
        self._pending.extend(self.parser.feed(piece))
        return piece

    async def _read_piece(self) -> bytes:
        if not self.chunked:
            return await self.reader.read(65536)
        size_line = await self.reader.readuntil(b"\r\n")
        match = _CHUNK_SIZE_LINE.fullmatch(size_line)
        assert match is not None, f"malformed chunk size line {size_line!r}"
        size = int(match[1], 16)
        data = await self.reader.readexactly(size) if size else b""
        end = await self.reader.readexactly(2)
        assert end == b"\r\n", f"chunk of {size} bytes not followed by CRLF but {end!r}"
        if size:
            self.chunks.append(data)
        return data

    async def next_event(self) -> Event:
        while not self._pending:
            if self.ended or not await self.read_piece():
                raise EOFError("the stream ended")
        return self._pending.popleft()

    async def until(self, pred: Callable[[Event], bool]) -> list[Event]:
        """Events up to and including the first one matching ``pred``."""
        seen = [await self.next_event()]
        while not pred(seen[-1]):
            seen.append(await self.next_event())
        return seen

    async def rest(self, *, cut_ok: bool = False) -> list[Event]:
        """Every event until the body ends (or, with ``cut_ok``, the connection breaks)."""
        events = []
        while True:
            try:
                events.append(await self.next_event())
            except EOFError:
                return events
            except (ConnectionError, asyncio.IncompleteReadError):
                if not cut_ok:
                    raise
                return events

    async def collect(self, into: list[Event]) -> None:
        """Append every event to ``into`` until the body ends (run it as a task)."""
        while True:
            into.append(await self.next_event())

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):  # the server aborted it first: closed anyway
            await asyncio.wait_for(self.writer.wait_closed(), READ_TIMEOUT)


@pytest.fixture
async def raw_streams() -> AsyncIterator[list[RawStream]]:
    """Append the streams a test opens; they are closed at teardown."""
    opened: list[RawStream] = []
    yield opened
    for stream in opened:
        await stream.close()


async def _login(http: httpx.AsyncClient, user: str) -> str:
    response = await http.post("/auth/login", json={"username": user, "password": DEMO_PASSWORD})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _publish(http: httpx.AsyncClient, token: str, title: str, body: str) -> str:
    response = await http.post(
        "/announcements",
        json={"title": title, "body": body, "audience": {"all": True}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _metric(http: httpx.AsyncClient, name: str) -> float:
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith(f"tray_notifier_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} missing")


async def _wait_metric(http: httpx.AsyncClient, name: str, pred: Callable[[float], bool]) -> float:
    """Poll ``/metrics`` until ``pred(value)``; fails after WAIT_TIMEOUT seconds."""
    value = await _metric(http, name)
    for _ in range(int(WAIT_TIMEOUT / 0.05)):
        if pred(value):
            return value
        await asyncio.sleep(0.05)
        value = await _metric(http, name)
    assert pred(value), f"metric {name} is still {value}"
    return value


async def _wait_for(pred: Callable[[], bool]) -> None:
    for _ in range(int(WAIT_TIMEOUT / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)
    assert pred(), "condition not met in time"


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel a reader task; what it raised before (a broken stream) is raised here."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def _message_ids(events: list[Event]) -> list[str]:
    return [e.id for e in events if e.event == "message"]


def _check_connected(event: Event, user: str, *, resumed_from: str | None = None) -> None:
    """A ``connected`` event; its id the position the stream starts from: the resume id, or
    for a fresh client "0" (these servers start empty: nothing to see yet)."""
    assert event.event == "connected" and event.id == (resumed_from or "0")
    data = json.loads(event.data)
    assert data == {
        "connection_id": data["connection_id"],
        "user_id": user,
        "replay": resumed_from is not None,
    }
    assert re.fullmatch(r"[0-9a-f]{16}", data["connection_id"])


async def test_http10_stream_is_close_delimited_and_framed_exactly(
    server_factory: ServerFactory, raw_streams: list[RawStream]
) -> None:
    server = server_factory(demo_users=True, ping_interval=PING_INTERVAL)
    async with httpx.AsyncClient(base_url=server.url, timeout=READ_TIMEOUT) as http:
        token = await _login(http, "alice")
        stream = await RawStream.open(server.port, "alice", token, version="1.0")
        raw_streams.append(stream)
        assert stream.status_line == "HTTP/1.0 200 OK"
        assert "transfer-encoding" not in stream.headers
        assert "content-length" not in stream.headers
        assert stream.headers.get("connection", "close").lower() != "keep-alive"
        assert stream.headers["content-type"] == "text/event-stream; charset=utf-8"

        connected = await stream.next_event()
        _check_connected(connected, "alice")
        ann_id = await _publish(http, await _login(http, "publisher"), "Live", "after connect")
        events = await stream.until(lambda e: e.event == "message")
        assert _message_ids(events) == [ann_id]
        announcement = events[-1]
        while "ping" not in stream.parser.comments:
            await stream.read_piece()
        assert set(stream.parser.comments) == {"ping"}
        assert stream.parser.retry == 3000

        closed = await http.post("/sse/close/alice", headers={"Authorization": f"Bearer {token}"})
        assert closed.status_code == 200
        rest = await stream.rest()  # ends only when the server closes the connection
    assert [(e.event, json.loads(e.data)) for e in rest] == [("close", {"reason": "closed"})]
    assert stream.ended and stream.reader.at_eof()

    body = bytes(stream.body)
    assert body.endswith(b"\n\n") and b"\r" not in body
    blocks = body[:-2].split(b"\n\n")
    assert blocks[0] == b"retry: 3000"
    assert blocks[1] == b"event: connected\nid: 0\ndata: " + _compact(json.loads(connected.data))
    assert blocks[-1] == b'event: close\ndata: {"reason":"closed"}'
    middle = blocks[2:-1]
    message = f"id: {ann_id}\ndata: ".encode() + _compact(json.loads(announcement.data))
    assert middle.count(message) == 1
    assert set(middle) == {message, b": ping"}, middle  # nothing else, nothing torn
    payload = json.loads(announcement.data)
    assert (payload["type"], payload["id"], payload["title"], payload["body"]) == (
        "announcement",
        ann_id,
        "Live",
        "after connect",
    )


async def test_http11_burst_arrives_whole_in_order_then_idle_pings(
    server_factory: ServerFactory, raw_streams: list[RawStream]
) -> None:
    server = server_factory(demo_users=True, ping_interval=PING_INTERVAL)
    async with httpx.AsyncClient(base_url=server.url, timeout=READ_TIMEOUT) as http:
        token = await _login(http, "alice")
        stream = await RawStream.open(server.port, "alice", token)
        raw_streams.append(stream)
        assert stream.status_line == "HTTP/1.1 200 OK"
        assert stream.chunked and "content-length" not in stream.headers
        _check_connected(await stream.next_event(), "alice")

        titles = [f"burst {n}" for n in range(50)]
        received: list[Event] = []
        reader = asyncio.create_task(stream.collect(received))
        try:
            ids = await asyncio.to_thread(lambda: [server.publish(t, f"body {t}") for t in titles])
            await _wait_for(lambda: len(_message_ids(received)) >= len(ids) or reader.done())
        finally:
            await _stop(reader)
        assert _message_ids(received) == ids
        assert [json.loads(e.data)["title"] for e in received] == titles
        assert await _metric(http, "delivered_total") == len(ids)  # each counted once
        # written by the hub one by one (the stream's task would join what it found queued):
        # the connected chunk, then one chunk per announcement
        assert len(stream.chunks) == 1 + len(ids)
        assert all(chunk.count(b"\n\n") == 1 for chunk in stream.chunks[1:])

        # idle now: the keepalive task pings, one chunk per ping, nothing else in between
        chunks_before = len(stream.chunks)
        while stream.parser.comments.count("ping") < 2:
            await stream.read_piece()
        assert stream.chunks[chunks_before:] == [b": ping\n\n"] * 2

        closed = await http.post("/sse/close/alice", headers={"Authorization": f"Bearer {token}"})
        assert closed.status_code == 200
        rest = await stream.rest()  # ends at the zero-size last chunk
    assert [(e.event, json.loads(e.data)) for e in rest] == [("close", {"reason": "closed"})]
    assert stream.ended
    # every chunk holds whole events: none is split across two chunks
    assert all(chunk.endswith(b"\n\n") for chunk in stream.chunks)
    assert b"".join(stream.chunks) == bytes(stream.body)


async def test_slow_reader_is_dropped_others_unaffected_and_it_resumes(
    server_factory: ServerFactory, raw_streams: list[RawStream]
) -> None:
    server = server_factory(demo_users=True, queue_size=4)
    async with httpx.AsyncClient(base_url=server.url, timeout=READ_TIMEOUT) as http:
        publisher = await _login(http, "publisher")
        alice = await _login(http, "alice")
        normal = await RawStream.open(server.port, "bob", await _login(http, "bob"))
        raw_streams.append(normal)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # a small reader limit: asyncio stops taking bytes off the socket at 2 KiB buffered
        slow = await RawStream.open(server.port, "alice", alice, sock=sock, limit=1024)
        raw_streams.append(slow)
        _check_connected(await normal.next_event(), "bob")
        _check_connected(await slow.next_event(), "alice")
        published = [await _publish(http, publisher, "marker", "small")]
        assert _message_ids(await slow.until(lambda e: e.event == "message")) == published

        received: list[Event] = []
        reader = asyncio.create_task(normal.collect(received))
        try:
            for n in range(300):  # the slow stream is never read meanwhile
                published.append(await _publish(http, publisher, f"big {n}", BIG_BODY))
                if await _metric(http, "dropped_total") > 0:
                    break
            assert await _metric(http, "dropped_total") == 1, "the slow stream was not dropped"
            published.append(await _publish(http, publisher, "after", "small"))
            await _wait_for(lambda: len(_message_ids(received)) >= len(published) or reader.done())
        finally:
            await _stop(reader)
        assert _message_ids(received) == published  # the normal stream missed nothing
        await _wait_metric(http, "connections", lambda v: v == 1)
        assert await _metric(http, "subscriptions") == 1
        assert await _metric(http, "dropped_total") == 1

        # what reached the slow client before the abort (possibly cut mid-chunk) is whole
        # events, in order: a prefix of what was published
        got = published[:1] + _message_ids(await slow.rest(cut_ok=True))
        assert got and got == published[: len(got)]
        assert len(got) < len(published)
        resume_from = slow.parser.last_id
        assert resume_from == got[-1]

        again = await RawStream.open(server.port, "alice", alice, last_event_id=resume_from)
        raw_streams.append(again)
        _check_connected(await again.next_event(), "alice", resumed_from=resume_from)
        replay = await again.until(lambda e: e.event == "sync")
    missed = published[len(got) :]
    assert _message_ids(replay) == missed
    assert json.loads(replay[-1].data) == {
        "replayed": len(missed),
        "more": False,
        "last_id": missed[-1],
    }
    assert all(json.loads(e.data)["body"] == BIG_BODY for e in replay[:-2])


@pytest.mark.parametrize("version", ["1.0", "1.1"])
@pytest.mark.parametrize("how", ["reset", "close"])
async def test_vanished_client_is_cleaned_up(
    server_factory: ServerFactory, raw_streams: list[RawStream], version: str, how: str
) -> None:
    server: EmbeddedServer = server_factory(demo_users=True, ping_interval=PING_INTERVAL)
    async with httpx.AsyncClient(base_url=server.url, timeout=READ_TIMEOUT) as http:
        token = await _login(http, "alice")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if how == "reset":  # close sends RST, not FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        stream = await RawStream.open(server.port, "alice", token, version=version, sock=sock)
        raw_streams.append(stream)
        _check_connected(await stream.next_event(), "alice")
        await _wait_metric(http, "connections", lambda v: v == 1)
        await stream.close()  # gone, without reading the rest
        await _wait_metric(http, "connections", lambda v: v == 0)
        assert await _metric(http, "subscriptions") == 0
        # the server still serves streams afterwards
        again = await RawStream.open(server.port, "alice", token, version=version)
        raw_streams.append(again)
        _check_connected(await again.next_event(), "alice")


async def test_head_on_the_stream_is_refused_without_a_body(
    companion_server: EmbeddedServer,
) -> None:
    async with httpx.AsyncClient(base_url=companion_server.url, timeout=5) as client:
        login = await client.post("/auth/login", json={"username": "alice", "password": "demo"})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        response = await client.head("/sse/connect/alice", headers=headers)
        assert response.status_code == 405
        assert "GET" in response.headers["allow"]
        # the connection stays usable: the next request gets its own, well-framed answer
        assert (await client.get("/healthz")).status_code == 200
