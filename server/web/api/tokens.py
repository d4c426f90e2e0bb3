"""Tokens: an admin issues signed tokens for any role."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guide_app_api.errors import Invalid
from server.core.settings import ConfigError, parse_duration
from server.core.tokens import ROLES, issue
from server.web.auth import authenticate
from server.web.http import json_body, str_list


async def create_token(request: Request) -> Response:
    claims = authenticate(request, ("admin",))
    body = await json_body(request)
    role, sub = body.get("role"), body.get("sub")
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}", field="role")
    if not isinstance(sub, str) or not 0 < len(sub) <= 128:
        raise Invalid("sub must be a string of 1-128 characters", field="sub")
    tours, regions = str_list(body, "tours"), str_list(body, "regions")
    try:
        ttl = parse_duration(body.get("ttl", "12h"))
    except ConfigError as exc:
        raise Invalid(str(exc), field="ttl") from None
    if ttl <= 0:
        raise Invalid("ttl must be positive", field="ttl")
    if ttl > request.app.state.settings.limits.max_token_ttl:
        raise Invalid("ttl is longer than max_token_ttl", field="ttl")
    secret = request.app.state.settings.secret
    token = issue(secret, role=role, sub=sub, tours=tours, regions=regions, ttl=ttl, now=time.time())
    del claims
    return JSONResponse({"token": token})


routes = [
    Route("/api/tokens", create_token, methods=["POST"]),
]
