"""A route's complaint categories, end to end (contract §10): counted once per complaint (and per aspect scored 1 or
2) in UTC-day buckets, judged for every category over the trailing window each time a complaint is counted, so a
category fires even when the complaint just counted was about something else, and a bucket older than the window
counts for nothing. A tour's complaint counts and their alerts go out pipelined, many in one round trip."""

from __future__ import annotations

import datetime as dt

import redis.asyncio as aioredis

from alerts.rules.clocks import iso
from alerts.watcher import Watcher
from server.core import keys
from tests.conftest import make_settings, register_tour
from tests.e2e.test_ingest_ws import ask, phone, rating
from tests.e2e.test_watcher_crash import FAST, active_alerts, pending
from tests.e2e.waiting import eventually

MEALS = "the meals were cold and tasteless"
BUS = "the bus was dirty and late"
ROUTE = "Yunnan 6 days"


async def test_every_category_past_its_share_alerts_with_the_latest_counts(app_factory, redis_url,
                                                                          redis_client: aioredis.Redis) -> None:
    # every complaint written at one moment: a complaint counts in the UTC day of its `at`, so complaints sent as
    # the clock struck midnight UTC would fall in two buckets, and the day read after the watcher in neither
    written = dt.datetime.now(dt.UTC)
    day = written.date().isoformat()
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        # stored before the watcher starts, so they are folded in one read and their effects pipelined together;
        # the bus complaints come last, so meals is never the category just counted once there are ten
        for n, comment in enumerate([MEALS] * 8 + [BUS] * 4):
            async with await phone(base, "traveller", f"t{n}") as ws:
                msg = rating(f"c{n}", 2, comment=comment, at=iso(written.timestamp()))
                assert (await ask(ws, msg, True))["type"] == "ack"
        # a bucket from before the window: a flood of lodging complaints, counted a month ago, that must leave the
        # window's total at the next count
        old = (written.date() - dt.timedelta(days=31)).isoformat()
        await redis_client.hset(keys.route_category_day(ROUTE, old), "lodging", 500)
        await redis_client.hset(keys.route_category_window(ROUTE), "lodging", 500)
        await redis_client.sadd(keys.route_category_days(ROUTE), old)
        watcher = Watcher(make_settings(redis_url, FAST), watcher_id="w1")
        await watcher.start()
        try:
            await eventually(lambda: _zero(pending(redis_client)), "every complaint folded and acked")
        finally:
            await watcher.stop()
    counts = await redis_client.hgetall(keys.route_category_day(ROUTE, day))
    assert {k.decode(): int(v) for k, v in counts.items()} == {"meals": 8, "transport": 4}
    total = await redis_client.hgetall(keys.route_category_window(ROUTE))
    assert {k.decode(): int(v) for k, v in total.items()} == {"meals": 8, "transport": 4}  # lodging left it
    assert not await redis_client.exists(keys.route_category_day(ROUTE, old))
    shares = {a["dedup_key"]: a for a in await active_alerts(redis_client) if a["kind"] == "category_share"}
    # judged at each complaint from the tenth on (three judgements, all counting transport): meals (67 %) fired at
    # the tenth though it was not the category counted, then stays as it is (nothing new about meals); transport
    # (33 %) passes 15 % at each of its own complaints
    assert {key: a["count"] for key, a in shares.items()} == {f"category_share:{ROUTE}:meals": 1,
                                                              f"category_share:{ROUTE}:transport": 3}
    details = shares[f"category_share:{ROUTE}:meals"]["details"]  # as judged at the tenth complaint
    assert (details["complaints"], details["counts"], details["share"]) == (10, {"meals": 8, "transport": 2}, 0.8)
    details = shares[f"category_share:{ROUTE}:transport"]["details"]
    assert (details["complaints"], details["counts"], details["share"]) == (12, {"meals": 8, "transport": 4}, 0.333)
    assert details["window_days"] == 30
    complaints = [a for a in await active_alerts(redis_client) if a["kind"] == "complaint"]
    assert len(complaints) == 12


async def _zero(value) -> bool:  # noqa: ANN001
    return await value == 0
