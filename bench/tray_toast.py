"""Publish to toast: from a publish request's send until the toast's
``org.freedesktop.Notifications.Notify`` call arrives on the session bus, the tray against a
bare client, in the same run.

On a private desktop (bench/tray_harness.py: Xvfb, a StatusNotifierItem tray host, the dunst
notification daemon, gnome-keyring, the companion server) announcements are published one at
a time, alternately normal and urgent, each after the previous one's Notify call plus
``--gap`` seconds (so each is its own burst: at most 3 toasts ever fall within the 2 s burst
window). The Notify calls are watched on the private bus by this process (a jeepney
connection that became a bus monitor), each stamped with ``time.monotonic()`` on arrival; the
publish is stamped just before its request is sent (a kept-alive connection). Contenders:

- bare: a Python program (same interpreter) streaming the same user's SSE stream with httpx,
  ``json.loads`` of each event, then a Notify call with jeepney (blocking): the cost of the
  same job done plainly, no settle delay;
- tray: ``python -m app`` (stored login, 1,000 announcements in its history). On this desktop
  there is a notification daemon, so ``Notifier.method()`` is ``DBUS``: the tray's own Notify
  call with jeepney, whatever the tray host (until issue 22 a StatusNotifierItem tray meant
  ``TRAY``: ``QSystemTrayIcon.showMessage``, which Qt sends as a Notify call, asynchronously).
  Normal announcements wait the burst-settle delay (``toast_settle_ms``, 300 ms unless
  ``--settle-ms`` writes another value into the user's settings file), urgent ones do not.
  Also read: the CPU time of its GUI (main) thread per announcement
  (``/proc/<pid>/task/<pid>/schedstat``: everything that thread ran, Qt's own work included,
  from the publish until the next one; the tray is otherwise idle);
- tray, probed (``--probe-rounds``, 0 to skip): the same program started through
  ``python -c`` with timing wrappers around the GUI-thread slots that handle an arrival
  (``Root._on_announcement``/``_on_announcements``, ``Notifier.show_due``, the unread update,
  the notification daemon's signals...), installed on the classes before ``app.cli.main()``
  runs: the wall time our slots hold the GUI thread per announcement, D-Bus round trips
  included (which the CPU time does not show); parts of them shown apart ("~": the toast's
  ``Notifier._show``, its ``Notifier.method()`` choice, an urgent one's window).

    .venv/bin/python bench/tray_toast.py [--rounds 20] [--gap 1.0] [--probe-rounds 10]
        [--settle-ms 300] [--quick]

Prints p50/p95 per priority for each contender, the tray's overhead beyond the settle delay
and against the bare client, and the GUI-thread time per announcement.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._common import login, percentile
from bench.tray_harness import ROOT, USER, Launched, TrayBench, tray_bench
from tests.fixtures.desktop import LineReader

_NOTIFICATIONS = "org.freedesktop.Notifications"
KINDS = ("normal", "urgent")

BARE_CLIENT = """
import json, sys
import httpx
from jeepney import DBusAddress, new_method_call
from jeepney.io.blocking import open_dbus_connection
url, user, token = sys.argv[1:4]
bus = open_dbus_connection(bus="SESSION")
name = "org.freedesktop.Notifications"
addr = DBusAddress("/org/freedesktop/Notifications", name, name)
headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
with httpx.Client(timeout=None) as client:
    with client.stream("GET", f"{url}/sse/connect/{user}", headers=headers) as response:
        response.raise_for_status()
        event, data = "", []
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "":
                if event == "connected":
                    print("connected", flush=True)
                elif data and event in ("", "message"):
                    obj = json.loads("\\n".join(data))
                    urgency = 2 if obj.get("priority") == "urgent" else 1
                    msg = new_method_call(addr, "Notify", "susssasa{sv}i", (
                        "bare", 0, "", obj["title"], obj["body"], [],
                        {"urgency": ("y", urgency)}, 8000))
                    bus.send_and_get_reply(msg, timeout=5)
                event, data = "", []
"""

# ``python -m app`` with timing wrappers on the GUI-thread slots that handle an arrival; each
# call prints "@probe NAME START_MONOTONIC MS" (after the slot: the print is not timed). Names
# with "~" are parts of those slots (called within them): shown, not added to the sums.
PROBE_TRAY = """
import sys, time
from app.ui import notifier, root

def probe(cls, name, label):
    original = getattr(cls, name)
    takes = original.__code__.co_argcount - 1  # what it takes of a signal's arguments

    def timed(self, *args, **kwargs):
        at, started = time.monotonic(), time.perf_counter()
        try:
            return original(self, *args[:takes], **kwargs)
        finally:
            ms = (time.perf_counter() - started) * 1000
            print(f"@probe {label} {at:.6f} {ms:.3f}", flush=True)

    timed.__name__ = name
    setattr(cls, name, timed)

