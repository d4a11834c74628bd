"""Revoking keeps the record (issue 22, point 13; DESIGN.md "DELETE /announcements/{id} keeps
the record"), on both backends: recipients get the revoke on their streams and no longer see
the announcement; publishers still list it, marked with when and by whom, and read its reach."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import httpx

from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT, Stream, bearer, login, publish


def _listed(http: httpx.Client, tokens: dict[str, str]) -> dict[str, dict[str, object]]:
    response = http.get("/announcements", headers=bearer(tokens))
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()}


def test_a_revoked_announcement_stays_readable_for_publishers(
    http: httpx.Client,
    companion_server: EmbeddedServer,
    server_factory: ServerFactory,
    streams: Callable[..., Stream],
) -> None:
    alice_tokens = login(http, "alice")
    alice = bearer(alice_tokens)
    stream = streams(http, "alice", alice_tokens["access_token"])
    assert stream.next().event == "connected"
    boss = login(http, "publisher")
    ann = publish(http, boss, title="Wrong room", audience={"groups": ["it"]})
    kept = publish(http, boss, title="Still on")
    assert stream.next().id == ann and stream.next().id == kept
    http.post("/receipts", json={"displayed": [ann], "read": [ann]}, headers=alice)

    response = http.delete(f"/announcements/{ann}", headers=bearer(boss))
    assert response.status_code == 200 and response.json() == {"id": ann, "revoked": True}
    # the recipients' streams: the revoke event exactly as before
    revoke = stream.next()
    assert revoke.event == "message" and json.loads(revoke.data) == {"type": "revoke", "id": ann}
    assert stream.raw.endswith(f'data: {{"type":"revoke","id":"{ann}"}}\n\n'.encode())

    # publishers: still listed, marked with when and by whom
    listed = _listed(http, boss)
    revoked_at = listed[ann]["revoked_at"]
    assert isinstance(revoked_at, str) and revoked_at.endswith("Z")
    assert listed[ann]["revoked_by"] == "publisher"
    assert listed[ann]["title"] == "Wrong room" and listed[ann]["type"] == "announcement"
    assert (listed[kept]["revoked_at"], listed[kept]["revoked_by"]) == (None, None)
    # recipients: gone from their list, and nothing more recorded for it
    assert ann not in _listed(http, alice_tokens) and kept in _listed(http, alice_tokens)
    assert http.post(f"/announcements/{ann}/ack", headers=alice).status_code == 404
    ignored = http.post("/receipts", json={"acknowledged": [ann]}, headers=alice)
    assert ignored.json() == {"recorded": 0, "ignored": 1}

    # its reach, its CSV and its acks: still readable, saying it was revoked
    reach = http.get(f"/announcements/{ann}/reach", headers=bearer(boss)).json()
    assert reach["revoked_at"] == revoked_at and reach["recipients"] == 1
    (row,) = reach["users"]
    assert row["user_id"] == "alice" and row["displayed_at"] and row["read_at"]
    assert (reach["delivered"], reach["displayed"], reach["read"]) == (1, 1, 1)
    assert http.get(f"/announcements/{kept}/reach", headers=bearer(boss)).json()["revoked_at"] is (
        None
    )
    csv = http.get(f"/announcements/{ann}/reach.csv", headers=bearer(boss))
    assert csv.status_code == 200 and "alice" in csv.text
    assert http.get(f"/announcements/{ann}/acks", headers=bearer(boss)).json() == []

    # revoking again changes nothing: the first time and author are kept
    assert http.delete(f"/announcements/{ann}", headers=bearer(boss)).status_code == 200
    assert _listed(http, boss)[ann]["revoked_at"] == revoked_at

    # kept across a restart (SQLite: the same file; Redis: a new process on the same Redis)
    companion_server.stop()
    again = server_factory(data_dir=companion_server.data_dir)
    with httpx.Client(base_url=again.url, timeout=TIMEOUT) as client:
        boss = login(client, "publisher")
        assert _listed(client, boss)[ann]["revoked_at"] == revoked_at
        reach = client.get(f"/announcements/{ann}/reach", headers=bearer(boss)).json()
        assert reach["revoked_at"] == revoked_at and reach["read"] == 1


def test_a_revoke_tells_the_publishers_consoles(http: httpx.Client) -> None:
    """A console marks it withdrawn at once, also when another publisher revoked it: the
    revoke is an ``event: reach`` of that id (its reach now says ``revoked_at``)."""
    boss = bearer(login(http, "publisher"))
    ann = publish(http, login(http, "publisher"))
    with http.stream("GET", "/console/events", headers=boss) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        while not next(lines).startswith("data:"):  # the connected event
            pass
        assert http.delete(f"/announcements/{ann}", headers=boss).status_code == 200
        seen = []
        for line in itertools.islice(lines, 40):  # pings every 0.5 s: about 10 s at most
            seen.append(line)
            if line.startswith("data:"):
                break
    assert "event: reach" in seen
    assert json.loads(seen[-1].removeprefix("data:")) == {"id": ann}
