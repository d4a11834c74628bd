"""Scheduled announcements: ``POST /announcements`` with ``send_at`` stores one
(:func:`schedule_payload`), and each server process runs a :class:`Scheduler` that publishes
the due ones at their time, on the server's clock.

Sending goes through the one publish path (:meth:`~app.server.api.Api.publish_payload`): the
recipients are those the audience names at the time it is sent, and it carries an idempotency
key of its own (the schedule's id), so a schedule is published once even when a process dies
half way and another sends it again after the claim ran out
(:meth:`~app.server.broker.Broker.claim_due`). Kept in the backend, a schedule outlives a
restart; one whose time passed while no server ran goes out at the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.core.model import parse_time
from app.server import audit
from app.server.broker import Broker
from app.server.codec import iso
from app.server.config import HttpSettings
from app.server.model import BrokerUnavailable, Record
from app.server.officer_model import FAILED, SCHEDULED, SENT, Schedule
from app.server.validation import BadInput, parse_draft, require_object

# the one publish path (Api.publish_payload): the payload, then author, idempotency_key and
# schedule_id by keyword; handed in so this module stays below the HTTP layer
Publish = Callable[..., Awaitable[Record]]

log = logging.getLogger(__name__)

SEND_AT = "send_at"
# the fields of a POST /announcements body that a schedule keeps (the others are ignored, as
# a publish ignores them)
PAYLOAD_FIELDS = ("title", "body", "priority", "url", "expires_at", "audience")
# the idempotency key a scheduled publish carries: no client can send it (a header holds no
# control character), so it never meets a key of the author's own
_KEY_PREFIX = "\x1fscheduled:"


def publish_key(schedule_id: str) -> str:
    return _KEY_PREFIX + schedule_id


def parse_send_at(value: Any, *, now: datetime, horizon: float) -> datetime:
    """``send_at``: an ISO 8601 time with its offset, after ``now`` and at most ``horizon``
    seconds ahead; BadInput naming the field otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise BadInput("send_at must be an ISO 8601 time like 2030-01-31T17:00:00Z", SEND_AT)
    when = parse_time(value)
    if when is None:
        raise BadInput("send_at must be an ISO 8601 time like 2030-01-31T17:00:00Z", SEND_AT)
    if when <= now:
        raise BadInput("send_at is not in the future: leave it out to send now", SEND_AT)
    if when > now + timedelta(seconds=horizon):
        days = int(horizon // 86400)
        raise BadInput(f"send_at is more than {days} days ahead", SEND_AT)
    return when.astimezone(UTC)


async def schedule_payload(
    broker: Broker,
    payload: Any,
    *,
    author: str,
    now: datetime,
    settings: HttpSettings,
    idempotency_key: str | None = None,
) -> tuple[Schedule, bool]:
    """Check a ``POST /announcements`` body that has a ``send_at`` as a publish would (and its
    expiry after its time), store it as a pending schedule and record it in the audit log.
    Returns it and whether it is new (False: a retry with the same ``idempotency_key``)."""
    obj = require_object(payload)
    send_at = parse_send_at(obj.get(SEND_AT), now=now, horizon=settings.schedule_horizon)
    body = {key: obj[key] for key in PAYLOAD_FIELDS if key in obj}
    draft = parse_draft(body, now=now)
    if draft.expires_at is not None and draft.expires_at <= send_at:
        raise BadInput("expires_at is not after send_at: it would never be shown", "expires_at")
    unknown = (await broker.audience_members(draft.audience)).unknown
    if unknown:
        raise BadInput(f"the audience names what does not exist: {', '.join(unknown)}", "audience")
    schedule, new = await broker.add_schedule(
        Schedule(
            id="",
            author=author,
            send_at=send_at,
            created_at=now,
            payload=body,
            idempotency_key=idempotency_key,
        )
    )
    if new:
        log.info(
            "announcement scheduled by %r for %s: schedule %s", author, iso(send_at), schedule.id
        )
        await audit.record(
            broker,
            actor=author,
            action=SCHEDULED,
            now=now,
            schedule_id=schedule.id,
            detail=f"{iso(send_at)} · {draft.title}",
        )
    return schedule, new


def schedule_json(schedule: Schedule, *, now: float | None = None) -> dict[str, Any]:
    """``{"id", "status", "send_at", "created_at", "author", "announcement": {the body},
    "announcement_id", "problem", "finished_at", "finished_by", "sending"}``; ``sending``: a
    process is publishing it at ``now`` (epoch seconds)."""
    claimed = schedule.claimed_until
    return {
        "id": schedule.id,
        "status": schedule.status,
        "send_at": iso(schedule.send_at),
        "created_at": iso(schedule.created_at),
        "author": schedule.author,
        "announcement": dict(schedule.payload),
        "announcement_id": schedule.announcement_id,
        "problem": schedule.problem,
        "finished_at": iso(schedule.finished_at) if schedule.finished_at else None,
        "finished_by": schedule.finished_by or None,
        "sending": claimed is not None and now is not None and claimed > now,
    }


def accepted_json(schedule: Schedule) -> dict[str, Any]:
    """The 202 answer of ``POST /announcements`` with ``send_at``: ``{"schedule_id",
    "send_at", "status"}`` (no announcement id yet: it is given when it is sent)."""
    return {"schedule_id": schedule.id, "send_at": iso(schedule.send_at), "status": schedule.status}


class Scheduler:
    """Publishes the due schedules of the backend, on any process: a :meth:`tick` every
    ``settings.schedule_interval`` seconds (:meth:`run`), each claiming what is due on
    ``clock`` (epoch seconds, the server's: tests move it by hand)."""

    BATCH = 50  # schedules claimed at once

    def __init__(
        self,
        broker: Broker,
        publish: Publish,
        *,
        clock: Callable[[], float],
        settings: HttpSettings,
    ) -> None:
        """``publish``: the server's one publish path (``Api.publish_payload``)."""
        self._publish = publish
        self._broker = broker
        self._clock = clock
        self._settings = settings

    async def tick(self) -> list[str]:
        """Claim and send what is due now; the ids of the announcements published."""
        published: list[str] = []
        while True:
            due = await self._broker.claim_due(
                now=self._clock(), lease=self._settings.schedule_lease, limit=self.BATCH
            )
            for schedule in due:
                ann_id = await self._send(schedule)
                if ann_id is not None:
                    published.append(ann_id)
            if len(due) < self.BATCH:
                return published

    async def _send(self, schedule: Schedule) -> str | None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        try:
            record = await self._publish(
                dict(schedule.payload),
                author=schedule.author,
                idempotency_key=publish_key(schedule.id),
                schedule_id=schedule.id,
            )
        except BadInput as exc:
            problem = str(exc)
            log.warning("scheduled announcement %s could not be sent: %s", schedule.id, problem)
            await self._broker.finish_schedule(schedule.id, status=FAILED, now=now, problem=problem)
            await audit.record(
                self._broker,
                actor=schedule.author,
                action=FAILED,
                now=now,
                schedule_id=schedule.id,
                detail=f"{schedule.title}: {problem}",
            )
            return None
        except BrokerUnavailable as exc:
            # nothing was stored: the claim runs out and a process sends it again then
            log.warning("scheduled announcement %s not sent yet: %s", schedule.id, exc)
            return None
        await self._broker.finish_schedule(
            schedule.id, status=SENT, now=now, announcement_id=record.id
        )
        log.info("scheduled announcement %s published as %s", schedule.id, record.id)
        return record.id

    async def run(self) -> None:
        """:meth:`tick` until cancelled, then every ``schedule_interval``; a failing tick is
        logged and the next one tries again."""
        down = False  # the store is unreachable: said once, not every interval
        while True:
            try:
                await self.tick()
            except BrokerUnavailable as exc:
                if not down:
                    log.warning("scheduled announcements wait until the store is back: %s", exc)
                down = True
            except Exception:  # the loop must outlive one bad tick (traceback logged)
                log.exception("looking for due scheduled announcements failed")
            else:
                if down:
                    log.info("scheduled announcements: the store is back")
                down = False
            await asyncio.sleep(self._settings.schedule_interval)
