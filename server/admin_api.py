"""Admin and operator HTTP API: tokens, tours, incidents, notices.

Every handler authenticates first (``server.auth``), validates with pure code, then makes one storage call.
Errors are JSON: ``{"error": code, "message": ..., "field": ...}``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guide_app_api.scope import incident_tour
from server import keys
from server.auth import authenticate
from server.http import error, json_body
from server.live import tour_live
from server.push import publish
from server.scripts import RedisScripts
from server.settings import ConfigError, parse_duration
from server.tokens import ROLES, issue
from server.tours import TourInvalid, validate_tour

NOTICE_KINDS = ("risk_warning", "progress", "prompt", "followup", "info")


def _str_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(name)
    return value


async def create_token(request: Request) -> Response:
    claims = authenticate(request, ("admin",))
    body = await json_body(request)
    role, sub = body.get("role"), body.get("sub")
    if role not in ROLES:
        return error(400, "invalid", f"role must be one of {', '.join(ROLES)}", "role")
    if not isinstance(sub, str) or not 0 < len(sub) <= 128:
        return error(400, "invalid", "sub must be a string of 1-128 characters", "sub")
    try:
        tours, regions = _str_list(body, "tours"), _str_list(body, "regions")
    except ValueError as exc:
        return error(400, "invalid", f"{exc} must be a list of strings", str(exc))
    try:
        ttl = parse_duration(body.get("ttl", "12h"))
    except ConfigError as exc:
        return error(400, "invalid", str(exc), "ttl")
    if ttl <= 0:
        return error(400, "invalid", "ttl must be positive", "ttl")
    if ttl > request.app.state.settings.limits.max_token_ttl:
        return error(400, "invalid", "ttl is longer than max_token_ttl", "ttl")
    secret = request.app.state.settings.secret
    token = issue(secret, role=role, sub=sub, tours=tours, regions=regions, ttl=ttl, now=time.time())
    del claims
    return JSONResponse({"token": token})


async def put_tour(request: Request) -> Response:
    claims = authenticate(request, ("admin",))
    tour_id = request.path_params["tour_id"]
    try:
        tour = validate_tour(tour_id, await json_body(request))
    except TourInvalid as exc:
        return error(400, "invalid", exc.message, exc.field)
    await request.app.state.tours.put(tour, time.time(), sender=f"admin:{claims.sub}")
    return JSONResponse(tour.to_dict())


async def get_tour(request: Request) -> Response:
    claims = authenticate(request, ("admin", "supervisor", "guide", "traveller"))
    tour = await request.app.state.tours.get(request.path_params["tour_id"])
    if tour is None or not _may_see(claims, tour):
        return error(404, "not_found", "no such tour")
    body = tour.to_dict()
    body["live"] = await tour_live(request.app.state, tour, time.time())
    return JSONResponse(body)


async def list_tours(request: Request) -> Response:
    claims = authenticate(request, ("admin", "supervisor"))
    now = time.time()
    active = request.query_params.get("active") in ("1", "true", "yes")
    region = request.query_params.get("region")
    tours = await request.app.state.tours.list(claims.sees_region)
    out = []
    regions: dict[str, Any] = {}  # each region's alerts and pool, read once for all its tours
    for tour in tours:
        if region and tour.region != region:
            continue
        if active and not tour.start <= tour.local_today(now) <= tour.end:
            continue
        body = tour.to_dict()
        body["live"] = await tour_live(request.app.state, tour, now, regions)
        out.append(body)
    return JSONResponse({"tours": out})


def _may_see(claims: Any, tour: Any) -> bool:
    if claims.role in ("traveller", "guide"):
        return claims.has_tour(tour.tour_id)
    return claims.sees_region(tour.region)


async def resolve_incident(request: Request) -> Response:
    """A supervisor resolves an incident: the same `incident_update` event a guide's resolving update makes."""
    claims = authenticate(request, ("admin", "supervisor"))
    incident_id = request.path_params["incident_id"]
    body = await json_body(request)
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        return error(400, "invalid", "note must be a string of at most 2000 characters", "note")
    state = request.app.state
    try:
        tour_id = incident_tour(incident_id)
    except Exception:  # noqa: BLE001 - any malformed id is simply not an incident of ours
        return error(404, "not_found", "no such incident")
    tour = await state.tours.get(tour_id)
    if tour is None or not claims.sees_region(tour.region):
        return error(404, "not_found", "no such incident")
    now = time.time()
    event = {"type": "incident_update", "tour_id": tour_id, "incident_id": incident_id, "status": "resolved",
             "alternatives": None, "note": note, "sender": f"{claims.role}:{claims.sub}",
             "msg_id": f"resolve:{incident_id}", "at": now, "received_at": now}
    outcome = await state.incidents.append_update(tour_id, incident_id, event, now)
    if outcome == "not_found":
        return error(404, "not_found", "no such incident")
    if outcome == "closed":
        return error(409, "conflict", "the incident is already resolved")
    return JSONResponse({"incident_id": incident_id, "status": "resolved", "seq": outcome})


