"""Phones to Redis through the real parts: uvicorn on a loopback port, a real WebSocket client, real Valkey."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from server.core import keys
from tests.conftest import register_tour, token


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://") + path


async def phone(base_url: str, role: str, sub: str, tours: tuple[str, ...] = ("T1",)) -> ClientConnection:
    path = "/ws/traveller" if role == "traveller" else "/ws/guide"
    return await connect(ws_url(base_url, path), compression=None,
                         additional_headers={"Authorization": f"Bearer {token(role, sub, tours=tours)}"})


async def ask(ws: ClientConnection, msg: dict[str, Any], binary: bool) -> dict[str, Any]:
    if binary:
        await ws.send(msgpack.packb(msg))
        reply = await ws.recv()
        assert isinstance(reply, bytes), "a binary frame is answered in msgpack"
        return msgpack.unpackb(reply)
    await ws.send(json.dumps(msg))
    reply = await ws.recv()
    assert isinstance(reply, str), "a text frame is answered in JSON"
    return json.loads(reply)


def today(tz: str = "Asia/Shanghai") -> str:
    return dt.datetime.now(ZoneInfo(tz)).date().isoformat()


def rating(msg_id: str, score: int = 5, **extra: Any) -> dict[str, Any]:
    return {"type": "rating", "id": msg_id, "tour_id": "T1", "day": today(), "score": score, **extra}


async def stream_events(redis_url: str, tour_id: str = "T1") -> list[dict[str, Any]]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        entries = await client.xrange(keys.events(keys.shard_of(tour_id, 16)))
    finally:
        await client.aclose()
    return [msgpack.unpackb(fields[b"e"]) for _id, fields in entries]


@pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])
async def test_rating_is_stored_then_acked_and_a_retry_is_a_duplicate(app_factory, redis_url, binary) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "traveller", "t1") as ws:
            first = await ask(ws, rating("r1", 4, comment="很好 great day", nps=9), binary)
            assert first["type"] == "ack" and first["id"] == "r1" and first["duplicate"] is False
            again = await ask(ws, rating("r1", 4, comment="很好 great day", nps=9), binary)
            assert again == {**first, "duplicate": True}
            other = await ask(ws, rating("r1", 2), binary)
            assert other["type"] == "error" and other["code"] == "conflict" and other["id"] == "r1"
    ratings = [e for e in await stream_events(redis_url) if e["type"] == "rating"]
    assert len(ratings) == 1
    assert ratings[0]["score"] == 4 and ratings[0]["traveller"] == "t1" and ratings[0]["comment"] == "很好 great day"


@pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])
async def test_every_error_code_changes_nothing_and_keeps_the_connection(app_factory, redis_url, binary) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        await register_tour(base, "T2")
        async with await phone(base, "traveller", "t1", tours=("T1", "T9")) as ws:
            cases = [
                (rating("a", 6), "invalid", "score"),
                (rating("b", 4.0), "invalid", "score"),
                (rating("c", True), "invalid", "score"),
                ({**rating("d"), "day": "2001-01-01"}, "invalid", "day"),
                ({**rating("e"), "type": "dance"}, "invalid", "type"),
                ({**rating("f"), "tour_id": "T2"}, "forbidden", "tour_id"),
                ({**rating("g"), "tour_id": "T9"}, "unknown_tour", "tour_id"),
                ({"type": "incident", "id": "h", "tour_id": "T1", "kind": "medical", "severity": "high",
                  "summary": "x"}, "invalid", "type"),
            ]
            for msg, code, field in cases:
                reply = await ask(ws, msg, binary)
                assert (reply["type"], reply["code"], reply["field"]) == ("error", code, field), msg
                assert reply["id"] == msg["id"]
            garbage = b"\xc1\xff" if binary else "{not json"
            await ws.send(garbage)
            reply = await ws.recv()
            decoded = msgpack.unpackb(reply) if binary else json.loads(reply)
            assert decoded["code"] == "bad_frame"
            # an id refused with an error may be sent again, and the connection is still open
            ok = await ask(ws, rating("a", 5), binary)
            assert ok["type"] == "ack"
    assert [e["msg_id"] for e in await stream_events(redis_url) if e["type"] == "rating"] == ["a"]


async def test_guide_incident_and_updates(app_factory, redis_url) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "guide", "g1") as ws:
            incident = {"type": "incident", "id": "i1", "tour_id": "T1", "kind": "vehicle_breakdown",
                        "severity": "high", "summary": "coach broke down on G5", "needs": ["vehicle"],
                        "travellers_affected": 32}
            ack = await ask(ws, incident, True)
            assert ack["type"] == "ack" and ack["incident_id"].startswith("T1~")
            assert (await ask(ws, incident, True))["incident_id"] == ack["incident_id"]
            incident_id = ack["incident_id"]
            update = {"type": "incident_update", "id": "u1", "incident_id": incident_id, "status": "resolved",
                      "note": "replacement coach arrived"}
            assert (await ask(ws, update, False))["type"] == "ack"
            again = await ask(ws, {**update, "id": "u2"}, False)
            assert (again["code"], again["field"]) == ("conflict", "status")
            missing = await ask(ws, {**update, "id": "u3", "incident_id": "T1~0000000000"}, False)
            assert missing["code"] == "not_found"
            foreign = await ask(ws, {**update, "id": "u4", "incident_id": "T7~0000000000"}, False)
            assert foreign["code"] == "forbidden"
    types = [e["type"] for e in await stream_events(redis_url)]
    assert types.count("incident") == 1 and types.count("incident_update") == 1


async def test_handshake_refused_without_a_valid_token(app_factory) -> None:
    async with app_factory() as (base, _app):
        url = ws_url(base, "/ws/traveller")
        expired = token("traveller", "t1", tours=("T1",), ttl=60, issued_ago=120)
        bad = [None, "nonsense", token("guide", "g1", tours=("T1",)), expired]
        for value in bad:
            headers = {"Authorization": f"Bearer {value}"} if value else {}
            with pytest.raises(InvalidStatus) as refused:
                await connect(url, additional_headers=headers)
            assert refused.value.response.status_code == 403
        # the query parameter works as well as the header
        async with await connect(f"{url}?token={token('traveller', 't1', tours=('T1',))}"):
            pass


async def test_oversized_frame_closes_1009_and_a_bad_frame_flood_closes_1008(app_factory) -> None:
    async with app_factory({"limits": {"bad_frames_per_minute": 3}}) as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "traveller", "t1") as ws:
            await ws.send(json.dumps(rating("big", comment="x" * 70_000)))
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009
        async with await phone(base, "traveller", "t1") as ws:
            codes = []
            with pytest.raises(ConnectionClosed):
                for _ in range(10):
                    await ws.send(b"\xc1")
                    codes.append(msgpack.unpackb(await ws.recv())["code"])
            # three a minute are tolerated; the fourth is answered, then the connection closes
            assert codes == ["bad_frame"] * 4 and ws.close_code == 1008


async def test_rate_limited_beyond_the_burst(app_factory, redis_url) -> None:
    async with app_factory({"limits": {"messages_per_second": 1, "burst": 3}}) as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "traveller", "t1") as ws:
            replies = [await ask(ws, rating(f"m{i}", 5), True) for i in range(5)]
    assert [r["type"] for r in replies[:3]] == ["ack"] * 3
    assert [r.get("code") for r in replies[3:]] == ["rate_limited"] * 2
    # only the three accepted were stored (the fold keeps the latest per traveller-day)
    assert [e["msg_id"] for e in await stream_events(redis_url) if e["type"] == "rating"] == ["m0", "m1", "m2"]


async def test_reconnect_and_resend_loses_nothing_and_stores_nothing_twice(app_factory, redis_url) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        sent = [{**rating(f"r{i}", 1 + i % 5), "tour_id": "T1"} for i in range(20)]
        ws = await phone(base, "traveller", "t1")
        for msg in sent[:10]:
            await ws.send(msgpack.packb(msg))
        await ws.close()  # dropped before reading a single ack: the phone does not know what was stored
        async with await phone(base, "traveller", "t1") as ws2:
            replies = [await ask(ws2, msg, True) for msg in sent]
    assert all(r["type"] == "ack" for r in replies)
    stored = [e["msg_id"] for e in await stream_events(redis_url) if e["type"] == "rating"]
    assert sorted(stored) == sorted(m["id"] for m in sent)  # every one once
    assert all(r["duplicate"] for r in replies[: len([r for r in replies if r["duplicate"]])])


async def test_storage_down_answers_unavailable_and_never_acks(app_factory, tmp_path) -> None:
    from server.db.embedded import EmbeddedRedis
    from server.storage.tours import TourRegistry, validate_tour
    from tests.conftest import make_settings, tour_doc

    private = EmbeddedRedis(tmp_path, appendonly=False).start()
    try:
        async with app_factory(url=private.url) as (base, _app):
            await register_tour(base, "T1")
            # T2 is registered behind this web process's back, so it is not in its tour cache
            other = aioredis.Redis.from_url(private.url)
            await TourRegistry(other, make_settings(private.url)).put(validate_tour("T2", tour_doc()), 0.0)
            await other.aclose()
            async with await phone(base, "traveller", "t1", tours=("T1", "T2")) as ws:
                assert (await ask(ws, rating("before", 5), True))["type"] == "ack"
                private.stop()
                reply = await ask(ws, rating("during", 5), True)
                assert (reply["type"], reply["code"]) == ("error", "unavailable")
                uncached = await ask(ws, {**rating("t2", 5), "tour_id": "T2"}, True)
                assert (uncached["type"], uncached["code"]) == ("error", "unavailable")
                private.start()
                assert (await ask(ws, rating("during", 5), True))["duplicate"] is False
    finally:
        private.stop()


async def test_health_ready_and_metrics(app_factory) -> None:
    import httpx

    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "traveller", "t1") as ws:
            await ask(ws, rating("m1"), True)
            await ask(ws, rating("m2", 9), True)
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            text = (await client.get("/metrics")).text
    assert 'tourpulse_frames_total{outcome="ack"} 1' in text
    assert 'tourpulse_frames_total{outcome="invalid"} 1' in text
    assert "tourpulse_ack_seconds_bucket" in text


async def test_http_refusals_are_json(app_factory) -> None:
    import httpx

    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base) as client:
        missing = await client.get("/api/alerts")
        wrong_role = await client.put("/api/tours/T1", json={}, headers={
            "Authorization": f"Bearer {token('traveller', 't1', tours=('T1',))}"})
    assert (missing.status_code, missing.json()["error"]) == (401, "unauthorized")
    assert (wrong_role.status_code, wrong_role.json()["error"]) == (403, "forbidden")
