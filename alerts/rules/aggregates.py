"""Alerts judged from figures a tour's state does not hold: a region's exhausted pool. Pure.

A route's complaint mix (``category_share``) is judged in :mod:`alerts.rules.category` since contract §10 (every
category, over a trailing window).

The tour rules (:mod:`alerts.rules.evaluate`) see one tour's folded state. This condition depends on what
several tours share, counted in Redis: who waits for a region's pool.
The caller reads those figures (the watcher's applier after a pull or a complaint count, the HTTP API after a
manual pull) and asks here what follows; the judgement itself lives once, with no I/O, like every other rule.
"""

from __future__ import annotations

from collections.abc import Sequence

from alerts.rules.effects import UpsertAlert


def pool_exhausted(region: str, kind: str, waiting: Sequence[str], incident_id: str) -> UpsertAlert:
    """The region's alert once a pull of ``kind`` was queued: ``waiting`` names the incidents in its queue (the one
    that just queued included), so each queued pull updates the one open alert with the current queue."""
    return UpsertAlert(
        kind="pool_exhausted", dedup_key=f"pool_exhausted:{region}:{kind}", severity="critical", region=region,
        tour_id=None, summary=f"No {kind} free in {region}: {len(waiting)} incident(s) waiting",
        details={"kind": kind, "region": region, "incidents": list(waiting), "incident_id": incident_id})
