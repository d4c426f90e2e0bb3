"""Operators' reports over HTTP (contract §10): CSAT, NPS and complaint handling against ``[targets]``, by period
and group, MTTA and MTTR per alert kind, and the guides' scorecards with the month's star.

``GET /api/reports?from=&to=&period=day|week|month&group=route|region|guide&region=&route=`` (from/to default: the
last 30 days) and ``GET /api/reports/guides?from=&to=`` (default: this month). The figures are computed by
``server.web.reporting`` (pure) from the watcher's folded states, read here in one pipelined round trip.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guide_app_api.errors import Invalid
from server.core import keys
from server.storage.tours import Tour
from server.web.auth import authenticate
from server.web.reporting import GROUPS, PERIODS, TourData, alert_times, build_report, guide_scorecards

DEFAULT_DAYS = 30
MAX_DAYS = 366


def _day(params: Any, name: str, default: date) -> date:
    value = params.get(name)
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} must be a date YYYY-MM-DD", field=name) from None


def _range(params: Any, default_from: date, default_to: date) -> tuple[str, str]:
    day_from, day_to = _day(params, "from", default_from), _day(params, "to", default_to)
    if day_from > day_to:
        raise Invalid("from must not be after to", field="from")
    if (day_to - day_from).days >= MAX_DAYS:
        raise Invalid(f"a report spans at most {MAX_DAYS} days", field="to")
    return day_from.isoformat(), day_to.isoformat()


def _choice(params: Any, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise Invalid(f"{name} must be one of {', '.join(allowed)}", field=name)
    return value


class StateCache:
    """The tours' parsed states, kept by this web process between reports, each with the version it was read at.

    A tour's state hash changes only when the watcher saves it, and every save writes its meta field ``m``
    anew with the seq of the last event folded (``TourState.to_fields``): the same ``m`` is the same state. So a
    report first reads every tour's ``m`` (a few bytes each) and reads and parses in full only the states whose
    ``m`` differs from the one it holds; at the end of a trip that is none of them. The tour's registration is
    not cached (it comes with every report: a tour moved to another route counts there at once)."""

    def __init__(self, max_tours: int = 20_000) -> None:
        self.max_tours = max_tours
        self._held: dict[str, tuple[bytes, TourData]] = {}

    def get(self, tour: Tour, meta: bytes | None) -> TourData | None:
        held = self._held.get(tour.tour_id)
        if held is None or meta is None or held[0] != meta:
            return None
        return TourData(tour, held[1].ratings, held[1].complaints, held[1].memo)

    def put(self, data: TourData, meta: bytes | None) -> None:
        if meta is None:  # no state yet: nothing to keep
            self._held.pop(data.tour.tour_id, None)
            return
        if len(self._held) >= self.max_tours and data.tour.tour_id not in self._held:
            self._held.pop(next(iter(self._held)))  # the oldest entry: a bound, not a policy
        self._held[data.tour.tour_id] = (meta, data)


async def _tour_data(request: Request, claims: Any, region: str | None = None,
                     route: str | None = None) -> list[TourData]:
    app = request.app.state
    tours: list[Tour] = [t for t in await app.tours.list(claims.sees_region)
                         if (not region or t.region == region) and (not route or t.route == route)]
    if not tours:
        return []
    cache: StateCache | None = getattr(app, "report_states", None)
    if cache is None:
        cache = app.report_states = StateCache()
    shards = app.settings.storage.shards
    state_keys = [keys.state(keys.shard_of(tour.tour_id, shards), tour.tour_id) for tour in tours]
    async with app.redis.pipeline(transaction=False) as pipe:
        for key in state_keys:
            pipe.hget(key, "m")
        metas = await pipe.execute()
    out: list[TourData | None] = [cache.get(tour, meta) for tour, meta in zip(tours, metas, strict=True)]
    stale = [n for n, data in enumerate(out) if data is None]
    if stale:
        async with app.redis.pipeline(transaction=False) as pipe:
            for n in stale:
                pipe.hgetall(state_keys[n])
            found = await pipe.execute()
        with no_gc():
            for n, fields in zip(stale, found, strict=True):
                data = out[n] = TourData.from_fields(tours[n], fields)
                cache.put(data, fields.get(b"m"))  # the version these fields are: read with them, in one command
    return [data for data in out if data is not None]


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """No garbage collection while a report builds its hundred thousand rows: they all stay alive until it is
    done, so each collection would walk them all again for nothing (measured: three times the parse). No await
    happens inside, so nothing else of the process runs meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _today() -> date:
    """The latest date anywhere (UTC+14 at most): a tour in Asia is already tomorrow when UTC is in the evening."""
    return (datetime.now(UTC) + timedelta(hours=14)).date()


async def report(request: Request) -> Response:
    claims = authenticate(request, ("admin", "supervisor"))
    params = request.query_params
    settings = request.app.state.settings
    today = _today()
    day_from, day_to = _range(params, today - timedelta(days=DEFAULT_DAYS - 1), today)
    period = _choice(params, "period", PERIODS, "day")
    group = _choice(params, "group", GROUPS, "route")
    data = await _tour_data(request, claims, params.get("region"), params.get("route"))
    alerts = await request.app.state.alert_store.list(
        {"open", "acknowledged", "resolved"}, claims.sees_region, params.get("region") or None, None)
    with no_gc():
        body = build_report(data, day_from, day_to, period=period, group=group, targets=settings.targets)
    body["alerts"] = alert_times(alerts, day_from, day_to, {d.tour.tour_id: d.tour.timezone for d in data})
    body["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return JSONResponse(body)


async def guides(request: Request) -> Response:
    claims = authenticate(request, ("admin", "supervisor"))
    settings = request.app.state.settings
    today = _today()
    day_from, day_to = _range(request.query_params, today.replace(day=1), today)
    data = await _tour_data(request, claims)
    with no_gc():
        cards = guide_scorecards(data, day_from, day_to, settings.targets, settings.rules.min_ratings)
    return JSONResponse(cards)


routes = [Route("/api/reports", report, methods=["GET"]), Route("/api/reports/guides", guides, methods=["GET"])]
