"""The communications officer's tools over HTTP (issue 25; docs/api.md "Audit log",
"Scheduled announcements", "Drafts and templates"): :class:`OfficerApi`, whose routes the
application adds beside the API's (``app/server/application.py``). Publishers only.

- ``GET /audit`` and ``/audit.csv``: who published, corrected, reminded, revoked, scheduled
  or cancelled what, and when (written by :func:`app.server.audit.record`);
- ``GET /scheduled``, ``GET|DELETE /scheduled/{id}``: the announcements waiting for their
  time (made by ``POST /announcements`` with ``send_at``; sent by
  :class:`app.server.schedule.Scheduler`);
- ``/drafts`` and ``/templates``: compose forms kept on the server. A draft is its author's
  own (another publisher gets 404); templates are shared by every publisher, who may all
  use, change and remove them.

It reaches the server's state only through the :class:`~app.server.broker.Broker`, and the
caller's identity through the :class:`~app.server.api.Api` it is built with.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from app.core.model import Priority
from app.server import audit, schedule
from app.server.bodies import int_query, json_body
from app.server.codec import iso
from app.server.errors import http_error
from app.server.model import InvalidCursor, Principal
from app.server.officer_model import CANCELLED, DRAFT, SENT, TEMPLATE, SavedForm
from app.server.validation import MAX_NAMES, MAX_TITLE, MAX_URL, BadInput, require_object
from app.server.validation import _plain_text as plain_text  # the publish's text rule

if TYPE_CHECKING:
    from app.server.api import Api

log = logging.getLogger(__name__)

MAX_NAME = 100  # characters of a template's (or a draft's) name
MAX_STAMP = 64  # characters of a time a form keeps as typed (expires_at, send_at)
# the fields a saved form keeps: the compose form's, as POST /announcements takes them
FORM_FIELDS = ("title", "body", "priority", "url", "expires_at", "send_at", "audience")
_AUDIENCE_KEYS = frozenset({"all", "groups", "users"})


class OfficerApi:
    """Request handlers of the officer's tools; one per application, beside its ``api``."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._broker = api.broker
        self._settings = api.settings

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/audit", self.audit),
            web.get("/audit.csv", self.audit_csv),
            web.get("/scheduled", self.scheduled),
            web.get("/scheduled/{id}", self.scheduled_one),
            web.delete("/scheduled/{id}", self.cancel),
            *self._form_routes("/drafts", DRAFT),
            *self._form_routes("/templates", TEMPLATE),
        ]

    def _publisher(self, request: web.Request) -> Principal:
        return self._api._caller(request, publisher=True)

    # the audit log ------------------------------------------------------------------------
    async def audit(self, request: web.Request) -> web.Response:
        """``{"entries": [...newest first], "next": cursor or null}``; ``?before=`` the
        ``next`` of the page before, ``?limit=`` (default 100, at most 1,000)."""
        self._publisher(request)
        before = request.query.get("before") or None
        limit = int_query(
            request, "limit", default=self._settings.list_limit, low=1, high=self._settings.list_max
        )
        try:
            entries = await self._broker.audit(before=before, limit=limit)
        except InvalidCursor as exc:
            raise BadInput(str(exc), "before") from None
        more = len(entries) == limit
        return web.json_response(
            {
                "entries": [audit.audit_json(e) for e in entries],
                "next": entries[-1].id if more and entries else None,
            }
        )

    async def audit_csv(self, request: web.Request) -> web.Response:
        """The whole log (or, with ``?before=``, what is older), newest first, as CSV."""
        self._publisher(request)
        before = request.query.get("before") or None
        entries = []
        page = self._settings.list_max
        try:
            while True:
                batch = await self._broker.audit(before=before, limit=page)
                entries += batch
                if len(batch) < page:
                    break
                before = batch[-1].id
        except InvalidCursor as exc:
            raise BadInput(str(exc), "before") from None
        return web.Response(
            text=audit.audit_csv(entries),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )

    # scheduled announcements --------------------------------------------------------------
    async def scheduled(self, request: web.Request) -> web.Response:
        """Every publisher's pending schedules and the failed ones, by time to send."""
        self._publisher(request)
        now = self._api.stream_context.clock()
        return web.json_response(
            [schedule.schedule_json(s, now=now) for s in await self._broker.open_schedules()]
        )

    async def scheduled_one(self, request: web.Request) -> web.Response:
        self._publisher(request)
        found = await self._broker.get_schedule(request.match_info["id"])
        if found is None:
            raise http_error(web.HTTPNotFound, "no such scheduled announcement")
        now = self._api.stream_context.clock()
        return web.json_response(schedule.schedule_json(found, now=now))

    async def cancel(self, request: web.Request) -> web.Response:
        """Cancel a pending schedule (or dismiss a failed one): 200 with it, now
        ``cancelled``; 409 when it is being sent or was sent (in words); 404 unknown."""
        caller = self._publisher(request)
        schedule_id = request.match_info["id"]
        now = self._api.stream_context.now()
        before = await self._broker.get_schedule(schedule_id)
        if before is None:
            raise http_error(web.HTTPNotFound, "no such scheduled announcement")
        after = await self._broker.cancel_schedule(schedule_id, by=caller.user_id, now=now)
        if after is None:
            raise http_error(web.HTTPNotFound, "no such scheduled announcement")
        if after.status == SENT:
            raise http_error(
                web.HTTPConflict,
                f"it was sent already, as announcement {after.announcement_id}: revoke that"
                " one instead",
            )
        if after.status != CANCELLED:
            raise http_error(
                web.HTTPConflict,
                "it is being sent right now: revoke the announcement once it is out",
            )
        if before.status != CANCELLED:
            log.info("schedule %s cancelled by %r", schedule_id, caller.user_id)
            await audit.record(
                self._broker,
                actor=caller.user_id,
                action=CANCELLED,
                now=now,
                schedule_id=schedule_id,
                detail=f"{iso(after.send_at)} · {after.title}",
            )
        return web.json_response(schedule.schedule_json(after, now=now.timestamp()))

    # drafts and templates -----------------------------------------------------------------
    def _form_routes(self, path: str, kind: str) -> list[web.RouteDef]:
        async def listing(request: web.Request) -> web.Response:
            caller = self._publisher(request)
            owner = caller.user_id if kind == DRAFT else None
            forms = await self._broker.list_forms(kind, owner=owner)
            return web.json_response([form_json(f) for f in forms])

        async def create(request: web.Request) -> web.Response:
            caller = self._publisher(request)
            name, content = parse_form(await json_body(request, self._settings), kind)
            owner = caller.user_id if kind == DRAFT else None
            most = self._settings.saved_forms_max
            if len(await self._broker.list_forms(kind, owner=owner)) >= most:
                raise http_error(
                    web.HTTPConflict, f"there are {most} {kind}s already: delete some first"
                )
            now = self._api.stream_context.now()
            form = await self._broker.save_form(
                SavedForm(
                    id="",
                    kind=kind,
                    owner=caller.user_id,
                    name=name,
                    content=content,
                    created_at=now,
                    updated_at=now,
                    updated_by=caller.user_id,
                )
            )
            assert form is not None
            return web.json_response(form_json(form), status=201)

        async def read(request: web.Request) -> web.Response:
            return web.json_response(form_json(await self._form_of(request, kind)))

        async def replace(request: web.Request) -> web.Response:
            caller = self._publisher(request)
            old = await self._form_of(request, kind)
            name, content = parse_form(await json_body(request, self._settings), kind)
            changed = dataclasses.replace(
                old,
                name=name,
                content=content,
                updated_at=self._api.stream_context.now(),
                updated_by=caller.user_id,
            )
            form = await self._broker.save_form(changed)
            if form is None:  # removed meanwhile
                raise http_error(web.HTTPNotFound, f"no such {kind}")
            return web.json_response(form_json(form))

        async def delete(request: web.Request) -> web.Response:
            old = await self._form_of(request, kind)
            if not await self._broker.delete_form(kind, old.id):
                raise http_error(web.HTTPNotFound, f"no such {kind}")
            return web.Response(status=204)

        item = path + "/{id}"
        return [
            web.get(path, listing),
            web.post(path, create),
            web.get(item, read),
            web.put(item, replace),
            web.delete(item, delete),
        ]

    async def _form_of(self, request: web.Request, kind: str) -> SavedForm:
        """The form in the path: 404 when there is none, and for a draft of another
        publisher (a draft is its author's own)."""
        caller = self._publisher(request)
        form = await self._broker.get_form(kind, request.match_info["id"])
        if form is None or (kind == DRAFT and form.owner != caller.user_id):
            raise http_error(web.HTTPNotFound, f"no such {kind}")
        return form


