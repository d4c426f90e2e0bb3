"""Which client for the hot path on a cluster: our slot-routed writer against valkey-glide and coredis.

``python -m bench.cluster_clients REDIS_URL [--calls N] [--callers C]`` (a ``redis+cluster://`` URL, e.g. from
``tourpulse dev-cluster``). Each client runs the same load: C callers, each awaiting one ``ingest`` script call at a
time (as phones' connections do) on keys spread over 16 shards, N calls in all, taking turns in rounds. Reports
calls/s and client CPU µs per call (process time: glide's Rust threads count too). glide and coredis are not
tourpulse dependencies: install them beside it to compare (``pip install --target DIR valkey-glide coredis`` and
``PYTHONPATH=DIR``); a client that is not installed is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from server.core import keys
from server.db.client import target
from server.db.cluster import ClusterWriter
from server.db.scripts import SCRIPTS

Call = Callable[[list[str], list[Any]], Awaitable[Any]]


def _args(n: int) -> tuple[list[str], list[Any]]:
    shard = n % 16
    idem = keys.idem(shard, "bench", str(n))
    return [idem, keys.events(shard), idem], ["fp", b"x" * 60, 600, "plain", ""]


async def _drive(call: Call, calls: int, callers: int) -> dict[str, float]:
    counter = iter(range(calls))

    async def caller() -> None:
        for n in counter:
            await call(*_args(n))

    await asyncio.gather(*(caller() for _ in range(min(callers, 50))))  # warm up every connection
    counter = iter(range(calls, 2 * calls))
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller() for _ in range(callers)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"calls_per_s": round(calls / wall), "cpu_us_per_call": round(cpu / calls * 1e6, 1)}


async def ours(url: str, calls: int, callers: int) -> dict[str, float]:
    writer = ClusterWriter(url)
    await writer.start()
    try:
        return await _drive(lambda k, a: writer.call("ingest", k, a), calls, callers)
    finally:
        await writer.stop()


async def glide(url: str, calls: int, callers: int) -> dict[str, float]:
    from glide import GlideClusterClient, GlideClusterClientConfiguration, NodeAddress, Script, ServerCredentials

    where = target(url)
    config = GlideClusterClientConfiguration(
        [NodeAddress(h, p) for h, p in where.seeds],
        credentials=ServerCredentials(where.password or "", where.username))
    client = await GlideClusterClient.create(config)
    script = Script(SCRIPTS["ingest"])
    try:
        return await _drive(lambda k, a: client.invoke_script(script, keys=k, args=[_text(x) for x in a]),
                            calls, callers)
    finally:
        await client.close()


async def coredis_(url: str, calls: int, callers: int) -> dict[str, float]:
    import coredis

    where = target(url)
    client = coredis.RedisCluster(startup_nodes=[coredis.connection.TCPLocation(h, p) for h, p in where.seeds],
                                  password=where.password)
    async with client:
        script = client.register_script(SCRIPTS["ingest"])
        return await _drive(lambda k, a: script(keys=k, args=a), calls, callers)


def _text(value: Any) -> str | bytes:
    return value if isinstance(value, str | bytes) else str(value)  # glide takes only str and bytes


CLIENTS = {"tourpulse writer": ours, "valkey-glide": glide, "coredis": coredis_}


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_clients")
    parser.add_argument("url")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--callers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):  # machines drift: take turns
        for name, run in CLIENTS.items():
            try:
                results.setdefault(name, []).append(await run(args.url, args.calls, args.callers))
            except ImportError:
                results.pop(name, None)
            except Exception as exc:  # noqa: BLE001 - a client that fails is reported, the others still run
                results.setdefault(name, []).append({"error": str(exc)[:200]})  # type: ignore[dict-item]
    print(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    asyncio.run(main())
