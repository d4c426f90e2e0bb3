"""Service deadlines end to end: real uvicorn, real phones and boards over WebSockets, real watchers, real Valkey.

Every clock of ``[sla]`` runs here with second-scale durations from the configuration; nothing sleeps for a real
duration. A wait is a poll for a condition, bounded by the one constant ``WAIT``. "The watcher has handled it" is
itself a condition: the deadline's fired marker exists and the shard's consumer group has read and acked every
entry of the stream (:func:`settled`), so absences ("no breach") are asserted only once they are final.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgpack
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from websockets.asyncio.client import ClientConnection, connect

from alerts.rules.clocks import iso, prompt_due
from alerts.watcher import Watcher
from server.core import keys
from tests.conftest import make_settings, register_tour, token
from tests.e2e.test_board_ws import board, recv, send
from tests.e2e.test_ingest_ws import rating, today, ws_url
from tests.e2e.waiting import eventually

WAIT = 20.0  # the longest any one condition may take to come true on a loaded machine; every wait scales from it
WATCH = {"tick": "100ms", "block": "100ms", "lease_ttl": "1s"}
PROC = Path(__file__).with_name("watcher_proc.py")
SHARDS = 16


def conf(**sla: Any) -> dict[str, Any]:
    return {"sla": sla, "watcher": dict(WATCH)}


async def until_time(moment: float) -> None:
    """Wait until the wall clock passes ``moment`` (a due time the test must be past, never a measured delay)."""
    async def passed() -> bool:
        return time.time() > moment

    await eventually(passed, f"the clock passed {iso(moment)}")


def parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- Redis: where a deadline is and whether the watcher has handled it ----------------------------------------
def shard(tour_id: str) -> int:
    return keys.shard_of(tour_id, SHARDS)


async def armed(r: aioredis.Redis, tour_id: str) -> dict[str, float]:
    """The deadlines waiting in the tour's shard: id -> due."""
    return {k.decode(): float(v) for k, v in await r.zrange(keys.deadlines(shard(tour_id)), 0, -1,
                                                               withscores=True)}


async def fired(r: aioredis.Redis, tour_id: str, deadline_id: str) -> bool:
    return bool(await r.exists(keys.fired(shard(tour_id), deadline_id)))


async def deadline_events(r: aioredis.Redis, tour_id: str, deadline_id: str) -> list[dict[str, Any]]:
    entries = await r.xrange(keys.events(shard(tour_id)))
    events = [msgpack.unpackb(fields[b"e"], raw=False) for _id, fields in entries]
    return [e for e in events if e.get("type") == "deadline" and e.get("deadline_id") == deadline_id]


def _seq(raw: Any) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    ms, _, n = text.partition("-")
    return int(ms), int(n or 0)


async def settled(r: aioredis.Redis, tour_id: str) -> bool:
    """The watchers have read and acked every entry now in the tour's shard stream."""
    stream = keys.events(shard(tour_id))
    last = await r.xrevrange(stream, count=1)
    if not last:
        return True
    try:
        groups = await r.xinfo_groups(stream)
    except ResponseError:
        return False
    group = next((g for g in groups if g["name"] in (keys.GROUP, keys.GROUP.encode())), None)
    return (group is not None and int(group["pending"]) == 0
            and _seq(group["last-delivered-id"]) >= _seq(last[0][0]))


async def handled(r: aioredis.Redis, tour_id: str, *deadline_ids: str) -> bool:
    """Each deadline fired (moved into the stream) and the stream was then read and acked to its end."""
    for deadline_id in deadline_ids:
        if not await fired(r, tour_id, deadline_id):
            return False
    return await settled(r, tour_id)


async def cleared(r: aioredis.Redis, tour_id: str, *deadline_ids: str) -> bool:
    """Everything was folded and none of these deadlines waits any more (so none of them can fire)."""
    if not await settled(r, tour_id):
        return False
    waiting = await armed(r, tour_id)
    return not any(d in waiting for d in deadline_ids)


