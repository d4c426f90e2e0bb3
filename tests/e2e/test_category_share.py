"""A route's complaint categories, end to end: counted once per complaint, and a category whose share passes the
line opens a ``category_share`` alert whose details are the counts after its latest complaint, even though a
tour's complaint counts and their alerts go out pipelined, many in one round trip."""

from __future__ import annotations

import redis.asyncio as aioredis

from alerts.watcher import Watcher
from server.core import keys
from tests.conftest import make_settings, register_tour
from tests.e2e.test_ingest_ws import ask, phone, rating
from tests.e2e.test_watcher_crash import FAST, active_alerts, eventually, pending

MEALS = "the meals were cold and tasteless"
BUS = "the bus was dirty and late"


async def test_a_category_past_its_share_alerts_with_the_latest_counts(app_factory, redis_url,
                                                                      redis_client: aioredis.Redis) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        # stored before the watcher starts, so they are folded in one read and their effects pipelined together
        for n, comment in enumerate([MEALS] * 8 + [BUS] * 4):
            async with await phone(base, "traveller", f"t{n}") as ws:
                assert (await ask(ws, rating(f"c{n}", 2, comment=comment), True))["type"] == "ack"
        watcher = Watcher(make_settings(redis_url, FAST), watcher_id="w1")
        await watcher.start()
        try:
            await eventually(lambda: _zero(pending(redis_client)), "every complaint folded and acked")
        finally:
            await watcher.stop()
    counts = await redis_client.hgetall(keys.route_complaints("Yunnan 6 days"))
    assert {k.decode(): int(v) for k, v in counts.items()} == {"meals": 8, "transport": 4}
    shares = [a for a in await active_alerts(redis_client) if a["kind"] == "category_share"]
    # the line (15 % of at least 10) is judged at each new complaint: bus complaints 10, 11 and 12 each pass it;
    # no meals complaint came after the tenth
    assert [(a["dedup_key"], a["count"]) for a in shares] == [("category_share:Yunnan 6 days:transport", 3)]
    details = shares[0]["details"]
    assert (details["complaints"], details["counts"], details["share"]) == (12, {"meals": 8, "transport": 4}, 0.333)
    complaints = [a for a in await active_alerts(redis_client) if a["kind"] == "complaint"]
    assert len(complaints) == 12


async def _zero(value) -> bool:  # noqa: ANN001
    return await value == 0
