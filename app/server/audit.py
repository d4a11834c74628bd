"""The audit log (DESIGN.md "Server API": ``GET /audit`` and ``/audit.csv``): who published,
corrected, reminded, revoked, scheduled or cancelled what, and when. :func:`record` is the one
way a handler writes a line (through :meth:`~app.server.broker.Broker.record_audit`, shared by
every process); :func:`audit_json` and :func:`audit_csv` are the answers' forms.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from app.server.broker import Broker
from app.server.codec import iso
from app.server.model import BrokerUnavailable
from app.server.officer_model import AuditEntry
from app.server.reach import _safe_cell as safe_cell  # the reach CSV's formula guard

log = logging.getLogger(__name__)

CSV_COLUMNS = ("at", "actor", "action", "announcement_id", "schedule_id", "detail")
DETAIL_MAX = 300  # characters of a title kept in a line's detail


async def record(
    broker: Broker,
    *,
    actor: str,
    action: str,
    now: datetime,
    announcement_id: str | None = None,
    schedule_id: str | None = None,
    detail: str = "",
) -> AuditEntry | None:
    """Append one line. What it records has already happened (an announcement was published),
    so a store that cannot be reached now does not undo it or fail the request: the line is
    logged as an error instead, with everything it would have said (None is returned)."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        at=now,
        announcement_id=announcement_id,
        schedule_id=schedule_id,
        detail=short(detail),
    )
    try:
        return await broker.record_audit(entry)
    except BrokerUnavailable as exc:
        log.error(
            "audit line not stored (%s): %s %s announcement=%s schedule=%s at %s: %s",
            exc,
            actor,
            action,
            announcement_id,
            schedule_id,
            iso(now),
            entry.detail,
        )
        return None


def short(text: str) -> str:
    """``text`` on one line, at most :data:`DETAIL_MAX` characters."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= DETAIL_MAX else one_line[: DETAIL_MAX - 1] + "…"


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """``{"id", "at", "actor", "action", "announcement_id", "schedule_id", "detail"}``."""
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "announcement_id": entry.announcement_id,
        "schedule_id": entry.schedule_id,
        "detail": entry.detail,
    }


def audit_csv(entries: Iterable[AuditEntry]) -> str:
    """The entries as CSV, newest first as given: a header row (:data:`CSV_COLUMNS`), CRLF
    line ends, and a leading ``'`` on a cell a spreadsheet would take for a formula (as the
    reach CSV: ``app/server/reach.py``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        cells = [
            iso(entry.at),
            entry.actor,
            entry.action,
            entry.announcement_id or "",
            entry.schedule_id or "",
            entry.detail,
        ]
        writer.writerow([safe_cell(c) for c in cells])
    return buffer.getvalue()
