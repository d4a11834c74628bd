"""The values of the communications officer's tools (issue 25): the audit log's entries, the
scheduled announcements and the saved compose forms (drafts and templates). Like
``app/server/model.py`` it imports nothing else of the server, so every backend may use it; the
HTTP layer that serves them is ``app/server/officer.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# what an audit entry says a publisher did (docs/api.md, "Audit log")
PUBLISHED = "published"
CORRECTED = "corrected"
REMINDED = "reminded"
REVOKED = "revoked"
SCHEDULED = "scheduled"
CANCELLED = "cancelled"  # a scheduled announcement, before its time
FAILED = "failed"  # a scheduled announcement the server could not send at its time
AUDIT_ACTIONS = (PUBLISHED, CORRECTED, REMINDED, REVOKED, SCHEDULED, CANCELLED, FAILED)

# a scheduled announcement's states: waiting for its time, then one of the three others
PENDING = "pending"
SENT = "sent"
SCHEDULE_STATES = (PENDING, SENT, CANCELLED, FAILED)

# the two kinds of saved compose forms
DRAFT = "draft"  # private to the publisher who saved it
TEMPLATE = "template"  # shared by every publisher
FORM_KINDS = (DRAFT, TEMPLATE)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit log: who (``actor``, a publisher's user id) did what
    (``action``, one of :data:`AUDIT_ACTIONS`) and when, to which announcement or schedule,
    with a short ``detail`` (the title, the time it is scheduled for...). ``id`` is given by
    the backend when it is recorded: opaque, increasing, a paging cursor."""

    actor: str
    action: str
    at: datetime
    announcement_id: str | None = None
    schedule_id: str | None = None
    detail: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True)
class Schedule:
    """An announcement to publish at ``send_at``: ``payload`` is the ``POST /announcements``
    body (without ``send_at``), checked when it was scheduled and again when it is sent (its
    recipients are those of its audience at that time). ``idempotency_key``: the scheduling
    request's (a retry returns this schedule). Times are aware (UTC); ``claimed_until`` (epoch
    seconds, the server's clock) is set while a process is sending it."""

    id: str
    author: str
    send_at: datetime
    created_at: datetime
    payload: Mapping[str, Any] = field(compare=False)
    status: str = PENDING
    announcement_id: str | None = None
    problem: str | None = None
    finished_at: datetime | None = None
    finished_by: str = ""  # who cancelled it ("" when sent or failed by the server)
    idempotency_key: str | None = None
    claimed_until: float | None = None

    @property
    def title(self) -> str:
        return str(self.payload.get("title", ""))


@dataclass(frozen=True, slots=True)
class SavedForm:
    """A compose form kept on the server: a draft (its ``owner``'s only) or a named template
    (every publisher's). ``content`` holds the form's fields as the API takes them (title,
    body, priority, url, expires_at, audience), any of them missing or incomplete."""

    id: str
    kind: str
    owner: str
    name: str
    content: Mapping[str, Any] = field(compare=False)
    created_at: datetime
    updated_at: datetime
    updated_by: str = ""
