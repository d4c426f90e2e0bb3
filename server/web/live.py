"""A tour's live state for the HTTP API and the board: scores by day, open incidents and their clocks, alerts,
resources held. Read from the watcher's folded state (pure ``day_stats``), the alert store and the pool.
"""

from __future__ import annotations

from typing import Any

from alerts.rules.clocks import iso
from alerts.rules.state import TourState, day_stats
from server.core import keys
from server.storage.tours import Tour


def live_view(tour: Tour, state: TourState, now: float, attraction_sla: float,
              open_alerts: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Pure: the live block of one tour."""
    today = tour.local_today(now).isoformat()
    days = []
    for day in sorted(state.days):
        stats = day_stats(state, day)
        days.append({"day": day, "mean": round(stats.mean, 2) if stats.mean is not None else None,
                     "count": stats.count})
    today_stats = day_stats(state, today)
    incidents = []
    for incident_id, incident in state.incidents.items():
        if incident.status == "resolved":
            continue
        deadline = None
        if incident.kind == "attraction_closed" and incident.alternatives_proof_at is None:
            deadline = iso(incident.opened_at + attraction_sla)
        incidents.append({"incident_id": incident_id, "kind": incident.kind, "severity": incident.severity,
                          "summary": incident.summary, "status": incident.status, "deadline": deadline,
                          "alternatives": len(incident.alternatives)})
    return {
        "today": today,
        "today_mean": round(today_stats.mean, 2) if today_stats.mean is not None else None,
        "today_count": today_stats.count,
        "response_rate": round(today_stats.response_rate, 3) if today_stats.response_rate is not None else None,
        "aspect_means": {k: round(v, 2) for k, v in today_stats.aspect_means.items()},
        "days": days,
        "open_incidents": incidents,
        "open_alerts": open_alerts,
        "resources": resources,
    }


async def tour_live(app_state: Any, tour: Tour, now: float,
                    regions: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] | None = None
                    ) -> dict[str, Any]:
    """``regions`` memoises each region's active alerts and pool within one request listing many tours."""
    settings = app_state.settings
    shard = keys.shard_of(tour.tour_id, settings.storage.shards)
    state = await load_state(app_state.redis, shard, tour.tour_id)
    regions = {} if regions is None else regions
    if tour.region not in regions:
        regions[tour.region] = (
            await app_state.alert_store.list({"open", "acknowledged"}, lambda r: r == tour.region,
                                             tour.region, None),
            await app_state.pool.list(tour.region, None, None))
    alerts, held = regions[tour.region]
    open_alerts = sum(1 for a in alerts if a.get("tour_id") == tour.tour_id)
    mine = set(state.incidents)
    resources = [{"resource_id": r["resource_id"], "kind": r["kind"], "partner": r.get("partner"),
                  "state": r["state"], "held_by": r.get("held_by")}
                 for r in held if r.get("held_by") in mine]
    return live_view(tour, state, now, settings.sla.attraction_alternatives, open_alerts, resources)


async def load_states(redis: Any, shards: int, tours: list[Tour]) -> list[tuple[Tour, TourState]]:
    """Many tours' folded states in one pipelined round trip (reports and the feedback inbox read hundreds)."""
    if not tours:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for tour in tours:
            pipe.hgetall(keys.state(keys.shard_of(tour.tour_id, shards), tour.tour_id))
        found = await pipe.execute()
    return [(tour, TourState.from_fields(fields)) for tour, fields in zip(tours, found, strict=True)]


async def load_state(redis: Any, shard: int, tour_id: str) -> TourState:
    """A tour's folded state as the watcher last saved it (a new one if it has folded nothing yet)."""
    return TourState.from_fields(await redis.hgetall(keys.state(shard, tour_id)))
