"""Joining and token refresh over HTTP (contract §9).

``POST/GET /api/tours/{tour_id}/join``: a guide of the tour, a supervisor of its region or an admin issues (POST)
or shows (GET: issues only when there is none) the tour's join code. ``POST /api/join``: a traveller trades a code
for a token. ``POST /api/tokens/refresh``: any token that has not expired, for a fresh one with the same claims.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guide_app_api.errors import Conflict, Invalid, NotFound
from server.core.settings import ConfigError, parse_duration
from server.core.tokens import Claims, issue
from server.storage import joins
from server.storage.crisis import record_person
from server.storage.tours import Tour
from server.web.auth import authenticate
from server.web.errors import error_response
from server.web.http import json_body

MAX_NAME = 80


def _may_issue(claims: Claims, tour: Tour) -> bool:
    if claims.role == "guide":
        return claims.has_tour(tour.tour_id)
    return claims.sees_region(tour.region)  # supervisor or admin


def _base(request: Request) -> str:
    configured = request.app.state.settings.server.base_url
    return configured or str(request.base_url).rstrip("/")


async def tour_join(request: Request) -> Response:
    claims = authenticate(request, ("guide", "supervisor", "admin"))
    state = request.app.state
    tour = await state.tours.get(request.path_params["tour_id"])
    if tour is None or not _may_issue(claims, tour):
        raise NotFound("no such tour")
    now = time.time()
    max_ttl = state.settings.limits.max_token_ttl
    expires_at = joins.phone_expiry([tour], now, max_ttl)
    if request.method == "GET":
        code = await joins.current_code(state.redis, tour.tour_id, expires_at, now)
        return JSONResponse(code.to_wire(_base(request)))
    body = await json_body(request)
    if "ttl" in body:
        try:
            ttl = parse_duration(body["ttl"])
        except ConfigError as exc:
            raise Invalid(str(exc), field="ttl") from None
        if not 0 < ttl <= max_ttl:
            raise Invalid("ttl must be positive and at most max_token_ttl", field="ttl")
        expires_at = now + ttl
    if expires_at <= now:
        raise Conflict("the tour is over: no one can join it any more")
    code = await joins.issue_code(state.redis, tour.tour_id, expires_at, now)
    return JSONResponse(code.to_wire(_base(request)))


def _address(request: Request) -> str:
    # uvicorn's proxy-headers middleware has already put the forwarded address here when the proxy is trusted
    return request.client.host if request.client else "unknown"


async def join_tour(request: Request) -> Response:
    state = request.app.state
    now = time.time()
    if not await joins.allow_join(state.redis, _address(request), now):
        return error_response(429, "rate_limited", "too many joins from this address: retry in a minute",
                              headers={"Retry-After": "60"})
    body = await json_body(request)
    code_text, name = body.get("code"), body.get("name", "")
    if not isinstance(code_text, str):
        raise Invalid("code must be a string", field="code")
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise Invalid(f"name must be a string of at most {MAX_NAME} characters", field="name")
    code = await joins.find_code(state.redis, code_text)
    tour = await state.tours.get(code.tour_id) if code else None
    if code is None or tour is None or code.expires_at <= now:
        raise NotFound("this join code is unknown or no longer works")
    expires_at = joins.phone_expiry([tour], now, state.settings.limits.max_token_ttl)
    sub = f"j-{joins.new_code()}"
    token = issue(state.settings.secret, role="traveller", sub=sub, tours=[tour.tour_id], ttl=expires_at - now,
                  now=now)
    await joins.record_joined(state.redis, tour.tour_id, sub, name.strip())
    # from now on one of the tour's people: a safety check counts them (§11), and so do the second prompt and the
    # response check (§10: the travellers who use the app), under the name they gave
    await record_person(state.writer, state.settings.storage.shards, tour.tour_id, sub, name.strip() or None, now)
    # the tour's calendar with the token: a phone that joins and rates before it reaches GET /api/tours/{id} rates
    # the tour's day, not its own (a phone a timezone behind would file the rating under yesterday)
    calendar = {"timezone": tour.timezone, "start": tour.start.isoformat(), "end": tour.end.isoformat()}
    return JSONResponse({"token": token, "tour_id": tour.tour_id, "sub": sub, "tour": calendar})


async def refresh_token(request: Request) -> Response:
    claims = authenticate(request, ("traveller", "guide", "supervisor", "admin"))
    state = request.app.state
    now = time.time()
    max_ttl = state.settings.limits.max_token_ttl
    if claims.role in ("traveller", "guide"):
        tours: list[Any] = [t for t in [await state.tours.get(t) for t in sorted(claims.tours)] if t is not None]
        expires_at = joins.phone_expiry(tours, now, max_ttl)
    else:
        expires_at = now + min(joins.STAFF_REFRESH_TTL, max_ttl)
    if expires_at <= now:
        raise HTTPException(401, "the tour is over: this token cannot be renewed")
    token = issue(state.settings.secret, role=claims.role, sub=claims.sub, tours=claims.tours,
                  regions=claims.regions, ttl=expires_at - now, now=now)
    return JSONResponse({"token": token, "expires_at": joins.iso(expires_at)})


routes = [
    Route("/api/tours/{tour_id}/join", tour_join, methods=["GET", "POST"]),
    Route("/api/join", join_tour, methods=["POST"]),
    Route("/api/tokens/refresh", refresh_token, methods=["POST"]),
]
