"""Events per second: our stream engine against a bare httpx-sse loop, on the same stream.

A server process (raw asyncio, so the server costs as little as possible and does not share
the client's interpreter) streams N announcement events on every connection, each exactly as
the companion server writes it (``app/server/wire.py``: id, title, body, priority, link,
created and expiry times; about 290 bytes). The client
reads them all, timing each contender:

- ``engine``: :class:`app.core.stream.StreamEngine` — our WHATWG decoder on raw bytes, plus
  typing each event (JSON parse into an Announcement) and the on_event call;
- ``decoder``: our decoder alone on ``response.aiter_bytes()`` (no typing);
- ``httpx-sse``: ``aconnect_sse`` + ``aiter_sse`` (its decoder only, no typing);
- ``httpx-sse+json``: the same loop that also parses each event's JSON (``json.loads``), the
  bare baseline the engine (which also types and delivers each event) is held to.

    .venv/bin/python bench/engine_throughput.py [--events 100000] [--rounds 3]

Prints the median of the rounds for each, and the ratios. ``--per-event`` prints instead what
each stage costs per event, from memory (no HTTP, no server): the best of 9 runs of ``timeit``
over ``--events`` of the same events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import ssl
import statistics
import time
import timeit
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from app.core.config import StreamSettings
from app.core.events import load_json, to_stream_event
from app.core.model import Announcement, Priority, RawEvent, Status, StreamEvent, parse_time
from app.core.sse import SSEDecoder
from app.core.stream import StreamEngine
from app.server import wire
from app.server.model import Audience, Record

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
    b"Connection: close\r\n\r\n"
)


def payload(events: int) -> bytes:
    """``retry:``, then ``events`` announcements exactly as the companion server writes them
    (``app/server/wire.py``: every field of the stream's JSON, priority, link and times
    included), ids as the Redis backend makes them."""
    created = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
    parts = [wire.retry(3000)]
    for i in range(1, events + 1):
        record = Record(
            id=f"{1764927000000 + i}-0",
            title=f"Announcement {i}",
            body="The office closes at 16:00 on Friday for the building's fire drill.",
            priority=(Priority.NORMAL, Priority.HIGH, Priority.LOW)[i % 3],
            audience=Audience(everyone=True),
            created_at=created + timedelta(seconds=i),
            url=f"https://intranet.example.org/news/{i}" if i % 2 else None,
            expires_at=created + timedelta(days=7) if i % 4 else None,
            author="publisher",
        )
        parts.append(wire.record(record))
    return b"".join(parts)


def serve(events: int, port_out: multiprocessing.connection.Connection) -> None:
    body = payload(events)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(HEAD)
        for i in range(0, len(body), 64 * 1024):
            writer.write(body[i : i + 64 * 1024])
            await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# one TLS context for the bare contenders, made once as the engine's client makes its own
# (loading the CA file costs about 18 ms: per round, 4 % of a bare loop's time)
_TLS = ssl.create_default_context()


async def run_engine(url: str, events: int) -> int:
    count = 0
    engine: StreamEngine

    def on_event(raw: RawEvent, typed: StreamEvent) -> None:
        nonlocal count
        count += 1
        if count == events:
            engine.stop()

    def on_status(status: Status) -> None:
        pass

    engine = StreamEngine(
        url=url,
        settings=StreamSettings(),
        token_source=None,
        on_event=on_event,
        on_status=on_status,
    )
    await engine.run()
    return count


async def run_decoder(url: str, events: int) -> int:
    count = 0
    decoder = SSEDecoder()
    async with (
        httpx.AsyncClient(timeout=30, verify=_TLS) as client,
        client.stream("GET", url) as response,
    ):
        async for chunk in response.aiter_bytes():
            count += len(decoder.feed(chunk))
    return count


async def run_httpx_sse(url: str, events: int) -> int:
    count = 0
    async with (
        httpx.AsyncClient(timeout=30, verify=_TLS) as client,
        aconnect_sse(client, "GET", url) as source,
    ):
        async for _ in source.aiter_sse():
            count += 1
    return count - 1  # the retry-only block is dispatched as an (empty) event by httpx-sse


async def run_httpx_sse_json(url: str, events: int) -> int:
    count = 0
    async with (
        httpx.AsyncClient(timeout=30, verify=_TLS) as client,
        aconnect_sse(client, "GET", url) as source,
    ):
        async for sse in source.aiter_sse():
            if sse.data:
                json.loads(sse.data)
                count += 1
    return count


def measure(fn: Callable[[str, int], Coroutine[Any, Any, int]], url: str, events: int) -> float:
    started = time.perf_counter()
    got = asyncio.run(fn(url, events))
    elapsed = time.perf_counter() - started
    if got != events:
        raise SystemExit(f"{fn.__name__} received {got} events, expected {events}")
    return events / elapsed


def measure_rates(events: int, rounds: int) -> dict[str, float]:
    """Every contender's median events/s over ``rounds`` (the server in a subprocess)."""
    return {name: statistics.median(r) for name, r in measure_rounds(events, rounds).items()}


