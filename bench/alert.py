"""alert: rating-to-board latency, from the ack of the rating that crosses the threshold to the ``alert`` frame.

A tourpulse web process and a watcher process (the Procfile's layout; ``tourpulse serve``'s single process is
measured too, as ``single_process_*``) and a supervisor board on ``/ws/board``. A prober process repeatedly makes
a fresh tour-day cross the score threshold: three travellers of one tour rate the same day 1, one after another,
each awaiting its ack; the latency is from the third ack to the board's ``score_below_threshold`` alert for that
tour-day. Measured on an idle server (``latency_p50_ms``, ``latency_p99_ms``), and under 1,000 ratings/s of good
scores on other tours from another process (``loaded_latency_p50_ms``, ``loaded_latency_p99_ms``).

Each phase also splits the way (``legs``, wall clocks of one machine): from the ack to the watcher's read of the
batch (the alert's ``updated_at`` is that read's time), from the read to the change stored (its seq is the
server's millisecond), and from there to the board.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import msgpack

from bench import wsclient
from bench.common import Ctx, ServerProc, ms, percentile, rating_days, register_tours, settings_doc, token, tour_ids
from bench.load import LoadProc, ask, load_specs, open_summary, run_child, run_load

KEYS = ("latency_p50_ms", "latency_p99_ms", "loaded_latency_p50_ms", "loaded_latency_p99_ms")
PROBE_TOURS = 20
BACKGROUND_TOURS = 180
BACKGROUND_RATE = 1000
ALERT_TIMEOUT = 5.0


class Board:
    """The board's side of the prober: arrival times of score alerts, by dedup key."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.legs: dict[str, tuple[float, float]] = {}  # dedup key -> (read at, stored at), wall clock
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.snapshot = asyncio.get_running_loop().create_future()

    def on_message(self, conn: wsclient.WSConn, payload: bytes) -> None:
        now = time.monotonic()
        frame = msgpack.unpackb(payload)
        if frame.get("type") == "snapshot" and not self.snapshot.done():
            self.snapshot.set_result(None)
        if frame.get("type") != "alert" or frame["alert"].get("kind") != "score_below_threshold":
            return
        key = frame["alert"].get("dedup_key")
        if key in self.arrived:
            return
        self.arrived[key] = now
        read_at = dt.datetime.fromisoformat(frame["alert"]["updated_at"].replace("Z", "+00:00")).timestamp()
        self.legs[key] = (read_at, int(str(frame["seq"]).partition("-")[0]) / 1000)
        waiter = self.waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def wait(self, key: str) -> float:
        if key in self.arrived:
            return self.arrived[key]
        waiter = self.waiters[key] = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(waiter, ALERT_TIMEOUT)


def _on_answer(conn: wsclient.WSConn, payload: bytes) -> None:
    waiter: asyncio.Future[tuple[float, dict[str, Any]]] | None = conn.tag[0]
    if waiter is not None and not waiter.done():
        waiter.set_result((time.monotonic(), msgpack.unpackb(payload)))


async def _rate(conn: wsclient.WSConn, msg: dict[str, Any]) -> float:
    waiter = conn.tag[0] = asyncio.get_running_loop().create_future()
    conn.send(msgpack.packb(msg))
    at, reply = await asyncio.wait_for(waiter, ALERT_TIMEOUT)
    if reply.get("type") != "ack":
        raise RuntimeError(f"rating refused: {reply}")
    return at


