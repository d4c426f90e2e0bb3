"""The alerts over HTTP: list, read (with the audit trail), and act (ack, resolve, assign).

A supervisor sees and acts only on its token's regions; an admin on all. Errors are JSON
``{"error": code, "message": ..., "field": ...}`` with the status of their code.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.store import STATUSES, AlertStore
from guide_app_api.errors import Invalid, NotFound, ProtocolError, Unavailable
from server.core.tokens import Claims
from server.web.auth import authenticate

ROLES = ("supervisor", "admin")
HTTP_STATUS = {"invalid": 400, "bad_frame": 400, "forbidden": 403, "not_found": 404, "conflict": 409,
               "rate_limited": 429, "unavailable": 503}
MAX_NOTE = 2000
MAX_ASSIGNEE = 64


def error_response(exc: ProtocolError) -> JSONResponse:
    return JSONResponse({"error": exc.code, "message": exc.message, "field": exc.field},
                        status_code=HTTP_STATUS.get(exc.code, 400))


def _store(request: Request) -> AlertStore:
    return request.app.state.alert_store


def _statuses(raw: str | None) -> set[str]:
    if not raw:
        return {"open", "acknowledged"}
    wanted = {part.strip() for part in raw.split(",") if part.strip()}
    unknown = wanted - set(STATUSES)
    if unknown or not wanted:
        raise Invalid(f"status must be a comma list of {', '.join(STATUSES)}", field="status")
    return wanted


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the body is not JSON", field="body") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", field="body")
    return body


def _text(body: dict[str, Any], name: str, limit: int, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Invalid(f"{name} must be a non-empty string of at most {limit} characters", field=name)
    return value.strip()


async def list_alerts(request: Request) -> Response:
    claims = authenticate(request, ROLES)
    params = request.query_params
    try:
        alerts = await _store(request).list(_statuses(params.get("status")), claims.sees_region,
                                            params.get("region") or None, params.get("kind") or None)
    except ProtocolError as exc:
        return error_response(exc)
    except RedisError:
        return error_response(Unavailable("storage unavailable: retry later"))
    return JSONResponse({"alerts": alerts})


async def get_alert(request: Request) -> Response:
    claims = authenticate(request, ROLES)
    alert_id = request.path_params["alert_id"]
    try:
        alert = await _store(request).get(alert_id)
        # another region's alert answers as if it did not exist: not this supervisor's to know
        if alert is None or not claims.sees_region(alert["region"]):
            raise NotFound(f"no alert {alert_id!r}", field="alert_id")
        alert["audit"] = await _store(request).audit(alert_id)
    except ProtocolError as exc:
        return error_response(exc)
    except RedisError:
        return error_response(Unavailable("storage unavailable: retry later"))
    return JSONResponse(alert)


async def _act(request: Request, claims: Claims, action: str) -> Response:
    alert_id = request.path_params["alert_id"]
    try:
        body = await _body(request)
        note = _text(body, "note", MAX_NOTE, required=False)
        assignee = _text(body, "assignee", MAX_ASSIGNEE, required=action == "assign")
        alert = await _store(request).act(
            alert_id, action, f"{claims.role}:{claims.sub}", time.time(), note,
            assignee if action == "assign" else None, regions_check=claims.sees_region)
    except ProtocolError as exc:
        return error_response(exc)
    except RedisError:
        return error_response(Unavailable("storage unavailable: retry later"))
    return JSONResponse(alert)


async def ack_alert(request: Request) -> Response:
    return await _act(request, authenticate(request, ROLES), "ack")


async def resolve_alert(request: Request) -> Response:
    return await _act(request, authenticate(request, ROLES), "resolve")


async def assign_alert(request: Request) -> Response:
    return await _act(request, authenticate(request, ROLES), "assign")


routes: list[Any] = [
    Route("/api/alerts", list_alerts, methods=["GET"]),
    Route("/api/alerts/{alert_id}", get_alert, methods=["GET"]),
    Route("/api/alerts/{alert_id}/ack", ack_alert, methods=["POST"]),
    Route("/api/alerts/{alert_id}/resolve", resolve_alert, methods=["POST"]),
    Route("/api/alerts/{alert_id}/assign", assign_alert, methods=["POST"]),
]
