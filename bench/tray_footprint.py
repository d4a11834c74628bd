"""Issue 14's goals, each against its bare baseline, in ONE run on a real X session, with the
ratios in one table.

In order (each part is another benchmark's function, run here):

1. engine events/s (``bench/engine_throughput.py``): our stream engine against a bare
   httpx-sse loop that also parses each event's JSON, on a local stream of ``--events``;
   first, before any desktop or thread is started (its server is a forked process);
2. a private desktop (``bench/tray_harness.py``: Xvfb, a StatusNotifierItem tray host, dunst,
   gnome-keyring, the companion server with keepalive pings off; the tray logged in with
   ``--history`` announcements), where ``--rounds`` rounds (``bench/tray_idle.py``'s
   ``idle_round``) each launch the bare tray icon then ``python -m app``: launch to icon
   and to connected, idle RSS after ``--settle`` s, idle wake-ups over ``--seconds`` s;
3. publish to toast (``bench/tray_toast.py``): publish to the Notify call on the bus for a
   bare client (httpx SSE, json, jeepney Notify) and the tray (normal: minus the settle
   delay; urgent: none), and the GUI-thread time per announcement (the probed tray's slots,
   and the GUI thread's CPU time);
4. the catch-up of ``--missed`` (``bench/tray_catchup.py``, as a subprocess ON THIS X DISPLAY:
   ``QT_QPA_PLATFORM=xcb``, the desktop's ``DISPLAY`` and session bus, ``--session-bus`` so
   its ``Root`` toasts through the tray host and dunst as ``python -m app`` does): all stored
   against the bare loop (httpx + json + SQLite), the worst GUI-thread stall, the toasts.

Medians over rounds; the wake-up "ratio" is shown only where the bare one is not 0.

    .venv/bin/python bench/tray_footprint.py            # about 4 minutes on 2 busy cores
    .venv/bin/python bench/tray_footprint.py --quick    # about 1 minute: fewer, smaller
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.engine_throughput import measure_rates
from bench.tray_harness import ROOT, tray_bench
from bench.tray_idle import Idle, idle_round
from bench.tray_toast import ToastResult, measure_toast, report

STALL_TARGET_MS = 50
TOAST_EXTRA_MS = 5.0  # beyond the settle delay (and beyond the bare client's own latency)
WAKEUP_SLACK = 0.1  # /s above the bare tray's that still counts as "no wake-ups"


@dataclass(frozen=True, slots=True)
class Row:
    goal: str
    tray: str
    bare: str
    ratio: str
    target: str
    met: bool | None  # None: not measured


def _x(tray: float, bare: float) -> str:
    return f"{tray / bare:.2f}x" if bare else "—"


def _progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run_catch_up(env: dict[str, str], missed: int, rounds: int) -> dict[str, Any]:
    """``bench/tray_catchup.py`` on the desktop's display and bus; its JSON."""
    argv = [sys.executable, "-m", "bench.tray_catchup", "--missed", str(missed)]
    argv += ["--rounds", str(rounds), "--session-bus", "--json"]
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"tray_catchup failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def table(
    idle: list[tuple[Idle, Idle]],
    toast: ToastResult,
    catch_up: dict[str, Any],
    engine: dict[str, float],
    *,
    history: int,
    missed: int,
) -> list[Row]:
    med = statistics.median
    t_rss, b_rss = med(t.rss_mib for t, _ in idle), med(b.rss_mib for _, b in idle)
    t_wake, b_wake = med(t.wakeups for t, _ in idle), med(b.wakeups for _, b in idle)
    t_conn = med(t.connected_s or 0.0 for t, _ in idle)
    b_icon = med(b.icon_s for _, b in idle)
    stored = med(r["stored_s"] for r in catch_up["tray"])
    bare_loop = med(catch_up["bare_s"])
    stall = max(r["stall_ms"] for r in catch_up["tray"])
    toasts = max(len(r["toasts"]) for r in catch_up["tray"])
    rows = [
        Row(f"idle RSS, connected, {history:,} in history",
            f"{t_rss:.1f} MiB", f"{b_rss:.1f} MiB", _x(t_rss, b_rss), "<= 1.5x",
            t_rss <= 1.5 * b_rss),
        Row("idle wake-ups (context switches/s)",
            f"{t_wake:.2f}/s", f"{b_wake:.2f}/s", _x(t_wake, b_wake),
            f"<= bare + {WAKEUP_SLACK}/s", t_wake <= b_wake + WAKEUP_SLACK),
        Row("launch to connected (bare: to icon)",
            f"{t_conn:.3f} s", f"{b_icon:.3f} s", _x(t_conn, b_icon), "<= 2x",
            t_conn <= 2 * b_icon),
        Row(f"catch-up of {missed:,}: all stored",
            f"{stored:.2f} s", f"{bare_loop:.2f} s", _x(stored, bare_loop), "<= 1.5x",
            stored <= 1.5 * bare_loop),
        Row("catch-up: worst GUI-thread stall",
            f"{stall} ms", "—", "—", f"<= {STALL_TARGET_MS} ms", stall <= STALL_TARGET_MS),
        Row("catch-up: toasts", str(toasts), "—", "—", "1 summary", toasts == 1),
    ]  # fmt: skip
    for kind, what in (("normal", "minus settle"), ("urgent", "no settle")):
        tray, bare = toast.p("tray", kind, 50), toast.p("bare", kind, 50)
        rows.append(
            Row(f"publish to toast p50, {kind} ({what})",
                f"{tray:.1f} ms", f"{bare:.1f} ms", _x(tray, bare),
                f"<= bare + {TOAST_EXTRA_MS:g} ms", tray - bare <= TOAST_EXTRA_MS)
        )  # fmt: skip
    probed = toast.probed
    for kind in ("normal", "urgent"):
        if probed is not None:
            wall = med(probed.per_announcement[kind])
            rows.append(
                Row(f"GUI thread in our slots, per {kind} (p50)",
                    f"{wall:.2f} ms", "—", "—", f"<= {TOAST_EXTRA_MS:g} ms",
                    wall <= TOAST_EXTRA_MS)
            )  # fmt: skip
        else:
            rows.append(
                Row(f"GUI thread in our slots, per {kind}", "—", "—", "—",
                    f"<= {TOAST_EXTRA_MS:g} ms", None)
            )  # fmt: skip
        cpu = statistics.mean(toast.tray.gui_cpu_ms[kind])
        bare_cpu = statistics.mean(toast.bare.cpu_ms[kind])
        rows.append(
            Row(f"GUI-thread CPU per {kind} (bare: process)",
                f"{cpu:.2f} ms", f"{bare_cpu:.2f} ms", _x(cpu, bare_cpu),
                f"<= {TOAST_EXTRA_MS:g} ms", cpu <= TOAST_EXTRA_MS)
        )  # fmt: skip
    e, b = engine["engine"], engine["httpx-sse+json"]
    rows.append(
        Row("engine events/s (bare: httpx-sse+json)",
            f"{e / 1000:.0f} k", f"{b / 1000:.0f} k", _x(e, b), ">= 1.0x", e >= b)
    )  # fmt: skip
    return rows


