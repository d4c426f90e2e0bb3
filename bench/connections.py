"""connections: idle WebSocket connections one web process holds, and a reconnect storm.

Client processes (two, lean client) open N traveller connections (full: 10,000; quick: 2,000) to one tourpulse
process, each sending one rating (id ``a``) and awaiting its ack, then idling. Server RSS before and after gives
``rss_per_conn_kib``; ``idle_max`` is how many the server reports connected (its own gauge). Then the storm: every
connection drops at once (no closing handshake, like a lost network) and reconnects at once, re-sending ``a``
(already stored: must ack ``duplicate: true``) and a new ``b``. The shard streams must then hold exactly two
ratings per phone: ``storm_lost`` and ``storm_doubled`` count the difference; ``storm_reconnect_s`` runs from the
drop to the last phone's last ack.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.request
from typing import Any

import msgpack
import redis.asyncio as aioredis

from bench import wsclient
from bench.common import SHARDS, Ctx, ServerProc, rating_days, register_tours, stream_entries, token, tour_ids
from bench.load import LoadProc, ask, run_child
from server.core import keys

KEYS = ("idle_max", "rss_per_conn_kib", "storm_reconnect_s", "storm_lost", "storm_doubled")
TOURS = 200
PROCESSES = 2
ANSWER_TIMEOUT = 60.0


class Phone:
    __slots__ = ("tour", "sub", "tok", "answers", "waiter")

    def __init__(self, run_id: str, i: int, tours: list[str]) -> None:
        self.tour = tours[i % len(tours)]
        self.sub = f"{run_id}-{i}"
        self.tok = token("traveller", self.sub, tours=(self.tour,))
        self.answers: list[dict[str, Any]] = []
        self.waiter: asyncio.Future[None] | None = None

    def frame(self, suffix: str, day: str) -> bytes:
        return msgpack.packb({"type": "rating", "id": f"{self.sub}-{suffix}", "tour_id": self.tour, "day": day,
                              "score": 5})

    def expect(self, count: int) -> asyncio.Future[None]:
        self.answers = []
        self.waiter = asyncio.get_running_loop().create_future()
        self.waiter.count = count  # type: ignore[attr-defined]
        return self.waiter


def _on_message(conn: wsclient.WSConn, payload: bytes) -> None:
    phone: Phone = conn.tag
    phone.answers.append(msgpack.unpackb(payload))
    waiter = phone.waiter
    if waiter is not None and not waiter.done() and len(phone.answers) >= waiter.count:  # type: ignore[attr-defined]
        waiter.set_result(None)


async def _session(phone: Phone, port: int, frames: list[bytes], rng: random.Random) -> wsclient.WSConn:
    conn = await wsclient.connect_retrying("127.0.0.1", port, "/ws/traveller", phone.tok, on_message=_on_message,
                                           tag=phone, attempts=12, timeout=20.0, rng=rng)
    done = phone.expect(len(frames))
    for frame in frames:
        conn.send(frame)
    await asyncio.wait_for(done, ANSWER_TIMEOUT)
    return conn


async def _phones(spec: dict[str, Any], pipe: Any) -> None:
    rng = random.Random(spec["ids"][0])
    phones = [Phone(spec["run_id"], i, spec["tours"]) for i in spec["ids"]]
    day = spec["day"]
    gate = asyncio.Semaphore(200)  # the first opening is gradual; the storm below is not

    async def first(phone: Phone) -> wsclient.WSConn:
        async with gate:
            return await _session(phone, spec["port"], [phone.frame("a", day)], rng)

    conns = list(await asyncio.gather(*(first(p) for p in phones)))
    pipe.send(("ready", len(conns)))
    await ask(pipe)  # the parent has measured memory: storm now
    started = time.monotonic()
    for conn in conns:
        conn.close()
    outcomes = await asyncio.gather(*(_session(p, spec["port"], [p.frame("a", day), p.frame("b", day)], rng)
                                      for p in phones), return_exceptions=True)
    finished = time.monotonic()
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    answers = [a for p in phones for a in p.answers]
    result = {"started": started, "finished": finished, "failed": len(failed),
              "failures": sorted({repr(f)[:200] for f in failed})[:3],
              "duplicates": sum(1 for a in answers if a.get("type") == "ack" and a.get("duplicate")),
              "new": sum(1 for a in answers if a.get("type") == "ack" and not a.get("duplicate")),
              "errors": [a for a in answers if a.get("type") != "ack"][:3]}
    for outcome in outcomes:
        if isinstance(outcome, wsclient.WSConn):
            outcome.close()
    pipe.send(("result", result))


def phones_worker(spec: dict[str, Any], pipe: Any) -> None:
    run_child(_phones, spec, pipe)


async def people_recorded(ctx: Ctx, tours: list[str]) -> int:
    """Travellers recorded as people of their tours: each appended one ``person`` event the first time."""
    client = aioredis.Redis.from_url(ctx.redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for tour_id in tours:
            pipe.scard(keys.people(keys.shard_of(tour_id, SHARDS), tour_id))
        return int(sum(await pipe.execute()))
    finally:
        await client.aclose()


def connected_gauge(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:  # noqa: S310 - loopback
        for line in resp.read().decode().splitlines():
            if line.startswith("tourpulse_phone_connections") and 'role="traveller"' in line:
                return int(float(line.rsplit(" ", 1)[1]))
    return 0


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    await ctx.flush()
    tours = tour_ids(TOURS)
    await register_tours(ctx, tours)
    count = int(ctx.scale(2000, 10_000))
    server = ServerProc(ctx, "tourpulse")
    await server.ready()
    await asyncio.sleep(0.5)
    rss_before = server.rss()
    day = rating_days()[-1]
    procs = [LoadProc(phones_worker, {"port": server.port, "ids": list(range(k, count, PROCESSES)),
                                      "run_id": "idle", "tours": tours, "day": day}) for k in range(PROCESSES)]
    try:
        opened = sum(r[1] for r in await asyncio.gather(*(p.recv(180) for p in procs)))
        await asyncio.sleep(1.0)
        rss_after = server.rss()
        held = await asyncio.to_thread(connected_gauge, server.port)
        for p in procs:
            p.send(("storm",))
        outcomes = [r[1] for r in await asyncio.gather(*(p.recv(300) for p in procs))]
    finally:
        for p in procs:
            p.stop()
    await asyncio.sleep(0.5)
    # each registered tour appended one `tour` event, and each phone's first connection one `person` event (§11)
    ratings = await stream_entries(ctx) - len(tours) - await people_recorded(ctx, tours)
    server.stop()
    expected = 2 * opened
    storm_s = max(o["finished"] for o in outcomes) - min(o["started"] for o in outcomes)
    return {"idle_max": held, "opened": opened, "rss_before_mib": round(rss_before / 2**20, 1),
            "rss_after_mib": round(rss_after / 2**20, 1),
            "rss_per_conn_kib": round((rss_after - rss_before) / max(1, opened) / 1024, 1),
            "storm_reconnect_s": round(storm_s, 2), "storm_lost": max(0, expected - ratings),
            "storm_doubled": max(0, ratings - expected), "storm_failed_phones": sum(o["failed"] for o in outcomes),
            "storm_failures": [f for o in outcomes for f in o["failures"]][:3],
            "storm_duplicate_acks": sum(o["duplicates"] for o in outcomes),
            "storm_new_acks": sum(o["new"] for o in outcomes),
            "storm_errors": [e for o in outcomes for e in o["errors"]][:3]}
