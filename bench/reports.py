"""reports: how long ``GET /api/reports`` takes for a 30-day report over 200 tours and 100,000 ratings.

200 tours (two routes, two regions), each with 20 travellers rating 25 of the last 30 days: 100,000 kept ratings,
a third with a comment (complaints with their tracks, suggestions, praise), most with an NPS answer. The folded
states are written as the watcher saves them (one hash per tour, a field per rating and complaint track), then
one web process answers the report again and again (quick: 10 requests, full: 30; two more first, to warm up).
Before each measured request a tenth of the tours (20) is saved anew as the watcher saves it during a trip (one
more rating, and the meta with a later seq), so the web process's cache of parsed states (``StateCache``) has
those to read again: ``p95_ms`` is the 95th percentile of these latencies, measured by the client (target: under
500 ms); ``cold_ms`` is the first request, every state read and parsed.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

import httpx
import redis.asyncio as aioredis

from alerts.rules.classify import COMPLAINT, classify_comment
from alerts.rules.state import ComplaintTrack, RatingRecord
from bench.common import SHARDS, Ctx, ServerProc, percentile, register_tours, rnd, settings_doc, today, token, tour_ids
from guide_app_api.codec import packb
from server.core import keys

KEYS = ("p95_ms", "p50_ms", "cold_ms", "cpu_ms_per_report", "ratings", "tours")
TOURS = 200
TRAVELLERS = 20
DAYS = 25
CHURN = 20  # tours saved anew before each measured request
COMMENTS = ("the dinner was cold and late", "建议多安排一些自由时间", "our guide was wonderful, thank you",
            "太累了，行程太赶", "The bus was dirty", "酒店很干净，风景很美")


def state_fields(tour_id: str, days: list[str], rng: random.Random) -> dict[str, bytes]:
    fields: dict[str, bytes] = {}
    base = time.time() - 30 * 86400
    for d, day in enumerate(days):
        for n in range(TRAVELLERS):
            who = f"t{n}"
            score = rng.choice((2, 3, 4, 4, 5, 5, 5))
            comment = rng.choice(COMMENTS) if rng.random() < 0.33 else None
            at = base + d * 86400 + rng.uniform(0, 3600)
            record = RatingRecord(score, at, f"{int(at * 1000)}-{n}", {"guide": score, "meals": max(1, score - 1)},
                                  rng.randrange(11) if rng.random() < 0.8 else None, comment,
                                  classify_comment(comment, score))
            fields[f"r:{day}:{who}"] = packb(record.pack())
            if record.comment_class == COMPLAINT:
                track = ComplaintTrack("normal", at, who, day, solved_at=at + rng.uniform(600, 200_000))
                fields[f"c:complaint:{tour_id}:{day}:{who}"] = packb(track.pack())
    meta = {"v": 2, "tour": None, "last": "0-0", "inc": {}, "ul": {}}
    fields["m"] = packb(meta)
    return fields


async def churn(client: aioredis.Redis, tours: list[str], day: str, n: int) -> None:
    """Each tour saved anew, as a flush of the watcher writes it: a new rating and the meta with a later seq."""
    async with client.pipeline(transaction=False) as pipe:
        for tour_id in tours:
            at = time.time()
            record = RatingRecord(4, at, f"{int(at * 1000)}-{n}", None, None, None, None)
            meta = {"v": 2, "tour": None, "last": f"{int(at * 1000)}-{n}", "inc": {}, "ul": {}}
            pipe.hset(keys.state(keys.shard_of(tour_id, SHARDS), tour_id),
                      mapping={f"r:{day}:late{n}": packb(record.pack()), "m": packb(meta)})
        await pipe.execute()


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    await ctx.flush()
    tours = tour_ids(TOURS, prefix="R")
    await register_tours(ctx, tours[: TOURS // 2], region="yunnan")
    await register_tours(ctx, tours[TOURS // 2:], region="guilin")
    last = today()
    days = [(last - dt.timedelta(days=29 - i)).isoformat() for i in range(30)]
    rng = random.Random(16)
    client = aioredis.Redis.from_url(ctx.redis_url)
    try:
        for tour_id in tours:
            rated = sorted(rng.sample(days, DAYS))
            await client.hset(keys.state(keys.shard_of(tour_id, SHARDS), tour_id),
                              mapping=state_fields(tour_id, rated, rng))
    finally:
        await client.aclose()
    web = await ServerProc(ctx, "tourpulse", doc=settings_doc()).ready()
    params = {"from": days[0], "to": days[-1], "period": "week", "group": "route"}
    headers = {"Authorization": f"Bearer {token('admin', 'bench', regions=('*',))}"}
    latencies, cold = [], 0.0
    client = aioredis.Redis.from_url(ctx.redis_url)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web.port}", headers=headers, timeout=60) as http:
        for n in range(2 + int(ctx.scale(10, 30))):
            if n >= 2:
                await churn(client, rng.sample(tours, CHURN), days[-1], n)
            if n == 2:
                cpu0 = web.cpu()
            started = time.perf_counter()
            resp = await http.get("/api/reports", params=params)
            elapsed = time.perf_counter() - started
            resp.raise_for_status()
            if n == 0:
                cold = elapsed
            if n >= 2:
                latencies.append(elapsed)
        cpu = web.cpu() - cpu0
        body = resp.json()
    await client.aclose()
    ctx.stop_all()
    # the web process's own CPU per report: what the latency comes to when it has a core to itself
    return {"p95_ms": rnd(1000 * (percentile(latencies, 95) or 0.0)),
            "p50_ms": rnd(1000 * (percentile(latencies, 50) or 0.0)), "cold_ms": rnd(1000 * cold),
            "cpu_ms_per_report": rnd(1000 * cpu / max(1, len(latencies))),
            "ratings": body["total"]["ratings"], "tours": len(body["tours"]), "requests": len(latencies)}