async def notices(r: aioredis.Redis, kind: str, tour_id: str) -> list[dict[str, Any]]:
    pushes = [json.loads(fields[b"n"]) for _id, fields in await r.xrange(keys.NOTICES)]
    return [p for p in pushes if p.get("type") == "notice" and p.get("kind") == kind and p.get("tour_id") == tour_id]


# --- phones, supervisors ----------------------------------------------------------------------------------
class Phone:
    """A phone over a real WebSocket: pushes that overtake an answer wait in ``pushes``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.pushes: deque[dict[str, Any]] = deque()

    async def _frame(self) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            return json.loads(await self.ws.recv())

    async def ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send(json.dumps(msg))
        while True:
            frame = await self._frame()
            if frame.get("type") in ("ack", "error") and frame.get("id") == msg["id"]:
                return frame
            self.pushes.append(frame)

    async def push(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for frame in list(self.pushes):
            if wanted(frame):
                self.pushes.remove(frame)
                return frame
        while not wanted(frame := await self._frame()):
            self.pushes.append(frame)
        return frame


@contextlib.asynccontextmanager
async def phone(base: str, role: str, sub: str, tours: tuple[str, ...] = ("T1",)) -> AsyncIterator[Phone]:
    path = "/ws/traveller" if role == "traveller" else "/ws/guide"
    async with connect(ws_url(base, path), compression=None,
                       additional_headers={"Authorization": f"Bearer {token(role, sub, tours=tours)}"}) as ws:
        yield Phone(ws)


def supervisor_token() -> str:
    return token("supervisor", "sue", regions=("yunnan", "europe"))


@contextlib.asynccontextmanager
async def api(base: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base, timeout=WAIT,
                                 headers={"Authorization": f"Bearer {supervisor_token()}"}) as client:
        yield client


async def alerts_of(http: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    resp = await http.get("/api/alerts", params={"kind": kind, "status": "open,acknowledged,resolved"})
    resp.raise_for_status()
    return resp.json()["alerts"]


async def alert_where(http: httpx.AsyncClient, kind: str, what: str, **match: Any) -> dict[str, Any]:
    """Wait for the alert of ``kind`` whose fields (``status``, ``tour_id``) and details match."""
    async def find() -> dict[str, Any] | None:
        for alert in await alerts_of(http, kind):
            fields = {k: alert.get(k) for k in ("status", "tour_id", "alert_id")}
            if all((fields[k] if k in fields else alert["details"].get(k)) == v for k, v in match.items()):
                return alert
        return None

    return await eventually(find, what)


async def full_alert(http: httpx.AsyncClient, alert_id: str) -> dict[str, Any]:
    resp = await http.get(f"/api/alerts/{alert_id}")
    resp.raise_for_status()
    return resp.json()


async def send_rating(traveller: Phone, msg_id: str, score: int, tour_id: str = "T1", **extra: Any) -> None:
    reply = await traveller.ask({**rating(msg_id, score, **extra), "tour_id": tour_id})
    assert reply["type"] == "ack", reply


async def open_incident(guide: Phone, msg_id: str, at: float | None = None, kind: str = "attraction_closed",
                        severity: str = "medium", tour_id: str = "T1") -> str:
    msg = {"type": "incident", "id": msg_id, "tour_id": tour_id, "kind": kind, "severity": severity,
           "summary": "the Stone Forest is closed for the day"}
    if at is not None:
        msg["at"] = iso(at)
    reply = await guide.ask(msg)
    assert reply["type"] == "ack", reply
    return str(reply["incident_id"])


async def offer(guide: Phone, msg_id: str, incident_id: str, plans: list[str], at: float | None = None) -> None:
    msg: dict[str, Any] = {"type": "incident_update", "id": msg_id, "incident_id": incident_id,
                           "alternatives": plans}
    if at is not None:
        msg["at"] = iso(at)
    reply = await guide.ask(msg)
    assert reply["type"] == "ack", reply


# --- attraction_closed --------------------------------------------------------------------------------------
async def test_attraction_closed_met_by_three_distinct_alternatives(app_factory, redis_client) -> None:
    async with app_factory(conf(attraction_alternatives="30s"), run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        async with phone(base, "guide", "g1") as guide, api(base) as http:
            incident_id = await open_incident(guide, "i1")
            clock = f"alt:{incident_id}"
            await eventually(partial(_armed_and_settled, redis_client, "T1", clock), "the clock started")
            # four plans offered, two of them twice: only two distinct, the clock keeps running
            await offer(guide, "u1", incident_id, ["museum", "old town"])
            await offer(guide, "u2", incident_id, ["old town", "museum"])
            await eventually(partial(settled, redis_client, "T1"), "the updates were folded")
            assert clock in await armed(redis_client, "T1")
            await offer(guide, "u3", incident_id, ["museum", "tea house"])  # the third distinct one
            await eventually(partial(cleared, redis_client, "T1", clock), "the proof stopped the clock")
            seen = await guide.push(lambda f: f["type"] == "incident"
                                    and len(f["incident"].get("alternatives") or ()) == 3)
            assert seen["incident"]["alternatives"] == ["museum", "old town", "tea house"]
            assert not await fired(redis_client, "T1", clock)
            assert await alerts_of(http, "sla_breach") == []


async def _armed_and_settled(r: aioredis.Redis, tour_id: str, deadline_id: str) -> bool:
    return deadline_id in await armed(r, tour_id) and await settled(r, tour_id)


async def test_attraction_closed_missed_then_a_late_proof_that_happened_in_time(app_factory,
                                                                                redis_client) -> None:
    async with app_factory(conf(attraction_alternatives="1s"), run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        async with phone(base, "guide", "g1") as guide, api(base) as http:
            t0 = time.time()
            offline = await open_incident(guide, "i1", at=t0)  # its guide will prove it later, by `at`
            late = await open_incident(guide, "i2", at=t0)  # its guide really was late
            breaches = {}
            for incident_id in (offline, late):
                breach = await alert_where(http, "sla_breach", "a breach names the incident",
                                           incident_id=incident_id)
                details = breach["details"]
                assert breach["status"] == "open" and breach["count"] == 1 and breach["tour_id"] == "T1"
                assert details["deadline"] == "attraction_alternatives"
                assert details["deadline_id"] == f"alt:{incident_id}"
                assert parse_iso(details["due"]) == pytest.approx(t0 + 1.0, abs=0.002)
                assert details["late_by_s"] >= 0 and details["overdue"] >= 0  # how late, both ways
                assert "three alternative plans" in breach["summary"]
                breaches[incident_id] = breach
            # the offline guide's phone finally delivers what it sent at t0 + 0.5, before the due time
            await offer(guide, "u1", offline, ["museum", "old town", "tea house"], at=t0 + 0.5)
            await offer(guide, "u2", late, ["museum", "old town", "tea house"])  # `at` is now: past due
            taken_back = await alert_where(http, "sla_breach", "the in-time proof resolved its breach",
                                           incident_id=offline, status="resolved")
            note = taken_back["notes"][-1]["note"]
            assert "3 alternatives" in note and "before the deadline" in note and "arrived late" in note
            await eventually(partial(settled, redis_client, "T1"), "every update was folded")
            stands = await full_alert(http, breaches[late]["alert_id"])
            assert stands["status"] == "open" and stands["count"] == 1  # late for real: the breach stands
            assert len(await alerts_of(http, "sla_breach")) == 2


# --- urgent complaints --------------------------------------------------------------------------------------
async def test_urgent_complaint_solved_in_time_is_followed_up_and_a_new_low_rating_reopens_it(
        app_factory, redis_client) -> None:
    doc = conf(urgent_complaint_solution="30s", urgent_complaint_followup="60s")
    async with app_factory(doc, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        board_url = base.replace("http://", "ws://")
        async with phone(base, "traveller", "t1") as t1, api(base) as http, \
                board(board_url, supervisor_token()) as sue:
            assert (await recv(sue))["type"] == "snapshot"
            await send_rating(t1, "r1", 1, comment="the hotel room was filthy")
            alert = await alert_where(http, "urgent_complaint", "the urgent complaint opened", traveller="t1")
            key = alert["dedup_key"]
            clocks = (f"urgent_solution:{key}", f"urgent_followup:{key}")
            await eventually(partial(_all_armed, redis_client, "T1", clocks), "both clocks started")
            reply = await send(sue, {"type": "resolve_alert", "id": "m1", "alert_id": alert["alert_id"],
                                     "note": "moved to a quiet room, dinner refunded"})
            assert reply["type"] == "ack" and reply["alert"]["status"] == "resolved"
            followup = await t1.push(lambda f: f["type"] == "notice" and f["kind"] == "followup")
            assert followup["tour_id"] == "T1" and followup["notice_id"] == f"followup:{key}"
            assert "quiet room" in followup["body"] and "rate the day again" in followup["body"]
            await eventually(partial(cleared, redis_client, "T1", clocks[0]), "the solution stopped its clock")
            # contract §10: the follow-up clock waits for the traveller's answer
            assert clocks[1] in await armed(redis_client, "T1")
            # the follow-up asked to rate again: still not happy, which answers it
            await send_rating(t1, "r2", 3)
            again = await alert_where(http, "urgent_complaint", "a new complaint linked to the first",
                                      status="open", reopens=key)
            assert again["alert_id"] != alert["alert_id"] and again["details"]["traveller"] == "t1"
            assert again["dedup_key"] != key and again["details"]["reopen_count"] == 1
            await eventually(partial(cleared, redis_client, "T1", clocks[1]), "the answer met the follow-up")
            assert not any([await fired(redis_client, "T1", clock) for clock in clocks])
            assert await alerts_of(http, "sla_breach") == []


async def _all_armed(r: aioredis.Redis, tour_id: str, ids: tuple[str, ...]) -> bool:
    waiting = await armed(r, tour_id)
    return all(d in waiting for d in ids)


async def test_urgent_complaint_not_solved_in_time_breaches_both_clocks(app_factory) -> None:
    doc = conf(urgent_complaint_solution="1s", urgent_complaint_followup="2s")
    async with app_factory(doc, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        async with phone(base, "traveller", "t1") as t1, api(base) as http:
            await send_rating(t1, "r1", 1)
            alert = await alert_where(http, "urgent_complaint", "the urgent complaint opened", traveller="t1")
            key = alert["dedup_key"]
            for clock in ("urgent_solution", "urgent_followup"):
                breach = await alert_where(http, "sla_breach", f"the {clock} clock breached", deadline=clock)
                assert breach["details"]["dedup_key"] == key and breach["details"]["traveller"] == "t1"
                assert breach["details"]["deadline_id"] == f"{clock}:{key}" and breach["count"] == 1
            assert (await full_alert(http, alert["alert_id"]))["status"] == "open"


# --- complaint_response -------------------------------------------------------------------------------------
@pytest.mark.parametrize("answered", [False, True], ids=["unanswered", "answered"])
async def test_complaint_response(app_factory, redis_client, answered: bool) -> None:
    doc = conf(complaint_response="30s" if answered else "1s")
    async with app_factory(doc, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        async with phone(base, "traveller", "t1") as t1, api(base) as http:
            await send_rating(t1, "r1", 2, comment="The food was cold and bad")
            complaint = await alert_where(http, "complaint", "the complaint alert opened", traveller="t1")
            assert complaint["severity"] == "low" and complaint["details"]["category"] == "meals"
            clock = f"complaint_response:{complaint['dedup_key']}"
            if not answered:
                breach = await alert_where(http, "sla_breach", "the complaint went unanswered",
                                           deadline="complaint_response")
                assert breach["details"]["deadline_id"] == clock and breach["details"]["traveller"] == "t1"
                return
            await eventually(partial(_all_armed, redis_client, "T1", (clock,)), "the clock started")
            resp = await http.post(f"/api/alerts/{complaint['alert_id']}/resolve",
                                   json={"note": "apologised; a hot dinner is booked for tonight"})
            assert resp.status_code == 200 and resp.json()["status"] == "resolved"
            await eventually(partial(cleared, redis_client, "T1", clock), "the answer stopped the clock")
            assert not await fired(redis_client, "T1", clock)
            assert await alerts_of(http, "sla_breach") == []


# --- ack_escalation -----------------------------------------------------------------------------------------
async def _bad_day(base: str, tour_id: str) -> None:
    """4, 4, 3: a mean below 4 that may still be chance, so a medium score_below_threshold alert. One day, read
    once, for the three (across midnight in Shanghai they would split, too few a day for the alert)."""
    day = today()
    for n, score in enumerate((4, 4, 3)):
        async with phone(base, "traveller", f"{tour_id}-t{n}", tours=(tour_id,)) as traveller:
            await send_rating(traveller, f"r{n}", score, tour_id=tour_id, day=day)


def _actions(alert: dict[str, Any]) -> list[str]:
    return [entry["action"] for entry in alert["audit"]]


def _no_escalation_after_ack(alert: dict[str, Any]) -> bool:
    actions = _actions(alert)
    if "ack" not in actions:
        return True
    return "escalate" not in actions[actions.index("ack"):]


async def test_unacknowledged_alerts_climb_acknowledging_stops_it_assigning_does_not(app_factory,
                                                                                   redis_client) -> None:
    async with app_factory(conf(ack_escalation=["1s", "3s"]), run_watcher=True) as (base, _app):
        tours = {"acked": "T1", "assigned": "T2", "ignored": "T3"}
        for tour_id in tours.values():
            await register_tour(base, tour_id)
        board_url = base.replace("http://", "ws://")
        async with api(base) as http, board(board_url, supervisor_token()) as sue:
            assert (await recv(sue))["type"] == "snapshot"
            ids = {}
            for role, tour_id in tours.items():
                await _bad_day(base, tour_id)
                found = await alert_where(http, "score_below_threshold", f"{tour_id}'s alert opened",
                                          tour_id=tour_id)
                assert found["severity"] == "medium" and found["escalation_level"] == 0
                ids[role] = found["alert_id"]
                if role == "acked":
                    resp = await http.post(f"/api/alerts/{found['alert_id']}/ack")
                    assert resp.status_code == 200
                    level_at_ack = resp.json()["escalation_level"]
                elif role == "assigned":
                    reply = await send(sue, {"type": "assign_alert", "id": "m1", "alert_id": found["alert_id"],
                                             "assignee": "ann"})
                    assert reply["type"] == "ack" and reply["alert"]["assignee"] == "ann"
            # the board sees each climbing alert step up, level by level, severity by severity
            steps: dict[str, list[tuple[int, str]]] = {ids["assigned"]: [], ids["ignored"]: []}
            while any(not s or s[-1][0] < 2 for s in steps.values()):
                frame = await recv(sue)
                alert = frame.get("alert") or {}
                if frame["type"] == "alert" and alert["alert_id"] in steps:
                    step = (alert["escalation_level"], alert["severity"])
                    if not steps[alert["alert_id"]] or steps[alert["alert_id"]][-1] != step:
                        steps[alert["alert_id"]].append(step)
            assert steps[ids["ignored"]] == [(0, "medium"), (1, "high"), (2, "critical")]
            assert steps[ids["assigned"]] == [(0, "medium"), (1, "high"), (2, "critical")]
            clocks = (f"esc:{ids['acked']}:1", f"esc:{ids['acked']}:2")
            await eventually(partial(handled, redis_client, "T1", *clocks),
                             "the acknowledged alert's clocks fell due and were read")
            acked = await full_alert(http, ids["acked"])
            assert level_at_ack < 2  # acknowledged before its last level: there was a climb to stop
            assert acked["status"] == "acknowledged" and acked["escalation_level"] == level_at_ack
            assert acked["severity"] == ["medium", "high"][level_at_ack]
            assert _no_escalation_after_ack(acked)
            assigned = await full_alert(http, ids["assigned"])
            assert (assigned["status"], assigned["assignee"], assigned["escalation_level"]) == ("open", "ann", 2)
            actions = _actions(assigned)
            assert actions.count("escalate") == 2 and "escalate" in actions[actions.index("assign"):]


async def _ack_at(http: httpx.AsyncClient, alert: dict[str, Any], offset: float) -> None:
    """Acknowledge ``offset`` seconds after the alert's escalation clock falls due (it starts as it opens)."""
    due = parse_iso(alert["opened_at"]) + 1.0
    await asyncio.sleep(max(0.0, due + offset - time.time()))
    resp = await http.post(f"/api/alerts/{alert['alert_id']}/ack")
    assert resp.status_code == 200


