"""crisis: a safety check reaching every connected phone across two web processes, and its roll-up.

Two web processes and one watcher (separate processes) serve 100 tours; two client processes (lean client) hold
N traveller connections (full: 10,000; quick: 2,000), spread over both web processes. A supervisor starts one
safety check for the region over HTTP; ``check_fanout_p99_ms`` is the 99th percentile, over every phone, of the
time from just before that request to the phone receiving its ``safety_check`` (one machine, one clock). Every
phone then answers ``safe`` and awaits its ack; once the watcher has folded them all, ``rollup_ms`` is the median
wall time of ``GET /api/safety-checks/{check_id}`` with all N answers (five requests after one warm-up).
Targets: fan-out p99 under 2,000 ms, roll-up under 200 ms.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from typing import Any

import httpx
import msgpack
import redis.asyncio as aioredis

from bench import wsclient
from bench.common import Ctx, ServerProc, percentile, register_tours, settings_doc, start_servers, token, tour_ids
from bench.load import LoadProc, ask, run_child
from bench.watcher import backlog_left

KEYS = ("check_fanout_p99_ms", "rollup_ms")
TOURS = 100
PROCESSES = 2
ANSWER_TIMEOUT = 120.0
FOLD_TIMEOUT = 120.0


class Phone:
    __slots__ = ("tour", "sub", "tok", "port", "check_at", "check_id", "acked", "error", "waiter")

    def __init__(self, i: int, tours: list[str], ports: list[int]) -> None:
        self.tour = tours[i % len(tours)]
        self.sub = f"p{i}"
        self.tok = token("traveller", self.sub, tours=(self.tour,))
        self.port = ports[i % len(ports)]
        self.check_at: float | None = None
        self.check_id: str | None = None
        self.acked = False
        self.error: dict[str, Any] | None = None
        self.waiter: asyncio.Future[None] | None = None


def _on_message(conn: wsclient.WSConn, payload: bytes) -> None:
    phone: Phone = conn.tag
    frame = json.loads(payload) if payload[:1] == b"{" else msgpack.unpackb(payload)
    kind = frame.get("type")
    if kind == "safety_check" and phone.check_at is None:
        phone.check_at = time.time()
        phone.check_id = frame["check_id"]
    elif kind in ("ack", "error"):
        phone.acked = kind == "ack"
        phone.error = None if phone.acked else frame
    else:
        return
    if phone.waiter is not None and not phone.waiter.done():
        phone.waiter.set_result(None)


async def _phones(spec: dict[str, Any], pipe: Any) -> None:
    rng = random.Random(spec["ids"][0])
    phones = [Phone(i, spec["tours"], spec["ports"]) for i in spec["ids"]]
    gate = asyncio.Semaphore(200)
    loop = asyncio.get_running_loop()

    async def open_one(phone: Phone) -> wsclient.WSConn:
        async with gate:
            return await wsclient.connect_retrying("127.0.0.1", phone.port, "/ws/traveller", phone.tok,
                                                   on_message=_on_message, tag=phone, attempts=12, timeout=30.0,
                                                   rng=rng)

    conns = list(await asyncio.gather(*(open_one(p) for p in phones)))
    for phone in phones:
        phone.waiter = loop.create_future()
    pipe.send(("ready", len(conns)))
    await asyncio.wait_for(asyncio.gather(*(p.waiter for p in phones if p.waiter)), ANSWER_TIMEOUT)
    pipe.send(("received", [p.check_at for p in phones]))
    await ask(pipe)  # answer now
    for phone, conn in zip(phones, conns, strict=True):
        phone.waiter = loop.create_future()
        conn.send(msgpack.packb({"type": "safety_reply", "id": f"{phone.sub}-s", "check_id": phone.check_id,
                                 "status": "safe"}))
    await asyncio.wait_for(asyncio.gather(*(p.waiter for p in phones if p.waiter)), ANSWER_TIMEOUT)
    pipe.send(("answered", (sum(1 for p in phones if p.acked), [p.error for p in phones if p.error][:3])))
    await ask(pipe)  # done
    for conn in conns:
        conn.close()


def phones_worker(spec: dict[str, Any], pipe: Any) -> None:
    run_child(_phones, spec, pipe)


async def _idle(ctx: Ctx) -> None:
    client = aioredis.Redis.from_url(ctx.redis_url)
    try:
        deadline = time.monotonic() + FOLD_TIMEOUT
        await asyncio.sleep(0.5)
        while await backlog_left(client) != 0:
            if time.monotonic() > deadline:
                raise TimeoutError("the watcher did not catch up with the phones' connections")
            await asyncio.sleep(0.2)
    finally:
        await client.aclose()


async def _folded(http: httpx.AsyncClient, path: str, headers: dict[str, str], count: int) -> dict[str, Any]:
    deadline = time.monotonic() + FOLD_TIMEOUT
    while True:
        roll = (await http.get(path, headers=headers)).json()
        if roll["overall"]["safe"] >= count:
            return roll
        if time.monotonic() > deadline:
            raise TimeoutError(f"the watcher folded {roll['overall']['safe']} of {count} answers")
        await asyncio.sleep(0.5)


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    await ctx.flush()
    tours = tour_ids(TOURS)
    await register_tours(ctx, tours)
    count = int(ctx.scale(2000, 10_000))
    doc = settings_doc()
    webs = [ServerProc(ctx, "tourpulse", doc=doc) for _ in range(2)]
    watcher = ServerProc(ctx, "watcher", doc=doc)
    await start_servers(*webs, watcher)
    ports = [w.port for w in webs]
    procs = [LoadProc(phones_worker, {"ports": ports, "ids": list(range(k, count, PROCESSES)), "tours": tours})
             for k in range(PROCESSES)]
    headers = {"Authorization": f"Bearer {token('supervisor', 'bench', regions=('yunnan',))}"}
    base = f"http://127.0.0.1:{ports[0]}"
    try:
        opened = sum(r[1] for r in await asyncio.gather(*(p.recv(300) for p in procs)))
        await _idle(ctx)  # the connect-time bookkeeping (each tour's people) folded: the check waits behind nothing
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            sent_at = time.time()
            resp = await http.post("/api/safety-checks", headers=headers, json={
                "region": "yunnan", "message": "Typhoon: are you safe?", "deadline": "10m", "repeat": "5m"})
            resp.raise_for_status()
            post_ms = (time.time() - sent_at) * 1000
            check_id = resp.json()["check_id"]
            received = [t for r in await asyncio.gather(*(p.recv(ANSWER_TIMEOUT + 10) for p in procs))
                        for t in r[1]]
            latencies = [(t - sent_at) * 1000 for t in received if t is not None]
            for p in procs:
                p.send(("answer",))
            answered = [r[1] for r in await asyncio.gather(*(p.recv(ANSWER_TIMEOUT + 10) for p in procs))]
            acked = sum(a[0] for a in answered)
            errors = [e for a in answered for e in a[1]][:3]
            path = f"/api/safety-checks/{check_id}"
            fold_started = time.monotonic()
            roll = await _folded(http, path, headers, acked)
            fold_s = time.monotonic() - fold_started
            timings = []
            for _ in range(6):
                started = time.perf_counter()
                (await http.get(path, headers=headers)).raise_for_status()
                timings.append((time.perf_counter() - started) * 1000)
            csv_started = time.perf_counter()
            (await http.get(path + "?format=csv", headers=headers)).raise_for_status()
            csv_ms = (time.perf_counter() - csv_started) * 1000
        for p in procs:
            p.send(("done",))
    finally:
        for p in procs:
            p.stop()
    return {"check_fanout_p99_ms": round(percentile(latencies, 99) or 0.0, 1),
            "rollup_ms": round(statistics.median(timings[1:]), 1),
            "phones": opened, "received": len(latencies), "answers_acked": acked, "answer_errors": errors,
            "check_post_ms": round(post_ms, 1), "check_fanout_min_ms": round(min(latencies), 1) if latencies else None,
            "check_fanout_p50_ms": round(percentile(latencies, 50) or 0.0, 1),
            "check_fanout_max_ms": round(max(latencies), 1) if latencies else None,
            "rollup_max_ms": round(max(timings[1:]), 1), "rollup_csv_ms": round(csv_ms, 1),
            "answers_folded_s": round(fold_s, 2), "overall": roll["overall"]}
