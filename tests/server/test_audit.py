"""The audit log (issue 25; DESIGN.md "Server API": ``GET /audit`` and ``/audit.csv``), on both
backends: who published, corrected, reminded and revoked what, and when; newest first, paged
with a cursor; the same lines as CSV with formulas neutralised; publishers only; kept across a
restart and, on Redis, one log for every process."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from app.server.embedded import EmbeddedServer
from tests.fixtures.server import ServerFactory
from tests.server.conftest import TIMEOUT, bearer, login, publish


def _audit(http: httpx.Client, tokens: dict[str, str], **params: str) -> dict[str, object]:
    response = http.get("/audit", params=params, headers=bearer(tokens))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _entries(http: httpx.Client, tokens: dict[str, str], **params: str) -> list[dict[str, str]]:
    entries = _audit(http, tokens, **params)["entries"]
    assert isinstance(entries, list)
    return entries


def test_who_did_what_and_when(http: httpx.Client, companion_server: EmbeddedServer) -> None:
    companion_server.add_user("carol", "pw", publisher=True)
    boss = login(http, "publisher")
    carol = login(http, "carol", "pw")
    ann = publish(http, boss, title="Fire drill at 10:00", audience={"groups": ["it"]})
    # a retry of a publish with its key adds nothing: one announcement, one line
    headers = {**bearer(boss), "Idempotency-Key": "once"}
    payload = {"title": "Canteen", "body": "B", "audience": {"all": True}}
    first = http.post("/announcements", json=payload, headers=headers).json()["id"]
    assert http.post("/announcements", json=payload, headers=headers).json()["id"] == first
    fixed = http.patch(
        f"/announcements/{ann}", json={"title": "Fire drill at 11:00"}, headers=bearer(carol)
    )
    assert fixed.status_code == 200, fixed.text
    reminded = http.post(
        f"/announcements/{ann}/remind", json={"who": "unread"}, headers=bearer(carol)
    )
    assert reminded.status_code == 200 and reminded.json() == {"reminded": 1}
    assert http.delete(f"/announcements/{ann}", headers=bearer(boss)).status_code == 200
    assert http.delete(f"/announcements/{ann}", headers=bearer(boss)).status_code == 200  # again

    entries = _entries(http, carol)
    assert [(e["action"], e["actor"], e["announcement_id"]) for e in entries] == [
        ("revoked", "publisher", ann),
        ("reminded", "carol", ann),
        ("corrected", "carol", ann),
        ("published", "publisher", first),
        ("published", "publisher", ann),
    ]
    assert entries[0]["detail"] == "Fire drill at 11:00"
    assert entries[-1]["detail"] == "Fire drill at 10:00"
    assert "unread" in entries[1]["detail"] and "1" in entries[1]["detail"]
    assert all(e["at"].endswith("Z") and e["schedule_id"] is None for e in entries)
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)
    ids = [e["id"] for e in entries]
    assert len(set(ids)) == len(ids)

    # paged newest first with a cursor, to the end
    page = _audit(http, boss, limit="2")
    assert [e["id"] for e in page["entries"]] == ids[:2]  # type: ignore[attr-defined]
    page = _audit(http, boss, limit="2", before=str(page["next"]))
    assert [e["id"] for e in page["entries"]] == ids[2:4]  # type: ignore[attr-defined]
    page = _audit(http, boss, limit="2", before=str(page["next"]))
    assert [e["id"] for e in page["entries"]] == ids[4:]  # type: ignore[attr-defined]
    assert page["next"] is None
    for bad in ({"before": "x y"}, {"limit": "0"}, {"limit": "1001"}):
        answer = http.get("/audit", params=bad, headers=bearer(boss))
        assert answer.status_code == 400, bad

    # publishers only
    alice = login(http, "alice")
    assert http.get("/audit", headers=bearer(alice)).status_code == 403
    assert http.get("/audit.csv", headers=bearer(alice)).status_code == 403
    assert http.get("/audit").status_code == 401


def test_the_csv_has_the_same_lines_and_no_formula(
    http: httpx.Client, companion_server: EmbeddedServer
) -> None:
    boss = login(http, "publisher")
    risky = publish(http, boss, title='=HYPERLINK("http://evil.example","x")')
    plain = publish(http, boss, title="@SUM(1+1) and -2 +3")
    http.delete(f"/announcements/{plain}", headers=bearer(boss))
    response = http.get("/audit.csv", headers=bearer(boss))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == 'attachment; filename="audit.csv"'
    assert response.text.count("\r\n") == 4  # CRLF line ends: a header and three lines
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["at", "actor", "action", "announcement_id", "schedule_id", "detail"]
    entries = _entries(http, boss)
    assert [(r[0], r[1], r[2], r[3]) for r in rows[1:]] == [
        (e["at"], e["actor"], e["action"], e["announcement_id"]) for e in entries
    ]
    details = {r[3] + r[2]: r[5] for r in rows[1:]}
    assert details[risky + "published"] == "'" + '=HYPERLINK("http://evil.example","x")'
    assert details[plain + "revoked"] == "'@SUM(1+1) and -2 +3"
    # no cell of the file starts with a character a spreadsheet runs
    assert all(not cell or cell[0] not in "=+-@" for row in rows for cell in row)


def test_the_log_is_kept_across_a_restart(
    companion_server: EmbeddedServer, server_factory: ServerFactory
) -> None:
    with httpx.Client(base_url=companion_server.url, timeout=TIMEOUT) as http:
        ann = publish(http, login(http, "publisher"), title="Kept")
        before = _entries(http, login(http, "publisher"))
    companion_server.stop()
    again = server_factory(data_dir=companion_server.data_dir)
    with httpx.Client(base_url=again.url, timeout=TIMEOUT) as http:
        boss = login(http, "publisher")
        assert _entries(http, boss) == before
        http.delete(f"/announcements/{ann}", headers=bearer(boss))
        entries = _entries(http, boss)
        assert [e["action"] for e in entries] == ["revoked", "published"]
        assert int(entries[0]["id"].split("-")[0]) >= int(entries[1]["id"].split("-")[0])


def test_every_process_on_one_redis_writes_one_log(
    server_backend: str, server_factory: ServerFactory
) -> None:
    if server_backend != "redis":
        pytest.skip("one SQLite database serves one process")
    first = server_factory(demo_users=True)
    second = server_factory()
    with (
        httpx.Client(base_url=first.url, timeout=TIMEOUT) as one,
        httpx.Client(base_url=second.url, timeout=TIMEOUT) as two,
    ):
        ann = publish(one, login(one, "publisher"), title="From the first")
        revoked = two.delete(f"/announcements/{ann}", headers=bearer(login(two, "publisher")))
        assert revoked.status_code == 200
        for client in (one, two):
            entries = _entries(client, login(client, "publisher"))
            assert [(e["action"], e["announcement_id"]) for e in entries] == [
                ("revoked", ann),
                ("published", ann),
            ]