for cls, name in (
    (root.Root, "_on_announcement"),
    (root.Root, "_on_announcements"),
    (root.Root, "_on_status"),
    (root.Root, "_update_unread"),
    (root.Root, "_mark_some"),
    (notifier.Notifier, "show_due"),
    (notifier.FreedesktopNotifications, "_read"),
):
    probe(cls, name, name)
for cls, name in (
    (root.Root, "_open_urgent"),
    (notifier.Notifier, "_show"),
    (notifier.Notifier, "method"),
):
    probe(cls, name, "~" + name)
from app.cli import main
sys.argv[1:] = []
sys.exit(main())
"""


# ---------------------------------------------------------------- measuring tools


@dataclass(frozen=True, slots=True)
class Seen:
    at: float  # time.monotonic() when this process received it
    app_name: str
    summary: str


class NotifyWatch:
    """Every Notify method call on the bus, seen by a monitor connection (BecomeMonitor),
    stamped with ``time.monotonic()`` on a reader thread as it arrives."""

    def __init__(self, bus_address: str) -> None:
        from jeepney import DBusAddress, MatchRule, new_method_call
        from jeepney.io.blocking import open_dbus_connection

        self._conn = open_dbus_connection(bus=bus_address)
        rule = MatchRule(type="method_call", interface=_NOTIFICATIONS, member="Notify")
        monitoring = DBusAddress(
            "/org/freedesktop/DBus",
            bus_name="org.freedesktop.DBus",
            interface="org.freedesktop.DBus.Monitoring",
        )
        become = new_method_call(monitoring, "BecomeMonitor", "asu", ([rule.serialise()], 0))
        self._conn.send_and_get_reply(become, timeout=5)
        self.seen: list[Seen] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        from jeepney.low_level import HeaderFields, MessageType

        while not self._closing:
            try:
                msg = self._conn.receive(timeout=0.2)
            except TimeoutError:
                continue
            except (OSError, ValueError):
                return
            at = time.monotonic()
            fields = msg.header.fields
            if msg.header.message_type is not MessageType.method_call:
                continue
            if fields.get(HeaderFields.member) != "Notify":
                continue
            with self._cond:
                self.seen.append(Seen(at, str(msg.body[0]), str(msg.body[3])))
                self._cond.notify_all()

    def wait_for(self, marker: str, timeout: float) -> Seen:
        """The first Notify call whose summary holds ``marker``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for seen in self.seen:
                    if marker in seen.summary:
                        return seen
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    names = [s.summary for s in self.seen[-5:]]
                    raise SystemExit(f"no Notify call for {marker!r} in {timeout} s: {names}")
                self._cond.wait(remaining)

    def close(self) -> None:
        self._closing = True
        self._thread.join(timeout=2)
        self._conn.close()


class Publisher:
    """The publisher's kept-alive HTTP connection; :meth:`send` returns when it was sent."""

    def __init__(self, url: str) -> None:
        token = login(url, "publisher")
        headers = {"Authorization": f"Bearer {token}"}
        self.client = httpx.Client(base_url=url, timeout=30, headers=headers)
        self.client.get("/healthz")  # the connection is open before the first measure

    def send(self, title: str, priority: str) -> float:
        body = {"title": title, "body": "x", "priority": priority, "audience": {"all": True}}
        request = self.client.build_request("POST", "/announcements", json=body)
        sent = time.monotonic()
        self.client.send(request).raise_for_status()
        return sent

    def close(self) -> None:
        self.client.close()