async def _probe(spec: dict[str, Any], pipe: Any) -> None:
    board = Board()
    await wsclient.connect("127.0.0.1", spec["port"], "/ws/board?format=msgpack",
                           token("supervisor", "bench-sup", regions=("*",)), on_message=board.on_message)
    await asyncio.wait_for(board.snapshot, 10)
    tours, days = spec["tours"], spec["days"]
    raters = {(tour, j): await wsclient.connect(
        "127.0.0.1", spec["port"], "/ws/traveller", token("traveller", f"probe-{tour}-{j}", tours=(tour,)),
        on_message=_on_answer, tag=[None]) for tour in tours for j in range(3)}
    pipe.send(("ready", len(raters)))
    _, first = await ask(pipe)  # which crossing to start from: each run needs fresh tour-days
    latencies, timeouts = [], 0
    legs: list[tuple[float, float, float]] = []
    for k in range(first, first + spec["crossings"]):
        tour, day = tours[k % len(tours)], days[k // len(tours)]
        acked = 0.0
        for j in range(3):
            acked = await _rate(raters[(tour, j)], {"type": "rating", "id": f"probe-{k}-{j}", "tour_id": tour,
                                                    "day": day, "score": 1})
        acked_wall = time.time() - (time.monotonic() - acked)
        key = f"score_below_threshold:{tour}:{day}"
        try:
            arrived = await board.wait(key)
        except TimeoutError:
            timeouts += 1
            continue
        latencies.append(max(0.0, arrived - acked))
        read_at, stored_at = board.legs[key]
        legs.append((read_at - acked_wall, stored_at - read_at, acked_wall + (arrived - acked) - stored_at))
        await asyncio.sleep(0.01)
    pipe.send(("result", {"latencies": latencies, "timeouts": timeouts, "legs": legs}))


def prober(spec: dict[str, Any], pipe: Any) -> None:
    run_child(_probe, spec, pipe)


async def probe(server: ServerProc, tours: list[str], crossings: int, first: int) -> dict[str, Any]:
    proc = LoadProc(prober, {"port": server.port, "tours": tours, "days": rating_days(), "crossings": crossings})
    try:
        await proc.recv(30)
        proc.send(("go", first))
        _, result = await proc.recv(crossings * (ALERT_TIMEOUT + 1) + 30)
    finally:
        proc.stop()
    lat = result["latencies"]
    legs = {name: {"p50_ms": ms(percentile([leg[i] for leg in result["legs"]], 50)),
                   "p99_ms": ms(percentile([leg[i] for leg in result["legs"]], 99))}
            for i, name in enumerate(("ack_to_watcher_read", "read_to_stored", "stored_to_board"))}
    return {"p50_ms": ms(percentile(lat, 50)), "p99_ms": ms(percentile(lat, 99)), "max_ms": ms(max(lat, default=None)),
            "samples": len(lat), "timeouts": result["timeouts"], "legs": legs}


async def _measure(ctx: Ctx, split: bool) -> dict[str, Any]:
    """Idle and loaded latency in one layout: the Procfile's (``split``: web and watcher processes) or
    ``tourpulse serve``'s (one process running both)."""
    await ctx.flush()
    probe_tours = tour_ids(PROBE_TOURS, "P")
    background_tours = tour_ids(BACKGROUND_TOURS, "G")
    await register_tours(ctx, probe_tours + background_tours)
    doc = settings_doc(block="500ms")
    server = ServerProc(ctx, "tourpulse", doc=doc, run_watcher=not split)
    watcher = ServerProc(ctx, "watcher", doc=doc) if split else None
    await server.ready()
    if watcher is not None:
        await watcher.ready()
    crossings = int(ctx.scale(20, 200))
    try:
        idle = await probe(server, probe_tours, crossings, 0)
        measure = ctx.scale(4.0, 25.0)
        specs = load_specs(mode="open", ports=[server.port], path="/ws/traveller", connections=200, processes=1,
                           run_id="bg", tours=background_tours, days=rating_days(), rate=BACKGROUND_RATE)
        background = asyncio.create_task(run_load(specs, warmup=1.0, measure=measure, servers=[server]))
        await asyncio.sleep(1.5)  # connected and past the warm-up
        loaded = await probe(server, probe_tours, crossings, crossings)
        load_run = await background
    finally:
        server.stop()
        if watcher is not None:
            watcher.stop()
    return {"idle": idle, "loaded": loaded, "background": open_summary(load_run, BACKGROUND_RATE)}


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    # the headline keys are the production layout (Procfile: web and watcher processes); `tourpulse serve`'s
    # single process, where folding competes with ingest for one core, is reported beside them
    split = await _measure(ctx, split=True)
    single = await _measure(ctx, split=False)
    return {"latency_p50_ms": split["idle"]["p50_ms"], "latency_p99_ms": split["idle"]["p99_ms"],
            "loaded_latency_p50_ms": split["loaded"]["p50_ms"], "loaded_latency_p99_ms": split["loaded"]["p99_ms"],
            "single_process_loaded_latency_p50_ms": single["loaded"]["p50_ms"],
            "single_process_loaded_latency_p99_ms": single["loaded"]["p99_ms"],
            "layout": "web + watcher processes (Procfile)", "background_rate": BACKGROUND_RATE,
            "split": split, "single_process": single}
