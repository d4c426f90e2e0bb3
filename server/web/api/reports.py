"""Operators' reports: CSAT, NPS and complaint handling, by route and tour, measured against the desk's targets
(CSAT >= 90 %, NPS >= 40, complaints handled within 24 hours).

``build_report`` is pure (folded tour states in, numbers out); the route handler only reads the states.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.rules.state import TourState
from server.core import keys
from server.storage.tours import Tour
from server.web.auth import authenticate
from server.web.live import load_state

CSAT_TARGET = 0.90
NPS_TARGET = 40.0
HANDLED_WITHIN = 24 * 3600.0
SATISFIED = 4  # a score of 4 or 5 counts as satisfied


class Tally:
    __slots__ = ("ratings", "satisfied", "nps", "promoters", "detractors", "complaints", "solved",
                 "solved_in_time", "open")

    def __init__(self) -> None:
        self.ratings = self.satisfied = self.nps = self.promoters = self.detractors = 0
        self.complaints = self.solved = self.solved_in_time = self.open = 0

    def add_state(self, state: TourState, day_from: str | None, day_to: str | None) -> None:
        for day, ratings in state.days.items():
            if (day_from and day < day_from) or (day_to and day > day_to):
                continue
            for record in ratings.values():
                self.ratings += 1
                self.satisfied += record.score >= SATISFIED
                if record.nps is not None:
                    self.nps += 1
                    self.promoters += record.nps >= 9
                    self.detractors += record.nps <= 6
        for track in state.complaints.values():
            if (day_from and (track.day or "") < day_from) or (day_to and (track.day or "") > day_to):
                continue
            self.complaints += 1
            if track.solved_at is None:
                self.open += 1
                continue
            self.solved += 1
            self.solved_in_time += track.solved_at - track.opened_at <= HANDLED_WITHIN

    def figures(self) -> dict[str, Any]:
        csat = self.satisfied / self.ratings if self.ratings else None
        nps = 100.0 * (self.promoters - self.detractors) / self.nps if self.nps else None
        handled = self.solved_in_time / self.complaints if self.complaints else None
        return {
            "ratings": self.ratings,
            "csat": round(csat, 3) if csat is not None else None,
            "csat_met": csat >= CSAT_TARGET if csat is not None else None,
            "nps": round(nps, 1) if nps is not None else None,
            "nps_answers": self.nps,
            "nps_met": nps >= NPS_TARGET if nps is not None else None,
            "complaints": self.complaints,
            "complaints_open": self.open,
            "complaints_solved": self.solved,
            "handled_within_24h": round(handled, 3) if handled is not None else None,
        }


def build_report(tours: Iterable[tuple[Tour, TourState]], day_from: str | None = None,
                 day_to: str | None = None) -> dict[str, Any]:
    total = Tally()
    by_route: dict[str, Tally] = {}
    per_tour = []
    for tour, state in tours:
        tally = Tally()
        tally.add_state(state, day_from, day_to)
        for target in (total, by_route.setdefault(tour.route, Tally())):
            target.add_state(state, day_from, day_to)
        per_tour.append({"tour_id": tour.tour_id, "route": tour.route, "region": tour.region, **tally.figures()})
    return {
        "targets": {"csat": CSAT_TARGET, "nps": NPS_TARGET, "complaints_handled_within_h": HANDLED_WITHIN / 3600},
        "from": day_from, "to": day_to,
        "total": total.figures(),
        "routes": {route: tally.figures() for route, tally in sorted(by_route.items())},
        "tours": per_tour,
    }


async def report(request: Request) -> Response:
    """``GET /api/reports?region=&route=&from=YYYY-MM-DD&to=YYYY-MM-DD`` over the caller's regions."""
    claims = authenticate(request, ("admin", "supervisor"))
    params = request.query_params
    region, route = params.get("region"), params.get("route")
    state = request.app.state
    tours = [t for t in await state.tours.list(claims.sees_region)
             if (not region or t.region == region) and (not route or t.route == route)]
    shards = state.settings.storage.shards
    pairs = [(t, await load_state(state.redis, keys.shard_of(t.tour_id, shards), t.tour_id)) for t in tours]
    body = build_report(pairs, params.get("from"), params.get("to"))
    body["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return JSONResponse(body)


routes = [Route("/api/reports", report, methods=["GET"])]
