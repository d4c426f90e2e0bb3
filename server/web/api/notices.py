"""Notices: operators push risk warnings and progress notices to the phones of the tours concerned."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guide_app_api.errors import Forbidden, Invalid, NotFound
from server.core import keys
from server.db.scripts import RedisScripts
from server.storage.crisis import new_group, store_group, valid_choices
from server.storage.notices import publish
from server.web.auth import authenticate
from server.web.http import json_body, str_list

NOTICE_KINDS = ("risk_warning", "progress", "prompt", "followup", "info")


async def post_notice(request: Request) -> Response:
    """Operators push risk warnings and progress notices to the phones of the tours concerned."""
    claims = authenticate(request, ("admin", "supervisor"))
    body = await json_body(request)
    kind, title, text = body.get("kind", "info"), body.get("title"), body.get("body")
    audience = body.get("audience", "all")
    if kind not in NOTICE_KINDS:
        raise Invalid(f"kind must be one of {', '.join(NOTICE_KINDS)}", field="kind")
    if not isinstance(title, str) or not 0 < len(title) <= 200:
        raise Invalid("title must be a string of 1-200 characters", field="title")
    if not isinstance(text, str) or not 0 < len(text) <= 4000:
        raise Invalid("body must be a string of 1-4000 characters", field="body")
    if audience not in ("travellers", "guides", "all"):
        raise Invalid("audience must be travellers, guides or all", field="audience")
    tour_ids = str_list(body, "tour_ids", "tour ids")
    choices = body.get("choices")
    if choices is not None and not valid_choices(choices):
        raise Invalid("choices must be a list of 2-5 strings of 1-200 characters", field="choices")
    region = body.get("region")
    state = request.app.state
    if region:
        if not isinstance(region, str) or not claims.sees_region(region):
            raise Forbidden("outside your regions", field="region")
        now = time.time()
        tour_ids += [t.tour_id for t in await state.tours.list(lambda r: r == region)
                     if t.start <= t.local_today(now) <= t.end]
    if not tour_ids:
        raise Invalid("name tour_ids or a region with tours in progress", field="tour_ids")
    sent = []
    for tour_id in dict.fromkeys(tour_ids):
        tour = await state.tours.get(tour_id)
        if tour is None or not claims.sees_region(tour.region):
            raise NotFound(f"no tour {tour_id!r} in your regions", field="tour_ids")
    request_id = body.get("id") if isinstance(body.get("id"), str) else f"{time.time_ns()}"
    # §11: the whole send is one group (its tally and read receipts), stored before any phone can answer
    regions = {t.region for t in [await state.tours.get(x) for x in tour_ids] if t is not None}
    group = new_group(kind, claims, request_id, title, text, choices or [], audience, tour_ids, regions, time.time())
    await store_group(state.redis, group)
    for item in group["notices"]:
        tour_id, notice_id = item["tour_id"], item["notice_id"]
        push = {"type": "notice", "notice_id": notice_id, "kind": kind, "title": title, "body": text,
                "tour_id": tour_id, "audience": audience, "group_id": group["group_id"]}
        if choices:
            push["choices"] = choices
        seq = await publish(RedisScripts(state.redis), notice_id, push)
        sent.append({"tour_id": tour_id, "notice_id": notice_id, "seq": seq})
    return JSONResponse({"notices": sent, "group_id": group["group_id"]})


async def notice_reads(request: Request) -> Response:
    authenticate(request, ("admin", "supervisor"))
    count = await request.app.state.redis.xlen(keys.NOTICE_READS)
    return JSONResponse({"reads": count})


routes = [
    Route("/api/notices", post_notice, methods=["POST"]),
    Route("/api/notices/reads", notice_reads, methods=["GET"]),
]
