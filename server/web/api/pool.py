"""Emergency pool HTTP API (contract §7): resources in, listing out, dispatch confirmations.

Every handler authenticates first (``server.web.auth``), then makes one :class:`alerts.pool.PoolStore` call.
A refusal is raised (the pool's ``PoolError``, or the protocol's) and answered by the app's error path
(``server.web.errors``): 400 ``invalid``, 403 ``forbidden``, 404 ``not_found``, 409 ``conflict``.
The incident pull and release endpoints live in ``server/web/api/incidents.py`` (they need the incident's tour).
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.pool import PoolStore
from alerts.rules.pool_model import check_kind
from guide_app_api.errors import Forbidden, NotFound
from server.core.tokens import Claims
from server.web.auth import admin_scope, authenticate, require_region
from server.web.http import json_body


def _store(request: Request) -> PoolStore:
    """The app's one PoolStore (made by the lifespan)."""
    return request.app.state.pool


async def _require_own(request: Request, claims: Claims, resource_id: str) -> None:
    """A scoped admin may change only the resources of its regions (403), wherever it would move them."""
    if admin_scope(claims) is None:
        return
    region = await _store(request).region_of(resource_id)
    if region is not None:
        require_region(claims, region)


async def put_resource(request: Request) -> Response:
    claims = authenticate(request, ("admin",))
    body = await json_body(request)
    # the path names the resource; a different id in the body is not a second way to say it
    body["resource_id"] = request.path_params["resource_id"]
    if admin_scope(claims) is not None:
        require_region(claims, body.get("region"))
        await _require_own(request, claims, body["resource_id"])
    resource = await _store(request).put(body, time.time())
    return JSONResponse(resource)


async def delete_resource(request: Request) -> Response:
    claims = authenticate(request, ("admin",))
    resource_id = request.path_params["resource_id"]
    region = request.query_params.get("region") or None
    await _require_own(request, claims, resource_id)
    await _store(request).retire(resource_id, region, time.time())
    return JSONResponse({"resource_id": resource_id, "retired": True})


async def list_pool(request: Request) -> Response:
    claims = authenticate(request, ("admin", "supervisor"))
    region = request.query_params.get("region") or None
    kind = request.query_params.get("kind") or None
    if kind is not None:
        check_kind(kind)
    if region is not None and not claims.sees_region(region):
        raise Forbidden("outside your regions", field="region")
    resources = await _store(request).list(region, kind, claims.sees_region)
    return JSONResponse({"resources": resources})


async def dispatch_resource(request: Request) -> Response:
    """A supervisor (or the partner, through an operator) confirms a held resource is on its way."""
    claims = authenticate(request, ("admin", "supervisor"))
    resource_id = request.path_params["resource_id"]
    store = _store(request)
    region = await store.region_of(resource_id)
    # a resource outside the caller's regions is answered as if it did not exist
    if region is None or not claims.sees_region(region):
        raise NotFound(f"no resource {resource_id!r}")
    resource = await store.dispatch(resource_id, region, f"{claims.role}:{claims.sub}", time.time())
    return JSONResponse(resource)


routes = [
    Route("/api/pool", list_pool, methods=["GET"]),
    Route("/api/pool/resources/{resource_id}", put_resource, methods=["PUT"]),
    Route("/api/pool/resources/{resource_id}", delete_resource, methods=["DELETE"]),
    Route("/api/resources/{resource_id}/dispatch", dispatch_resource, methods=["POST"]),
]
