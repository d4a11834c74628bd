"""Reconnect after an outage (issue 21): how long after a server's return is a fleet back, and
does it come back as a spread or as a spike?

N clients per rule, each a real :class:`app.core.stream.StreamEngine` (its httpx client, its
:class:`~app.core.backoff.Backoff`, its real waits), hold a stream from a server process on
loopback. The server is stopped (every stream ends, then every connect is refused) for
--outage seconds, then started again ON THE SAME PORT. Two rules run side by side in the same
run, against the same outage of the same server:

- ``old``: the failure cap of 300 s (the code before issue 21; ``--old-cap``);
- ``new``: the cap the engine now derives from the connect timeout (18 s; ``--cap``).

Figures, per rule: the time from the server's return to each client's reconnect (p50, p99,
max; clients not back by --deadline are counted, and the percentiles they would fall in read
as ``>deadline``; how many were back within 30 s), and the connections per second the server
accepts after its return (peak, p99 over the seconds until the last one is back). The bare
baseline is the fleet's first connect, every client at once with no wait at all: the spike
that jitter is there to avoid.

The server is a bare aiohttp SSE endpoint in its own process (``retry: 3000``, a greeting,
``: ping`` every 15 s), which stamps every stream it accepts with ``time.monotonic()`` (one
system-wide clock, comparable with the clients'). Not the companion server: it holds at most
4 streams per login session, so 2,000 clients would need 500 logins; what is measured here is
the client's rule, and a server that does no more than accept keeps the figures the rule's.

    .venv/bin/python -m bench.reconnect_after_outage                # 2 x 1,000 clients, 150 s
    .venv/bin/python -m bench.reconnect_after_outage --quick        # 40 s outage, 90 s deadline
    .venv/bin/python -m bench.reconnect_after_outage --clients 300 --outage 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from app.core.backoff import failure_cap
from app.core.config import StreamSettings
from app.core.model import ConnState, RawEvent, Status, StreamEvent
from app.core.stream import StreamEngine
from bench._common import percentile, raise_nofile

OLD_CAP = 300.0  # the failure cap before issue 21
PING_INTERVAL = 15.0
START_TIMEOUT = 30.0  # a server process must listen within this
RAMP_TIMEOUT = 120.0  # every client must be connected within this at the start
SETTLE = 6.0  # streams must outlive STABLE_STREAM (5 s) to end as streams that worked


# ---------------------------------------------------------------- the server process


async def _serve(port: int, out: Path) -> None:
    """Accept streams until SIGTERM; then refuse connects, end every stream, dump arrivals."""
    arrivals: list[tuple[float, str]] = []
    closing = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        arrivals.append((time.monotonic(), request.query.get("rule", "")))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            await response.write(b"retry: 3000\nevent: connected\ndata: {}\n\n")
            while not closing.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(closing.wait(), PING_INTERVAL)
                if not closing.is_set():
                    await response.write(b": ping\n\n")
            await response.write(b'event: close\ndata: {"reason": "shutdown"}\n\n')
        return response

    app = web.Application()
    app.router.add_get("/stream", stream)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024, reuse_address=True)
    await site.start()
    listening_at = time.monotonic()
    bound = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{bound} at {listening_at!r}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    closing.set()  # the streams end (their clients wait their retry time) ...
    await runner.cleanup()  # ... while the listening socket closes: connects are refused
    out.write_text(json.dumps({"listening_at": listening_at, "arrivals": arrivals}))


class Server:
    """The server process: started (on a port, or any), stopped, and its arrivals read."""

    def __init__(self, port: int, out: Path) -> None:
        self.out = out
        args = [sys.executable, "-m", "bench.reconnect_after_outage", "--serve", str(port)]
        self.proc = subprocess.Popen([*args, "--out", str(out)], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the caller waits with START_TIMEOUT
        if not line.startswith("listening on"):
            self.proc.kill()
            raise SystemExit(f"the server did not start: {line!r}")
        url, _, at = line.split()[2:5]
        self.port = int(url.rsplit(":", 1)[1])
        self.listening_at = float(at)

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise SystemExit("the server did not stop within 60 s") from None
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return dict(json.loads(self.out.read_text()))


async def _start_server(port: int, out: Path) -> Server:
    # in a thread: the engines keep running on this loop while the process starts
    return await asyncio.wait_for(asyncio.to_thread(Server, port, out), START_TIMEOUT)


# ---------------------------------------------------------------- the clients


@dataclass
class Client:
    rule: str
    engine: StreamEngine | None = None
    connected_at: list[float] = field(default_factory=list)  # each CONNECTED, monotonic
    failed: str = ""

    def on_status(self, status: Status) -> None:
        if status.state is ConnState.CONNECTED:
            self.connected_at.append(time.monotonic())
        elif status.state is ConnState.ERROR:
            self.failed = status.detail

    def back_after(self, t: float) -> float | None:
        return next((c - t for c in self.connected_at if c >= t), None)


def _ignore(raw: RawEvent, typed: StreamEvent) -> None:
    pass


def _make_clients(port: int, n: int, caps: dict[str, float]) -> list[Client]:
    settings = StreamSettings()  # the defaults: connect timeout 10 s, heartbeat 45 s
    clients = []
    for rule, cap in caps.items():
        for _ in range(n):
            client = Client(rule)
            client.engine = StreamEngine(
                url=f"http://127.0.0.1:{port}/stream?rule={rule}",
                settings=settings,
                token_source=None,
                on_event=_ignore,
                on_status=client.on_status,
            )
            # the rule under test: the engine's own Backoff, with this rule's failure cap
            client.engine._backoff.cap = cap
            clients.append(client)
    return clients


async def _until(done: Any, timeout: float, step: float = 0.1) -> bool:
    """Poll ``done()`` until true or ``timeout`` seconds pass; whether it came true."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(step)
    return True


