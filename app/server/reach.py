"""Who an announcement reached: recipients, receipts and the directory, as the API's JSON and
CSV (``GET /announcements/{id}/reach``, ``/reach.csv``, ``GET /directory``). Pure functions of
the broker's values; the HTTP layer fetches them. Who an audience names when it is published
is the broker's lookup (``Broker.audience_members``: by group and by name, in the store); the
users of a reach's rows are read by name (``Broker.users_named``), never every user.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from app.core.model import Priority
from app.server.codec import iso, revoked_at_json
from app.server.model import Principal, Receipt, Record, User

CSV_COLUMNS = (
    "user_id",
    "username",
    "groups",
    "delivered_at",
    "displayed_at",
    "read_at",
    "acked_at",
    "online",
    "never_connected",
    "reminded_at",
    "reminders",
)
# a spreadsheet runs a cell starting with one of these as a formula (CSV injection), also
# after blanks or control characters, and in their full-width forms (＝ U+FF1D...)
_FORMULA_START = frozenset("=+-@")


def requires_ack(record: Record) -> bool:
    """Whether the announcement asks its recipients to acknowledge it: urgent ones only (the
    tray's urgent window and its Acknowledge button)."""
    return record.priority is Priority.URGENT


def reach_json(
    record: Record,
    named: Collection[str],
    receipts: Iterable[Receipt],
    users: Mapping[str, User],
    online: Collection[str],
    never: Collection[str] = (),
) -> dict[str, Any]:
    """``{"id", "recipients", "delivered", "displayed", "read", "acknowledged",
    "requires_ack", "revoked_at", "users": [...], "never_connected", "reminded", "unread",
    "unacknowledged"}`` (DESIGN.md, "Server API"): one row per recipient (by name), then
    anyone else the audience names now who sent receipts (a user who joined a group since);
    counts are over those rows. ``never``: the users who never signed in (a directory person
    with no tray yet), flagged and counted. Each row ends with ``reminded_at`` and
    ``reminders`` (the last reminder sent to them, how many); ``unread`` and
    ``unacknowledged`` (urgent ones only, else 0) count who a reminder would reach now."""
    audience = record.audience
    by_user = {r.user_id: r for r in receipts}
    rows = list(named)
    for user_id in sorted(set(by_user) - set(named)):
        user = users.get(user_id)
        if user is not None and audience.includes(Principal(user_id, user.groups)):
            rows.append(user_id)
    out: list[dict[str, Any]] = []
    for user_id in rows:
        receipt = by_user.get(user_id, Receipt(user_id))
        user = users.get(user_id)
        out.append(
            {
                "user_id": user_id,
                "username": user_id,
                "groups": sorted(user.groups) if user else [],
                "delivered_at": _iso(receipt.delivered_at),
                "displayed_at": _iso(receipt.displayed_at),
                "read_at": _iso(receipt.read_at),
                "acked_at": _iso(receipt.acked_at),
                "online": user_id in online,
                "never_connected": user_id in never,
                # after the existing fields: reminders sent to them (the last, how many)
                "reminded_at": _iso(receipt.reminded_at),
                "reminders": receipt.reminders,
            }
        )
    return {
        "id": record.id,
        "recipients": len(named),
        "delivered": sum(1 for r in out if r["delivered_at"]),
        "displayed": sum(1 for r in out if r["displayed_at"]),
        "read": sum(1 for r in out if r["read_at"]),
        "acknowledged": sum(1 for r in out if r["acked_at"]),
        "requires_ack": requires_ack(record),
        "revoked_at": revoked_at_json(record),
        "users": out,
        # after the contract's fields: who never signed in (the organisation's directory)
        "never_connected": sum(1 for r in out if r["never_connected"]),
        # then: how many were reminded at least once, and what a reminder would reach now
        "reminded": sum(1 for r in out if r["reminders"]),
        "unread": sum(1 for r in out if not r["read_at"]),
        "unacknowledged": sum(1 for r in out if not r["acked_at"]) if requires_ack(record) else 0,
    }


UNREAD = "unread"
UNACKNOWLEDGED = "unacknowledged"
REMIND_WHO = (UNREAD, UNACKNOWLEDGED)


def remind_targets(reach: Mapping[str, Any], who: str) -> list[str]:
    """Who a reminder ``who`` reaches, from :func:`reach_json`: the rows not read yet
    (``unread``), or not acknowledged yet (``unacknowledged``: urgent ones only, the caller
    checks). The same rows its ``unread`` and ``unacknowledged`` counts count."""
    field = "read_at" if who == UNREAD else "acked_at"
    return [row["user_id"] for row in reach["users"] if not row[field]]


def reach_csv(reach: Mapping[str, Any]) -> str:
    """The ``users`` of :func:`reach_json` as CSV with a header row; groups joined with ``;``,
    online and never_connected as ``yes``/``no``; a cell a spreadsheet would take for a
    formula gets a leading ``'``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in reach["users"]:
        cells = [
            row["user_id"],
            row["username"],
            ";".join(row["groups"]),
            row["delivered_at"] or "",
            row["displayed_at"] or "",
            row["read_at"] or "",
            row["acked_at"] or "",
            "yes" if row["online"] else "no",
            "yes" if row["never_connected"] else "no",
            row["reminded_at"] or "",
            str(row["reminders"]),
        ]
        writer.writerow([_safe_cell(c) for c in cells])
    return buffer.getvalue()


def directory_json(users: Iterable[User]) -> dict[str, Any]:
    """``{"everyone": n, "groups": [{"name", "members"}], "users": [{"user_id", "username",
    "display_name", "groups", "publisher", "source"}]}``, sorted by name; ``source``:
    ``directory`` (LDAP), ``sso`` (the identity provider only) or ``local``."""
    users = sorted(users, key=lambda u: u.name)
    counts: dict[str, int] = {}
    for user in users:
        for group in user.groups:
            counts[group] = counts.get(group, 0) + 1
    return {
        "everyone": len(users),
        "groups": [{"name": g, "members": counts[g]} for g in sorted(counts)],
        "users": [
            {
                "user_id": u.name,
                "username": u.name,
                "display_name": u.display_name or u.name,
                "groups": sorted(u.groups),
                "publisher": u.publisher,
                "source": "directory" if u.directory else "sso" if u.subject else "local",
            }
            for u in users
        ],
    }


def _safe_cell(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet could take it for a formula: it starts
    with a blank or a control character, or its first other character is (or, as NFKC folds
    it, stands for) ``=``, ``+``, ``-`` or ``@``."""
    if not text:
        return text
    first = next((ch for ch in text if not _blank(ch)), "")
    risky = _blank(text[0]) or unicodedata.normalize("NFKC", first)[:1] in _FORMULA_START
    return "'" + text if risky else text


def _blank(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def _iso(when: Any) -> str | None:
    return iso(when) if when is not None else None
