"""scaleout: two web processes and two watchers against one of each, closed loop, same load.

Each configuration starts fresh (flushed Redis, 200 tours), its web processes on their own ports and its watchers
as separate processes sharing the 16 shards by lease (``lease_ttl`` 3 s so a second watcher gets its half
quickly). The load (100 connections, spread over the web processes) runs once the leases have settled;
``events_per_s_1x1`` and ``events_per_s_2x2`` are acks per second, and ``lag_*`` what the watchers had still to
fold when the load stopped (whether they kept up with the web processes). On a 2-core machine the second pair
competes for the same cores: this is a check of correctness under sharing as much as of speed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis

from bench.common import SHARDS, Ctx, ServerProc, rating_days, register_tours, settings_doc, start_servers, tour_ids
from bench.load import closed_summary, load_specs, run_load
from bench.watcher import backlog_left
from server.core import keys

KEYS = ("events_per_s_1x1", "events_per_s_2x2")
TOURS = 200
CONNECTIONS = 100
SETTLE_TIMEOUT = 15.0


async def lease_owners(client: aioredis.Redis) -> int:
    owners = await client.mget([keys.lease(s) for s in range(SHARDS)])
    return len({o for o in owners if o}) if all(owners) else 0


async def configuration(ctx: Ctx, n: int) -> dict[str, Any]:
    await ctx.flush()
    tours = tour_ids(TOURS)
    await register_tours(ctx, tours)
    doc = settings_doc(lease_ttl="3s")
    webs = [ServerProc(ctx, "tourpulse", doc=doc) for _ in range(n)]
    watchers = [ServerProc(ctx, "watcher", doc=doc) for _ in range(n)]
    await start_servers(*webs, *watchers)
    client = aioredis.Redis.from_url(ctx.redis_url)
    try:
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while await lease_owners(client) != n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the shards' leases did not settle on {n} watchers")
            await asyncio.sleep(0.1)
        specs = load_specs(mode="closed", ports=[w.port for w in webs], path="/ws/traveller",
                           connections=CONNECTIONS, processes=1, run_id=f"x{n}", tours=tours, days=rating_days())
        run = await run_load(specs, warmup=ctx.seconds(0.5, 2.0), measure=ctx.seconds(2.5, 10.0),
                             servers=[*webs, *watchers])
        lag = await backlog_left(client)
    finally:
        await client.aclose()
        ctx.stop_all()
    summary = closed_summary(run)
    cpu = run["server_cpu_s"]
    summary["web_cpu_pct"] = round(sum(cpu[:n]) / run["window"] * 100, 1)
    summary["watcher_cpu_pct"] = round(sum(cpu[n:]) / run["window"] * 100, 1)
    summary["watcher_lag_at_end"] = lag
    return summary


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    one = await configuration(ctx, 1)
    two = await configuration(ctx, 2)
    return {"events_per_s_1x1": one["events_per_s"], "events_per_s_2x2": two["events_per_s"],
            "speedup": round(two["events_per_s"] / one["events_per_s"], 2) if one["events_per_s"] else None,
            "lag_1x1": one["watcher_lag_at_end"], "lag_2x2": two["watcher_lag_at_end"], "1x1": one, "2x2": two}
