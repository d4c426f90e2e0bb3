"""The incident log as stored data: incident updates written through the same ingest script as a phone, so the
watcher folds them in stream order, and an incident's status read back."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from guide_app_api.codec import packb
from server.core import keys
from server.core.settings import Settings
from server.db.scripts import script


class IncidentLog:
    def __init__(self, redis: aioredis.Redis, settings: Settings, writer: Any = None, ack: int = 0) -> None:
        self.redis = redis
        self.settings = settings
        # the web process's pipelined writer, and the ack an incident's update waits for (`ack_after_incident`,
        # contract §14); without a writer, one EVALSHA over redis-py, acked once in memory
        self.writer, self.ack = writer, ack

    async def append_update(self, tour_id: str, incident_id: str, event: dict[str, Any], now: float) -> str:
        """Store an incident_update event; returns its seq, or "not_found" / "closed"."""
        shard = keys.shard_of(tour_id, self.settings.storage.shards)
        sender, msg_id = event["sender"], event["msg_id"]
        idem = keys.idem(shard, sender, msg_id)
        payload = packb(event)
        script_keys = [idem, keys.events(shard), keys.incident(shard, incident_id)]
        args = [f"http:{incident_id}:{event.get('status')}", payload, int(self.settings.storage.idempotency_ttl),
                "update", event.get("status") or ""]
        if self.writer is not None:
            outcome, seq = await self.writer.call("ingest", script_keys, args, self.ack)
        else:
            outcome, seq = await script(self.redis, "ingest")(keys=script_keys, args=args)
        outcome = outcome.decode()
        return seq.decode() if outcome in ("new", "dup") else outcome

    async def status(self, tour_id: str, incident_id: str) -> str | None:
        shard = keys.shard_of(tour_id, self.settings.storage.shards)
        value = await self.redis.hget(keys.incident(shard, incident_id), "status")
        return value.decode() if value else None