def form_json(form: SavedForm) -> dict[str, Any]:
    """``{"id", "kind", "name", "owner", "content": {...}, "created_at", "updated_at",
    "updated_by"}``."""
    return {
        "id": form.id,
        "kind": form.kind,
        "name": form.name,
        "owner": form.owner,
        "content": dict(form.content),
        "created_at": iso(form.created_at),
        "updated_at": iso(form.updated_at),
        "updated_by": form.updated_by,
    }


def parse_form(payload: Any, kind: str) -> tuple[str, dict[str, Any]]:
    """``{"name", "content": {the compose form's fields}}`` as (name, content). A draft is
    unfinished: any field may be missing or empty (it is checked when it is sent), but each
    one present has its type and the publish's text rules. A template needs a name; a draft's
    defaults to its title."""
    obj = require_object(payload)
    content = obj.get("content", {})
    if not isinstance(content, dict):
        raise BadInput("content must be an object of the compose form's fields", "content")
    unknown = set(content) - set(FORM_FIELDS)
    if unknown:
        raise BadInput(f"content has unknown fields: {', '.join(sorted(unknown))}", "content")
    kept: dict[str, Any] = {}
    for key in FORM_FIELDS:
        value = content.get(key)
        if value is not None:
            kept[key] = _form_field(key, value)
    name = obj.get("name", "")
    if kind == DRAFT and (name is None or (isinstance(name, str) and not name.strip())):
        name = str(kept.get("title", ""))
    if not isinstance(name, str):
        raise BadInput("name must be a string", "name")
    name = " ".join(name.split())
    if kind == TEMPLATE and not name:
        raise BadInput("a template needs a name", "name")
    if len(name) > MAX_NAME:
        raise BadInput(f"name is longer than {MAX_NAME} characters", "name")
    plain_text(name, "name")
    return name, kept