def render(rows: list[Row]) -> list[str]:
    head = Row("goal", "tray", "bare", "ratio", "target", None)
    cells = [[r.goal, r.tray, r.bare, r.ratio, r.target] for r in [head, *rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    out = []
    for n, (r, c) in enumerate(zip([head, *rows], cells, strict=True)):
        met = "met" if n == 0 else {True: "yes", False: "NO", None: "n/a"}[r.met]
        out.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + "  " + met)
        if n == 0:
            out.append("-" * (sum(widths) + 2 * 5 + 3))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller counts")
    parser.add_argument("--rounds", type=int, help="launch/idle rounds (3; quick 1)")
    parser.add_argument("--seconds", type=float, help="idle wake-up window (10; quick 3)")
    parser.add_argument("--settle", type=float, help="s before idle measures (3; quick 2)")
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--toast-rounds", type=int, help="of each priority (20; quick 5)")
    parser.add_argument("--probe-rounds", type=int, help="probed tray (10; quick 3; 0: none)")
    parser.add_argument("--missed", type=int, help="catch-up size (10000; quick 2000)")
    parser.add_argument("--catch-up-rounds", type=int, help="(2; quick 1)")
    parser.add_argument("--events", type=int, help="engine events (100000; quick 30000)")
    parser.add_argument("--engine-rounds", type=int, help="(3; quick 1)")
    args = parser.parse_args()
    defaults = {
        "rounds": (3, 1),
        "seconds": (10.0, 3.0),
        "settle": (3.0, 2.0),
        "toast_rounds": (20, 5),
        "probe_rounds": (10, 3),
        "missed": (10_000, 2_000),
        "catch_up_rounds": (2, 1),
        "events": (100_000, 30_000),
        "engine_rounds": (3, 1),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    started = time.monotonic()
    _progress(f"engine: {args.events:,} events x {args.engine_rounds} rounds")
    engine = measure_rates(args.events, args.engine_rounds)
    _progress("desktop, keyring, server, login, history")
    with tray_bench(history=args.history) as bench:
        idle = []
        for n in range(args.rounds):
            _progress(f"launch and idle, round {n + 1} of {args.rounds}")
            idle.append(idle_round(bench, seconds=args.seconds, settle=args.settle))
        _progress(f"publish to toast: {args.toast_rounds} rounds of each priority")
        toast = measure_toast(bench, rounds=args.toast_rounds, probe_rounds=args.probe_rounds)
        _progress(f"catch-up of {args.missed:,} x {args.catch_up_rounds} on DISPLAY (xcb)")
        catch_up = run_catch_up(bench.env(), args.missed, args.catch_up_rounds)
    elapsed = time.monotonic() - started

    print(f"issue 14 footprint: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"{elapsed:.0f} s")  # fmt: skip
    print(f"\nengine, {args.events:,} events, median of {args.engine_rounds} (events/s)")
    for name, rate in engine.items():
        print(f"  {name:<15} {rate:>12,.0f}")
    print(f"\nlaunch and idle, {args.rounds} rounds (wake-ups over {args.seconds:g} s)")
    for tray, bare in idle:
        print(
            f"  tray: icon {tray.icon_s:.3f} s, connected {tray.connected_s or 0:.3f} s,"
            f" RSS {tray.rss_mib:.1f} MiB, {tray.wakeups:.2f}/s, threads {tray.threads},"
            f" SIGTERM {tray.exit_code}; bare: icon {bare.icon_s:.3f} s,"
            f" RSS {bare.rss_mib:.1f} MiB, {bare.wakeups:.2f}/s, threads {bare.threads}"
        )
    print()
    print("\n".join(report(toast)))
    print(f"\ncatch-up of {args.missed:,}, {args.catch_up_rounds} rounds, on the X display")
    for r, b in zip(catch_up["tray"], catch_up["bare_s"], strict=True):
        print(
            f"  tray: all stored {r['stored_s']:.2f} s, worst GUI stall {r['stall_ms']} ms"
            f" (at {r['stall_at']:.2f} s), toasts {r['toasts']}; bare loop {b:.2f} s"
        )
    print()
    rows = table(idle, toast, catch_up, engine, history=args.history, missed=args.missed)
    print("\n".join(render(rows)))


if __name__ == "__main__":
    main()
