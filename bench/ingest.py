"""ingest: tourpulse's ``/ws/traveller`` with every check on (token, validation, tour lookup, idempotency, scope).

- closed loop at 100 connections (``events_per_s``, ``cpu_us_per_msg``, ``ratio_to_baseline`` against the bare
  endpoint's 100-connection figure of the same run) and at 1,000 (``events_per_s_1000``);
- open loop at fixed rates (quick: 2,000/s; full: 1,000, 2,000 and 4,000/s) over 100 connections: ack latency
  from each frame's scheduled send time, ``ack_p50_ms`` / ``ack_p99_ms`` / ``ack_p999_ms`` at 2,000/s, and every
  rate under ``open_loop``.

200 tours, travellers spread over them (one token per connection, scoped to its tour), each rating the tour's
past days in turn with distinct ids, so every frame is a new event (no duplicates, no rate limiting).
"""

from __future__ import annotations

from typing import Any

from bench.common import Ctx, ServerProc, ack_histogram, histogram_quantile, rating_days, register_tours, tour_ids
from bench.load import closed_summary, load_specs, open_summary, run_load

KEYS = ("events_per_s", "events_per_s_1000", "cpu_us_per_msg", "ratio_to_baseline", "ack_p50_ms", "ack_p99_ms",
        "ack_p999_ms")
TOURS = 200
HEADLINE_RATE = 2000


async def closed_loop(ctx: Ctx, server: ServerProc, connections: int, run_id: str, tours: list[str]
                      ) -> dict[str, Any]:
    specs = load_specs(mode="closed", ports=[server.port], path="/ws/traveller", connections=connections,
                       processes=1, run_id=run_id, tours=tours, days=rating_days())
    run = await run_load(specs, warmup=ctx.seconds(0.5, 2.0), measure=ctx.seconds(2.5, 10.0), servers=[server])
    return closed_summary(run)


async def open_loop(ctx: Ctx, server: ServerProc, rate: int, tours: list[str]) -> dict[str, Any]:
    specs = load_specs(mode="open", ports=[server.port], path="/ws/traveller", connections=100, processes=1,
                       run_id=f"open{rate}", tours=tours, days=rating_days(), rate=rate)
    before = await ack_histogram(server.port)
    run = await run_load(specs, warmup=ctx.seconds(0.5, 1.0), measure=ctx.seconds(3.0, 10.0), servers=[server])
    after = await ack_histogram(server.port)
    summary = open_summary(run, rate)
    # the server's own share of the ack latency (bucket bounds), beside the client-measured figures
    summary["server_ack_p50_ms_at_most"] = histogram_quantile(before, after, 0.50)
    summary["server_ack_p99_ms_at_most"] = histogram_quantile(before, after, 0.99)
    return summary


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    await ctx.flush()
    tours = tour_ids(TOURS)
    await register_tours(ctx, tours)
    server = ServerProc(ctx, "tourpulse")
    await server.ready()
    try:
        c100 = await closed_loop(ctx, server, 100, "c100", tours)
        c1000 = await closed_loop(ctx, server, 1000, "c1000", tours)
        rates = [HEADLINE_RATE] if ctx.quick else [1000, HEADLINE_RATE, 4000]
        opened = {str(rate): await open_loop(ctx, server, rate, tours) for rate in rates}
    finally:
        server.stop()
    base = (results.get("baseline") or {}).get("events_per_s")
    if not base:  # run alone (--only ingest): measure the ceiling here, in the same run
        from bench.baseline import bare_closed_loop

        await ctx.flush()
        base = (await bare_closed_loop(ctx))["events_per_s"]
    head = opened[str(HEADLINE_RATE)]
    return {
        "events_per_s": c100["events_per_s"], "events_per_s_1000": c1000["events_per_s"],
        "cpu_us_per_msg": c100["cpu_us_per_msg"], "cpu_us_per_msg_1000": c1000["cpu_us_per_msg"],
        "ratio_to_baseline": round(c100["events_per_s"] / base, 2) if base else None,
        "ack_p50_ms": head["ack_p50_ms"], "ack_p99_ms": head["ack_p99_ms"], "ack_p999_ms": head["ack_p999_ms"],
        "server_ack_p99_ms_at_most": head["server_ack_p99_ms_at_most"],
        "closed_loop_100": c100, "closed_loop_1000": c1000, "open_loop": opened,
    }
