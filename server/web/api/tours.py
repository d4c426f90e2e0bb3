"""Tours: admins register them; supervisors list those of their regions with live figures; phones read their own."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guide_app_api.errors import NotFound
from server.storage.tours import validate_tour
from server.web.auth import authenticate, require_region
from server.web.http import json_body
from server.web.live import tour_live


async def put_tour(request: Request) -> Response:
    claims = authenticate(request, ("admin",))
    tour_id = request.path_params["tour_id"]
    tour = validate_tour(tour_id, await json_body(request))  # TourInvalid: 400 by the app's error path
    require_region(claims, tour.region)
    existing = await request.app.state.tours.get(tour_id)
    if existing is not None:  # nor may a scoped admin take a tour away from another region
        require_region(claims, existing.region)
    await request.app.state.tours.put(tour, time.time(), sender=f"admin:{claims.sub}")
    return JSONResponse(tour.to_dict())


async def get_tour(request: Request) -> Response:
    claims = authenticate(request, ("admin", "supervisor", "guide", "traveller"))
    tour = await request.app.state.tours.get(request.path_params["tour_id"])
    if tour is None or not _may_see(claims, tour):
        raise NotFound("no such tour")
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


routes = [
    Route("/api/tours", list_tours, methods=["GET"]),
    Route("/api/tours/{tour_id}", put_tour, methods=["PUT"]),
    Route("/api/tours/{tour_id}", get_tour, methods=["GET"]),
]