async def test_the_ack_escalation_race_has_one_defined_winner(app_factory, redis_client) -> None:
    """Acks land around the very moment each alert's escalation falls due: whichever Redis runs first wins,
    and the loser changes nothing. Never an escalation after an acknowledgement."""
    offsets = [-0.2 + 0.075 * n for n in range(9)]  # from before the due time to well after a tick
    async with app_factory(conf(ack_escalation=["1s"]), run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        async with api(base) as http:
            for round_ in range(2):
                travellers = [f"t{round_}-{n}" for n in range(len(offsets))]
                for sub in travellers:
                    async with phone(base, "traveller", sub) as traveller:
                        await send_rating(traveller, f"r{round_}", 1)
                alerts = [await alert_where(http, "urgent_complaint", f"{sub}'s complaint opened", traveller=sub)
                          for sub in travellers]
                await asyncio.gather(*(_ack_at(http, a, off) for a, off in zip(alerts, offsets, strict=True)))
                clocks = [f"esc:{a['alert_id']}:1" for a in alerts]
                await eventually(partial(handled, redis_client, "T1", *clocks), "every escalation clock was read")
                for alert in alerts:
                    final = await full_alert(http, alert["alert_id"])
                    actions = _actions(final)
                    # acknowledged at level 0 and never escalated, or escalated to 1 and then acknowledged
                    assert actions in (["opened", "ack"], ["opened", "escalate", "ack"]), actions
                    assert final["status"] == "acknowledged"
                    assert final["escalation_level"] == actions.count("escalate")
                    assert final["severity"] == ("critical" if final["escalation_level"] else "high")


# --- crashes and many watchers ------------------------------------------------------------------------------
def start_watcher(redis_url: str, doc: dict[str, Any], watcher_id: str) -> subprocess.Popen[bytes]:
    spec = json.dumps({"redis_url": redis_url, "doc": doc, "id": watcher_id})
    return subprocess.Popen([sys.executable, str(PROC), spec], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes], *, kill: bool = False) -> int:
    if proc.poll() is None:
        proc.kill() if kill else proc.terminate()
    return proc.wait(timeout=WAIT)