def measure_rounds(events: int, rounds: int) -> dict[str, list[float]]:
    """Every contender's events/s in each of ``rounds`` (the server in a subprocess)."""
    receive, send = multiprocessing.Pipe(duplex=False)
    server = multiprocessing.Process(target=serve, args=(events, send), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{receive.recv()}/stream"
        contenders = {
            "engine": run_engine,
            "decoder": run_decoder,
            "httpx-sse": run_httpx_sse,
            "httpx-sse+json": run_httpx_sse_json,
        }
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, fn in contenders.items():
                rates[name].append(measure(fn, url, events))
    finally:
        server.terminate()
        server.join(10)
    return rates


def per_event(events: int) -> dict[str, float]:
    """Microseconds per event of each stage, from memory: :func:`payload`'s events cut in the
    64 KiB chunks the server writes; the best of 9 runs (``timeit``: no garbage collection)."""
    body = payload(events)
    chunks = [body[i : i + 64 * 1024] for i in range(0, len(body), 64 * 1024)]

    def decode() -> list[RawEvent]:
        decoder, raws = SSEDecoder(), []
        for chunk in chunks:
            raws += decoder.feed(chunk)
        return raws

    raws = decode()
    texts = [raw.data for raw in raws]
    objs = [(load_json(raw.data), raw.id) for raw in raws]
    times = [t for obj, _ in objs for t in (obj["created_at"], obj["expires_at"]) if t]

    def each(fn: Callable[[Any], object], items: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for item in items:
                fn(item)

        return run

    def from_json() -> None:
        for obj, own in objs:
            Announcement.from_json(obj, fallback_id=own)

    stages: dict[str, tuple[Callable[[], object], int]] = {
        "decoder (SSEDecoder.feed)": (decode, events),
        "json.loads (the bare loop's)": (each(json.loads, texts), events),
        "load_json": (each(load_json, texts), events),
        "Announcement.from_json": (from_json, events),
        "  of which parse_time, per call": (each(parse_time, times), len(times)),
        "to_stream_event (load_json + from_json + the rest)": (each(to_stream_event, raws), events),
    }
    return {
        name: min(timeit.repeat(fn, number=1, repeat=9)) / count * 1e6
        for name, (fn, count) in stages.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-event", action="store_true", help="each stage's µs per event")
    args = parser.parse_args()
    if args.per_event:
        print(f"{args.events:,} events from memory, µs per event (best of 9)")
        for name, us in per_event(args.events).items():
            print(f"  {name:<52} {us:6.3f}")
        return
    rates = measure_rounds(args.events, args.rounds)
    median = {name: statistics.median(r) for name, r in rates.items()}
    print(f"{args.events:,} events, median of {args.rounds} rounds (events/s)")
    for name, rate in median.items():
        print(f"  {name:<15} {rate:>12,.0f}")
    # each round's own ratio: the machine's load moves both contenders of a round alike
    ratios = [e / j for e, j in zip(rates["engine"], rates["httpx-sse+json"], strict=True)]
    print(
        f"  engine / httpx-sse+json  {median['engine'] / median['httpx-sse+json']:.2f}"
        f" (each round: {' / '.join(f'{r:.2f}' for r in sorted(ratios))})"
    )
    print(f"  engine / httpx-sse   {median['engine'] / median['httpx-sse']:.2f}")
    print(f"  decoder / httpx-sse  {median['decoder'] / median['httpx-sse']:.2f}")


if __name__ == "__main__":
    main()
