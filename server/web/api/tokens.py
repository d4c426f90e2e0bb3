"""Tokens: an admin issues signed tokens (never wider than its own regions) and revokes them by sub (§3, §13)."""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guide_app_api.errors import Forbidden, Invalid
from server.core.settings import ConfigError, parse_duration
from server.core.tokens import MAX_SUB, ROLES, Claims, issue
from server.web.auth import admin_scope, authenticate
from server.web.http import json_body, str_list


def _ttl(body: dict[str, Any], cap: float) -> float:
    """The requested lifetime in seconds, else :class:`Invalid` on ``ttl``."""
    raw = body.get("ttl", "12h")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise Invalid("ttl must be a finite duration", field="ttl")
    try:
        ttl = parse_duration(raw)
    except ConfigError as exc:
        raise Invalid(str(exc), field="ttl") from None
    if not 0 < ttl <= cap:
        raise Invalid(f"ttl must be positive and at most {cap:g} seconds ([limits] max_token_ttl)", field="ttl")
    return ttl


def _sub(body: dict[str, Any]) -> str:
    sub = body.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB:
        raise Invalid(f"sub must be a string of 1-{MAX_SUB} characters", field="sub")
    return sub


async def _within_scope(request: Request, claims: Claims, role: str, tours: list[str], regions: list[str]) -> None:
    """:class:`Forbidden` (403) when a scoped admin asks for a token wider than itself."""
    scope = admin_scope(claims)
    if scope is None:
        return
    if not regions and role in ("admin", "supervisor"):
        # an admin token naming no region acts everywhere; a scoped admin must say which of its regions
        raise Forbidden("name the regions, within your own", field="regions")
    wider = sorted(r for r in regions if r not in scope)
    if wider:
        raise Forbidden(f"regions {wider} are outside your regions", field="regions")
    for tour_id in tours:
        tour = await request.app.state.tours.get(tour_id)
        if tour is None or tour.region not in scope:
            raise Forbidden(f"tour {tour_id!r} is not in your regions", field="tours")


async def create_token(request: Request) -> Response:
    claims = authenticate(request, ("admin",))
    body = await json_body(request)
    role = body.get("role")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    sub = _sub(body)
    tours, regions = str_list(body, "tours"), str_list(body, "regions")
    settings = request.app.state.settings
    ttl = _ttl(body, settings.limits.max_token_ttl)
    await _within_scope(request, claims, role, tours, regions)
    token = issue(settings.secret, role=role, sub=sub, tours=tours, regions=regions, ttl=ttl, now=time.time())
    return JSONResponse({"token": token})


async def revoke_tokens(request: Request) -> Response:
    """Every token of ``sub`` (of ``role``, if given) issued until now is refused from now on, and its open
    connections close within a poll (``server.web.sessions``)."""
    claims = authenticate(request, ("admin",))
    body = await json_body(request)
    sub, role = _sub(body), body.get("role")
    if role is not None and role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    if admin_scope(claims) is not None:
        # a sub is not bound to a region: only an admin of every region may cut someone off everywhere
        raise Forbidden("only an admin of every region may revoke tokens")
    now_ms = int(time.time() * 1000)
    state = request.app.state
    await state.revocations.revoke(sub, role, now_ms, state.settings.limits.max_token_ttl)
    return JSONResponse({"sub": sub, "role": role, "revoked_at": now_ms})


routes = [
    Route("/api/tokens", create_token, methods=["POST"]),
    Route("/api/tokens/revoke", revoke_tokens, methods=["POST"]),
]
