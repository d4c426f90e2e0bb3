"""The alerts over HTTP: list, read (with the audit trail), and act (ack, resolve, assign).

A supervisor sees and acts only on its token's regions; an admin on all. Refusals are raised (the alert store's
``ProtocolError``) and answered by the app's error path (``server.web.errors``).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.store import STATUSES, AlertStore
from guide_app_api.errors import Invalid, NotFound
from server.core.tokens import Claims
from server.web.auth import authenticate
from server.web.http import json_body

ROLES = ("supervisor", "admin")
MAX_NOTE = 2000
MAX_ASSIGNEE = 64


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
    alerts = await _store(request).list(_statuses(params.get("status")), claims.sees_region,
                                        params.get("region") or None, params.get("kind") or None)
    return JSONResponse({"alerts": alerts})


async def get_alert(request: Request) -> Response:
    claims = authenticate(request, ROLES)
    alert_id = request.path_params["alert_id"]
    alert = await _store(request).get(alert_id)
    # another region's alert answers as if it did not exist: not this supervisor's to know
    if alert is None or not claims.sees_region(alert["region"]):
        raise NotFound(f"no alert {alert_id!r}", field="alert_id")
    alert["audit"] = await _store(request).audit(alert_id)
    return JSONResponse(alert)


async def _act(request: Request, claims: Claims, action: str) -> Response:
    alert_id = request.path_params["alert_id"]
    body = await json_body(request)
    note = _text(body, "note", MAX_NOTE, required=False)
    assignee = _text(body, "assignee", MAX_ASSIGNEE, required=action == "assign")
    alert = await _store(request).act(
        alert_id, action, f"{claims.role}:{claims.sub}", time.time(), note,
        assignee if action == "assign" else None, regions_check=claims.sees_region)
    return JSONResponse(alert)


async def ack_alert(request: Request) -> Response:
    return await _act(request, authenticate(request, ROLES), "ack")


async def resolve_alert(request: Request) -> Response:
    return await _act(request, authenticate(request, ROLES), "resolve")


async def assign_alert(request: Request) -> Response:
    return await _act(request, authenticate(request, ROLES), "assign")


async def followup_alert(request: Request) -> Response:
    """``POST /api/alerts/{alert_id}/followup`` ``{"satisfied": bool, "note"}``: a follow-up made by telephone."""
    claims = authenticate(request, ROLES)
    body = await json_body(request)
    satisfied = body.get("satisfied")
    if type(satisfied) is not bool:
        raise Invalid("satisfied must be true or false", field="satisfied")
    note = _text(body, "note", MAX_NOTE, required=False)
    alert = await _store(request).record_followup(request.path_params["alert_id"], f"{claims.role}:{claims.sub}",
                                                  satisfied, note, time.time(), regions_check=claims.sees_region)
    return JSONResponse({"alert": alert, "recorded": True, "satisfied": satisfied})


routes: list[Any] = [
    Route("/api/alerts", list_alerts, methods=["GET"]),
    Route("/api/alerts/{alert_id}", get_alert, methods=["GET"]),
    Route("/api/alerts/{alert_id}/ack", ack_alert, methods=["POST"]),
    Route("/api/alerts/{alert_id}/resolve", resolve_alert, methods=["POST"]),
    Route("/api/alerts/{alert_id}/assign", assign_alert, methods=["POST"]),
    Route("/api/alerts/{alert_id}/followup", followup_alert, methods=["POST"]),
]