async def test_a_deadline_due_while_its_watcher_is_dead_fires_once_late_on_restart(app_factory, redis_url,
                                                                                   redis_client) -> None:
    doc = conf(attraction_alternatives="3s")
    async with app_factory(doc) as (base, _app), api(base) as http:  # this app runs no watcher
        await register_tour(base, "T1")
        first = start_watcher(redis_url, doc, "first")
        try:
            async with phone(base, "guide", "g1") as guide:
                incident_id = await open_incident(guide, "i1")
            clock = f"alt:{incident_id}"
            await eventually(partial(_armed_and_settled, redis_client, "T1", clock),
                             "the first watcher started the clock")
            due = (await armed(redis_client, "T1"))[clock]
        finally:
            killed = stop(first, kill=True)
        assert killed == -9  # SIGKILL: no goodbye, its leases just expire
        assert clock in await armed(redis_client, "T1"), "the clock was still running at the kill"
        await until_time(due + 1.0)
        # every watcher is down past the due time: nothing fired, nothing is lost
        assert clock in await armed(redis_client, "T1") and await alerts_of(http, "sla_breach") == []
        second = start_watcher(redis_url, doc, "second")
        try:
            breach = await alert_where(http, "sla_breach", "the restarted watcher fired it", incident_id=incident_id)
            await eventually(partial(handled, redis_client, "T1", clock), "the deadline event was read")
        finally:
            stopped = stop(second)
        assert stopped == 0
    assert breach["count"] == 1 and breach["details"]["late_by_s"] >= 1.0  # it says how late the clock fired
    assert parse_iso(breach["details"]["fired_at"]) > due + 1.0
    assert len(await deadline_events(redis_client, "T1", clock)) == 1
    assert clock not in await armed(redis_client, "T1")


