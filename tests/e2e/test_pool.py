"""The emergency pool on a real Valkey: fit, retry, fallback, queue, release, retire, dispatch, list, HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette

from alerts.pool import PoolConflict, PoolInvalid, PoolNotFound, PoolStore
from server.core import keys
from server.core.settings import PoolSettings, Settings
from server.core.tokens import issue
from server.web.api import pool as pool_api
from server.web.errors import EXCEPTION_HANDLERS

SECRET = b"test-secret-of-16+"
NOW = 1_700_000_000.0


@pytest.fixture
def settings() -> Settings:
    return Settings(secret=SECRET, pool=PoolSettings(neighbours={"bj": ("tj", "hb")}))


@pytest.fixture
def store(redis_client: aioredis.Redis, settings: Settings) -> PoolStore:
    return PoolStore(redis_client, settings)


def vehicle(rid: str, capacity: int, region: str = "bj", **extra: Any) -> dict[str, Any]:
    return {"resource_id": rid, "kind": "vehicle", "region": region, "capacity": capacity,
            "partner": "Fleet Co", "contact": "+86 10 5555", **extra}


async def add(store: PoolStore, *resources: dict[str, Any]) -> None:
    for resource in resources:
        await store.put(resource, NOW)


async def test_pull_takes_the_smallest_free_resource_that_covers(store: PoolStore) -> None:
    await add(store, vehicle("v4", 4), vehicle("v20", 20), vehicle("v50", 50), vehicle("v30", 30))
    result = await store.pull("t~1", "bj", "vehicle", 25, "vehicle", None, NOW)
    assert (result.status, result.resource["resource_id"], result.shortfall) == ("held", "v30", 0)
    assert result.resource["state"] == "held" and result.resource["held_by"] == "t~1"
    assert not result.fallback


async def test_nearest_wins_among_equally_sized(store: PoolStore) -> None:
    await add(store, vehicle("far", 40, lat=39.0, lon=115.0), vehicle("near", 40, lat=39.9, lon=116.4),
              vehicle("bigger-nearer", 50, lat=39.9, lon=116.41))
    result = await store.pull("t~1", "bj", "vehicle", 30, "vehicle", {"lat": 39.91, "lon": 116.39}, NOW)
    assert result.resource["resource_id"] == "near"


async def test_pull_takes_the_largest_with_the_shortfall_when_nothing_covers(store: PoolStore) -> None:
    await add(store, vehicle("v4", 4), vehicle("v20", 20))
    result = await store.pull("t~1", "bj", "vehicle", 45, "vehicle", None, NOW)
    assert (result.resource["resource_id"], result.shortfall) == ("v20", 25)


async def test_a_retried_pull_returns_the_same_resource(store: PoolStore) -> None:
    await add(store, vehicle("a", 10), vehicle("b", 10))
    first = await store.pull("t~1", "bj", "vehicle", 5, "vehicle", None, NOW)
    again = await store.pull("t~1", "bj", "vehicle", 5, "vehicle", None, NOW + 5)
    assert again.resource["resource_id"] == first.resource["resource_id"] and again.retry
    assert again.resource["held_since"] == NOW
    other = await store.pull("t~1", "bj", "vehicle", 5, "manual:2", None, NOW)
    assert other.resource["resource_id"] != first.resource["resource_id"]


async def test_fallback_to_a_neighbour_is_marked_and_retried_there(store: PoolStore) -> None:
    await add(store, vehicle("home-small", 4), vehicle("tj-big", 40, "tj"), vehicle("hb-big", 40, "hb"))
    result = await store.pull_with_fallback("t~1", "bj", "vehicle", 30, "vehicle", None, NOW)
    # a neighbour's covering resource beats a home one that falls short
    assert (result.region, result.resource["resource_id"], result.fallback) == ("tj", "tj-big", True)
    again = await store.pull_with_fallback("t~1", "bj", "vehicle", 30, "vehicle", None, NOW)
    assert (again.region, again.resource["resource_id"], again.retry) == ("tj", "tj-big", True)
    # the home region is preferred when it covers
    home = await store.pull_with_fallback("t~2", "bj", "vehicle", 3, "vehicle", None, NOW)
    assert (home.region, home.fallback) == ("bj", False)
    # nothing covers anywhere, the home region is empty: a neighbour's largest, with the shortfall
    short = await store.pull_with_fallback("t~3", "bj", "vehicle", 60, "vehicle", None, NOW)
    assert (short.region, short.resource["resource_id"], short.shortfall) == ("hb", "hb-big", 20)


async def test_fallback_never_queues_in_a_neighbour(store: PoolStore) -> None:
    result = await store.pull_with_fallback("t~1", "bj", "medical", 1, "medical", None, NOW)
    assert (result.status, result.region) == ("queued", "bj")
    assert await store.waiting("bj", "medical") == ["t~1"]
    assert await store.waiting("tj", "medical") == [] and await store.waiting("hb", "medical") == []


async def test_release_returns_holds_from_neighbours_too(store: PoolStore) -> None:
    await add(store, vehicle("tj-1", 40, region="tj"))
    await store.pull_with_fallback("t~1", "bj", "vehicle", 30, "vehicle", None, NOW)
    outcome = await store.release_detailed("t~1", "bj", NOW + 90)
    assert [(r.resource_id, r.region, r.held_seconds) for r in outcome.released] == [("tj-1", "tj", 90.0)]
    assert (await store.get("tj-1"))["state"] == "free"


async def test_exhausted_pulls_queue_once_and_are_served_in_order(store: PoolStore) -> None:
    await add(store, vehicle("only", 40))
    await store.pull("t~0", "bj", "vehicle", 10, "vehicle", None, NOW)
    for n in (1, 2, 3):
        queued = await store.pull(f"t~{n}", "bj", "vehicle", 10, "vehicle", None, NOW)
        assert (queued.status, queued.position) == ("queued", n - 1)
    retried = await store.pull("t~1", "bj", "vehicle", 10, "vehicle", None, NOW)
    assert (retried.status, retried.position) == ("queued", 0)
    assert await store.waiting("bj", "vehicle") == ["t~1", "t~2", "t~3"]
    served = await store.release("t~0", "bj", NOW)
    assert [(s.incident_id, s.request, s.resource["resource_id"]) for s in served] == [
        ("t~1", "vehicle", "only")]
    assert (await store.pull("t~1", "bj", "vehicle", 10, "vehicle", None, NOW)).resource["held_by"] == "t~1"
    # an incident resolved while waiting leaves the queue: the next one is served
    await store.release("t~2", "bj", NOW)
    served = await store.release("t~1", "bj", NOW)
    assert [s.incident_id for s in served] == ["t~3"]
    assert await store.waiting("bj", "vehicle") == []


async def test_a_new_resource_serves_the_queue(store: PoolStore) -> None:
    await store.pull("t~1", "bj", "lodging", 20, "lodging", None, NOW)
    added = await store.put({"resource_id": "hotel", "kind": "lodging", "region": "bj", "capacity": 30}, NOW)
    assert (added["state"], added["held_by"]) == ("held", "t~1")
    assert await store.waiting("bj", "lodging") == []


async def test_release_is_idempotent(store: PoolStore) -> None:
    await add(store, vehicle("a", 10))
    await store.pull("t~1", "bj", "vehicle", 5, "vehicle", None, NOW)
    first = await store.release_detailed("t~1", "bj", NOW + 10)
    second = await store.release_detailed("t~1", "bj", NOW + 20)
    assert [r.resource_id for r in first.released] == ["a"] and second.released == [] == second.served
    again = await store.pull("t~2", "bj", "vehicle", 5, "vehicle", None, NOW)
    assert again.resource["resource_id"] == "a"


async def test_retire_only_while_free(store: PoolStore, redis_client: aioredis.Redis) -> None:
    await add(store, vehicle("a", 10))
    await store.pull("t~1", "bj", "vehicle", 5, "vehicle", None, NOW)
    with pytest.raises(PoolConflict):
        await store.retire("a")
    await store.release("t~1", "bj", NOW)
    await store.retire("a")
    assert await store.list() == []
    assert await redis_client.hget(keys.RESOURCE_INDEX, "a") is None
    with pytest.raises(PoolNotFound):
        await store.retire("a")
    assert (await store.pull("t~2", "bj", "vehicle", 5, "vehicle", None, NOW)).status == "queued"


async def test_dispatch_transitions(store: PoolStore) -> None:
    await add(store, vehicle("a", 10))
    with pytest.raises(PoolConflict):
        await store.dispatch("a", None, "supervisor:s1", NOW)
    await store.pull("t~1", "bj", "vehicle", 5, "vehicle", None, NOW)
    sent = await store.dispatch("a", None, "supervisor:s1", NOW + 1)
    assert (sent["state"], sent["held_by"], sent["dispatched_by"]) == ("dispatched", "t~1", "supervisor:s1")
    with pytest.raises(PoolConflict):
        await store.dispatch("a", "bj", "supervisor:s1", NOW + 2)
    with pytest.raises(PoolNotFound):
        await store.dispatch("nope", None, "supervisor:s1", NOW)
    await store.release("t~1", "bj", NOW + 3)
    assert (await store.get("a"))["state"] == "free"


async def test_listing_shows_state_and_holder(store: PoolStore) -> None:
    await add(store, vehicle("a", 10), vehicle("b", 20), vehicle("c", 5, region="tj"),
              {"resource_id": "doc", "kind": "medical", "region": "bj", "capacity": 1})
    await store.pull("t~1", "bj", "vehicle", 15, "vehicle", None, NOW)
    listed = {r["resource_id"]: r for r in await store.list()}
    assert (listed["b"]["state"], listed["b"]["held_by"], listed["b"]["held_since"]) == ("held", "t~1", NOW)
    assert (listed["a"]["state"], listed["a"]["held_by"]) == ("free", None)
    assert [r["resource_id"] for r in await store.list(None, "vehicle", lambda r: r == "bj")] == ["a", "b"]
    assert [r["resource_id"] for r in await store.list("tj", None)] == ["c"]


async def test_update_keeps_the_hold_and_guards_kind_and_region(store: PoolStore) -> None:
    await add(store, vehicle("a", 10), vehicle("free-one", 10))
    await store.pull("t~1", "bj", "vehicle", 5, "vehicle", None, NOW)
    updated = await store.put(vehicle("a", 12, contact="new"), NOW)
    assert (updated["state"], updated["held_by"], updated["capacity"]) == ("held", "t~1", 12)
    with pytest.raises(PoolConflict):
        await store.put({**vehicle("a", 12), "kind": "lodging"}, NOW)
    with pytest.raises(PoolConflict):
        await store.put(vehicle("a", 12, region="tj"), NOW)
    moved = await store.put(vehicle("free-one", 10, region="tj"), NOW)
    assert moved["region"] == "tj" and [r["region"] for r in await store.list(None, None)].count("tj") == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"resource_id": "bad id"}, "resource_id"),
    ({"kind": "boat"}, "kind"),
    ({"region": ""}, "region"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": True}, "capacity"),
    ({"capacity": 4.0}, "capacity"),
    ({"partner": "x" * 201}, "partner"),
    ({"contact": 5}, "contact"),
    ({"lat": 91, "lon": 0}, "lat"),
    ({"lat": 10}, "lon"),
])
async def test_put_validates(store: PoolStore, change: dict[str, Any], field: str) -> None:
    with pytest.raises(PoolInvalid) as caught:
        await store.put({**vehicle("a", 10), **change}, NOW)
    assert caught.value.field == field


# --- HTTP ------------------------------------------------------------------------------------------------
def token(role: str, regions: list[str] | None = None) -> dict[str, str]:
    value = issue(SECRET, role=role, sub=f"{role}-1", regions=regions or [], ttl=3600, now=time.time())
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
async def http(redis_client: aioredis.Redis, settings: Settings) -> Any:
    app = Starlette(routes=pool_api.routes, exception_handlers=EXCEPTION_HANDLERS)
    app.state.redis, app.state.settings = redis_client, settings
    app.state.pool = PoolStore(redis_client, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_http_put_list_dispatch_delete(http: httpx.AsyncClient, redis_client: aioredis.Redis,
                                             settings: Settings) -> None:
    admin, sup_bj, sup_tj = token("admin", ["*"]), token("supervisor", ["bj"]), token("supervisor", ["tj"])
    answer = await http.put("/api/pool/resources/v1", json=vehicle("ignored", 40), headers=admin)
    assert answer.status_code == 200 and answer.json()["resource_id"] == "v1"
    await http.put("/api/pool/resources/t1", json=vehicle("t1", 8, region="tj"), headers=admin)
    listed = (await http.get("/api/pool", headers=sup_bj)).json()["resources"]
    assert [(r["resource_id"], r["state"], r["held_by"]) for r in listed] == [("v1", "free", None)]
    assert len((await http.get("/api/pool?kind=vehicle", headers=admin)).json()["resources"]) == 2
    assert (await http.get("/api/pool?region=tj", headers=sup_bj)).status_code == 403
    await PoolStore(redis_client, settings).pull("t~1", "bj", "vehicle", 30, "vehicle", None, NOW)
    assert (await http.delete("/api/pool/resources/v1", headers=admin)).status_code == 409
    assert (await http.post("/api/resources/v1/dispatch", headers=sup_tj)).status_code == 404
    sent = await http.post("/api/resources/v1/dispatch", headers=sup_bj)
    assert (sent.status_code, sent.json()["state"]) == (200, "dispatched")
    assert (await http.post("/api/resources/v1/dispatch", headers=sup_bj)).json()["error"] == "conflict"
    assert (await http.delete("/api/pool/resources/t1?region=tj", headers=admin)).status_code == 200
    assert (await http.delete("/api/pool/resources/t1", headers=admin)).status_code == 404


async def test_http_refuses_bad_input_and_callers(http: httpx.AsyncClient) -> None:
    admin = token("admin", ["*"])
    bad = {**vehicle("v1", 4), "capacity": "4"}
    answer = await http.put("/api/pool/resources/v1", json=bad, headers=admin)
    assert answer.status_code == 400 and answer.json()["field"] == "capacity"
    assert (await http.put("/api/pool/resources/v1", content=b"[1]", headers=admin)).status_code == 400
    assert (await http.put("/api/pool/resources/v1", json=vehicle("v1", 4))).status_code == 401
    supervisor = token("supervisor", ["bj"])
    answer = await http.put("/api/pool/resources/v1", json=vehicle("v1", 4), headers=supervisor)
    assert answer.status_code == 403
    assert (await http.get("/api/pool", headers=token("guide"))).status_code == 403
    assert (await http.get("/api/pool?kind=boat", headers=admin)).status_code == 400
