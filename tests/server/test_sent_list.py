"""The sent list past thousands (issue 25), on both backends: ``GET /announcements`` with
``q=`` (title or body, case-insensitive, any script) and ``before=`` (older pages), keyset
paging both ways, visibility and revoked ones as the plain list has them."""

from __future__ import annotations

from typing import Any

import httpx

from app.server.embedded import EmbeddedServer
from tests.server.conftest import bearer, login


def _ids(http: httpx.Client, tokens: dict[str, Any], **params: Any) -> list[str]:
    response = http.get("/announcements", params=params, headers=bearer(tokens))
    assert response.status_code == 200, response.text
    return [a["id"] for a in response.json()]


def test_search_and_pages_both_ways(http: httpx.Client, companion_server: EmbeddedServer) -> None:
    server = companion_server
    ids = []
    for n in range(230):
        title = f"Notice {n}" if n % 10 else f"VPN outage {n}"
        body = "Straße gesperrt" if n == 77 else f"body {n}"
        audience = {"groups": ["hr"]} if n == 30 else None
        ids.append(server.publish(title, body, audience=audience))
    boss = login(http, "publisher")
    # older pages: the newest 50, then the 50 before...
    first = _ids(http, boss, limit=50)
    assert first == ids[-50:]
    second = _ids(http, boss, limit=50, before=first[0])
    assert second == ids[-100:-50]
    # ...and newer again from an older page: since is the other bound
    assert _ids(http, boss, limit=50, since=second[-1], q="") == first
    assert _ids(http, boss, limit=50, since=ids[9], before=ids[20]) == ids[10:20]
    # search: case-insensitive, title or body, any script; paged the same way
    outages = [i for n, i in enumerate(ids) if n % 10 == 0]
    assert _ids(http, boss, q="vpn OUTAGE", limit=1000) == outages
    newest = _ids(http, boss, q="vpn", limit=10)
    assert newest == outages[-10:]
    assert _ids(http, boss, q="vpn", limit=10, before=newest[0]) == outages[-20:-10]
    assert _ids(http, boss, q="vpn", limit=5, since=outages[2]) == outages[3:8]
    assert _ids(http, boss, q="STRASSE", limit=5) == [ids[77]]  # casefolded: ß is ss
    assert _ids(http, boss, q="nothing like it") == []
    # visibility as the plain list: alice (it) never sees the hr one, publishers see revoked
    server.revoke(ids[40])
    alice = login(http, "alice")
    assert ids[30] not in _ids(http, alice, q="Notice 30", limit=1000)
    assert _ids(http, alice, q="vpn outage 40") == []
    assert _ids(http, boss, q="vpn outage 40") == [ids[40]]
    listed = http.get("/announcements", params={"q": "vpn outage 40"}, headers=bearer(boss)).json()
    assert listed[0]["revoked_by"] == "publisher"
    # a cursor this server never gave is 400 naming it
    for bad, field in [({"before": "x"}, "before"), ({"q": "a", "since": "x"}, "since")]:
        answer = http.get("/announcements", params=bad, headers=bearer(boss))
        assert answer.status_code == 400 and answer.json()["field"] == field
    assert (
        http.get("/announcements", params={"q": "x" * 201}, headers=bearer(boss)).status_code == 400
    )
