"""This process's counters (:class:`Metrics`) and their Prometheus text, shown by ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Metrics:
    """Counters of this process, shown by ``/metrics``."""

    connections: int = 0
    connections_total: int = 0
    published: int = 0
    delivered: int = 0
    replayed: int = 0
    dropped: int = 0
    revoked: int = 0
    acks: int = 0
    logins: int = 0
    login_failures: int = 0
    login_throttled: int = 0

    def prometheus(self, *, subscriptions: int, extra: dict[str, float] | None = None) -> str:
        rows: list[tuple[str, str, str, float]] = [
            ("connections", "gauge", "open SSE streams", self.connections),
            ("subscriptions", "gauge", "streams registered with the broker", subscriptions),
            ("connections_total", "counter", "SSE streams opened", self.connections_total),
            ("published_total", "counter", "announcements published", self.published),
            ("delivered_total", "counter", "announcements written to streams", self.delivered),
            ("replayed_total", "counter", "announcements written as replay", self.replayed),
            ("dropped_total", "counter", "streams dropped for falling behind", self.dropped),
            ("revoked_total", "counter", "announcements revoked", self.revoked),
            ("acks_total", "counter", "read receipts recorded", self.acks),
            ("logins_total", "counter", "successful logins", self.logins),
            ("login_failures_total", "counter", "refused logins", self.login_failures),
            ("login_throttled_total", "counter", "logins answered 429", self.login_throttled),
        ]
        rows += [(name, "gauge", "backend figure", value) for name, value in (extra or {}).items()]
        out: list[str] = []
        for name, kind, help_text, value in rows:
            metric = f"tray_notifier_{name}"
            out += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}", f"{metric} {value}"]
        return "\n".join(out) + "\n"