class LagProbe:
    """The client loop's worst lateness: a figure is only the rule's when this stays small."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.1)
            self.worst = max(self.worst, time.monotonic() - t - 0.1)


# ---------------------------------------------------------------- the run


def _per_second(times: list[float], start: float, end: float) -> list[int]:
    """Counts of ``times`` in each whole second from ``start`` up to ``end``."""
    counts = [0] * max(1, math.ceil(end - start))
    for t in times:
        if start <= t < start + len(counts):
            counts[int(t - start)] += 1
    return counts


async def _run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    caps = {"old": args.old_cap, "new": args.cap}
    first = await _start_server(0, tmp / "first.json")
    clients = _make_clients(first.port, args.clients, caps)
    probe = LagProbe()
    tasks = [asyncio.create_task(c.engine.run()) for c in clients if c.engine is not None]
    try:
        return await _outage(args, tmp, first, clients, probe)
    finally:
        for c in clients:
            if c.engine is not None:
                c.engine.stop()
        await asyncio.wait(tasks, timeout=30)
        probe.task.cancel()


async def _outage(
    args: argparse.Namespace, tmp: Path, first: Server, clients: list[Client], probe: LagProbe
) -> dict[str, Any]:
    if not await _until(lambda: all(c.connected_at for c in clients), RAMP_TIMEOUT):
        raise SystemExit(f"not every client connected within {RAMP_TIMEOUT:g} s")
    await asyncio.sleep(SETTLE)
    before = await asyncio.to_thread(first.stop)
    stopped_at = time.monotonic()
    print(f"server down for {args.outage:g} s ...", file=sys.stderr, flush=True)
    await asyncio.sleep(args.outage)
    second = await _start_server(first.port, tmp / "second.json")
    back_at = second.listening_at
    probe.worst = 0.0  # from the return on
    print("server back; waiting for the clients ...", file=sys.stderr, flush=True)
    await _until(lambda: all(c.back_after(back_at) is not None for c in clients), args.deadline)
    ended_at = time.monotonic()
    after = await asyncio.to_thread(second.stop)

    first_connects = [t for t, _ in before["arrivals"]]
    spike = _per_second(first_connects, min(first_connects), max(first_connects) + 1)
    rows: dict[str, Any] = {
        "first connect (all at once, no wait)": {
            "clients": len(first_connects),
            "peak_per_s": max(spike),
            "p99_per_s": percentile([float(c) for c in spike], 99),
            "spread_s": max(first_connects) - min(first_connects),
        }
    }
    for rule, cap in {"old": args.old_cap, "new": args.cap}.items():
        mine = [c for c in clients if c.rule == rule]
        backs = [c.back_after(back_at) for c in mine]
        latencies = [b for b in backs if b is not None]
        arrivals = [t for t, r in after["arrivals"] if r == rule]
        end = max(arrivals) + 1 if arrivals else back_at + 1
        rate = _per_second(arrivals, back_at, end)
        missing = len(backs) - len(latencies)
        rows[f"{rule} rule (cap {cap:g} s)"] = {
            "clients": len(mine),
            "back_p50_s": _censored(backs, 50, args.deadline),
            "back_p99_s": _censored(backs, 99, args.deadline),
            "back_max_s": _censored(backs, 100, args.deadline),
            "not_back": missing,
            "within_30s": sum(b is not None and b <= 30.0 for b in backs),
            "peak_per_s": max(rate),
            "p99_per_s": percentile([float(c) for c in rate], 99),
            "errors": sum(bool(c.failed) for c in mine),
        }
    return {
        "rows": rows,
        "outage_s": back_at - stopped_at,
        "deadline_s": args.deadline,
        "measured_s": ended_at - back_at,
        "client_loop_worst_lag_s": probe.worst,
    }


def _censored(backs: list[float | None], q: float, deadline: float) -> float | str:
    """The q-th percentile of the reconnect times, a client not back counting as infinite."""
    value = percentile([math.inf if b is None else b for b in backs], q)
    return value if math.isfinite(value) else f">{deadline:g}"


def _fmt(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _print(result: dict[str, Any]) -> None:
    cols = ["clients", "back_p50_s", "back_p99_s", "back_max_s", "not_back", "within_30s"]
    cols += ["peak_per_s", "p99_per_s"]
    width = max(len(k) for k in result["rows"])
    print(f"{'':{width}}  " + "  ".join(f"{c:>10}" for c in cols))
    for name, row in result["rows"].items():
        cells = [_fmt(row.get(c, "-")) for c in cols]
        print(f"{name:{width}}  " + "  ".join(f"{c:>10}" for c in cells))
    print(
        f"outage {result['outage_s']:.1f} s; waited up to {result['deadline_s']:g} s after the"
        f" return; client loop's worst lag after the return {result['client_loop_worst_lag_s']:.2f}"
        f" s; the whole run {result['wall_s']:.0f} s"
    )
    new = next(row for name, row in result["rows"].items() if name.startswith("new"))
    ok = new["not_back"] == 0 and isinstance(new["back_max_s"], float)
    verdict = "OK" if ok and new["back_max_s"] <= 30.0 and not new["errors"] else "FAIL"
    print(f"new rule: every client back within 30 s of the server's return: {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="clients per rule")
    parser.add_argument("--outage", type=float, default=150.0, help="seconds the server is down")
    parser.add_argument("--deadline", type=float, default=180.0, help="wait after the return (s)")
    parser.add_argument(
        "--cap",
        type=float,
        default=failure_cap(StreamSettings().connect_timeout),
        help="the new rule's cap (default: the engine's, from the connect timeout)",
    )
    parser.add_argument("--old-cap", type=float, default=OLD_CAP, help="the old rule's cap")
    parser.add_argument("--quick", action="store_true", help="--outage 40 --deadline 90")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    raise_nofile(4 * args.clients + 1024)
    if args.serve is not None:
        assert args.out is not None
        asyncio.run(_serve(args.serve, args.out))
        return 0
    if args.quick:
        args.outage, args.deadline = 40.0, 90.0
    if not 1 <= args.clients <= 5000 or not 0 < args.outage <= 3600 or args.deadline > 3600:
        parser.error("--clients 1..5000, --outage and --deadline at most an hour")
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}", file=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(_run(args, Path(tmp)))
    result["wall_s"] = time.monotonic() - started
    print(json.dumps(result, default=str))
    _print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