async def test_three_watchers_fire_one_deadline_once(app_factory, redis_url, redis_client) -> None:
    doc = conf(complaint_response="1s")
    settings = make_settings(redis_url, doc)
    watchers = [Watcher(settings, watcher_id=f"w{n}") for n in range(3)]
    async with app_factory(doc) as (base, _app), api(base) as http:
        await asyncio.gather(*(w.start() for w in watchers))
        try:
            await eventually(partial(_shared, watchers), "the three watchers share the shards")
            await register_tour(base, "T1")
            async with phone(base, "traveller", "t1") as t1:
                await send_rating(t1, "r1", 2, comment="The bus was dirty and late")
            complaint = await alert_where(http, "complaint", "the complaint opened", traveller="t1")
            clock = f"complaint_response:{complaint['dedup_key']}"
            await alert_where(http, "sla_breach", "the deadline fired", deadline_id=clock)
            await eventually(partial(handled, redis_client, "T1", clock), "the deadline event was read")
            # every watcher keeps ticking over the shards it owns: nothing more happens
            await asyncio.gather(*(w.move_due() for w in watchers))
            await eventually(partial(settled, redis_client, "T1"), "all read")
        finally:
            for w in watchers:
                await w.stop()
        breaches = await alerts_of(http, "sla_breach")
    assert [(b["details"]["deadline_id"], b["count"]) for b in breaches] == [(clock, 1)]
    assert len(await deadline_events(redis_client, "T1", clock)) == 1


