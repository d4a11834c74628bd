"""The bare baseline of the server benchmarks: a minimal aiohttp SSE server, written the way
anyone would write one, run the same way as the companion server (its own process, 128
accepted per wake-up, the same stream head and ping interval). Its listen queue is aiohttp's
default (128); the companion server's is 4,096 deep since issue 24, which matters only to the
wall-clock time of a burst that outruns the server, not to its CPU per open.

``GET /sse/connect/{userId}`` with any Bearer token (not checked): ``retry:``, an ``event:
connected`` with an ``id:``, then ``: ping`` every --ping-interval seconds from the stream's own
task. ``POST /announcements`` writes one event to every open stream and answers ``{"id"}``.
It prints ``listening on http://127.0.0.1:PORT`` like ``python -m app server``, so
:class:`bench._common.ServerProc` starts either one. With ``--reuse-port`` (several processes
on one port) each also listens on a port of its own, printed first as ``admin on ...``, so that
a benchmark can publish to every one of them.

    .venv/bin/python -m bench.bare_server [--port P] [--ping-interval S] [--reuse-port]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal

from aiohttp import web

from bench.server_connections import _raise_nofile as raise_nofile


def make_app(ping_interval: float) -> web.Application:
    streams: set[web.StreamResponse] = set()
    ids = itertools.count(1)

    async def connect(request: web.Request) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            raise web.HTTPUnauthorized()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        streams.add(response)
        try:
            await response.write(
                b'retry: 3000\n\nevent: connected\nid: 0\ndata: {"user_id": "%s"}\n\n'
                % request.match_info["userId"].encode()
            )
            while True:
                await asyncio.sleep(ping_interval)
                await response.write(b": ping\n\n")
        except ConnectionError:
            pass
        finally:
            streams.discard(response)
        return response

    async def publish(request: web.Request) -> web.Response:
        body = await request.json()
        ann_id = str(next(ids))
        data = json.dumps({"type": "announcement", "id": ann_id, **body}, separators=(",", ":"))
        event = f"id: {ann_id}\ndata: {data}\n\n".encode()
        for response in list(streams):
            with contextlib.suppress(ConnectionError):
                await response.write(event)
        return web.json_response({"id": ann_id}, status=201)

    app = web.Application()
    app.router.add_get("/sse/connect/{userId}", connect)
    app.router.add_post("/announcements", publish)
    return app


async def serve(port: int, ping_interval: float, reuse_port: bool) -> None:
    runner = web.AppRunner(make_app(ping_interval), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner, "127.0.0.1", port, backlog=128, reuse_address=True, reuse_port=reuse_port or None
    )
    await site.start()
    if reuse_port:  # several processes share the port: each also listens on one of its own,
        # so that a benchmark can reach every one of them (a broadcast is one POST to each)
        admin = web.TCPSite(runner, "127.0.0.1", 0)
        await admin.start()
        print(f"admin on http://127.0.0.1:{runner.addresses[1][1]}", flush=True)
    print(f"listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ping-interval", type=float, default=15.0)
    parser.add_argument("--reuse-port", action="store_true")
    args = parser.parse_args()
    raise_nofile(1 << 20)
    asyncio.run(serve(args.port, args.ping_interval, args.reuse_port))


if __name__ == "__main__":
    main()
