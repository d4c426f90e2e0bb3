"""cluster: tourpulse on a ``tourpulse dev-cluster`` (3 primaries, 1 replica each) against the run's single server,
each ``ack_after`` mode's cost, and a primary's failover (contract §14). Writes ``cluster.*`` and ``durability.*``.

- closed loop at 100 connections and open loop at 2,000/s through one web process plus one watcher, on the single
  server (``ack_after = "write"``) and on the cluster in each mode: events/s, ack p99, CPU per event of the web
  process and of the watcher, and the servers' commands and CPU per event (``INFO`` before and after);
- ``cluster.ratio_to_single`` (events/s, cluster / single) and ``ack_p99_ratio_to_single``;
- ``durability.fsync_ratio`` / ``replica_ratio``: events/s of that mode / of ``write``, on the cluster;
- the failover drill of :mod:`bench.failover` in ``replica`` mode: ``failover_unavailable_s`` (the longest a phone
  waited for one ack) and ``failover_lost_acked``.

On a 2-core machine six Valkey nodes share the cores with everything else: the cluster cannot be faster here.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from bench.common import (
    Ctx,
    ServerProc,
    ms,
    percentile,
    rating_days,
    register_tours,
    settings_doc,
    start_servers,
    tour_ids,
)
from bench.failover import drill
from bench.load import load_specs, run_load
from server.db.client import target
from server.tools.dev_cluster_process import start_dev_cluster, stop_dev_cluster

KEYS = ("events_per_s", "single_events_per_s", "ratio_to_single", "ack_p99_ms", "single_ack_p99_ms",
        "ack_p99_ratio_to_single", "web_cpu_us_per_event", "watcher_cpu_us_per_event", "redis_ops_per_event",
        "redis_cpu_us_per_event", "failover_unavailable_s", "failover_lost_acked")
DURABILITY_KEYS = ("write_events_per_s", "fsync_events_per_s", "replica_events_per_s", "fsync_ratio",
                   "replica_ratio", "write_ack_p99_ms", "fsync_ack_p99_ms", "replica_ack_p99_ms")
TOURS = 200
RATE = 2000


def _nodes(url: str) -> list[redis.Redis]:
    where = target(url)
    if not where.cluster:
        return [redis.Redis.from_url(url)]
    return [redis.Redis(host=h, port=p, username=where.username, password=where.password) for h, p in where.seeds]


def server_counters(url: str) -> tuple[int, float]:
    """Commands processed and CPU seconds spent, summed over every node (replicas too: they apply every write)."""
    commands, cpu = 0, 0.0
    for node in _nodes(url):
        try:
            info = node.info("all")
            commands += int(info["total_commands_processed"])
            cpu += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        finally:
            node.close()
    return commands, cpu


def flush(url: str) -> None:
    for node in _nodes(url):
        try:
            if node.info("replication")["role"] == "master":
                node.flushall()
        finally:
            node.close()


async def measure(ctx: Ctx, ack_after: str) -> dict[str, Any]:
    """One web process and one watcher on ``ctx.redis_url`` in one ``ack_after`` mode."""
    flush(ctx.redis_url)
    tours = tour_ids(TOURS)
    await register_tours(ctx, tours)
    doc = settings_doc()
    doc["storage"]["ack_after"] = ack_after
    doc["storage"]["ack_after_incident"] = ack_after
    web, watcher = ServerProc(ctx, "tourpulse", doc=doc), ServerProc(ctx, "watcher", doc=doc)
    try:
        await start_servers(web, watcher)
        specs = load_specs(mode="closed", ports=[web.port], path="/ws/traveller", connections=100, processes=1,
                           run_id=f"cl-{ack_after}", tours=tours, days=rating_days())
        before = server_counters(ctx.redis_url)
        closed = await run_load(specs, warmup=ctx.seconds(0.5, 2.0), measure=ctx.seconds(2.5, 10.0),
                                servers=[web, watcher])
        after = server_counters(ctx.redis_url)
        specs = load_specs(mode="open", ports=[web.port], path="/ws/traveller", connections=100, processes=1,
                           run_id=f"op-{ack_after}", tours=tours, days=rating_days(), rate=RATE)
        opened = await run_load(specs, warmup=ctx.seconds(0.5, 1.0), measure=ctx.seconds(3.0, 10.0),
                                servers=[web, watcher])
    finally:
        web.stop()
        watcher.stop()
    acks = sum(r["acks"] for r in closed["results"]) or 1
    lat = [x for r in opened["results"] for x in r["latencies"]]
    web_cpu, watcher_cpu = closed["server_cpu_s"]
    return {
        "events_per_s": round(acks / closed["window"], 1),
        "ack_p99_ms": ms(percentile(lat, 99)), "ack_p50_ms": ms(percentile(lat, 50)),
        "open_loop_acked": sum(r["acks"] for r in opened["results"]),
        "errors": sum(r["errors"] for r in closed["results"] + opened["results"]),
        "web_cpu_us_per_event": round(web_cpu / acks * 1e6, 1),
        # the watcher folds what was stored in the window (it keeps up at this rate, or its lag would show)
        "watcher_cpu_us_per_event": round(watcher_cpu / acks * 1e6, 1),
        # both of these count the whole window, the watcher's reads, saves and acks included
        "redis_ops_per_event": round((after[0] - before[0]) / acks, 2),
        "redis_cpu_us_per_event": round((after[1] - before[1]) / acks * 1e6, 1),
    }


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    single = await measure(ctx, "write")
    ctx.stop_all()
    with tempfile.TemporaryDirectory(prefix="tourpulse-bench-cluster-") as folder:
        url, proc = start_dev_cluster(Path(folder))
        cctx = Ctx(redis_url=url, quick=ctx.quick, time_scale=ctx.time_scale)
        try:
            modes = {}
            for mode in ("write", "fsync", "replica"):
                modes[mode] = await measure(cctx, mode)
                cctx.stop_all()
            flush(url)
            started = time.monotonic()
            failover = await drill(cctx, ack_after="replica", before=ctx.seconds(3.0, 5.0),
                                   after=ctx.seconds(12.0, 20.0))
            failover["seconds"] = round(time.monotonic() - started, 1)
        finally:
            cctx.stop_all()
            stop_dev_cluster(proc)
    on = modes["write"]
    results["durability"] = {
        **{f"{m}_events_per_s": modes[m]["events_per_s"] for m in modes},
        **{f"{m}_ack_p99_ms": modes[m]["ack_p99_ms"] for m in modes},
        "fsync_ratio": _ratio(modes["fsync"]["events_per_s"], on["events_per_s"]),
        "replica_ratio": _ratio(modes["replica"]["events_per_s"], on["events_per_s"]),
        "modes": modes,
    }
    return {
        "events_per_s": on["events_per_s"], "single_events_per_s": single["events_per_s"],
        "ratio_to_single": _ratio(on["events_per_s"], single["events_per_s"]),
        "ack_p99_ms": on["ack_p99_ms"], "single_ack_p99_ms": single["ack_p99_ms"],
        "ack_p99_ratio_to_single": _ratio(on["ack_p99_ms"], single["ack_p99_ms"]),
        "web_cpu_us_per_event": on["web_cpu_us_per_event"], "watcher_cpu_us_per_event": on["watcher_cpu_us_per_event"],
        "redis_ops_per_event": on["redis_ops_per_event"], "redis_cpu_us_per_event": on["redis_cpu_us_per_event"],
        "failover_unavailable_s": failover["unavailable_s"], "failover_lost_acked": failover["lost_acked"],
        "single": single, "failover": failover,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None
