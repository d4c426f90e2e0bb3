"""baseline: the ceiling of this stack, measured in the same run as everything else.

- ``events_per_s`` / ``cpu_us_per_msg``: the bare endpoint of ``bench.bare`` (decode, XADD, ack; no checks) in its
  own process, closed loop at 100 connections;
- ``xadd_per_s`` / ``xadd_pipelined_per_s``: raw XADD from one Python process with redis-py asyncio, one command
  per round trip and pipelines of 256.
"""

from __future__ import annotations

import time
from typing import Any

import msgpack
import redis.asyncio as aioredis

from bench.common import Ctx, ServerProc, rating_days, rnd
from bench.load import closed_summary, load_specs, run_load

KEYS = ("events_per_s", "cpu_us_per_msg", "xadd_per_s", "xadd_pipelined_per_s")
CONNECTIONS = 100
PIPELINE = 256


async def xadd_rates(ctx: Ctx) -> dict[str, Any]:
    client = aioredis.Redis.from_url(ctx.redis_url)
    payload = msgpack.packb({"type": "rating", "tour_id": "B0001", "day": "2026-01-01", "score": 4,
                             "sender": "traveller:x", "msg_id": "m", "at": time.time(), "received_at": time.time()})
    seconds = ctx.seconds(1.0, 3.0)
    try:
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            await client.xadd("bench:xadd", {"e": payload})
            n += 1
        sequential = n / (time.perf_counter() - start)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            pipe = client.pipeline(transaction=False)
            for _ in range(PIPELINE):
                pipe.xadd("bench:xadd", {"e": payload})
            await pipe.execute()
            n += PIPELINE
        pipelined = n / (time.perf_counter() - start)
    finally:
        await client.aclose()
    return {"xadd_per_s": rnd(sequential), "xadd_pipelined_per_s": rnd(pipelined)}


async def bare_closed_loop(ctx: Ctx, connections: int = CONNECTIONS) -> dict[str, Any]:
    server = ServerProc(ctx, "bare")
    await server.ready()
    try:
        specs = load_specs(mode="closed", ports=[server.port], path="/ws", connections=connections, processes=1,
                           run_id="bare", tours=["B0000"], days=rating_days())
        run = await run_load(specs, warmup=ctx.seconds(0.5, 2.0), measure=ctx.seconds(2.5, 10.0), servers=[server])
    finally:
        server.stop()
    return closed_summary(run)


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    await ctx.flush()
    out = await xadd_rates(ctx)
    await ctx.flush()
    bare = await bare_closed_loop(ctx)
    out.update({"events_per_s": bare["events_per_s"], "cpu_us_per_msg": bare["cpu_us_per_msg"],
                "connections": CONNECTIONS, "closed_loop": bare})
    return out
