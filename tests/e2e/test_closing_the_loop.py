"""Contract §10 through the real server: a complaint's answer reaches the traveller's phone, an urgent complaint's
follow-up is answered from the phone (or recorded by a supervisor who telephoned) and "not satisfied" reopens it,
and a guide's conflict opens an urgent complaint with its clocks. Real uvicorn, real WebSocket phones, a real
watcher in the app, real Valkey."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection

from tests.conftest import register_tour, token
from tests.e2e.test_ingest_ws import ask, phone, rating
from tests.e2e.test_watcher_crash import FAST, WAIT, active_alerts
from tests.e2e.waiting import eventually

SUP = {"Authorization": f"Bearer {token('supervisor', 'sup1', regions=('yunnan',))}"}


async def alert_of(client: aioredis.Redis, kind: str, dedup_key: str | None = None) -> dict[str, Any] | None:
    for found in await active_alerts(client):
        if found["kind"] == kind and (dedup_key is None or found["dedup_key"] == dedup_key):
            return found
    return None


async def notices(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next ``count`` pushed notices (acks and other frames skipped)."""
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT):
        while len(got) < count:
            frame = json.loads(await ws.recv())
            if frame.get("type") == "notice":
                got.append(frame)
    return got


async def answer_to(ws: ClientConnection, msg: dict[str, Any]) -> dict[str, Any]:
    """Send ``msg`` and return its ack or error, past the pushes (a guide's incident changes) that come first."""
    await ws.send(json.dumps(msg))
    async with asyncio.timeout(WAIT):
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("type") in ("ack", "error") and frame.get("id") == msg["id"]:
                return frame


async def post(base: str, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base) as client:
        return await client.post(path, json=body, headers=SUP)


async def test_a_complaint_is_answered_on_the_travellers_phone(app_factory, redis_client) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "traveller", "t1") as ws:
            ack = await ask(ws, rating("r1", 2, comment="lunch was cold and the restaurant dirty"), False)
            assert ack["type"] == "ack"
            found = await eventually(lambda: alert_of(redis_client, "complaint"), "a complaint alert")
            clocks = found["details"]["clocks"]
            assert set(clocks) == {"response"}  # the 48 h clock, counted down on the board
            for body in ({}, {"note": "   "}):  # an empty answer is refused and changes nothing
                resp = await post(base, f"/api/alerts/{found['alert_id']}/resolve", body)
                assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (400, "invalid", "note")
            assert (await alert_of(redis_client, "complaint")) is not None
            resp = await post(base, f"/api/alerts/{found['alert_id']}/resolve",
                              {"note": "we refunded the lunch: 80 yuan"})
            assert resp.status_code == 200 and resp.json()["status"] == "resolved"
            (answer,) = await notices(ws, 1)
            assert (answer["kind"], answer["alert_id"]) == ("answer", found["alert_id"])
            assert "we refunded the lunch: 80 yuan" in answer["body"]