def _form_field(key: str, value: Any) -> Any:
    field = f"content.{key}"
    if key == "audience":
        return _form_audience(value)
    if not isinstance(value, str):
        raise BadInput(f"{field} must be a string", field)
    limit = {"title": MAX_TITLE, "url": MAX_URL, "expires_at": MAX_STAMP, "send_at": MAX_STAMP}
    if key in limit and len(value) > limit[key]:
        raise BadInput(f"{field} is longer than {limit[key]} characters", field)
    if key == "priority" and value not in {p.value for p in Priority}:
        names = ", ".join(p.value for p in Priority)
        raise BadInput(f"{field} must be one of {names}", field)
    plain_text(value, field)
    return value


def _form_audience(value: Any) -> dict[str, Any]:
    field = "content.audience"
    if not isinstance(value, Mapping) or set(value) - _AUDIENCE_KEYS:
        raise BadInput(f'{field} must be like {{"all": true}} or {{"groups": [...]}}', field)
    out: dict[str, Any] = {}
    if "all" in value:
        if not isinstance(value["all"], bool):
            raise BadInput(f"{field}.all must be true or false", f"{field}.all")
        out["all"] = value["all"]
    for key in ("groups", "users"):
        names = value.get(key)
        if names is None:
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise BadInput(f"{field}.{key} must be a list of names", f"{field}.{key}")
        if len(names) > MAX_NAMES:
            raise BadInput(f"{field}.{key} holds more than {MAX_NAMES} names", f"{field}.{key}")
        out[key] = names
    return out
