"""The watcher's side of §11 that needs more than one script call: a risk warning to the other tours of a region.

Which tours are in progress is read from the tour registry when the warning is applied; each tour's notice is
published once (its id names the incident and the tour), so a replay after a crash warns nobody twice.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from alerts.rules.crisis_effects import WarnRegion
from server.core.settings import Settings
from server.db.scripts import ScriptRunner
from server.storage.notices import publish_call
from server.storage.tours import TourRegistry


async def warn_region(redis: aioredis.Redis, runner: ScriptRunner, settings: Settings, effect: WarnRegion,
                      now: float) -> None:
    tours = await TourRegistry(redis, settings).list(lambda region: region == effect.region)
    calls = []
    for tour in tours:
        if tour.tour_id == effect.from_tour or not tour.start <= tour.local_today(now) <= tour.end:
            continue
        notice_id = f"risk_warning:{effect.incident_id}:{tour.tour_id}"
        calls.append(publish_call(runner, notice_id, {
            "type": "notice", "notice_id": notice_id, "kind": "risk_warning", "title": effect.title,
            "body": effect.body, "tour_id": tour.tour_id, "audience": "all", "incident_id": effect.incident_id}))
    await asyncio.gather(*calls)
