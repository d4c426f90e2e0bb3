"""paging: from an alert opening to its page arriving at a webhook (contract §12).

A tourpulse web process and a watcher process (the Procfile's layout) with one person on duty whose webhook (plain
JSON) is a receiver under uvicorn in this process. A guide reports critical incidents one after another; each
opens an alert that pages level 0. The latency of one page runs from the alert's ``opened_at`` (the watcher's
clock, in milliseconds) to the receiver having the request (this machine's clock too): the pager's read of the
change, the queue, the sender's claim and the HTTP exchange. Measured idle (``idle_open_to_sent_*``) and under
1,000 ratings/s of good scores on other tours from another process (``open_to_sent_*``, the headline: target
p99 < 1000 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.client import connect

from bench.common import Ctx, ServerProc, ms, percentile, rating_days, register_tours, settings_doc, token, tour_ids
from bench.load import load_specs, open_summary, run_load
from server.core import keys

KEYS = ("open_to_sent_p50_ms", "open_to_sent_p99_ms", "idle_open_to_sent_p50_ms", "idle_open_to_sent_p99_ms")
PROBE_TOURS = 20
BACKGROUND_TOURS = 180
BACKGROUND_RATE = 1000
PAGE_TIMEOUT = 10.0
SPACING = 0.1  # seconds between two incidents of the prober


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # alert id -> latency (s), the first request of each
        self.times: dict[str, tuple[float, float]] = {}  # alert id -> (opened, received), wall clock
        self.waiters: dict[str, asyncio.Future[None]] = {}
        self.requests = 0

    async def hook(self, request: Request) -> JSONResponse:
        at = time.time()
        body = await request.json()
        self.requests += 1
        alert = body["alert"]
        opened = dt.datetime.fromisoformat(alert["opened_at"].replace("Z", "+00:00")).timestamp()
        self.arrived.setdefault(alert["alert_id"], max(0.0, at - opened))
        self.times.setdefault(alert["alert_id"], (opened, at))
        return JSONResponse({"ok": True})


@contextlib.asynccontextmanager
async def receiver_server(receiver: Receiver) -> AsyncIterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = Starlette(routes=[Route("/hook", receiver.hook, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    finally:
        server.should_exit = True
        await task
        sock.close()


def notify_doc(hook: str) -> dict[str, Any]:
    return {"base_url": "http://127.0.0.1:8000", "min_severity": "high",
            "people": [{"id": "bench.duty", "name": "On duty", "webhook": hook, "format": "json"}],
            "rota": [{"region": "*", "levels": [["bench.duty"]]}]}


async def legs(redis_url: str, receiver: Receiver, alert_ids: list[str]) -> dict[str, Any]:
    """Where the time went, from the page jobs' own stamps: opened -> queued (the pager's read of the change),
    queued -> claimed (the sender's claim), claimed -> received (the HTTP request)."""
    client = aioredis.Redis.from_url(redis_url)
    out: list[tuple[float, float, float]] = []
    try:
        for alert_id in alert_ids:
            job = await client.hgetall(keys.page_job(f"{alert_id}:0:bench.duty:webhook"))
            if b"claimed_at" not in job:
                continue
            opened, received = receiver.times[alert_id]
            queued, claimed = float(job[b"queued_at"]), float(job[b"claimed_at"])
            out.append((queued - opened, claimed - queued, received - claimed))
    finally:
        await client.aclose()
    return {name: {"p50_ms": ms(percentile([leg[i] for leg in out], 50)),
                   "p99_ms": ms(percentile([leg[i] for leg in out], 99))}
            for i, name in enumerate(("open_to_queued", "queued_to_claimed", "claimed_to_received"))}


async def probe(port: int, receiver: Receiver, tours: list[str], count: int, tag: str,
                redis_url: str = "") -> dict[str, Any]:
    """``count`` critical incidents, SPACING apart; the latency of each alert's page."""
    before = set(receiver.arrived)
    url = f"ws://127.0.0.1:{port}/ws/guide"
    async with connect(url, compression=None, additional_headers={
            "Authorization": f"Bearer {token('guide', 'g1', tours=tuple(tours))}"}) as ws:
        for k in range(count):
            await ws.send(json.dumps({"type": "incident", "id": f"{tag}-{k}", "tour_id": tours[k % len(tours)],
                                      "kind": "conflict", "severity": "critical",
                                      "summary": f"bench incident {tag}-{k}", "travellers_affected": 1}))
            reply = json.loads(await ws.recv())
            while reply.get("type") not in ("ack", "error"):  # a guide also hears its tours' incident pushes
                reply = json.loads(await ws.recv())
            if reply.get("type") != "ack":
                raise RuntimeError(f"incident refused: {reply}")
            await asyncio.sleep(SPACING)
    deadline = time.monotonic() + PAGE_TIMEOUT
    while len(set(receiver.arrived) - before) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    fresh = sorted(set(receiver.arrived) - before)
    lat = [receiver.arrived[a] for a in fresh]
    return {"p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99)), "max_ms": ms(max(lat, default=None)),
            "samples": len(lat), "timeouts": count - len(lat),
            "legs": await legs(redis_url, receiver, fresh) if redis_url else None}


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    await ctx.flush()
    probe_tours = tour_ids(PROBE_TOURS, "P")
    background_tours = tour_ids(BACKGROUND_TOURS, "G")
    await register_tours(ctx, probe_tours + background_tours)
    receiver = Receiver()
    count = int(ctx.scale(20, 100))
    async with receiver_server(receiver) as hook:
        doc = {**settings_doc(block="500ms"), "notify": notify_doc(hook), "sla": {"ack_escalation": ["1h"]}}
        server = ServerProc(ctx, "tourpulse", doc=doc)
        watcher = ServerProc(ctx, "watcher", doc=doc)
        try:
            await server.ready()
            await watcher.ready()
            await probe(server.port, receiver, probe_tours, 2, "warm")  # first connections, scripts loaded
            idle = await probe(server.port, receiver, probe_tours, count, "idle", ctx.redis_url)
            measure = max(ctx.scale(4.0, 20.0), count * SPACING + 2.0)
            specs = load_specs(mode="open", ports=[server.port], path="/ws/traveller", connections=200,
                               processes=1, run_id="bg", tours=background_tours, days=rating_days(),
                               rate=BACKGROUND_RATE)
            background = asyncio.create_task(run_load(specs, warmup=1.0, measure=measure, servers=[server]))
            await asyncio.sleep(1.5)  # connected and past the warm-up
            loaded = await probe(server.port, receiver, probe_tours, count, "loaded", ctx.redis_url)
            load_run = await background
        finally:
            server.stop()
            watcher.stop()
    return {"open_to_sent_p50_ms": loaded["p50_ms"], "open_to_sent_p99_ms": loaded["p99_ms"],
            "idle_open_to_sent_p50_ms": idle["p50_ms"], "idle_open_to_sent_p99_ms": idle["p99_ms"],
            "target_p99_ms": 1000, "layout": "web + watcher processes (Procfile)", "background_rate": BACKGROUND_RATE,
            "idle": idle, "loaded": loaded, "pages_received": receiver.requests,
            "background": open_summary(load_run, BACKGROUND_RATE)}