async def test_an_urgent_complaint_is_followed_up_and_not_satisfied_reopens_it(app_factory, redis_client) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "traveller", "t1") as ws, await phone(base, "traveller", "t2") as other:
            assert (await ask(ws, rating("r1", 1, comment="my wallet was stolen on the bus"), False))["type"] == "ack"
            first = await eventually(lambda: alert_of(redis_client, "urgent_complaint"), "an urgent complaint")
            assert set(first["details"]["clocks"]) == {"solution", "followup"}
            resp = await post(base, f"/api/alerts/{first['alert_id']}/resolve",
                              {"note": "the police report is filed and the tour pays a new wallet"})
            assert resp.status_code == 200
            answer, followup = await notices(ws, 2)
            assert [answer["kind"], followup["kind"]] == ["answer", "followup"]
            assert followup["alert_id"] == first["alert_id"]
            # a reply to a follow-up that was never sent, or that is someone else's, changes nothing
            missing = await ask(ws, {"type": "followup_reply", "id": "f0", "satisfied": False,
                                     "notice_id": followup["notice_id"] + "#9"}, False)
            assert (missing["code"], missing["field"]) == ("not_found", "notice_id")
            theirs = await ask(other, {"type": "followup_reply", "id": "f0", "satisfied": False,
                                       "notice_id": followup["notice_id"]}, False)
            assert (theirs["code"], theirs["field"]) == ("forbidden", "notice_id")
            bad = await ask(ws, {"type": "followup_reply", "id": "f0", "satisfied": "no",
                                 "notice_id": followup["notice_id"]}, False)
            assert (bad["code"], bad["field"]) == ("invalid", "satisfied")
            reply = {"type": "followup_reply", "id": "f1", "notice_id": followup["notice_id"], "satisfied": False,
                     "score": 2, "comment": "still no wallet"}
            assert (await ask(ws, reply, False))["duplicate"] is False
            assert (await ask(ws, reply, False))["duplicate"] is True  # the outbox re-sent it: stored once
            key = first["dedup_key"] + "#2"
            again = await eventually(lambda: alert_of(redis_client, "urgent_complaint", key), "the reopened one")
            assert (again["details"]["reopens"], again["details"]["reopen_count"]) == (first["dedup_key"], 1)
            assert again["details"]["comment"] == "still no wallet"
            # satisfied later: the later answer is kept, and nothing reopens twice
            later = {**reply, "id": "f2", "satisfied": True}
            assert (await ask(ws, later, False))["type"] == "ack"
            await asyncio.sleep(0.5)
            reopened = [a for a in await active_alerts(redis_client) if a["kind"] == "urgent_complaint"]
            assert [a["dedup_key"] for a in reopened] == [key]


async def test_a_guides_conflict_is_urgent_and_followed_up_by_telephone(app_factory, redis_client) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "guide", "g1") as guide:
            sent = await ask(guide, {"type": "incident", "id": "i1", "tour_id": "T1", "kind": "conflict",
                                     "severity": "low", "summary": "two travellers quarrel over seats"}, False)
            incident_id = sent["incident_id"]
            key = f"urgent_complaint:{incident_id}"
            found = await eventually(lambda: alert_of(redis_client, "urgent_complaint", key), "an urgent complaint")
            assert found["details"]["incident_id"] == incident_id
            assert set(found["details"]["clocks"]) == {"solution", "followup"}
            # its two clocks are armed in the tour's shard
            from server.core import keys
            armed = {m.decode() for m in await redis_client.zrange(keys.deadlines(keys.shard_of("T1", 16)), 0, -1)}
            assert {f"urgent_solution:{key}", f"urgent_followup:{key}"} <= armed
            # resolving the incident does not resolve that alert
            done = await answer_to(guide, {"type": "incident_update", "id": "u1", "incident_id": incident_id,
                                           "status": "resolved"})
            assert done["type"] == "ack"
            resp = await post(base, f"/api/alerts/{found['alert_id']}/resolve", {"note": "seats swapped daily"})
            assert resp.status_code == 200
            kinds = [n["kind"] for n in await notices(guide, 2)]
            assert kinds == ["answer", "followup"]
            bad = await post(base, f"/api/alerts/{found['alert_id']}/followup", {"satisfied": "yes"})
            assert (bad.status_code, bad.json()["field"]) == (400, "satisfied")
            ok = await post(base, f"/api/alerts/{found['alert_id']}/followup",
                            {"satisfied": True, "note": "called the guide: all calm"})
            assert ok.status_code == 200 and ok.json()["recorded"] is True

            async def followup_cleared() -> bool:
                left = {m.decode() for m in await redis_client.zrange(keys.deadlines(keys.shard_of("T1", 16)), 0, -1)}
                return f"urgent_followup:{key}" not in left

            await eventually(followup_cleared, "the 24 h clock met by the telephone follow-up")