async def post_notice(request: Request) -> Response:
    """Operators push risk warnings and progress notices to the phones of the tours concerned."""
    claims = authenticate(request, ("admin", "supervisor"))
    body = await json_body(request)
    kind, title, text = body.get("kind", "info"), body.get("title"), body.get("body")
    audience = body.get("audience", "all")
    if kind not in NOTICE_KINDS:
        return error(400, "invalid", f"kind must be one of {', '.join(NOTICE_KINDS)}", "kind")
    if not isinstance(title, str) or not 0 < len(title) <= 200:
        return error(400, "invalid", "title must be a string of 1-200 characters", "title")
    if not isinstance(text, str) or not 0 < len(text) <= 4000:
        return error(400, "invalid", "body must be a string of 1-4000 characters", "body")
    if audience not in ("travellers", "guides", "all"):
        return error(400, "invalid", "audience must be travellers, guides or all", "audience")
    try:
        tour_ids = _str_list(body, "tour_ids")
    except ValueError:
        return error(400, "invalid", "tour_ids must be a list of tour ids", "tour_ids")
    region = body.get("region")
    state = request.app.state
    if region:
        if not isinstance(region, str) or not claims.sees_region(region):
            return error(403, "forbidden", "outside your regions", "region")
        now = time.time()
        tour_ids += [t.tour_id for t in await state.tours.list(lambda r: r == region)
                     if t.start <= t.local_today(now) <= t.end]
    if not tour_ids:
        return error(400, "invalid", "name tour_ids or a region with tours in progress", "tour_ids")
    sent = []
    for tour_id in dict.fromkeys(tour_ids):
        tour = await state.tours.get(tour_id)
        if tour is None or not claims.sees_region(tour.region):
            return error(404, "not_found", f"no tour {tour_id!r} in your regions", "tour_ids")
    request_id = body.get("id") if isinstance(body.get("id"), str) else f"{time.time_ns()}"
    for tour_id in dict.fromkeys(tour_ids):
        notice_id = f"{kind}:{claims.sub}:{request_id}:{tour_id}"
        push = {"type": "notice", "notice_id": notice_id, "kind": kind, "title": title, "body": text,
                "tour_id": tour_id, "audience": audience}
        seq = await publish(RedisScripts(state.redis), notice_id, push)
        sent.append({"tour_id": tour_id, "notice_id": notice_id, "seq": seq})
    return JSONResponse({"notices": sent})


async def notice_reads(request: Request) -> Response:
    authenticate(request, ("admin", "supervisor"))
    count = await request.app.state.redis.xlen(keys.NOTICE_READS)
    return JSONResponse({"reads": count})


routes = [
    Route("/api/tokens", create_token, methods=["POST"]),
    Route("/api/tours", list_tours, methods=["GET"]),
    Route("/api/tours/{tour_id}", put_tour, methods=["PUT"]),
    Route("/api/tours/{tour_id}", get_tour, methods=["GET"]),
    Route("/api/incidents/{incident_id}/resolve", resolve_incident, methods=["POST"]),
    Route("/api/notices", post_notice, methods=["POST"]),
    Route("/api/notices/reads", notice_reads, methods=["GET"]),
]
