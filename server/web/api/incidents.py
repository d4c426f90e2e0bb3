"""Incident actions from the HTTP side: resolve (the same event a guide's resolving update makes), pull, release.

An HTTP resolve writes an ``incident_update`` event through the same ingest script as a phone, so the watcher
folds it in stream order and does what a guide's resolution does: resolves the incident's alerts and returns its
holds to the pool.
"""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.pool import PoolStore, PullResult
from alerts.rules.aggregates import pool_exhausted
from alerts.rules.pool_model import check_kind
from guide_app_api.errors import Conflict, Invalid, NotFound, ProtocolError
from guide_app_api.scope import incident_tour
from server.core.tokens import Claims
from server.db.scripts import RedisScripts
from server.storage.notices import dispatched, incident_push, publish
from server.web.auth import authenticate
from server.web.http import json_body


async def _incident_scope(request: Request) -> tuple[str, Any]:
    """(incident_id, tour) for a supervisor of the incident's region, else NotFound."""
    claims = authenticate(request, ("admin", "supervisor"))
    incident_id = request.path_params["incident_id"]
    tour = await _incident_tour(request, claims, incident_id)
    if await request.app.state.incidents.status(tour.tour_id, incident_id) is None:
        raise NotFound("no such incident")
    return incident_id, tour


async def _incident_tour(request: Request, claims: Claims, incident_id: str) -> Any:
    """The incident's tour when the caller sees its region; a malformed id is simply not an incident of ours."""
    try:
        tour_id = incident_tour(incident_id)
    except ProtocolError:
        raise NotFound("no such incident") from None
    tour = await request.app.state.tours.get(tour_id)
    if tour is None or not claims.sees_region(tour.region):
        raise NotFound("no such incident")
    return tour


async def pull(request: Request) -> Response:
    """A supervisor pulls a resource by hand: ``{"kind", "capacity"}``."""
    incident_id, tour = await _incident_scope(request)
    body = await json_body(request)
    kind = check_kind(body.get("kind"))
    capacity = body.get("capacity", 1)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 1 <= capacity <= 1000:
        raise Invalid("capacity must be an integer 1-1000", field="capacity")
    pool: PoolStore = request.app.state.pool
    request_key = f"manual:{kind}:{body.get('id') or time.time_ns()}"
    now = time.time()
    result = await pool.pull_with_fallback(incident_id, tour.region, kind, capacity, request_key, None, now)
    await _announce(request, incident_id, tour.region, kind, request_key, result, now)
    return JSONResponse({"status": result.status, "resource": result.resource, "region": result.region,
                         "shortfall": result.shortfall, "fallback": result.fallback})


async def release(request: Request) -> Response:
    incident_id, tour = await _incident_scope(request)
    served = await request.app.state.pool.release(incident_id, tour.region, time.time())
    for item in served:
        # a waiting incident got a freed resource: tell its guides (once per hold: held_since names it)
        push_id = (f"incident:served:{item.incident_id}:{item.request}:{item.resource['resource_id']}:"
                   f"{item.resource.get('held_since')}")
        await tell_guides(request.app.state.redis, push_id, item.incident_id, item.resource, item.region,
                          fallback=False, shortfall=item.shortfall)
    return JSONResponse({"released": True, "served": [
        {"incident_id": s.incident_id, "resource": s.resource, "region": s.region} for s in served]})


async def tell_guides(redis: aioredis.Redis, push_id: str, incident_id: str, resource: dict[str, Any] | None,
                      region: str, *, fallback: bool, shortfall: int) -> None:
    """The push the watcher's pulls make too: the incident's guides hear what was dispatched (partner, contact)."""
    await publish(RedisScripts(redis), push_id, incident_push(
        incident_tour(incident_id), dispatched(incident_id, resource, region, fallback=fallback, shortfall=shortfall)))


async def _announce(request: Request, incident_id: str, region: str, kind: str, request_key: str,
                    result: PullResult, now: float) -> None:
    """A manual pull is told like an automatic one: the guides hear what was sent, or pool_exhausted counts it."""
    state = request.app.state
    token = f"manual-pull:{incident_id}:{request_key}"
    if result.status == "held":
        await tell_guides(state.redis, f"incident:{token}", incident_id, result.resource, result.region,
                          fallback=result.fallback, shortfall=result.shortfall)
        return
    waiting = await state.pool.waiting(region, kind)
    await state.alert_store.upsert(pool_exhausted(region, kind, waiting, incident_id), token, now)


async def resolve_incident(request: Request) -> Response:
    """A supervisor resolves an incident: the same `incident_update` event a guide's resolving update makes."""
    claims = authenticate(request, ("admin", "supervisor"))
    incident_id = request.path_params["incident_id"]
    body = await json_body(request)
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise Invalid("note must be a string of at most 2000 characters", field="note")
    tour = await _incident_tour(request, claims, incident_id)
    tour_id = tour.tour_id
    now = time.time()
    event = {"type": "incident_update", "tour_id": tour_id, "incident_id": incident_id, "status": "resolved",
             "alternatives": None, "note": note, "sender": f"{claims.role}:{claims.sub}",
             "msg_id": f"resolve:{incident_id}", "at": now, "received_at": now}
    outcome = await request.app.state.incidents.append_update(tour_id, incident_id, event, now)
    if outcome == "not_found":
        raise NotFound("no such incident")
    if outcome == "closed":
        raise Conflict("the incident is already resolved")
    return JSONResponse({"incident_id": incident_id, "status": "resolved", "seq": outcome})


routes = [
    Route("/api/incidents/{incident_id}/resolve", resolve_incident, methods=["POST"]),
    Route("/api/incidents/{incident_id}/pull", pull, methods=["POST"]),
    Route("/api/incidents/{incident_id}/release", release, methods=["POST"]),
]