def run_ns(pid: int, tid: int | None = None) -> int:
    """CPU time (ns) of one thread (``tid``), or of every thread of ``pid``, from schedstat."""
    tids = [tid] if tid is not None else [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    total = 0
    for t in tids:
        with contextlib.suppress(FileNotFoundError):
            total += int(Path(f"/proc/{pid}/task/{t}/schedstat").read_text().split()[0])
    return total


@dataclass
class Rounds:
    """One contender's rounds: latencies (s) and CPU (ms) per announcement, by priority."""

    latency: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    gui_cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    cpu_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    sent: list[tuple[str, float]] = field(default_factory=list)  # (priority, sent at)
    ended: float = 0.0


def run_rounds(
    watch: NotifyWatch, pub: Publisher, pid: int, rounds: int, gap: float, tag: str
) -> Rounds:
    """``rounds`` of each priority, alternately; ``pid``'s CPU (and its main thread's) read
    before each publish and after its gap."""
    out = Rounds()
    nonce = uuid.uuid4().hex[:8]
    for i in range(rounds * len(KINDS)):
        kind = KINDS[i % len(KINDS)]
        marker = f"{tag}-{kind}-{i}-{nonce}"
        main_before, all_before = run_ns(pid, pid), run_ns(pid)
        sent = pub.send(marker, kind)
        seen = watch.wait_for(marker, 15)
        time.sleep(gap)
        out.latency[kind].append(seen.at - sent)
        out.gui_cpu_ms[kind].append((run_ns(pid, pid) - main_before) / 1e6)
        out.cpu_ms[kind].append((run_ns(pid) - all_before) / 1e6)
        out.sent.append((kind, sent))
    out.ended = time.monotonic()
    return out


@dataclass
class Probed:
    """The probed tray: wall time of our GUI-thread slots per announcement (ms)."""

    rounds: Rounds
    per_announcement: dict[str, list[float]]  # sum of the slots' time, by priority
    slots: dict[str, list[float]]  # "priority slot": its calls (ms), all rounds
    worst: float  # the longest single slot call (ms; parts "~name" not counted)


def probe_lines(output: LineReader | None) -> list[tuple[str, float, float]]:
    """The probe's lines so far: (slot, started at, ms)."""
    got = []
    if output is not None:
        while not output.lines.empty():
            parts = output.lines.get_nowait().split()
            if len(parts) == 4 and parts[0] == "@probe":
                got.append((parts[1], float(parts[2]), float(parts[3])))
    return got


def attribute(rounds: Rounds, calls: list[tuple[str, float, float]]) -> Probed:
    """Each slot call belongs to the round whose publish it follows."""
    per: dict[str, list[float]] = {k: [] for k in KINDS}
    slots: dict[str, list[float]] = {}
    bounds = [*(s for _, s in rounds.sent), rounds.ended]
    for i, (kind, start) in enumerate(rounds.sent):
        mine = [c for c in calls if start <= c[1] < bounds[i + 1]]
        per[kind].append(sum(ms for name, _, ms in mine if not name.startswith("~")))
        for name, _, ms in mine:
            slots.setdefault(f"{kind} {name}", []).append(ms)
    worst = max((ms for name, _, ms in calls if not name.startswith("~")), default=0.0)
    return Probed(rounds, per, slots, worst)


# ---------------------------------------------------------------- the run


@dataclass
class ToastResult:
    settle_ms: int
    bare: Rounds
    tray: Rounds
    probed: Probed | None

    def p(self, who: str, kind: str, q: float) -> float:
        """A percentile of the latency (ms); for the tray's normal ones, minus the settle."""
        rounds = self.bare if who == "bare" else self.tray
        ms = [s * 1000 for s in rounds.latency[kind]]
        minus = self.settle_ms if who == "tray" and kind == "normal" else 0
        return percentile(ms, q) - minus

    def gui_ms(self) -> float | None:
        """The median wall time our slots held the GUI thread per announcement (all)."""
        if self.probed is None:
            return None
        return statistics.median([v for vs in self.probed.per_announcement.values() for v in vs])


def configured_settle_ms(bench: TrayBench) -> int:
    from app.core import config as config_mod

    paths = config_mod.Paths.default(bench.env())
    return config_mod.load(paths, environ=bench.env()).toast_settle_ms


def set_settle_ms(bench: TrayBench, settle_ms: int) -> None:
    """Write ``toast_settle_ms`` into the tray's user settings file (as the Settings would)."""
    from app.core import config as config_mod

    paths = config_mod.Paths.default(bench.env())
    current = config_mod.load(paths, environ=bench.env())
    config_mod.save_user(current.with_changes(toast_settle_ms=settle_ms), paths)


def launch_bare_client(bench: TrayBench) -> subprocess.Popen[str]:
    token = login(bench.server.url, USER)
    proc = subprocess.Popen(
        [sys.executable, "-c", BARE_CLIENT, bench.server.url, USER, token],
        cwd=ROOT,
        env=bench.env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        LineReader(proc.stdout).wait_for("connected", 30)
    except AssertionError:
        stop(proc)
        raise SystemExit("the bare client did not connect") from None
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def measure_toast(
    bench: TrayBench,
    *,
    rounds: int = 20,
    gap: float = 1.0,
    probe_rounds: int = 10,
    settle_ms: int | None = None,
    quiet_s: float = 2.0,
) -> ToastResult:
    """Bare client, then the tray, then (``probe_rounds`` > 0) the probed tray, one after the
    other on ``bench``'s desktop; each gets ``quiet_s`` after connecting before the rounds."""
    if settle_ms is not None:
        set_settle_ms(bench, settle_ms)
    settle = configured_settle_ms(bench)
    watch = NotifyWatch(bench.desktop.bus_address)
    pub = Publisher(bench.server.url)
    try:
        bare_proc = launch_bare_client(bench)
        try:
            time.sleep(quiet_s)
            bare = run_rounds(watch, pub, bare_proc.pid, rounds, gap, "bare")
        finally:
            stop(bare_proc)
        tray, _ = bench.launch_tray()
        try:
            time.sleep(quiet_s)
            tray_rounds = run_rounds(watch, pub, tray.pid, rounds, gap, "tray")
        finally:
            tray.stop()
        probed = None
        if probe_rounds > 0:
            launched, _ = bench.launch_tray([sys.executable, "-c", PROBE_TRAY])
            try:
                time.sleep(quiet_s)
                probe_lines(launched.output)  # what start-up did is not an announcement's
                got = run_rounds(watch, pub, launched.pid, probe_rounds, gap, "probe")
                probed = attribute(got, _drain(launched))
            finally:
                launched.stop()
    finally:
        pub.close()
        watch.close()
    return ToastResult(settle, bare, tray_rounds, probed)


def _drain(launched: Launched) -> list[tuple[str, float, float]]:
    """The probe lines, once the reader thread has the last round's (the gap was long)."""
    time.sleep(0.2)
    return probe_lines(launched.output)


def report(r: ToastResult) -> list[str]:
    lines = [f"publish to Notify call on the session bus (ms; settle delay {r.settle_ms} ms)"]
    for who, rounds in (("bare", r.bare), ("tray", r.tray)):
        for kind in KINDS:
            ms = [s * 1000 for s in rounds.latency[kind]]
            lines.append(
                f"  {who:<5} {kind:<7} n={len(ms):<3} p50 {percentile(ms, 50):7.1f}"
                f"  p95 {percentile(ms, 95):7.1f}  min {min(ms):7.1f}  max {max(ms):7.1f}"
            )
    lines.append("  tray overhead (normal: minus the settle delay), p50 / p95")
    for kind in KINDS:
        t50, t95 = r.p("tray", kind, 50), r.p("tray", kind, 95)
        b50, b95 = r.p("bare", kind, 50), r.p("bare", kind, 95)
        lines.append(
            f"    {kind:<7} tray {t50:6.1f} / {t95:6.1f}   bare {b50:6.1f} / {b95:6.1f}"
            f"   tray - bare {t50 - b50:+6.1f} / {t95 - b95:+6.1f}"
        )
    lines.append("  CPU per announcement (ms, mean; from the publish until the next one)")
    for kind in KINDS:
        gui = statistics.mean(r.tray.gui_cpu_ms[kind])
        tray_all = statistics.mean(r.tray.cpu_ms[kind])
        bare_all = statistics.mean(r.bare.cpu_ms[kind])
        lines.append(
            f"    {kind:<7} tray GUI thread {gui:6.2f}   tray all threads {tray_all:6.2f}"
            f"   bare process {bare_all:6.2f}"
        )
    if r.probed is not None:
        p = r.probed
        lines.append("  GUI-thread wall time in our slots per announcement (ms, probed tray)")
        for kind in KINDS:
            vs = p.per_announcement[kind]
            ms = [s * 1000 for s in p.rounds.latency[kind]]
            lines.append(
                f"    {kind:<7} n={len(vs):<3} p50 {percentile(vs, 50):6.2f}"
                f"  p95 {percentile(vs, 95):6.2f}  max {max(vs):6.2f}"
                f"   (latency p50 {percentile(ms, 50):6.1f})"
            )
        for name, calls in sorted(p.slots.items()):
            lines.append(
                f"      {name:<25} calls {len(calls):<4} median {statistics.median(calls):6.2f}"
                f"  max {max(calls):6.2f}"
            )
        lines.append(f"    the longest single slot call {p.worst:.2f} ms")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="of each priority")
    parser.add_argument("--gap", type=float, default=1.0, help="s after each Notify call")
    parser.add_argument("--probe-rounds", type=int, default=10, help="0: no probed run")
    parser.add_argument("--settle-ms", type=int, default=None, help="write toast_settle_ms")
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="5 rounds, 3 probed")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.probe_rounds = 5, min(args.probe_rounds, 3)
    with tray_bench(history=args.history) as bench:
        result = measure_toast(
            bench,
            rounds=args.rounds,
            gap=args.gap,
            probe_rounds=args.probe_rounds,
            settle_ms=args.settle_ms,
        )
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
