"""Alerts judged from figures a tour's state does not hold: a region's exhausted pool, a route's complaint mix. Pure.

The tour rules (:mod:`alerts.rules.evaluate`) see one tour's folded state. These two conditions depend on what
several tours share, counted in Redis: who waits for a region's pool, how a route's complaints split by category.
The caller reads those figures (the watcher's applier after a pull or a complaint count, the HTTP API after a
manual pull) and asks here what follows; the judgement itself lives once, with no I/O, like every other rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from alerts.rules.effects import UpsertAlert
from server.core.settings import RuleSettings


def pool_exhausted(region: str, kind: str, waiting: Sequence[str], incident_id: str) -> UpsertAlert:
    """The region's alert once a pull of ``kind`` was queued: ``waiting`` names the incidents in its queue (the one
    that just queued included), so each queued pull updates the one open alert with the current queue."""
    return UpsertAlert(
        kind="pool_exhausted", dedup_key=f"pool_exhausted:{region}:{kind}", severity="critical", region=region,
        tour_id=None, summary=f"No {kind} free in {region}: {len(waiting)} incident(s) waiting",
        details={"kind": kind, "region": region, "incidents": list(waiting), "incident_id": incident_id})


def category_share(counts: Mapping[str, int], route: str, region: str, category: str,
                   rules: RuleSettings) -> UpsertAlert | None:
    """The route's alert for ``category`` (the one just counted) once it holds more than ``rules.category_share`` of
    at least ``rules.category_min_complaints`` complaints; else None. ``counts``: the route's complaints by
    category, as counted so far."""
    total = sum(counts.values())
    share = counts.get(category, 0) / total if total else 0.0
    if total < rules.category_min_complaints or share <= rules.category_share:
        return None
    return UpsertAlert(
        kind="category_share", dedup_key=f"category_share:{route}:{category}", severity="medium", region=region,
        tour_id=None, summary=f"{category} is {share:.0%} of route {route}'s complaints",
        details={"route": route, "category": category, "share": round(share, 3), "complaints": total,
                 "counts": dict(counts)}, escalate=False)
