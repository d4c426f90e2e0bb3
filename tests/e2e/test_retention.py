"""Streams are trimmed to the retention, never past an entry the group has not acked."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from alerts.watcher import Watcher
from server.core import keys
from tests.conftest import make_settings

DAY_MS = 86_400_000


async def test_trim_keeps_the_retention_and_every_unacked_entry(redis_url: str, redis_client: aioredis.Redis) -> None:
    stream = keys.events(0)
    now_ms = int(time.time() * 1000)
    old = [f"{now_ms - (40 - d) * DAY_MS}-0" for d in range(5)]  # 40..36 days old
    recent = [f"{now_ms - 2 * DAY_MS}-0", f"{now_ms - DAY_MS}-0"]
    for entry_id in old + recent:
        await redis_client.xadd(stream, {"e": b"x"}, id=entry_id)
    await redis_client.xgroup_create(stream, keys.GROUP, id="0")
    # the group read everything; the third old entry is still pending (read, not acked)
    await redis_client.xreadgroup(keys.GROUP, "c1", {stream: ">"}, count=100)
    await redis_client.xack(stream, keys.GROUP, *[i for i in old + recent if i != old[2]])
    watcher = Watcher(make_settings(redis_url, {"storage": {"retention": "30d", "shards": 1}}), watcher_id="w")
    watcher.redis = redis_client  # housekeeping alone: no leases, no consumers claiming the pending entry
    await watcher.trim(0, time.time())
    kept = [i.decode() for i, _ in await redis_client.xrange(stream)]
    assert kept == old[2:] + recent  # trimmed up to the oldest pending entry, not to 30 days
    await redis_client.xack(stream, keys.GROUP, old[2])
    await watcher.trim(0, time.time())
    kept = [i.decode() for i, _ in await redis_client.xrange(stream)]
    assert kept == recent


async def test_notice_reads_are_trimmed_to_the_retention(redis_url: str, redis_client: aioredis.Redis) -> None:
    now_ms = int(time.time() * 1000)
    old = [f"{now_ms - (40 - d) * DAY_MS}-0" for d in range(3)]
    recent = [f"{now_ms - DAY_MS}-0", f"{now_ms}-0"]
    for entry_id in old + recent:
        await redis_client.xadd(keys.NOTICE_READS, {"e": b"x"}, id=entry_id)
    watcher = Watcher(make_settings(redis_url, {"storage": {"retention": "30d", "shards": 1}}), watcher_id="w")
    watcher.redis = redis_client
    await watcher.trim_reads(time.time())
    assert [i.decode() for i, _ in await redis_client.xrange(keys.NOTICE_READS)] == recent
