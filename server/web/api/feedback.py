"""The feedback inbox (contract §10): every traveller's feedback with its source, content, time and handling status.

``GET /api/feedback?kind=complaint|suggestion|praise&region=&route=&guide=&tour_id=&q=&from=&to=&cursor=&limit=``
(supervisor: its regions; admin: all) answers ``{"items": [...], "next": cursor-or-null}``, newest first;
``&format=csv`` answers every match as CSV. An item is a traveller's kept rating of a day that carries a comment, or
that opened a complaint (a score of 1 needs no words). ``feedback_items`` and ``select`` are pure: folded tour
states in, items out; the handler only reads the states.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.rules.classify import COMPLAINT, PRAISE, complaint_category, praised_staff
from alerts.rules.clocks import iso
from alerts.rules.state import ComplaintTrack, TourState
from guide_app_api.errors import Invalid
from server.storage.tours import Tour
from server.web.auth import authenticate
from server.web.live import load_states

KINDS = ("complaint", "suggestion", "praise")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CSV_LIMIT = 100_000
COLUMNS = ("kind", "tour_id", "route", "region", "guides", "traveller", "day", "score", "comment", "category",
           "at", "status", "alert_key")


def _status(kind: str, comment: str | None, track: ComplaintTrack | None) -> str:
    """Where its handling stands: a complaint's track, else whether praise reached the guides."""
    if track is None:
        return "shared" if kind == PRAISE and praised_staff(comment) else "received"
    if track.reopened_by is not None:
        return "reopened"
    if track.satisfied is not None:
        return "satisfied" if track.satisfied else "not_satisfied"
    if track.followup_sent_at is not None:
        return "followup_sent"
    return "answered" if track.solved_at is not None else "open"


def feedback_items(tour: Tour, state: TourState) -> list[dict[str, Any]]:
    """One tour's feedback, each with the key of the complaint it opened (to find its alert)."""
    tracks: dict[tuple[str, str], tuple[str, ComplaintTrack]] = {}
    for key, track in state.complaints.items():  # a rating's latest complaint (a reopening comes later)
        if track.traveller is not None and track.day is not None:
            held = tracks.get((track.traveller, track.day))
            if held is None or track.opened_at >= held[1].opened_at:
                tracks[(track.traveller, track.day)] = (key, track)
    items = []
    for day, ratings in state.days.items():
        for traveller, record in ratings.items():
            found = tracks.get((traveller, day))
            if record.comment_class is None and found is None:
                continue  # a plain score: a rating, not feedback
            kind = record.comment_class or COMPLAINT
            key, track = found if found is not None else (None, None)
            items.append({
                "kind": kind, "tour_id": tour.tour_id, "route": tour.route, "region": tour.region,
                "guides": list(tour.guides), "traveller": traveller, "day": day, "score": record.score,
                "comment": record.comment,
                "category": complaint_category(record.comment, record.aspects) if kind == COMPLAINT else None,
                "at": iso(record.at), "status": _status(kind, record.comment, track), "alert_key": key,
                "staff": list(praised_staff(record.comment)) if kind == PRAISE else [],
            })
    return items


def _sort_key(item: dict[str, Any]) -> tuple[str, str, str, str]:
    return (item["at"], item["tour_id"], item["day"], item["traveller"])


def select(items: Iterable[dict[str, Any]], *, kind: str | None = None, q: str | None = None,
           after: tuple[str, str, str, str] | None = None) -> list[dict[str, Any]]:
    """Newest first; ``after`` (a cursor) keeps those that sort after it; ``q`` searches the comment."""
    needle = q.casefold() if q else None
    out = [i for i in items if (kind is None or i["kind"] == kind)
           and (needle is None or needle in (i["comment"] or "").casefold())]
    out.sort(key=_sort_key, reverse=True)
    if after is not None:
        out = [i for i in out if _sort_key(i) < after]
    return out


def encode_cursor(item: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(_sort_key(item)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[str, str, str, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if isinstance(value, list) and len(value) == 4 and all(isinstance(v, str) for v in value):
            return (value[0], value[1], value[2], value[3])
    except (ValueError, UnicodeDecodeError):
        pass
    raise Invalid("cursor is not one this endpoint gave", field="cursor")


def parse_day(params: Any, name: str) -> str | None:
    value = params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise Invalid(f"{name} must be a date YYYY-MM-DD", field=name) from None


def _limit(params: Any) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise Invalid(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    return int(raw)


def _csv(items: list[dict[str, Any]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for item in items:
        writer.writerow([";".join(item[c]) if c == "guides" else ("" if item[c] is None else item[c])
                         for c in COLUMNS])
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="feedback.csv"'})


async def feedback(request: Request) -> Response:
    claims = authenticate(request, ("supervisor", "admin"))
    params = request.query_params
    kind = params.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}", field="kind")
    day_from, day_to = parse_day(params, "from"), parse_day(params, "to")
    if params.get("format") not in (None, "", "csv", "json"):
        raise Invalid("format must be csv or json", field="format")
    csv_wanted = params.get("format") == "csv"
    limit = CSV_LIMIT if csv_wanted else _limit(params)
    after = decode_cursor(params["cursor"]) if params.get("cursor") else None
    region, route, guide, tour_id = (params.get(n) or None for n in ("region", "route", "guide", "tour_id"))
    app = request.app.state
    tours = [t for t in await app.tours.list(claims.sees_region)
             if (region is None or t.region == region) and (route is None or t.route == route)
             and (guide is None or guide in t.guides) and (tour_id is None or t.tour_id == tour_id)]
    items: list[dict[str, Any]] = []
    for tour, state in await load_states(app.redis, app.settings.storage.shards, tours):
        items.extend(i for i in feedback_items(tour, state)
                     if (day_from is None or i["day"] >= day_from) and (day_to is None or i["day"] <= day_to))
    chosen = select(items, kind=kind, q=params.get("q") or None, after=after)
    page = chosen[:limit]
    if csv_wanted:
        return _csv(page)
    return JSONResponse({"items": page, "next": encode_cursor(page[-1]) if len(chosen) > limit else None})


routes = [Route("/api/feedback", feedback, methods=["GET"])]
