"""Safety checks (contract §11): start one for tours or a region, read its roll-up (JSON or CSV), and the board's
crisis panel (recent checks and notices with choices, with their live counts)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guide_app_api.errors import Forbidden, Invalid, NotFound
from server.core import keys
from server.core.settings import ConfigError, parse_duration
from server.core.tokens import Claims
from server.storage.crisis import (
    crisis_states,
    load_record,
    new_id,
    read_receipts,
    request_check_id,
    rollup,
    rollup_csv,
    rollup_json,
    start_check,
    tally,
)
from server.storage.tours import Tour
from server.web.auth import authenticate
from server.web.http import json_body, str_list

DEFAULT_DEADLINE = "30m"
DEFAULT_REPEAT = "5m"
MAX_DEADLINE = 7 * 86400.0
MAX_MESSAGE = 2000


def _duration(body: dict[str, Any], name: str, default: str) -> float:
    try:
        value = parse_duration(body.get(name, default))
    except ConfigError:
        raise ValueError(name) from None
    if not 0 < value <= MAX_DEADLINE:
        raise ValueError(name)
    return value


async def post_check(request: Request) -> Response:
    claims = authenticate(request, ("admin", "supervisor"))
    body = await json_body(request)
    message = body.get("message")
    if not isinstance(message, str) or not 0 < len(message.strip()) <= MAX_MESSAGE:
        raise Invalid(f"message must be a string of 1-{MAX_MESSAGE} characters", field="message")
    try:
        deadline = _duration(body, "deadline", DEFAULT_DEADLINE)
        repeat = _duration(body, "repeat", DEFAULT_REPEAT)
    except ValueError as exc:
        raise Invalid(f'{exc} must be a duration like "30m" or "90s", up to 7 days', field=str(exc)) from None
    tour_ids = str_list(body, "tour_ids", "tour ids")
    request_id = body.get("id")
    if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 64):
        raise Invalid("id must be a string of 1-64 characters", field="id")
    region = body.get("region")
    state = request.app.state
    now = time.time()
    if region is not None:
        if not isinstance(region, str) or not region:
            raise Invalid("region must be a region id", field="region")
        if not claims.sees_region(region):
            raise Forbidden(f"region {region!r} is outside your regions", field="region")
        tour_ids += [t.tour_id for t in await state.tours.list(lambda r: r == region)
                     if t.start <= t.local_today(now) <= t.end]
    tour_ids = list(dict.fromkeys(tour_ids))
    if not tour_ids:
        raise Invalid("name tour_ids, or a region with tours in progress", field="tour_ids")
    tours: list[Tour] = []
    for tour_id in tour_ids:
        tour = await state.tours.get(tour_id)
        if tour is None:
            raise NotFound(f"no tour {tour_id!r}", field="tour_ids")
        if not claims.sees_region(tour.region):
            raise Forbidden(f"tour {tour_id!r} is outside your regions", field="tour_ids")
        tours.append(tour)
    sender = f"{claims.role}:{claims.sub}"
    check_id = request_check_id(sender, request_id) if request_id else new_id("chk")
    check = {"check_id": check_id, "message": message.strip(), "created_at": now, "deadline": now + deadline,
             "repeat": repeat, "tour_ids": tour_ids, "regions": sorted({t.region for t in tours}), "by": sender}
    # through the pipelined writer: every tour's step and push in one round trip, in order
    check = await start_check(state.redis, state.writer, state.settings.storage.shards, check)
    return JSONResponse({"check_id": check["check_id"]})


def visible_tours(claims: Claims, record: dict[str, Any]) -> list[str] | None:
    """The tours of a check or group this caller may read: a supervisor or admin who could have started it reads
    all of them; a guide, its own tours among them. None: not this caller's."""
    if claims.role == "guide":
        mine = [t for t in record["tour_ids"] if t in claims.tours]
        return mine or None
    if all(claims.sees_region(r) for r in record.get("regions", ())):
        return list(record["tour_ids"])
    return None


