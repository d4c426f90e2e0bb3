"""The page queue in Redis (``{alerts}`` slot; key names in :mod:`server.core.keys`, scripts ``alert_page_*.lua``).

A job's key is its identity, ``<alert_id>:<level>:<person>:<channel>``: :meth:`PageQueue.enqueue` writes it once,
ever, so however many watchers decide the same page, and however often, it is queued once. A sender
:meth:`~PageQueue.claim`\\ s due jobs for one attempt each (due again after a lease, so a sender that dies loses
nothing) and :meth:`~PageQueue.finish`\\ es the attempt in the same Lua step that records it in the alert's audit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from alerts.rules.clocks import iso
from alerts.rules.rota import Page
from server.core import keys
from server.core.settings import Settings
from server.db.scripts import RedisScripts, as_text


@dataclass(frozen=True, slots=True)
class Claimed:
    job_id: str
    attempt: int
    alert: dict[str, Any]
    job: dict[str, str]

    @property
    def person(self) -> str:
        return self.job["person"]

    @property
    def channel(self) -> str:
        return self.job["channel"]

    @property
    def level(self) -> int:
        return int(self.job["level"])

    @property
    def queued_at(self) -> float:
        return float(self.job["queued_at"])


class PageQueue:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.scripts = RedisScripts(redis)
        # kept at least as long as the alert it pages for could still change
        self.ttl = int(max(settings.storage.retention, keys.PAGE_DONE_TTL))

    async def enqueue(self, page: Page, now: float) -> bool:
        """Queue a page unless it was queued before (True: queued now)."""
        return bool(await self.scripts.run(
            "alert_page_enqueue", [keys.PAGE_DUE, keys.page_job(page.job_id)],
            [keys.ALERTS_TAG, page.job_id, page.alert_id, page.level, page.person, page.channel, page.reason,
             page.rota_level, now, self.ttl]))

    async def claim(self, now: float, limit: int = 20) -> list[Claimed]:
        flat = await self.scripts.run("alert_page_claim", [keys.PAGE_DUE],
                                      [keys.ALERTS_TAG, now, self.settings.notify.lease, limit])
        return [Claimed(as_text(flat[i]), int(flat[i + 1]), json.loads(flat[i + 2]), json.loads(flat[i + 3]))
                for i in range(0, len(flat), 4)]

    async def finish(self, claimed: Claimed, state: str, result: str, now: float, next_due: float = 0.0,
                     name: str = "") -> bool:
        """Record the attempt (``state``: done, queued for a retry at ``next_due``, or failed); False when this
        attempt no longer held the claim (its lease ran out and another sender took the page over)."""
        return bool(await self.scripts.run(
            "alert_page_done", [keys.PAGE_DUE, keys.page_job(claimed.job_id), keys.ALERT_CHANGES],
            [keys.ALERTS_TAG, self.settings.storage.changes_maxlen, iso(now), now, claimed.job_id, claimed.attempt,
             state, next_due, result, self.ttl, name or claimed.person]))

    async def next_due(self) -> float | None:
        first = await self.redis.zrange(keys.PAGE_DUE, 0, 0, withscores=True)
        return float(first[0][1]) if first else None

    async def job(self, job_id: str) -> dict[str, str]:
        raw = await self.redis.hgetall(keys.page_job(job_id))
        return {as_text(k): as_text(v) for k, v in raw.items()}
