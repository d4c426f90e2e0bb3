"""The alert HTTP API and the board page through a real uvicorn, on the real embedded Valkey."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from alerts.rules.effects import UpsertAlert
from alerts.store import AlertStore
from server.core.settings import Settings
from server.core.tokens import issue
from server.web.board import SECURITY_HEADERS
from tests.e2e.helpers_server import alerts_app, running_server

SECRET = b"test-secret-of-16+"
NOW = 1_800_000_000.0


def auth(role: str = "supervisor", sub: str = "sue", regions: tuple[str, ...] = ("east",)) -> dict[str, str]:
    tok = issue(SECRET, role=role, sub=sub, regions=regions, ttl=3600, now=time.time())
    return {"Authorization": f"Bearer {tok}"}


def upsert(n: int, region: str = "east", kind: str = "incident") -> UpsertAlert:
    return UpsertAlert(kind=kind, dedup_key=f"{kind}:I{n}", severity="high", region=region,
                       summary=f"alert {n}", details={"incident_id": f"I{n}"})


@pytest.fixture
async def http(redis_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with running_server(alerts_app(redis_url, Settings(secret=SECRET))) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            yield client


@pytest.fixture
def store(redis_client: aioredis.Redis) -> AlertStore:
    return AlertStore(redis_client, Settings(secret=SECRET))


async def test_authentication_is_required(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/alerts")).status_code == 401
    assert (await http.get("/api/alerts", headers=auth(role="guide"))).status_code == 403
    assert (await http.post("/api/alerts/A1/ack", headers=auth(role="traveller"))).status_code == 403


async def test_list_filters_by_status_region_and_kind(http: httpx.AsyncClient, store: AlertStore) -> None:
    east = (await store.upsert(upsert(1), "a", NOW)).alert["alert_id"]
    west = (await store.upsert(upsert(2, "west"), "b", NOW)).alert["alert_id"]
    drop = (await store.upsert(upsert(3, kind="score_drop"), "c", NOW)).alert["alert_id"]
    await store.act(drop, "resolve", "admin:root", NOW, regions_check=lambda r: True)

    def ids(response: httpx.Response) -> set[str]:
        assert response.status_code == 200
        return {a["alert_id"] for a in response.json()["alerts"]}

    assert ids(await http.get("/api/alerts", headers=auth())) == {east}
    assert ids(await http.get("/api/alerts?status=open,resolved", headers=auth())) == {east, drop}
    assert ids(await http.get("/api/alerts?status=resolved&kind=score_drop", headers=auth())) == {drop}
    assert ids(await http.get("/api/alerts?region=west", headers=auth())) == set()
    admin = auth(role="admin", sub="root", regions=("*",))
    assert ids(await http.get("/api/alerts?region=west", headers=admin)) == {west}
    bad = await http.get("/api/alerts?status=closed", headers=auth())
    assert bad.status_code == 400 and bad.json()["error"] == "invalid" and bad.json()["field"] == "status"


async def test_get_shows_audit_and_hides_other_regions(http: httpx.AsyncClient, store: AlertStore) -> None:
    east = (await store.upsert(upsert(1), "a", NOW)).alert["alert_id"]
    west = (await store.upsert(upsert(2, "west"), "b", NOW)).alert["alert_id"]
    got = await http.get(f"/api/alerts/{east}", headers=auth())
    assert got.status_code == 200 and got.json()["alert_id"] == east
    assert [e["action"] for e in got.json()["audit"]] == ["opened"]
    hidden = await http.get(f"/api/alerts/{west}", headers=auth())
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"


async def test_actions_and_their_errors(http: httpx.AsyncClient, store: AlertStore) -> None:
    alert_id = (await store.upsert(upsert(1), "a", NOW)).alert["alert_id"]
    west = (await store.upsert(upsert(2, "west"), "b", NOW)).alert["alert_id"]
    acked = await http.post(f"/api/alerts/{alert_id}/ack", headers=auth())
    assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
    no_assignee = await http.post(f"/api/alerts/{alert_id}/assign", headers=auth(), json={})
    assert no_assignee.status_code == 400 and no_assignee.json()["field"] == "assignee"
    assigned = await http.post(f"/api/alerts/{alert_id}/assign", headers=auth(), json={"assignee": "ann"})
    assert assigned.json()["assignee"] == "ann" and assigned.json()["status"] == "acknowledged"
    resolved = await http.post(f"/api/alerts/{alert_id}/resolve", headers=auth(), json={"note": "refunded"})
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    assert resolved.json()["notes"][-1]["note"] == "refunded"
    again = await http.post(f"/api/alerts/{alert_id}/resolve", headers=auth(), json={"note": "x"})
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    forbidden = await http.post(f"/api/alerts/{west}/ack", headers=auth())
    assert forbidden.status_code == 403 and forbidden.json()["error"] == "forbidden"
    missing = await http.post("/api/alerts/A999/ack", headers=auth())
    assert missing.status_code == 404
    not_json = await http.post(f"/api/alerts/{west}/resolve", headers=auth(), content=b"{nope")
    assert not_json.status_code == 400 and not_json.json()["error"] == "invalid"
    trail = (await http.get(f"/api/alerts/{alert_id}", headers=auth())).json()["audit"]
    assert [(e["action"], e["by"]) for e in trail] == [
        ("opened", "system"), ("ack", "supervisor:sue"), ("assign", "supervisor:sue"),
        ("resolve", "supervisor:sue")]
    assert (await store.get(west))["status"] == "open"


async def test_board_page_and_static_files_carry_the_security_headers(http: httpx.AsyncClient) -> None:
    page = await http.get("/board")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    static = await http.get("/board/static/board.js")
    assert static.status_code == 200
    for response in (page, static):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value
    assert (await http.get("/board/static/nope.js")).status_code == 404
