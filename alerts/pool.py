"""The emergency resource pool: partners' vehicles, lodging, medical help, guides and interpreters per region.

Every change to a region is one Lua script in that region's hash slot (``server/db/lua/pool_*.lua``, each after
``pool_lib.lua``), so a resource is never held by two incidents and the same code runs on Redis Cluster. A
fallback to a neighbouring region is a second, separate atomic pull in the neighbour's slot. A pull is keyed
by (incident, request): a retry returns the resource it already holds, or keeps its one place in the queue.

Two indexes stand outside the region slots and are written by separate commands after the script:
:data:`keys.RESOURCE_INDEX` (hash resource id -> region, so a resource is found by its id alone) and
:data:`keys.POOL_REGIONS` (set of regions, so a listing finds them all).

The data, validation and errors live in :mod:`alerts.rules.pool_model`; they are re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from alerts.rules.pool_model import (
    KINDS,
    PoolConflict,
    PoolError,
    PoolInvalid,
    PoolNotFound,
    PullResult,
    Released,
    ReleaseOutcome,
    Served,
    as_list,
    check_capacity,
    check_id,
    check_kind,
    check_location,
    decode_resource,
    validate_resource,
)
from server.core import keys
from server.core.settings import Settings
from server.db.scripts import RedisScripts, ScriptRunner, as_text

__all__ = [
    "KINDS", "PoolConflict", "PoolError", "PoolInvalid", "PoolNotFound", "PoolStore", "PullResult",
    "Released", "ReleaseOutcome", "Served", "validate_resource",
]

# how many equally sized free resources a pull compares by distance
TIE_LIMIT = 256

class PoolStore:
    def __init__(self, redis: aioredis.Redis, settings: Settings, runner: ScriptRunner | None = None) -> None:
        self.redis = redis
        self.settings = settings
        self.runner = runner or RedisScripts(redis)  # the watcher passes its pipelined writer

    # --- plumbing ----------------------------------------------------------------------------------------
    async def _run(self, name: str, region: str, now: float, op: dict[str, Any], own: list[str]) -> Any:
        ctx = {
            "res": keys.pool_resource_prefix(region), "hold": keys.pool_hold_prefix(region),
            "holds": keys.pool_holds_prefix(region), "kinds": list(KINDS), "audit_max": keys.POOL_AUDIT_MAXLEN,
            # a string, so the stored time keeps every digit (cjson would round a number to 14)
            "now": repr(float(now)), "tie_limit": TIE_LIMIT,
        }
        script_keys = [
            keys.pool_all(region), keys.pool_audit(region),
            *(keys.pool_free(region, kind) for kind in KINDS),
            *(keys.pool_queue(region, kind) for kind in KINDS),
            *own,
        ]
        raw = await self.runner.run(name, script_keys, [json.dumps(ctx), json.dumps(op)])
        return json.loads(raw)

    def neighbours(self, region: str) -> list[str]:
        return [r for r in dict.fromkeys(self.settings.pool.neighbours.get(region, ())) if r != region]

    async def region_of(self, resource_id: str) -> str | None:
        value = await self.redis.hget(keys.RESOURCE_INDEX, resource_id)
        return as_text(value) if value is not None else None

    async def _locate(self, resource_id: str, region: str | None) -> str:
        check_id("resource_id", resource_id)
        if region is None:
            region = await self.region_of(resource_id)
            if region is None:
                raise PoolNotFound(f"no resource {resource_id!r}")
        return check_id("region", region)

    # --- resources ---------------------------------------------------------------------------------------
    async def put(self, resource: dict[str, Any], now: float) -> dict[str, Any]:
        """Add or update a resource; returns it as stored (with its state)."""
        res = validate_resource(resource)
        rid, region = res["resource_id"], res["region"]
        previous = await self.region_of(rid)
        if previous is not None and previous != region:
            # a move is a retirement in the old slot and an addition in the new: allowed only while free
            try:
                await self.retire(rid, previous)
            except PoolConflict:
                raise PoolConflict(f"resource {rid!r} is in use in region {previous!r}: "
                                   "its region cannot change until it is released") from None
            except PoolNotFound:
                pass
        stored = dict(res)
        if "lat" in res:
            # strings keep every digit; the script stores them as given
            stored["lat"], stored["lon"] = repr(res["lat"]), repr(res["lon"])
        op = {"resource": stored}
        answer = await self._run("pool_put", region, now, op, [keys.pool_resource(region, rid)])
        if answer["status"] == "conflict":
            raise PoolConflict(answer["message"])
        await self.redis.hset(keys.RESOURCE_INDEX, rid, region)
        await self.redis.sadd(keys.POOL_REGIONS, region)
        return decode_resource(answer["resource"])

    async def retire(self, resource_id: str, region: str | None = None, now: float = 0.0) -> None:
        """Remove a free resource from the pool (PoolConflict while held or dispatched)."""
        region = await self._locate(resource_id, region)
        answer = await self._run("pool_retire", region, now, {"resource_id": resource_id},
                                 [keys.pool_resource(region, resource_id)])
        if answer["status"] == "not_found":
            raise PoolNotFound(f"no resource {resource_id!r} in region {region!r}")
        if answer["status"] == "conflict":
            raise PoolConflict(f"resource {resource_id!r} is {answer['resource']['state']}: release it first")
        # only drop the index entry if it still names this region (a concurrent move may have re-added it)
        if await self.region_of(resource_id) == region:
            await self.redis.hdel(keys.RESOURCE_INDEX, resource_id)

    async def get(self, resource_id: str, region: str | None = None) -> dict[str, Any]:
        region = await self._locate(resource_id, region)
        raw = await self.redis.hgetall(keys.pool_resource(region, resource_id))
        if not raw:
            raise PoolNotFound(f"no resource {resource_id!r}")
        return decode_resource(raw)

    async def dispatch(self, resource_id: str, region: str | None, by: str, now: float) -> dict[str, Any]:
        """held -> dispatched: a supervisor or the partner confirms the resource is on its way."""
        region = await self._locate(resource_id, region)
        answer = await self._run("pool_dispatch", region, now, {"resource_id": resource_id, "by": by},
                                 [keys.pool_resource(region, resource_id)])
        if answer["status"] == "not_found":
            raise PoolNotFound(f"no resource {resource_id!r}")
        if answer["status"] == "conflict":
            raise PoolConflict(f"resource {resource_id!r} is {answer['resource']['state']}, not held")
        return decode_resource(answer["resource"])

    # --- pulls -------------------------------------------------------------------------------------------
    async def _pull_one(self, region: str, mode: str, incident_id: str, kind: str, capacity: int,
                        request: str, location: dict[str, float] | None, now: float) -> dict[str, Any]:
        op: dict[str, Any] = {"incident_id": incident_id, "request": request, "kind": kind,
                              "capacity": capacity, "mode": mode}
        if location is not None:
            op["location"] = location
        return await self._run("pool_pull", region, now, op, [keys.pool_hold(region, incident_id, request)])

    @staticmethod
    def _check_pull(incident_id: str, region: str, kind: str, capacity: int, request: str,
                    location: dict[str, Any] | None) -> tuple[int, dict[str, float] | None]:
        if not isinstance(incident_id, str) or not incident_id or ":" in incident_id:
            raise PoolInvalid("incident_id", "incident_id must be a non-empty string without ':'")
        if not isinstance(request, str) or not request:
            raise PoolInvalid("request", "request must be a non-empty string")
        check_id("region", region)
        check_kind(kind)
        # an incident that does not say how many travellers are affected still needs one resource
        return max(1, check_capacity(capacity, low=0)), check_location(location)

    async def pull(self, incident_id: str, region: str, kind: str, capacity: int, request: str,
                   location: dict[str, Any] | None, now: float) -> PullResult:
        """One atomic pull in one region: the best free fit, else a place in the kind's queue."""
        need, loc = self._check_pull(incident_id, region, kind, capacity, request, location)
        answer = await self._pull_one(region, "pull", incident_id, kind, need, request, loc, now)
        return _result(answer, region, fallback=False)

    async def pull_with_fallback(self, incident_id: str, region: str, kind: str, capacity: int, request: str,
                                 location: dict[str, Any] | None, now: float) -> PullResult:
        """The home region, then its neighbours in order, each a separate atomic pull in its own slot.

        A resource that covers the need anywhere beats one that falls short; only when nothing of the kind is
        free anywhere does the request wait, in the home region's queue.
        """
        need, loc = self._check_pull(incident_id, region, kind, capacity, request, location)
        neighbours = self.neighbours(region)
        if not neighbours:
            return await self.pull(incident_id, region, kind, need, request, loc, now)
        # a retried request may already hold a neighbour's resource: look before taking anything new
        for other in neighbours:
            answer = await self._pull_one(other, "check", incident_id, kind, need, request, loc, now)
            if answer["status"] == "held":
                return _result(answer, other, fallback=True)
        for mode in ("cover", "any"):
            for place in (region, *neighbours):
                answer = await self._pull_one(place, mode, incident_id, kind, need, request, loc, now)
                if answer["status"] == "held":
                    return _result(answer, place, fallback=place != region)
        answer = await self._pull_one(region, "pull", incident_id, kind, need, request, loc, now)
        return _result(answer, region, fallback=False)

    async def waiting(self, region: str, kind: str) -> list[str]:
        """Ids of the incidents waiting in a region for a kind, first served first."""
        entries = await self.redis.lrange(keys.pool_queue(region, kind), 0, -1)
        return list(dict.fromkeys(json.loads(raw)["incident_id"] for raw in entries))

    # --- release -----------------------------------------------------------------------------------------
    async def release_detailed(self, incident_id: str, region: str, now: float) -> ReleaseOutcome:
        """Release what the incident holds in its region and the neighbours it may have borrowed from."""
        outcome = ReleaseOutcome()
        for place in (region, *self.neighbours(region)):
            answer = await self._run("pool_release", place, now, {"incident_id": incident_id},
                                     [keys.pool_holds_of(place, incident_id)])
            outcome.released.extend(
                Released(r["resource_id"], r["kind"], place, float(r["held_seconds"]))
                for r in as_list(answer["released"]))
            outcome.served.extend(
                Served(s["incident_id"], s["request"], decode_resource(s["resource"]), place,
                       int(s["shortfall"]))
                for s in as_list(answer["served"]))
        return outcome

    async def release(self, incident_id: str, region: str, now: float) -> list[Served]:
        """Release everything the incident holds; returns the waiting incidents its resources went to."""
        return (await self.release_detailed(incident_id, region, now)).served

    # --- listing (last: the method's name shadows the builtin in the class body) --------------------------
    async def list(self, region: str | None = None, kind: str | None = None,
                   region_filter: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
        """Resources with their state and holder, by region, kind and id."""
        if kind is not None:
            check_kind(kind)
        if region is not None:
            regions = [region]
        else:
            regions = sorted(as_text(r) for r in await self.redis.smembers(keys.POOL_REGIONS))
        out: list[dict[str, Any]] = []
        for place in regions:
            if region_filter is not None and not region_filter(place):
                continue
            ids = sorted(as_text(i) for i in await self.redis.smembers(keys.pool_all(place)))
            async with self.redis.pipeline(transaction=False) as pipe:
                for rid in ids:
                    pipe.hgetall(keys.pool_resource(place, rid))
                rows = await pipe.execute()
            for raw in rows:
                if raw:
                    res = decode_resource(raw)
                    if kind is None or res["kind"] == kind:
                        out.append(res)
        out.sort(key=lambda r: (r["region"], r["kind"], r["resource_id"]))
        return out


def _result(answer: dict[str, Any], region: str, *, fallback: bool) -> PullResult:
    if answer["status"] == "held":
        return PullResult("held", decode_resource(answer["resource"]), region, int(answer["shortfall"]),
                          fallback, retry=bool(answer.get("retry")))
    return PullResult("queued", None, region, 0, False, position=answer.get("position"))