async def get_check(request: Request) -> Response:
    claims = authenticate(request, ("admin", "supervisor", "guide"))
    check_id = request.path_params["check_id"]
    state = request.app.state
    check = await load_record(state.redis, keys.safety_check(check_id))
    if check is None:
        raise NotFound(f"no safety check {check_id!r}", field="check_id")
    tour_ids = visible_tours(claims, check)
    if tour_ids is None:
        raise Forbidden("that check is not for your tours or regions", field="check_id")
    check = {**check, "tour_ids": tour_ids}
    if request.query_params.get("format") == "csv":
        return Response(rollup_csv(await check_rollup(request, check)), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="safety-check-{check_id}.csv"'})
    states, tours = await _read(request, check)
    return Response(rollup_json(check, tours, states), media_type="application/json")


async def check_rollup(request: Request, check: dict[str, Any], *, people: bool = True) -> dict[str, Any]:
    states, tours = await _read(request, check)
    return rollup(check, tours, states, people=people)


async def _read(request: Request, check: dict[str, Any]) -> tuple[Any, dict[str, Tour | None]]:
    state = request.app.state
    states = await crisis_states(state.redis, state.settings.storage.shards, check["tour_ids"],
                                 check_id=check["check_id"])
    return states, {tour_id: await state.tours.get(tour_id) for tour_id in check["tour_ids"]}


async def group_tally(request: Request, group: dict[str, Any], tour_ids: list[str]) -> dict[str, Any]:
    state = request.app.state
    group = {**group, "notices": [n for n in group["notices"] if n["tour_id"] in tour_ids]}
    notice_ids = {n["tour_id"]: n["notice_id"] for n in group["notices"]}
    states = await crisis_states(state.redis, state.settings.storage.shards, list(notice_ids),
                                 notice_ids=notice_ids)
    tours = {tour_id: await state.tours.get(tour_id) for tour_id in notice_ids}
    reads = await read_receipts(state.redis, list(notice_ids.values()))
    return tally(group, tours, states, reads)


async def get_group(request: Request) -> Response:
    """``GET /api/notices/{group_id}``: a notice with choices, its recipients, reads and tally."""
    claims = authenticate(request, ("admin", "supervisor", "guide"))
    group_id = request.path_params["group_id"]
    group = await load_record(request.app.state.redis, keys.notice_group(group_id))
    if group is None:
        raise NotFound(f"no notice group {group_id!r}", field="group_id")
    tour_ids = visible_tours(claims, group)
    if tour_ids is None:
        raise Forbidden("that notice is not for your tours or regions", field="group_id")
    return JSONResponse(await group_tally(request, group, tour_ids))


async def crisis_panel(request: Request) -> Response:
    """What the board's crisis panel shows: the latest checks and notices with choices in the caller's regions,
    with their counts per tour (people lists are in each check's own roll-up and CSV)."""
    claims = authenticate(request, ("admin", "supervisor"))
    redis = request.app.state.redis
    recent = await redis.zrevrange(keys.CRISIS_RECENT, 0, 19)
    checks, groups = [], []
    for raw in recent:
        kind, _, ident = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
        key = keys.safety_check(ident) if kind == "check" else keys.notice_group(ident)
        record = await load_record(redis, key)
        tour_ids = visible_tours(claims, record) if record else None
        if record is None or tour_ids is None:
            continue
        if kind == "check" and len(checks) < 5:
            checks.append(await check_rollup(request, {**record, "tour_ids": tour_ids}, people=False))
        elif kind == "group" and len(groups) < 5:
            groups.append(await group_tally(request, record, tour_ids))
    return JSONResponse({"checks": checks, "groups": groups})


routes = [
    Route("/api/safety-checks", post_check, methods=["POST"]),
    Route("/api/safety-checks/{check_id}", get_check, methods=["GET"]),
    Route("/api/crisis", crisis_panel, methods=["GET"]),
    Route("/api/notices/{group_id}", get_group, methods=["GET"]),  # after notices.py's /api/notices/reads
]