async def _shared(watchers: list[Watcher]) -> bool:
    owned = [set(w.owned) for w in watchers]
    return all(owned) and sum(map(len, owned)) == SHARDS and len(set().union(*owned)) == SHARDS


# --- the daily prompt ---------------------------------------------------------------------------------------
ZONES = {"TS": ("Asia/Shanghai", "yunnan"), "TP": ("Europe/Paris", "europe")}


@pytest.mark.parametrize("due_tour", ["TS", "TP"])
async def test_the_daily_prompt_reaches_travellers_at_the_hour_of_their_tours_timezone(
        app_factory, redis_client, due_tour: str) -> None:
    """``prompt_hour`` is now in the due tour's timezone: its travellers are asked to rate, once each; the
    other tour, six or seven hours away, is not asked now but at that hour of its own timezone."""
    zone, region = ZONES[due_tour]
    local = dt.datetime.now(ZoneInfo(zone))
    hour, day = local.hour, local.date().isoformat()  # tonight's prompt fell due minutes ago
    other = next(t for t in ZONES if t != due_tour)
    # tonight's second prompt and response check at midnight, before the prompt (never armed), or, for a prompt at
    # midnight, at 23:00 (armed, hours away): by default the second prompt comes an hour after the first, capped at
    # 23:00, so a run in the last hour of the due tour's day would get it too; and not the hour before the prompt,
    # which Paris skips the night it moves its clocks forward (02:00 there is 03:00, the prompt's own time)
    quiet = 0 if hour else 23
    sla = conf(prompt_hour=hour, reprompt_hour=quiet, response_check_hour=quiet)
    async with app_factory(sla, run_watcher=True) as (base, _app):
        async with phone(base, "traveller", "a", tours=(due_tour,)) as a, \
                phone(base, "traveller", "b", tours=(due_tour,)) as b, \
                phone(base, "traveller", "c", tours=(other,)):
            for tour_id, (tz, region) in ZONES.items():
                await register_tour(base, tour_id, timezone=tz, region=region)
            for traveller in (a, b):
                prompt = await traveller.push(lambda f: f["type"] == "notice" and f["kind"] == "prompt")
                assert (prompt["tour_id"], prompt["notice_id"]) == (due_tour, f"prompt:{due_tour}:{day}")
                assert day in prompt["body"]
            # registered again (its travellers changed): tonight's prompt fired already, it is not armed twice
            await register_tour(base, due_tour, timezone=zone, region=region, travellers=31)
            await eventually(partial(settled, redis_client, due_tour), "the new registration was folded")
            assert f"prompt:{due_tour}:{day}" not in await armed(redis_client, due_tour)
            tomorrow = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
            waiting = await armed(redis_client, due_tour)
            assert waiting[f"prompt:{due_tour}:{tomorrow}"] == prompt_due(dt.date.fromisoformat(tomorrow), hour, zone)
            # the other tour's prompt waits for that hour in its own timezone
            other_zone = ZONES[other][0]
            later = await armed(redis_client, other)
            (other_clock, other_due), = later.items()
            assert other_clock.startswith(f"prompt:{other}:") and other_due > time.time()
            # the wall-clock hour there, on the day its id names (on the night Paris skips 02:00, 2 o'clock is 03:00)
            other_day = dt.date.fromisoformat(other_clock.removeprefix(f"prompt:{other}:"))
            assert other_due == prompt_due(other_day, hour, other_zone)
        assert len(await notices(redis_client, "prompt", due_tour)) == 1
        assert await notices(redis_client, "prompt", other) == []


