"""Drafts and templates kept on the server (issue 25), on both backends: a draft is its
author's own (another publisher gets 404), a template is every publisher's; the compose form's
fields are kept as given (a draft may be unfinished), each checked for its type and the
publish's text rules; kept across a restart."""

from __future__ import annotations

from typing import Any

import httpx

from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT, bearer, login

FORM = {
    "title": "Network maintenance",
    "body": "The VPN is down from 22:00.",
    "priority": "high",
    "url": "https://intranet.example.org/it",
    "audience": {"groups": ["it"]},
}


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


def test_a_draft_is_its_authors_own(http: httpx.Client, companion_server: EmbeddedServer) -> None:
    companion_server.add_user("carol", "pw", publisher=True)
    boss, carol = bearer(login(http, "publisher")), bearer(login(http, "carol", "pw"))
    draft = _ok(http.post("/drafts", json={"content": FORM}, headers=boss), 201)
    assert draft["name"] == "Network maintenance"  # a draft's name defaults to its title
    assert draft["kind"] == "draft" and draft["owner"] == "publisher"
    assert draft["content"] == FORM and draft["created_at"] == draft["updated_at"]
    # unfinished is fine: no title, no audience yet
    empty = _ok(http.post("/drafts", json={"content": {"body": "half"}}, headers=boss), 201)
    assert empty["name"] == "" and empty["content"] == {"body": "half"}

    listed = _ok(http.get("/drafts", headers=boss))
    assert {d["id"] for d in listed} == {draft["id"], empty["id"]}
    assert _ok(http.get("/drafts", headers=carol)) == []
    assert http.get(f"/drafts/{draft['id']}", headers=carol).status_code == 404
    assert http.put(f"/drafts/{draft['id']}", json={}, headers=carol).status_code == 404
    assert http.delete(f"/drafts/{draft['id']}", headers=carol).status_code == 404

    changed = {**FORM, "title": "Network maintenance (moved)", "send_at": "2031-01-01T09:00"}
    again = _ok(
        http.put(f"/drafts/{draft['id']}", json={"name": "VPN", "content": changed}, headers=boss)
    )
    assert again["id"] == draft["id"] and again["name"] == "VPN"
    assert again["content"] == changed and again["created_at"] == draft["created_at"]
    assert _ok(http.get(f"/drafts/{draft['id']}", headers=boss)) == again
    _ok(http.delete(f"/drafts/{empty['id']}", headers=boss), 204)
    assert http.delete(f"/drafts/{empty['id']}", headers=boss).status_code == 404
    assert [d["id"] for d in _ok(http.get("/drafts", headers=boss))] == [draft["id"]]

    # staff: none of it
    alice = bearer(login(http, "alice"))
    assert http.get("/drafts", headers=alice).status_code == 403
    assert http.post("/drafts", json={"content": FORM}, headers=alice).status_code == 403


def test_templates_are_every_publishers(
    http: httpx.Client, companion_server: EmbeddedServer
) -> None:
    companion_server.add_user("carol", "pw", publisher=True)
    boss, carol = bearer(login(http, "publisher")), bearer(login(http, "carol", "pw"))
    outage = {"name": "Outage", "content": {**FORM, "title": "Outage: {service}"}}
    made = _ok(http.post("/templates", json=outage, headers=boss), 201)
    assert made["kind"] == "template" and made["name"] == "Outage"
    assert [t["id"] for t in _ok(http.get("/templates", headers=carol))] == [made["id"]]
    fixed = _ok(
        http.put(
            f"/templates/{made['id']}",
            json={"name": "Outage (IT)", "content": outage["content"]},
            headers=carol,
        )
    )
    assert fixed["owner"] == "publisher" and fixed["updated_by"] == "carol"
    assert _ok(http.get(f"/templates/{made['id']}", headers=boss))["name"] == "Outage (IT)"
    # a template needs a name
    nameless = http.post("/templates", json={"content": FORM}, headers=boss)
    assert nameless.status_code == 400 and nameless.json()["field"] == "name"
    _ok(http.delete(f"/templates/{made['id']}", headers=carol), 204)
    assert _ok(http.get("/templates", headers=boss)) == []
    # a draft id is no template id, and the other way round
    draft = _ok(http.post("/drafts", json={"content": FORM}, headers=boss), 201)
    assert http.get(f"/templates/{draft['id']}", headers=boss).status_code == 404


def test_fields_are_checked(http: httpx.Client) -> None:
    boss = bearer(login(http, "publisher"))
    for body, field in [
        ([], None),
        ({"content": []}, "content"),
        ({"content": {"colour": "red"}}, "content"),
        ({"content": {"title": 5}}, "content.title"),
        ({"content": {"title": "x" * 201}}, "content.title"),
        ({"content": {"body": "bell \x07"}}, "content.body"),
        ({"content": {"priority": "extreme"}}, "content.priority"),
        ({"content": {"audience": {"everyone": True}}}, "content.audience"),
        ({"content": {"audience": {"groups": "it"}}}, "content.audience.groups"),
        ({"name": 3, "content": {}}, "name"),
        ({"name": "n" * 101, "content": {}}, "name"),
    ]:
        answer = http.post("/drafts", json=body, headers=boss)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["field"] == field, body
    assert http.get("/drafts/abc", headers=boss).status_code == 404
    assert http.get("/drafts/99", headers=boss).status_code == 404


def test_kept_across_a_restart(
    companion_server: EmbeddedServer, server_factory: ServerFactory
) -> None:
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as http:
        boss = bearer(login(http, "publisher"))
        draft = _ok(http.post("/drafts", json={"content": FORM}, headers=boss), 201)
        template = _ok(
            http.post("/templates", json={"name": "Drill", "content": FORM}, headers=boss), 201
        )
    companion_server.stop()
    again = server_factory(data_dir=companion_server.data_dir)
    with httpx.Client(base_url=again.url, timeout=TIMEOUT) as http:
        boss = bearer(login(http, "publisher"))
        assert _ok(http.get("/drafts", headers=boss)) == [draft]
        assert _ok(http.get("/templates", headers=boss)) == [template]
