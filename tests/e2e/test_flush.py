"""``flush.lua``: a consumer's states and acks land in one fenced step, whatever their size."""

from __future__ import annotations

import redis.asyncio as aioredis

from server.core import keys
from server.db.scripts import script


async def test_a_large_flush_saves_every_field_and_acks_every_entry(redis_client: aioredis.Redis) -> None:
    stream = keys.events(3)
    await redis_client.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
    ids = [await redis_client.xadd(stream, {"e": b"x"}) for _ in range(2500)]  # over two 1,000-id chunks
    await redis_client.xreadgroup(keys.GROUP, "w1", {stream: ">"}, count=5000)
    await redis_client.set(keys.lease(3), "w1")
    big = {f"r:2026-01-01:t{i}": f"v{i}" for i in range(1700)}  # 3,400 arguments: HSET in chunks
    small = {"m": "meta"}
    args: list[object] = ["w1", keys.GROUP, len(ids), *ids]
    for fields in (big, small):
        args.append(2 * len(fields))
        for name, value in fields.items():
            args += [name, value]
        args.append(0)  # no fields to delete
    acked = await script(redis_client, "flush")(
        keys=[keys.lease(3), stream, keys.state(3, "BIG"), keys.state(3, "SMALL")], args=args)
    assert acked == 2500
    assert await redis_client.hgetall(keys.state(3, "BIG")) == {k.encode(): v.encode() for k, v in big.items()}
    assert await redis_client.hgetall(keys.state(3, "SMALL")) == {b"m": b"meta"}
    assert (await redis_client.xpending(stream, keys.GROUP))["pending"] == 0


async def test_a_flush_without_the_lease_writes_nothing(redis_client: aioredis.Redis) -> None:
    stream = keys.events(3)
    await redis_client.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
    entry = await redis_client.xadd(stream, {"e": b"x"})
    await redis_client.xreadgroup(keys.GROUP, "w1", {stream: ">"})
    await redis_client.set(keys.lease(3), "w2")
    refused = await script(redis_client, "flush")(
        keys=[keys.lease(3), stream, keys.state(3, "T")], args=["w1", keys.GROUP, 1, entry, 2, "m", "meta", 0])
    assert refused == -1
    assert await redis_client.exists(keys.state(3, "T")) == 0
    assert (await redis_client.xpending(stream, keys.GROUP))["pending"] == 1


async def test_a_flush_deletes_the_fields_of_an_older_layout_it_rewrites(redis_client: aioredis.Redis) -> None:
    stream = keys.events(3)
    await redis_client.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
    await redis_client.set(keys.lease(3), "w1")
    state = keys.state(3, "T")
    await redis_client.hset(state, mapping={"m": "v1", "d:2026-01-01": "a day", "d:2026-01-02": "another"})
    old_days = ["d:2026-01-01", "d:2026-01-02"]
    acked = await script(redis_client, "flush")(
        keys=[keys.lease(3), stream, state],
        args=["w1", keys.GROUP, 0, 4, "m", "v2", "r:2026-01-01:a", "rating", len(old_days), *old_days])
    assert acked == 0
    assert await redis_client.hgetall(state) == {b"m": b"v2", b"r:2026-01-01:a": b"rating"}
