"""200 concurrent pulls from 4 OS processes at a pool of 50 vehicles, then FIFO service as holds are released.

Each process has its own redis.asyncio client and fires its 50 pulls at once with asyncio.gather, so the pulls
really race on the server; only the Lua script's atomicity keeps a vehicle from being held twice.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque

import redis.asyncio as aioredis

from alerts.pool import PoolStore
from server.core import keys
from server.core.settings import Settings

PROCESSES = 4
PULLS_PER_PROCESS = 50
VEHICLES = 50
NOW = 1_700_000_000.0

# one child: argv = redis url, process number, pulls, now; prints a JSON list of [incident, status, id]
CHILD = """
import asyncio, json, sys
import redis.asyncio as aioredis
from alerts.pool import PoolStore
from server.core.settings import Settings

async def main(url: str, proc: int, pulls: int, now: float) -> None:
    client = aioredis.Redis.from_url(url)
    store = PoolStore(client, Settings(secret=b"test-secret-of-16+"))
    incidents = [f"t{proc}~{n:010d}" for n in range(pulls)]
    results = await asyncio.gather(*(
        store.pull(incident, "bj", "vehicle", 30, "vehicle", None, now) for incident in incidents))
    await client.aclose()
    print(json.dumps([[i, r.status, r.resource["resource_id"] if r.resource else None]
                      for i, r in zip(incidents, results)]))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
"""


async def holders(client: aioredis.Redis) -> dict[str, str]:
    """resource id -> the incident holding it, read straight from the stored resources."""
    out = {}
    for n in range(VEHICLES):
        held_by = await client.hget(keys.pool_resource("bj", f"v{n:02d}"), "held_by")
        if held_by is not None:
            out[f"v{n:02d}"] = held_by.decode()
    return out


async def test_200_pulls_from_4_processes_hold_50_and_serve_the_rest_in_order(
        redis_url: str, redis_client: aioredis.Redis) -> None:
    store = PoolStore(redis_client, Settings(secret=b"test-secret-of-16+"))
    for n in range(VEHICLES):
        await store.put({"resource_id": f"v{n:02d}", "kind": "vehicle", "region": "bj", "capacity": 40}, NOW)

    children = [subprocess.Popen([sys.executable, "-c", CHILD, redis_url, str(proc),
                                  str(PULLS_PER_PROCESS), repr(NOW)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for proc in range(PROCESSES)]
    results = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        results += json.loads(out)

    held = [(incident, rid) for incident, status, rid in results if status == "held"]
    queued = [incident for incident, status, _ in results if status == "queued"]
    assert len(results) == PROCESSES * PULLS_PER_PROCESS
    assert len(held) == VEHICLES and len({rid for _, rid in held}) == VEHICLES
    assert len(queued) == PROCESSES * PULLS_PER_PROCESS - VEHICLES
    assert await holders(redis_client) == {rid: incident for incident, rid in held}
    waiting = await store.waiting("bj", "vehicle")
    assert sorted(waiting) == sorted(queued)
    queue_order = list(waiting)

    # release the oldest holder each time: every release serves exactly the head of the queue
    holding = deque(incident for incident, _ in held)
    served_order = []
    while waiting:
        served = await store.release(holding.popleft(), "bj", NOW + 60)
        assert [s.incident_id for s in served] == [waiting[0]]
        served_order.append(served[0].incident_id)
        holding.append(served[0].incident_id)
        now_held = await holders(redis_client)
        assert len(now_held) == VEHICLES and set(now_held.values()) == set(holding)
        waiting = await store.waiting("bj", "vehicle")
    assert served_order == queue_order
