"""PhoneClient (what `simulate` and the benchmarks drive phones with) against the real server and Valkey."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from server.tools.loadclient import HandshakeRefused, PhoneClient, percentile, with_query
from tests.conftest import register_tour, token
from tests.e2e.test_ingest_ws import rating, stream_events, ws_url

WAIT = 20.0


def traveller(base: str, sub: str = "t1", json: bool = False) -> PhoneClient:
    return PhoneClient(ws_url(base, "/ws/traveller"), token("traveller", sub, tours=("T1",)), json=json,
                       backoff=(0.01, 0.05))


async def test_answers_are_matched_by_id_with_several_in_flight(app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        client = traveller(base)
        await client.connect()
        try:
            answers = await asyncio.gather(*(client.send(rating(f"m{i}", 1 + i % 5)) for i in range(30)))
        finally:
            await client.close()
    assert [a["id"] for a in answers] == [f"m{i}" for i in range(30)]
    assert all(a["type"] == "ack" and a["duplicate"] is False for a in answers)
    assert len(client.latencies) == 30


async def test_a_drop_loses_nothing_in_flight_and_stores_nothing_twice(app_factory, redis_url) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        client = traveller(base)
        await client.connect()
        try:
            sends = [asyncio.create_task(client.send(rating(f"x{i}", 4))) for i in range(40)]
            await asyncio.sleep(0)
            assert client.drop()
            async with asyncio.timeout(WAIT):
                answers = await asyncio.gather(*sends)
        finally:
            await client.close()
    assert sorted(a["id"] for a in answers) == sorted(f"x{i}" for i in range(40))
    assert all(a["type"] == "ack" for a in answers)
    stored = [e["msg_id"] for e in await stream_events(redis_url) if e["type"] == "rating"]
    assert sorted(stored) == sorted(f"x{i}" for i in range(40))
    assert client.stats.connects == 2


async def test_pushes_resume_after_a_reconnect(app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        client = traveller(base)
        await client.connect()
        headers = {"Authorization": f"Bearer {token('supervisor', 's', regions=('yunnan',))}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as http:
            async def notice(title: str) -> None:
                resp = await http.post("/api/notices", json={"tour_ids": ["T1"], "kind": "progress",
                                                             "title": title, "body": "b"})
                assert resp.status_code == 200

            try:
                await notice("one")
                first = await asyncio.wait_for(client.pushes.get(), WAIT)
                client.drop()
                await notice("two")
                await client.send(rating("after", 5))  # waits for the reconnect
                second = await asyncio.wait_for(client.pushes.get(), WAIT)
            finally:
                await client.close()
    assert (first["title"], second["title"]) == ("one", "two")
    assert client.last_seq == second["seq"]


async def test_json_mode_and_a_refused_token(app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        client = traveller(base, json=True)
        await client.connect()
        try:
            answer = await client.send(rating("j1", 5, comment="导游很好"))
        finally:
            await client.close()
        assert answer["type"] == "ack"
        with pytest.raises(HandshakeRefused) as refused:
            await PhoneClient(ws_url(base, "/ws/traveller"), "forged").connect()
        assert refused.value.status == 403


def test_percentile_and_query() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile([], 50) == 0.0
    assert with_query("ws://h/ws/traveller?token=x", since="5-0") == "ws://h/ws/traveller?token=x&since=5-0"
