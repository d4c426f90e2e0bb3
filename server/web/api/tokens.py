"""Tokens: an admin issues signed tokens for any role."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.core.settings import ConfigError, parse_duration
from server.core.tokens import ROLES, issue
from server.web.auth import authenticate
from server.web.http import error, json_body, str_list


async def create_token(request: Request) -> Response:
    claims = authenticate(request, ("admin",))
    body = await json_body(request)
    role, sub = body.get("role"), body.get("sub")
    if role not in ROLES:
        return error(400, "invalid", f"role must be one of {', '.join(ROLES)}", "role")
    if not isinstance(sub, str) or not 0 < len(sub) <= 128:
        return error(400, "invalid", "sub must be a string of 1-128 characters", "sub")
    try:
        tours, regions = str_list(body, "tours"), str_list(body, "regions")
    except ValueError as exc:
        return error(400, "invalid", f"{exc} must be a list of strings", str(exc))
    try:
        ttl = parse_duration(body.get("ttl", "12h"))
    except ConfigError as exc:
        return error(400, "invalid", str(exc), "ttl")
    if ttl <= 0:
        return error(400, "invalid", "ttl must be positive", "ttl")
    secret = request.app.state.settings.secret
    token = issue(secret, role=role, sub=sub, tours=tours, regions=regions, ttl=ttl, now=time.time())
    del claims
    return JSONResponse({"token": token})


routes = [
    Route("/api/tokens", create_token, methods=["POST"]),
]
