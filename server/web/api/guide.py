"""The guide's own tour at a glance: ``GET /api/tours/{tour_id}/today`` (the phone app's guide screen).

The tour's live block (scores by day, response rate, open incidents and their clocks), plus what a guide needs on
the road and the live block leaves out: the tour's open complaints with their deadlines, and the resources
dispatched to its incidents with capacity and contact. Complaints are shown without the traveller: no summary,
no comment, no traveller id (contract §9: a guide never learns who complained).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.rules.clocks import iso
from guide_app_api.errors import NotFound
from server.core.settings import SlaSettings
from server.web.auth import authenticate
from server.web.live import tour_live

COMPLAINT_KINDS = ("urgent_complaint", "complaint")


def _ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def complaint_view(alert: dict[str, Any], sla: SlaSettings) -> dict[str, Any]:
    """Pure: what a guide may see of a complaint alert: its kind and clock, never its author or words."""
    clock = sla.urgent_complaint_solution if alert["kind"] == "urgent_complaint" else sla.complaint_response
    details = alert.get("details") or {}
    return {"alert_id": alert["alert_id"], "kind": alert["kind"], "severity": alert["severity"],
            "status": alert["status"], "day": details.get("day"), "category": details.get("category"),
            "opened_at": alert["opened_at"], "deadline": iso(_ts(alert["opened_at"]) + clock)}


async def tour_today(request: Request) -> Response:
    claims = authenticate(request, ("guide", "supervisor", "admin"))
    state = request.app.state
    tour = await state.tours.get(request.path_params["tour_id"])
    allowed = tour is not None and (claims.has_tour(tour.tour_id) if claims.role == "guide"
                                    else claims.sees_region(tour.region))
    if tour is None or not allowed:
        raise NotFound("no such tour")
    now = time.time()
    live = await tour_live(state, tour, now)
    alerts = await state.alert_store.list({"open", "acknowledged"}, lambda r: r == tour.region, tour.region, None)
    complaints = [complaint_view(a, state.settings.sla) for a in alerts
                  if a.get("tour_id") == tour.tour_id and a["kind"] in COMPLAINT_KINDS]
    mine = {i["incident_id"] for i in live["open_incidents"]}
    pool = await state.pool.list(tour.region, None, None)
    resources = [{"resource_id": r["resource_id"], "kind": r["kind"], "partner": r.get("partner"),
                  "capacity": r.get("capacity"), "contact": r.get("contact"), "state": r["state"],
                  "incident_id": r.get("held_by")}
                 for r in pool if r.get("held_by") in mine]
    live["resources"] = resources
    return JSONResponse({"tour": tour.to_dict(), "live": live, "complaints": complaints, "now": iso(now)})


routes = [Route("/api/tours/{tour_id}/today", tour_today, methods=["GET"])]
