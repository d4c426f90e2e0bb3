"""The emergency pool end to end: guides' phones report incidents, the app's watcher pulls from the pool, the guides
hear what was dispatched, and resolving an incident (any of its three ways) returns what it held.

Real uvicorn, real WebSockets, real Valkey, real watcher (in the app, or in subprocesses for the crash test).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from alerts.pool import PoolStore
from server.core import keys
from tests.conftest import make_settings, register_tour, token
from tests.e2e.test_ingest_ws import phone
from tests.e2e.test_watcher_crash import PROC, WAIT, pending
from tests.e2e.waiting import eventually

FAST = {"lease_ttl": "1s", "block": "200ms", "tick": "200ms"}
DOC = {"pool": {"neighbours": {"yunnan": ["sichuan"]}}, "watcher": FAST}
ADMIN = {"Authorization": f"Bearer {token('admin', 'ops', regions=('*',))}"}
SUPERVISOR = {"Authorization": f"Bearer {token('supervisor', 's1', regions=('yunnan',))}"}
OUTSIDER = {"Authorization": f"Bearer {token('supervisor', 's2', regions=('tibet',))}"}


class Guide:
    """A guide's phone: speaks JSON, keeps the pushes that arrive between its acks."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pushes: list[dict[str, Any]] = []

    async def _next(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            frame = json.loads(await self.ws.recv())
        return frame

    async def send(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send one message and return its ack (or error); pushes received meanwhile are kept."""
        await self.ws.send(json.dumps(msg))
        while True:
            frame = await self._next()
            if frame["type"] in ("ack", "error") and frame.get("id") == msg["id"]:
                return frame
            self.pushes.append(frame)

    async def dispatched(self, incident_id: str) -> dict[str, Any]:
        """The push telling this guide what the pool sent for an incident (waits for it)."""
        while True:
            for frame in self.pushes:
                change = frame.get("incident") or {}
                if frame["type"] == "incident" and change.get("incident_id") == incident_id \
                        and "dispatched" in change:
                    return change
            self.pushes.append(await self._next())

    def dispatch_pushes(self) -> list[dict[str, Any]]:
        return [f["incident"] for f in self.pushes if f["type"] == "incident" and "dispatched" in f["incident"]]


async def guide_phone(base: str, tour_id: str) -> Guide:
    return Guide(await phone(base, "guide", "g1", tours=(tour_id,)))


def incident(msg_id: str, tour_id: str = "T1", kind: str = "vehicle_breakdown", travellers: int | None = 32,
             severity: str = "high", **extra: Any) -> dict[str, Any]:
    return {"type": "incident", "id": msg_id, "tour_id": tour_id, "kind": kind, "severity": severity,
            "summary": f"{kind} on the road", "travellers_affected": travellers, **extra}


def resolving(msg_id: str, incident_id: str) -> dict[str, Any]:
    return {"type": "incident_update", "id": msg_id, "incident_id": incident_id, "status": "resolved",
            "note": "sorted out"}


async def put(http: httpx.AsyncClient, rid: str, capacity: int, region: str = "yunnan", kind: str = "vehicle",
              ) -> None:
    body = {"kind": kind, "region": region, "capacity": capacity, "partner": f"Partner of {rid}",
            "contact": f"+86 871 {capacity:04d}"}
    answer = await http.put(f"/api/pool/resources/{rid}", json=body, headers=ADMIN)
    assert answer.status_code == 200, answer.text


async def pool(http: httpx.AsyncClient, **params: str) -> dict[str, dict[str, Any]]:
    answer = await http.get("/api/pool", params=params, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return {r["resource_id"]: r for r in answer.json()["resources"]}


def held(resources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """resource id -> the incident holding it."""
    return {rid: r["held_by"] for rid, r in resources.items() if r["state"] != "free"}


async def until_held(http: httpx.AsyncClient, expected: dict[str, str], what: str) -> None:
    async def check() -> bool:
        return held(await pool(http)) == expected

    await eventually(check, what)


async def alerts(http: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    answer = await http.get("/api/alerts", params={"kind": kind}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    return answer.json()["alerts"]


async def metric_lines(http: httpx.AsyncClient, name: str) -> dict[str, float]:
    """The series of one family, each with its value (the text format writes 1 or 1.0 alike)."""
    text = (await http.get("/metrics")).text
    return {series: float(value) for series, value in (line.rsplit(" ", 1) for line in text.splitlines()
                                                       if line.startswith(name))}


# --- tests ------------------------------------------------------------------------------------------------
async def test_breakdown_holds_the_smallest_covering_vehicle_and_the_guide_hears_who_comes(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        for rid, seats in (("v20", 20), ("v33", 33), ("v40", 40), ("v50", 50)):
            await put(http, rid, seats)
        guide = await guide_phone(base, "T1")
        async with guide.ws:
            # no `needs`: [pool] kind_needs maps vehicle_breakdown to a vehicle
            ack = await guide.send(incident("i1"))
            incident_id = ack["incident_id"]
            change = await guide.dispatched(incident_id)
            resources = await pool(http)
            # the same incident sent again (a phone that lost the ack): a duplicate, and still one hold
            again = await guide.send(incident("i1"))
            assert (again["type"], again["duplicate"], again["incident_id"]) == ("ack", True, incident_id)
            retried_pool = await pool(http)
            pulls = await metric_lines(http, "tourpulse_pool_pulls_total")
            incident_alerts = await alerts(http, "incident")
    sent = change["dispatched"]
    # the incident's alert shows what was sent, without counting it as another firing
    [alert] = incident_alerts
    assert alert["count"] == 1 and alert["details"]["incident_id"] == incident_id
    assert alert["details"]["dispatched_vehicle"]["dispatched"]["resource_id"] == "v33"
    assert alert["details"]["shortfall_vehicle"] == 0
    assert (sent["resource_id"], sent["capacity"], sent["state"], sent["held_by"]) == ("v33", 33, "held",
                                                                                       incident_id)
    assert (sent["partner"], sent["contact"]) == ("Partner of v33", "+86 871 0033")
    assert (change["kind"], change["region"], change["fallback"], change["shortfall"]) == (
        "vehicle", "yunnan", False, 0)
    assert held(resources) == {"v33": incident_id}
    assert resources["v33"]["held_since"] is not None
    assert held(retried_pool) == {"v33": incident_id}
    assert pulls['tourpulse_pool_pulls_total{outcome="held"}'] == 1


async def test_fallback_to_a_neighbouring_region_is_marked_and_released_there(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        await put(http, "yn-van", 8)  # home has a vehicle, but one that falls short
        await put(http, "sc-coach", 45, region="sichuan")
        guide = await guide_phone(base, "T1")
        async with guide.ws:
            incident_id = (await guide.send(incident("i1")))["incident_id"]
            change = await guide.dispatched(incident_id)
            resources = await pool(http, region="sichuan")
            assert (await guide.send(resolving("u1", incident_id)))["type"] == "ack"
            await until_held(http, {}, "the neighbour's coach went back to the pool")
            pulls = await metric_lines(http, "tourpulse_pool_pulls_total")
            held_time = await metric_lines(http, "tourpulse_pool_held_seconds_count")
    assert (change["dispatched"]["resource_id"], change["region"], change["fallback"]) == (
        "sc-coach", "sichuan", True)
    assert held(resources) == {"sc-coach": incident_id}
    assert pulls['tourpulse_pool_pulls_total{outcome="fallback"}'] == 1
    assert held_time == {'tourpulse_pool_held_seconds_count{kind="vehicle"}': 1}


async def test_exhausted_pool_queues_raises_one_alert_and_serves_waiters_in_order(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        for tour_id in ("T1", "T2", "T3"):
            await register_tour(base, tour_id)
        await put(http, "only", 40)
        guides = {t: await guide_phone(base, t) for t in ("T1", "T2", "T3")}
        ids: dict[str, str] = {}
        try:
            ids["T1"] = (await guides["T1"].send(incident("i1", "T1")))["incident_id"]
            await until_held(http, {"only": ids["T1"]}, "the first incident holds the only vehicle")

            async def exhausted(count: int) -> list[dict[str, Any]] | None:
                found = await alerts(http, "pool_exhausted")
                return found if found and found[0]["count"] == count else None

            # one after the other, so that their order in the queue is known (tours may be in other shards)
            ids["T2"] = (await guides["T2"].send(incident("i2", "T2", travellers=20)))["incident_id"]
            await eventually(lambda: exhausted(1), "pool_exhausted opened")
            ids["T3"] = (await guides["T3"].send(incident("i3", "T3", travellers=10)))["incident_id"]
            after_two = await eventually(lambda: exhausted(2), "pool_exhausted counted the second waiter")
            pulls = await metric_lines(http, "tourpulse_pool_pulls_total")
            # the holder's guide resolves: the first waiter gets the vehicle and its guide is told
            assert (await guides["T1"].send(resolving("u1", ids["T1"])))["type"] == "ack"
            first_served = await guides["T2"].dispatched(ids["T2"])
            await until_held(http, {"only": ids["T2"]}, "the first waiter holds the vehicle")
            # then a supervisor resolves the second: the next waiter gets it
            answer = await http.post(f"/api/incidents/{ids['T2']}/resolve", json={}, headers=SUPERVISOR)
            assert answer.status_code == 200, answer.text
            second_served = await guides["T3"].dispatched(ids["T3"])
            await until_held(http, {"only": ids["T3"]}, "the second waiter holds the vehicle")
            final = await alerts(http, "pool_exhausted")
        finally:
            for guide in guides.values():
                await guide.ws.close()
    assert len(after_two) == 1
    alert = after_two[0]
    assert (alert["severity"], alert["region"], alert["status"]) == ("critical", "yunnan", "open")
    assert alert["details"]["incidents"] == [ids["T2"], ids["T3"]]
    assert alert["details"]["kind"] == "vehicle"
    assert pulls['tourpulse_pool_pulls_total{outcome="queued"}'] == 2
    assert first_served["dispatched"]["resource_id"] == second_served["dispatched"]["resource_id"] == "only"
    assert [a["alert_id"] for a in final] == [alert["alert_id"]]  # still one alert for the region and kind
    # nobody was told about a vehicle that went to someone else
    assert [c["incident_id"] for c in guides["T1"].dispatch_pushes()] == [ids["T1"]]
    assert [c["incident_id"] for c in guides["T2"].dispatch_pushes()] == [ids["T2"]]


async def test_every_way_of_resolving_an_incident_returns_its_holds(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        for rid in ("v1", "v2", "v3"):
            await put(http, rid, 40)
        # accident: a medical team and a vehicle, by [pool] kind_needs
        await put(http, "doc", 2, kind="medical")
        guide = await guide_phone(base, "T1")
        async with guide.ws:
            by_guide = (await guide.send(incident("a", kind="accident", travellers=2)))["incident_id"]
            by_http = (await guide.send(incident("b")))["incident_id"]
            by_alert = (await guide.send(incident("c", needs=["vehicle"], kind="other")))["incident_id"]
            for incident_id in (by_guide, by_http, by_alert):
                await guide.dispatched(incident_id)

            async def holds() -> Counter[str]:
                return Counter(held(await pool(http)).values())

            await eventually(lambda: _equals(holds(), {by_guide: 2, by_http: 1, by_alert: 1}), "four holds")

            assert (await guide.send(resolving("u1", by_guide)))["type"] == "ack"
            await eventually(lambda: _equals(holds(), {by_http: 1, by_alert: 1}), "the guide's update released")

            answer = await http.post(f"/api/incidents/{by_http}/resolve", json={"note": "done"}, headers=SUPERVISOR)
            assert answer.status_code == 200, answer.text
            await eventually(lambda: _equals(holds(), {by_alert: 1}), "the HTTP resolve released")

            alert = next(a for a in await alerts(http, "incident") if a["details"]["incident_id"] == by_alert)
            answer = await http.post(f"/api/alerts/{alert['alert_id']}/resolve", json={"note": "coach arrived"},
                                     headers=SUPERVISOR)
            assert answer.status_code == 200, answer.text
            await eventually(lambda: _equals(holds(), {}), "resolving the incident alert released")
            resources = await pool(http)
    assert {r["state"] for r in resources.values()} == {"free"}
    assert all(r["held_by"] is None for r in resources.values())


async def _equals(value: Any, expected: Any) -> bool:  # noqa: ANN401
    return await value == expected


async def test_supervisor_pulls_and_releases_by_hand(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        await register_tour(base, "T2")
        await put(http, "m4", 4, kind="medical")
        await put(http, "m9", 9, kind="medical")
        guide = await guide_phone(base, "T1")
        waiter = await guide_phone(base, "T2")
        try:
            # an incident that pulls nothing by itself
            incident_id = (await guide.send(incident("i1", kind="other", severity="medium")))["incident_id"]
            url = f"/api/incidents/{incident_id}/pull"
            pulled = await http.post(url, json={"kind": "medical", "capacity": 3, "id": "p1"}, headers=SUPERVISOR)
            again = await http.post(url, json={"kind": "medical", "capacity": 3, "id": "p1"}, headers=SUPERVISOR)
            refused = await http.post(url, json={"kind": "boat", "capacity": 3}, headers=SUPERVISOR)
            foreign = await http.post(url, json={"kind": "medical", "capacity": 3}, headers=OUTSIDER)
            after_pull = held(await pool(http))
            # a second pull (another request) takes a second team, the last free one
            second = await http.post(url, json={"kind": "medical", "capacity": 9, "id": "p2"}, headers=SUPERVISOR)
            # another tour's medical emergency finds nothing free and waits
            waiting_id = (await waiter.send(incident("w1", "T2", kind="medical", travellers=1)))["incident_id"]
            await eventually(lambda: alerts(http, "pool_exhausted"), "the medical pool is exhausted")
            # a manual pull that finds nothing waits too, and counts in the same alert
            queued = await http.post(url, json={"kind": "medical", "capacity": 1, "id": "p3"}, headers=SUPERVISOR)
            exhausted = await alerts(http, "pool_exhausted")
            told = await guide.dispatched(incident_id)
            released = await http.post(f"/api/incidents/{incident_id}/release", headers=SUPERVISOR)
            served = await waiter.dispatched(waiting_id)
            final = held(await pool(http))
        finally:
            await guide.ws.close()
            await waiter.ws.close()
    assert pulled.status_code == 200, pulled.text
    body = pulled.json()
    assert (body["status"], body["resource"]["resource_id"], body["region"], body["fallback"]) == (
        "held", "m4", "yunnan", False)
    assert again.json()["resource"]["resource_id"] == "m4"  # the same request, retried: the same team
    assert (refused.status_code, refused.json()["field"]) == (400, "kind")
    assert foreign.status_code == 404
    assert after_pull == {"m4": incident_id}
    assert second.json()["resource"]["resource_id"] == "m9"
    assert (told["dispatched"]["resource_id"], told["dispatched"]["partner"]) == ("m4", "Partner of m4")
    assert queued.json()["status"] == "queued"
    assert [(a["count"], a["details"]["incidents"]) for a in exhausted] == [(2, [waiting_id, incident_id])]
    assert released.status_code == 200 and released.json()["released"] is True
    # the first freed team went to the waiter (smallest-first is for pulls; a freed one serves the queue head)
    assert served["dispatched"]["held_by"] == waiting_id
    assert [s["incident_id"] for s in released.json()["served"]] == [waiting_id]
    assert list(final.values()) == [waiting_id]
    assert set(final) <= {"m4", "m9"}


def start_watcher(redis_url: str, *flags: str, watcher_id: str) -> subprocess.Popen[str]:
    spec = json.dumps({"redis_url": redis_url, "doc": DOC, "id": watcher_id})
    return subprocess.Popen([sys.executable, str(PROC), spec, *flags], stdout=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], *, terminate: bool) -> str:
    """Stop a watcher subprocess (or reap one that died), close its pipe, return what it printed."""
    try:
        if terminate:
            proc.terminate()
        proc.wait(timeout=WAIT)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
    return out


async def test_watcher_killed_between_pull_and_ack_never_holds_twice(app_factory, redis_url, redis_client) -> None:
    """SIGKILL at the first flush, after the pull: nothing was saved or acked, so the heir folds the incident
    again and asks for the same pull, and the pool answers with the same hold."""
    async with app_factory(DOC) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        for rid, seats in (("v35", 35), ("v40", 40), ("v50", 50)):
            await put(http, rid, seats)
        guide = await guide_phone(base, "T1")
        async with guide.ws:
            incident_id = (await guide.send(incident("i1")))["incident_id"]
    store = PoolStore(redis_client, make_settings(redis_url, DOC))
    victim = start_watcher(redis_url, "kill-before-ack", watcher_id="victim")
    assert victim.wait(timeout=WAIT) == -9, "the watcher was to die by SIGKILL at its first ack"
    assert "KILLED" in finish(victim, terminate=False)
    assert await pending(redis_client) > 0, "the batch was read and left unacked"
    assert held({r["resource_id"]: r for r in await store.list()}) == {"v35": incident_id}, "pulled before the kill"
    shard = keys.shard_of("T1", 16)
    assert await redis_client.exists(keys.state(shard, "T1")) == 0, "saved in the step that acks, so not at all"
    heir = start_watcher(redis_url, watcher_id="heir")
    try:
        await eventually(lambda: _equals(pending(redis_client), 0), "the heir finished the pending entries")
    finally:
        finish(heir, terminate=True)
    resources = {r["resource_id"]: r for r in await store.list()}
    assert held(resources) == {"v35": incident_id}
    assert await redis_client.smembers(keys.pool_holds_of("yunnan", incident_id)) == {b"v35"}
    audit = await redis_client.xrange(keys.pool_audit("yunnan"))
    assert [f[b"event"] for _id, f in audit].count(b"held") == 1
    notices = [json.loads(f[b"n"]) for _id, f in await redis_client.xrange(keys.NOTICES)]
    told = [n for n in notices if n["type"] == "incident" and "dispatched" in n["incident"]]
    assert len(told) == 1 and told[0]["incident"]["dispatched"]["resource_id"] == "v35"
