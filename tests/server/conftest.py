"""Helpers for the server tests: an HTTP client, logins, and a strict SSE reader.

The reader parses by the WHATWG HTML "Server-sent events" rules itself (it does not use
app/core/sse.py), so these tests check the server's bytes, not another decoder's tolerance.
"""

from __future__ import annotations

import codecs
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from app.server.embedded import EmbeddedServer
from app.server.runtime import DEMO_PASSWORD

TIMEOUT = httpx.Timeout(15.0)


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str


class StrictParser:
    """Incremental WHATWG event-stream parser; also keeps comments and the retry value."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""
        self._first = True
        self._data: list[str] = []
        self._type = ""
        self.last_id = ""
        self.retry: int | None = None
        self.comments: list[str] = []

    def feed(self, chunk: bytes) -> list[Event]:
        text = self._decoder.decode(chunk)
        if self._first and text:
            text = text.removeprefix("\ufeff")
            self._first = False
        self._text += text
        events: list[Event] = []
        while True:
            cut = min(
                (i for i in (self._text.find("\r"), self._text.find("\n")) if i >= 0), default=-1
            )
            if cut < 0 or (self._text[cut] == "\r" and cut == len(self._text) - 1):
                return events  # no full line yet (a trailing CR may be half of CRLF)
            line = self._text[:cut]
            skip = 2 if self._text.startswith("\r\n", cut) else 1
            self._text = self._text[cut + skip :]
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _line(self, line: str) -> Event | None:
        if line == "":
            data, self._data = self._data, []
            kind, self._type = self._type, ""
            if not data:
                return None
            return Event(kind or "message", "\n".join(data), self.last_id)
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._type = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return None


class Stream:
    """One open ``/sse/connect`` response read with :class:`StrictParser`."""

    def __init__(self, client: httpx.Client, user: str, token: str, **kwargs: Any) -> None:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        self._cm = client.stream("GET", f"/sse/connect/{user}", headers=headers, **kwargs)
        self.response = self._cm.__enter__()
        self.raw = bytearray()
        self.parser = StrictParser()
        self._pending: deque[Event] = deque()
        self._chunks: Iterator[bytes] = self.response.iter_raw()
        self.ended = False

    def pump(self) -> None:
        """Read one chunk; raises EOFError at the end of the stream."""
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.ended = True
            raise EOFError("the stream ended") from None
        self.raw += chunk
        self._pending.extend(self.parser.feed(chunk))

    def next(self) -> Event:
        """The next event; raises EOFError at the end of the stream."""
        while not self._pending:
            self.pump()
        return self._pending.popleft()

    def until(self, pred: Callable[[Event], bool]) -> list[Event]:
        """Events up to and including the first one matching ``pred``."""
        seen = []
        while True:
            ev = self.next()
            seen.append(ev)
            if pred(ev):
                return seen

    def rest(self) -> list[Event]:
        """Every event until the stream ends."""
        out = []
        try:
            while True:
                out.append(self.next())
        except EOFError:
            return out

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "redis"])
def server_backend(request: pytest.FixtureRequest) -> str:
    """Every server test here runs once per backend: one contract suite, run twice."""
    return str(request.param)


@pytest.fixture
def http(companion_server: EmbeddedServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture
def streams() -> Iterator[Callable[..., Stream]]:
    opened: list[Stream] = []

    def open_stream(client: httpx.Client, user: str, token: str, **kwargs: Any) -> Stream:
        stream = Stream(client, user, token, **kwargs)
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()


def login(client: httpx.Client, user: str, password: str = DEMO_PASSWORD) -> dict[str, Any]:
    response = client.post("/auth/login", json={"username": user, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


def publish(client: httpx.Client, publisher: dict[str, Any], **fields: Any) -> str:
    payload = {"title": "T", "body": "B", "audience": {"all": True}, **fields}
    response = client.post("/announcements", json=payload, headers=bearer(publisher))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def metric(client: httpx.Client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f"tray_notifier_{name} "):
            return float(line.split()[1])
    raise AssertionError(f"metric {name} missing")