async def test_a_prompt_that_fell_due_too_long_ago_is_skipped(app_factory, redis_url, redis_client) -> None:
    """Every watcher was down across tonight's prompt: the one that comes back long after skips it (nobody
    wants it in the middle of the night) and arms tomorrow's."""
    zone = "Asia/Shanghai"
    due_at = dt.datetime.now(ZoneInfo(zone)).replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=1)
    day, hour = due_at.date(), due_at.hour  # fell due one to two hours ago
    async with app_factory(conf(prompt_hour=hour)) as (base, _app):
        await register_tour(base, "T1", timezone=zone)
        # this watcher folds the registration and arms tonight's prompt, but its clock job never runs
        arming = Watcher(make_settings(redis_url, {"sla": {"prompt_hour": hour, "prompt_skip_after": "3h"},
                                                   "watcher": {**WATCH, "tick": "1h"}}))
        await arming.start()
        try:
            await eventually(partial(_armed_and_settled, redis_client, "T1", f"prompt:T1:{day}"),
                             "tonight's prompt was armed")
        finally:
            await arming.stop()
        late = Watcher(make_settings(redis_url, conf(prompt_hour=hour, prompt_skip_after="1s")))
        await late.start()
        try:
            await eventually(partial(handled, redis_client, "T1", f"prompt:T1:{day}"), "the prompt fell due")
        finally:
            await late.stop()
        tomorrow = day + dt.timedelta(days=1)
        assert (await armed(redis_client, "T1")) == {f"prompt:T1:{tomorrow}": prompt_due(tomorrow, hour, zone)}
        assert len(await deadline_events(redis_client, "T1", f"prompt:T1:{day}")) == 1
        assert await notices(redis_client, "prompt", "T1") == []
