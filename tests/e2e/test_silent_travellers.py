"""Silent travellers (contract §10) through the real server: phones that connect, and travellers who join, are the
tour's people (the §11 `person` event) and so counted as using the app;
tonight's second prompt reaches only those of them who have not rated, and the response check opens
``low_response`` for a tour-day rated by too few of them, but not for a tour where too few joined to judge.

The three evening hours are set to the current hour in the tours' timezone, so each clock is already due when
the watcher starts: it folds the phones' events first, then fires the prompt, which arms the other two."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from alerts.watcher import Watcher
from guide_app_api.codec import unpackb
from server.core import keys
from tests.conftest import make_settings, register_tour
from tests.e2e.test_closing_the_loop import notices as pushed
from tests.e2e.test_ingest_ws import ask, phone, rating
from tests.e2e.test_watcher_crash import active_alerts, pending
from tests.e2e.waiting import eventually


async def stream_notices(r: aioredis.Redis, notice_id: str) -> list[dict]:
    pushes = (json.loads(fields[b"n"]) for _id, fields in await r.xrange(keys.NOTICES))
    return [p for p in pushes if p.get("notice_id") == notice_id]


async def test_the_second_prompt_and_low_response(app_factory, redis_url, redis_client: aioredis.Redis) -> None:
    local = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    hour, day = local.hour, local.date().isoformat()  # the day whose prompts fire: t1 rates that day, by name
    doc = {"sla": {"prompt_hour": hour, "reprompt_hour": hour, "response_check_hour": hour},
           "watcher": {"tick": "100ms", "block": "100ms", "lease_ttl": "1s"}}
    async with app_factory(doc) as (base, _app):
        await register_tour(base, "T1")
        await register_tour(base, "T2")
        silent = await phone(base, "traveller", "t2")  # stays connected: gets both prompts
        for who in ("t1", "t3", "t4"):
            async with await phone(base, "traveller", who) as ws:
                if who == "t1":
                    assert (await ask(ws, rating("r1", 5, day=day), False))["type"] == "ack"
        for who in ("u1", "u2"):  # T2: only two of its 30 travellers ever opened the app
            async with await phone(base, "traveller", who, tours=("T2",)):
                pass

        async def all_seen() -> bool:
            return (await redis_client.scard(keys.people(keys.shard_of("T1", 16), "T1")) == 4
                    and await redis_client.scard(keys.people(keys.shard_of("T2", 16), "T2")) == 2)

        await eventually(all_seen, "every phone marked as using the app")
        watcher = Watcher(make_settings(redis_url, doc), watcher_id="w1")
        await watcher.start()
        try:
            second = f"prompt:T1:{day}:2"
            (push,) = await eventually(lambda: stream_notices(redis_client, second), "the second prompt")
            assert (push["kind"], sorted(push["to"])) == ("prompt", ["t2", "t3", "t4"])
            got = await pushed(silent, 2)
            assert [n["notice_id"] for n in got] == [f"prompt:T1:{day}", second]

            async def low() -> list[dict]:
                return [a for a in await active_alerts(redis_client) if a["kind"] == "low_response"]

            (found,) = await eventually(low, "a low_response alert")
            assert (found["tour_id"], found["severity"], found["dedup_key"]) == ("T1", "medium",
                                                                               f"low_response:T1:{day}")
            details = found["details"]
            assert (details["ratings"], details["travellers_using_app"], details["response_rate"]) == (1, 4, 0.25)
            # T2's check ran too (its second prompt went to both), and judged nothing: too few use the app
            await eventually(lambda: stream_notices(redis_client, f"prompt:T2:{day}:2"), "T2's second prompt")
            fired = keys.fired(keys.shard_of("T2", 16), f"response_check:T2:{day}")
            await eventually(lambda: redis_client.exists(fired), "T2's response check fired")

            async def folded() -> bool:
                return await pending(redis_client, "T2") == 0

            await eventually(folded, "and was folded")
            assert [a["tour_id"] for a in await low()] == ["T1"]
        finally:
            await watcher.stop()
            await silent.close()


async def test_a_traveller_who_joins_uses_the_app(app_factory, redis_client: aioredis.Redis) -> None:
    import httpx

    from tests.conftest import token

    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        guide = {"Authorization": f"Bearer {token('guide', 'g1', tours=('T1',))}"}
        async with httpx.AsyncClient(base_url=base) as http:
            code = (await http.get("/api/tours/T1/join", headers=guide)).json()["code"]
            joined = (await http.post("/api/join", json={"code": code, "name": "Li"})).json()
        shard = keys.shard_of("T1", 16)
        assert await redis_client.sismember(keys.people(shard, "T1"), joined["sub"])
        events = [unpackb(f[b"e"]) for _i, f in await redis_client.xrange(keys.events(shard))]
        assert [e["person"] for e in events if e["type"] == "person"] == [joined["sub"]]
