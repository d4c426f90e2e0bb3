"""Crisis tools end to end (contract §11): notices with choices and their tally, safety checks to the last person,
and automatic risk warnings. Real uvicorn, real WebSocket phones, real watcher, real Valkey.

Waits are polls for a condition bounded by ``WAIT``; checks use second-scale ``deadline`` and ``repeat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import register_tour, token, tour_doc
from tests.e2e.test_ingest_ws import ws_url
from tests.e2e.waiting import eventually

WAIT = 20.0
DOC = {"watcher": {"tick": "100ms", "block": "100ms", "lease_ttl": "1s"}}
ADMIN = {"Authorization": f"Bearer {token('admin', 'ops', regions=('*',))}"}


def sup(*regions: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token('supervisor', 'sup', regions=regions or ('yunnan',))}"}


class Phone:
    """A phone that keeps every frame it receives: acks and errors by id, pushes in order."""

    def __init__(self, ws: ClientConnection, sub: str) -> None:
        self.ws, self.sub = ws, sub
        self.pushes: list[dict[str, Any]] = []
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for data in self.ws:
                frame = json.loads(data)
                if frame.get("type") in ("ack", "error"):
                    future = self.answers.get(frame.get("id"))
                    if future is not None and not future.done():
                        future.set_result(frame)
                else:
                    self.pushes.append(frame)

    async def ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        future = self.answers[msg["id"]] = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps(msg))
        async with asyncio.timeout(WAIT):
            return await future

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [p for p in self.pushes if p.get("type") == kind]

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


async def register(http: httpx.AsyncClient, tour_id: str, guides: list[str], **kw: Any) -> None:
    resp = await http.put(f"/api/tours/{tour_id}", json={**tour_doc(**kw), "guides": guides}, headers=ADMIN)
    assert resp.status_code == 200, resp.text


async def open_phone(base: str, role: str, sub: str, tours: tuple[str, ...]) -> Phone:
    path = "/ws/traveller" if role == "traveller" else "/ws/guide"
    ws = await connect(ws_url(base, path), compression=None,
                       additional_headers={"Authorization": f"Bearer {token(role, sub, tours=tours)}"})
    return Phone(ws, sub)


@contextlib.asynccontextmanager
async def phones(base: str, specs: list[tuple[str, str, tuple[str, ...]]]) -> AsyncIterator[dict[str, Phone]]:
    opened = {sub: await open_phone(base, role, sub, tours) for role, sub, tours in specs}
    try:
        yield opened
    finally:
        for phone in opened.values():
            await phone.close()


async def get_json(http: httpx.AsyncClient, path: str, headers: dict[str, str] = ADMIN) -> Any:
    resp = await http.get(path, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def alerts_of(http: httpx.AsyncClient, kind: str) -> list[dict[str, Any]]:
    return (await get_json(http, f"/api/alerts?kind={kind}"))["alerts"]


async def people_known(http: httpx.AsyncClient, check_id: str, tour_id: str, count: int) -> bool:
    roll = await get_json(http, f"/api/safety-checks/{check_id}")
    part = roll["tours"][tour_id]
    return part["safe"] + part["need_help"] + part["unanswered"] >= count


# --- notices with choices ----------------------------------------------------------------------------------------
async def test_a_notice_with_choices_is_tallied_once_per_person_overall_and_per_tour(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        for tour_id in ("T1", "T2"):
            await register_tour(base, tour_id)
        specs = [("traveller", "a1", ("T1",)), ("traveller", "a2", ("T1",)), ("traveller", "b1", ("T2",)),
                 ("guide", "g1", ("T1",))]
        async with phones(base, specs) as ph:
            resp = await http.post("/api/notices", headers=sup(), json={
                "tour_ids": ["T1", "T2"], "kind": "progress", "title": "Road closed", "body": "Choose a plan",
                "audience": "all", "choices": ["Plan A: wait", "Plan B: detour", "Plan C: hotel"]})
            assert resp.status_code == 200, resp.text
            group_id = resp.json()["group_id"]
            assert group_id != "reads" and group_id.replace("-", "").isalnum()
            await eventually(lambda: asyncio.sleep(0, all(p.of("notice") for p in ph.values())), "all notified")
            notice = ph["a1"].of("notice")[0]
            assert notice["choices"] == ["Plan A: wait", "Plan B: detour", "Plan C: hotel"]
            assert notice["group_id"] == group_id
            t2_notice = ph["b1"].of("notice")[0]["notice_id"]

            def reply(mid: str, notice_id: str, choice: Any) -> dict[str, Any]:
                return {"type": "notice_reply", "id": mid, "notice_id": notice_id, "choice": choice}

            nid = notice["notice_id"]
            bad = await ph["a1"].ask(reply("r0", nid, 3))
            assert (bad["type"], bad["code"], bad["field"]) == ("error", "invalid", "choice")
            bad = await ph["a1"].ask(reply("r0", nid, -1))
            assert (bad["code"], bad["field"]) == ("invalid", "choice")
            bad = await ph["a1"].ask(reply("r0", "no-such-notice", 0))
            assert (bad["code"], bad["field"]) == ("not_found", "notice_id")
            bad = await ph["a1"].ask(reply("r0", t2_notice, 0))
            assert (bad["code"], bad["field"]) == ("forbidden", "notice_id")
            assert (await ph["a1"].ask(reply("r1", nid, 0)))["type"] == "ack"
            assert (await ph["a1"].ask(reply("r1", nid, 0)))["duplicate"] is True
            assert (await ph["a1"].ask(reply("r2", nid, 2)))["type"] == "ack"  # a later answer replaces
            assert (await ph["a2"].ask(reply("r1", nid, 2)))["type"] == "ack"
            assert (await ph["g1"].ask(reply("r1", nid, 1)))["type"] == "ack"
            assert (await ph["b1"].ask(reply("r1", t2_notice, 0)))["type"] == "ack"
            read = await ph["a1"].ask({"type": "notice_read", "id": "n1", "notice_id": nid})
            assert read["type"] == "ack"

            async def tallied() -> dict[str, Any] | None:
                found = await get_json(http, f"/api/notices/{group_id}", sup())
                return found if sum(c["count"] for c in found["choices"]) == 4 else None

            found = await eventually(tallied, "four people's choices tallied")
            assert [c["count"] for c in found["choices"]] == [1, 1, 2]
            assert [c["text"] for c in found["choices"]] == ["Plan A: wait", "Plan B: detour", "Plan C: hotel"]
            assert [c["count"] for c in found["tours"]["T1"]["choices"]] == [0, 1, 2]
            assert [c["count"] for c in found["tours"]["T2"]["choices"]] == [1, 0, 0]
            assert found["reads"] == 1 and found["tours"]["T1"]["read_by"][0]["sender"] == "traveller:a1"
            assert found["tours"]["T1"]["recipients"] == 3  # its guide and two travellers who connected
            assert found["recipients"] == 5
        # bad input changes nothing
        for choices in (["only one"], ["a", "b", "c", "d", "e", "f"], ["a", ""], "ab"):
            resp = await http.post("/api/notices", headers=sup(), json={
                "tour_ids": ["T1"], "title": "x", "body": "y", "choices": choices})
            assert resp.status_code == 400 and resp.json()["field"] == "choices"
        assert (await http.get("/api/notices/grp-nothing", headers=ADMIN)).status_code == 404
        other = {"Authorization": f"Bearer {token('supervisor', 's2', regions=('sichuan',))}"}
        assert (await http.get(f"/api/notices/{group_id}", headers=other)).status_code == 403


# --- safety checks -----------------------------------------------------------------------------------------------
def safety(mid: str, check_id: str, status: str = "safe", **extra: Any) -> dict[str, Any]:
    return {"type": "safety_reply", "id": mid, "check_id": check_id, "status": status, **extra}


async def test_a_check_to_a_region_reaches_every_phone_and_accounts_for_the_last_person(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        tours = ("T1", "T2", "T3")
        for n, tour_id in enumerate(tours, start=1):
            await register(http, tour_id, [f"g{n}"], travellers=10)
        await register(http, "T9", ["g9"], region="sichuan")
        specs = [("guide", f"g{n}", (f"T{n}",)) for n in (1, 2, 3)]
        specs += [("traveller", f"t{n}_{i}", (f"T{n}",)) for n in (1, 2, 3) for i in range(1, 10)]
        specs.append(("traveller", "far", ("T9",)))
        async with phones(base, specs) as ph:
            assert len(ph) == 31  # 30 in the region, one elsewhere
            resp = await http.post("/api/safety-checks", headers=sup(), json={
                "region": "yunnan", "message": "Typhoon: are you safe?", "deadline": "6s", "repeat": "2s"})
            assert resp.status_code == 200, resp.text
            check_id = resp.json()["check_id"]
            # every traveller has connected, so each tour knows its nine before we count on it
            for tour_id in tours:
                await eventually(lambda t=tour_id: people_known(http, check_id, t, 10), f"people of {tour_id}")
            region_phones = [p for sub, p in ph.items() if sub != "far"]
            await eventually(lambda: asyncio.sleep(0, all(p.of("safety_check") for p in region_phones)),
                             "the check on every phone of the region")
            first = ph["t1_1"].of("safety_check")[0]
            assert (first["check_id"], first["message"], first["tour_id"]) == (check_id, "Typhoon: are you safe?",
                                                                               "T1")
            assert first["deadline"].endswith("Z") or first["deadline"].endswith("+00:00")

            safe = ["g2", "g3"] + [f"t1_{i}" for i in range(1, 6)] + [f"t2_{i}" for i in range(1, 8)] \
                + [f"t3_{i}" for i in range(1, 7)]
            assert len(safe) == 20
            for sub in safe:
                assert (await ph[sub].ask(safety("s1", check_id)))["type"] == "ack"
            for sub in ("t1_6", "t2_8"):
                ack = await ph[sub].ask(safety("h1", check_id, "need_help", note="leg hurt",
                                               location={"lat": 25.04, "lon": 102.71}))
                assert ack["type"] == "ack"
            for sub in ("t1_7", "t1_8", "t1_9"):  # the guide answers for three travellers in front of them
                assert (await ph["g1"].ask(safety(f"for-{sub}", check_id, **{"for": sub})))["type"] == "ack"

            helps = await eventually(lambda: _n_alerts(http, "safety_help", 2), "two safety_help alerts")
            assert {a["details"]["sub"] for a in helps} == {"t1_6", "t2_8"}
            assert all(a["severity"] == "critical" for a in helps)
            assert helps[0]["details"]["location"] == {"lat": 25.04, "lon": 102.71}

            unaccounted = await eventually(lambda: _n_alerts(http, "safety_unaccounted", 3),
                                           "safety_unaccounted in each tour")
            by_tour = {a["tour_id"]: a for a in unaccounted}
            assert {p["sub"] for p in by_tour["T1"]["details"]["unanswered"]} == {"g1"}
            assert {p["sub"] for p in by_tour["T2"]["details"]["unanswered"]} == {"t2_9"}
            assert set(by_tour["T3"]["details"]["names"]) == {"t3_7", "t3_8", "t3_9"}
            assert all(a["details"]["unknown"] == 1 and a["severity"] == "critical" for a in unaccounted)
            # the silent were asked again before the deadline; a phone elsewhere heard nothing
            for sub in ("g1", "t2_9", "t3_7", "t3_8", "t3_9"):
                assert any(p.get("repeat") for p in ph[sub].of("safety_check")), sub
            assert not ph["far"].of("safety_check")

            roll = await get_json(http, f"/api/safety-checks/{check_id}", sup())
            assert roll["overall"] == {"safe": 23, "need_help": 2, "unanswered": 5, "unknown": 3}
            assert {t: {k: v for k, v in p.items() if k != "people"} for t, p in roll["tours"].items()} == {
                "T1": {"safe": 8, "need_help": 1, "unanswered": 1, "unknown": 1},
                "T2": {"safe": 8, "need_help": 1, "unanswered": 1, "unknown": 1},
                "T3": {"safe": 7, "need_help": 0, "unanswered": 3, "unknown": 1}}
            answered_for = next(p for p in roll["tours"]["T1"]["people"] if p["sub"] == "t1_7")
            assert (answered_for["status"], answered_for["by"], answered_for["late"]) == ("safe", "g1", False)

            # a late answer is kept, marked late
            assert (await ph["t3_9"].ask(safety("late", check_id)))["type"] == "ack"

            async def late_counted() -> dict[str, Any] | None:
                found = await get_json(http, f"/api/safety-checks/{check_id}", sup())
                return found if found["tours"]["T3"]["unanswered"] == 2 else None

            roll = await eventually(late_counted, "the late answer in the roll-up")
            late = next(p for p in roll["tours"]["T3"]["people"] if p["sub"] == "t3_9")
            assert (late["status"], late["late"]) == ("safe", True)

            async def alert_shrunk() -> dict[str, Any] | None:
                found = {a["tour_id"]: a for a in await alerts_of(http, "safety_unaccounted")}["T3"]
                return found if set(found["details"]["names"]) == {"t3_7", "t3_8"} else None

            shrunk = await eventually(alert_shrunk, "the late answer off T3's unaccounted list")
            assert shrunk["count"] == 1  # an annotation, not a new firing

            # the CSV: one row per person; a guide reads their own tour's roll-up only
            resp = await http.get(f"/api/safety-checks/{check_id}?format=csv", headers=sup())
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(resp.text)))
            assert len(rows) == 30 and {r["status"] for r in rows} == {"safe", "need_help", "unanswered"}
            guide = {"Authorization": f"Bearer {token('guide', 'g1', tours=('T1',))}"}
            mine = await get_json(http, f"/api/safety-checks/{check_id}", guide)
            assert list(mine["tours"]) == ["T1"]
            outsider = {"Authorization": f"Bearer {token('guide', 'g9', tours=('T9',))}"}
            assert (await http.get(f"/api/safety-checks/{check_id}", headers=outsider)).status_code == 403


async def _n_alerts(http: httpx.AsyncClient, kind: str, n: int) -> list[dict[str, Any]] | None:
    found = await alerts_of(http, kind)
    assert len(found) <= n, found
    return found if len(found) == n else None


async def test_a_phone_offline_during_the_send_gets_the_check_on_reconnect_and_counts_once(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1", travellers=2)
        first = await open_phone(base, "traveller", "t1", ("T1",))  # joined: known to the tour
        await first.close()
        resp = await http.post("/api/safety-checks", headers=ADMIN, json={
            "tour_ids": ["T1"], "message": "Earthquake: are you safe?", "deadline": "60s", "repeat": "30s"})
        check_id = resp.json()["check_id"]
        await eventually(lambda: people_known(http, check_id, "T1", 2), "t1 and the guide are people of T1")
        back = await open_phone(base, "traveller", "t1", ("T1",))
        await eventually(lambda: asyncio.sleep(0, back.of("safety_check")), "the open check on reconnect")
        assert back.of("safety_check")[0]["check_id"] == check_id
        ack = await back.ask(safety("s1", check_id))
        assert (await back.ask(safety("s1", check_id))) == {**ack, "duplicate": True}
        await back.close()

        async def counted() -> dict[str, Any] | None:
            roll = await get_json(http, f"/api/safety-checks/{check_id}")
            return roll if roll["overall"]["safe"] == 1 else None

        roll = await eventually(counted, "the answer in the roll-up")
        assert roll["overall"] == {"safe": 1, "need_help": 0, "unanswered": 1, "unknown": 1}
        # answered: connecting again brings no check
        again = await open_phone(base, "traveller", "t1", ("T1",))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                while not again.of("safety_check"):
                    await asyncio.sleep(0.02)
        await again.close()


async def test_bad_safety_checks_and_replies_are_refused_and_change_nothing(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        await register_tour(base, "T2")
        await register_tour(base, "S1", region="sichuan")
        for body, status, field in (
            ({"region": "sichuan", "message": "x"}, 403, "region"),
            ({"tour_ids": ["S1"], "message": "x"}, 403, "tour_ids"),
            ({"tour_ids": ["NOPE"], "message": "x"}, 404, "tour_ids"),
            ({"tour_ids": ["T1"]}, 400, "message"),
            ({"tour_ids": ["T1"], "message": "x", "deadline": "soon"}, 400, "deadline"),
            ({"tour_ids": ["T1"], "message": "x", "repeat": "0s"}, 400, "repeat"),
            ({"tour_ids": "T1", "message": "x"}, 400, "tour_ids"),
            ({"message": "x"}, 400, "tour_ids"),
        ):
            resp = await http.post("/api/safety-checks", headers=sup(), json=body)
            assert (resp.status_code, resp.json()["field"]) == (status, field), body
        traveller = {"Authorization": f"Bearer {token('traveller', 't1', tours=('T1',))}"}
        assert (await http.post("/api/safety-checks", headers=traveller,
                                json={"tour_ids": ["T1"], "message": "x"})).status_code == 403
        assert (await http.get("/api/safety-checks/chk-none", headers=ADMIN)).status_code == 404
        resp = await http.post("/api/safety-checks", headers=sup(), json={"tour_ids": ["T1"], "message": "ok?"})
        check_id = resp.json()["check_id"]
        async with phones(base, [("traveller", "t1", ("T1",)), ("traveller", "t2", ("T2",)),
                                 ("guide", "g1", ("T1",))]) as ph:
            for phone, msg, code, field in (
                (ph["t1"], safety("x1", "chk-none"), "not_found", "check_id"),
                (ph["t2"], safety("x1", check_id), "forbidden", "check_id"),
                (ph["t1"], safety("x1", check_id, "fine"), "invalid", "status"),
                (ph["t1"], safety("x1", check_id, **{"for": "t9"}), "forbidden", "for"),
                (ph["g1"], safety("x1", check_id, location={"lat": 91, "lon": 0}), "invalid", "location.lat"),
            ):
                reply = await phone.ask(msg)
                assert (reply["type"], reply["code"], reply["field"]) == ("error", code, field), msg
            assert (await ph["t1"].ask(safety("x1", check_id)))["type"] == "ack"  # a refused id may be re-used

        async def counted() -> dict[str, Any] | None:
            roll = await get_json(http, f"/api/safety-checks/{check_id}")
            return roll if roll["overall"]["safe"] == 1 else None

        roll = await eventually(counted, "the one good answer")
        assert roll["overall"]["need_help"] == 0 and list(roll["tours"]) == ["T1"]


# --- risk warnings -----------------------------------------------------------------------------------------------
async def test_a_weather_incident_warns_the_other_tours_in_progress_in_its_region_once(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        await register_tour(base, "T2")
        await register_tour(base, "T3", days_before=-5, days_after=9)  # in the region, not yet begun
        await register_tour(base, "S1", region="sichuan")
        specs = [("guide", "g1", ("T1",)), ("traveller", "a1", ("T1",)), ("traveller", "b1", ("T2",)),
                 ("guide", "g2", ("T2",)), ("traveller", "c1", ("T3",)), ("traveller", "s1", ("S1",))]
        async with phones(base, specs) as ph:
            low = {"type": "incident", "id": "i0", "tour_id": "T1", "kind": "weather", "severity": "medium",
                   "summary": "drizzle"}
            assert (await ph["g1"].ask(low))["type"] == "ack"
            storm = {**low, "id": "i1", "severity": "high", "summary": "Typhoon: road to Dali closed"}
            ack = await ph["g1"].ask(storm)
            assert (await ph["g1"].ask(storm))["duplicate"] is True
            await eventually(lambda: asyncio.sleep(0, ph["b1"].of("notice") and ph["g2"].of("notice")),
                             "the warning on T2's phones")
            warning = ph["b1"].of("notice")[0]
            assert (warning["kind"], warning["tour_id"]) == ("risk_warning", "T2")
            assert "Typhoon: road to Dali closed" in warning["body"]
            assert warning["incident_id"] == ack["incident_id"]
            await asyncio.sleep(1.0)  # the watcher has long folded both incidents: an absence is now final
            assert len(ph["b1"].of("notice")) == 1
            for sub in ("a1", "c1", "s1"):
                assert not ph[sub].of("notice"), sub


async def test_a_web_process_started_after_the_check_still_hands_it_to_phones_that_connect(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        resp = await http.post("/api/safety-checks", headers=ADMIN, json={
            "tour_ids": ["T1"], "message": "Flood: are you safe?", "deadline": "60s"})
        check_id = resp.json()["check_id"]
        async with app_factory(DOC) as (later, _later_app):
            phone = await open_phone(later, "traveller", "t7", ("T1",))
            await eventually(lambda: asyncio.sleep(0, phone.of("safety_check")), "the open check from a new process")
            assert phone.of("safety_check")[0]["check_id"] == check_id
            assert (await phone.ask(safety("s1", check_id)))["type"] == "ack"
            await phone.close()


async def test_repeats_go_to_those_who_have_not_answered_only(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1", travellers=2)
        async with phones(base, [("traveller", "a", ("T1",)), ("traveller", "b", ("T1",))]) as ph:
            resp = await http.post("/api/safety-checks", headers=ADMIN, json={
                "tour_ids": ["T1"], "message": "ok?", "deadline": "20s", "repeat": "1s"})
            check_id = resp.json()["check_id"]
            await eventually(lambda: asyncio.sleep(0, ph["a"].of("safety_check")), "the check on a's phone")
            assert (await ph["a"].ask(safety("s1", check_id)))["type"] == "ack"

            async def folded() -> bool:
                roll = await get_json(http, f"/api/safety-checks/{check_id}")
                return roll["overall"]["safe"] == 1

            await eventually(folded, "a's answer folded")
            seen = len(ph["b"].of("safety_check"))
            # the second repeat b gets from now on was decided after a's answer was folded
            await eventually(lambda: asyncio.sleep(0, len(ph["b"].of("safety_check")) >= seen + 2), "two repeats")
            later = ph["b"].of("safety_check")[seen + 1]["repeat"]
            assert all(p.get("repeat", 0) < later for p in ph["a"].of("safety_check"))


async def test_a_retried_check_request_with_its_id_sends_one_check(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        async with phones(base, [("traveller", "a", ("T1",))]) as ph:
            body = {"tour_ids": ["T1"], "message": "ok?", "deadline": "60s", "id": "quake-0513"}
            first = (await http.post("/api/safety-checks", headers=sup(), json=body)).json()["check_id"]
            again = (await http.post("/api/safety-checks", headers=sup(), json={**body, "message": "other"}))
            assert again.json()["check_id"] == first
            other = (await http.post("/api/safety-checks", headers=sup(), json={**body, "id": "x"})).json()
            await eventually(lambda: asyncio.sleep(0, len(ph["a"].of("safety_check")) >= 2), "two checks")
            await asyncio.sleep(0.5)
            assert sorted(p["check_id"] for p in ph["a"].of("safety_check")) == sorted([first, other["check_id"]])
            assert {p["message"] for p in ph["a"].of("safety_check")} == {"ok?"}
        bad = await http.post("/api/safety-checks", headers=sup(), json={**body, "id": ""})
        assert (bad.status_code, bad.json()["field"]) == (400, "id")


async def test_a_traveller_who_joined_is_one_of_the_tours_people_by_name_before_connecting(app_factory) -> None:
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register(http, "T1", ["g1"], travellers=3)
        code = (await http.post("/api/tours/T1/join", headers=ADMIN, json={})).json()["code"]
        joined = await http.post("/api/join", json={"code": code, "name": "王芳"})
        assert joined.status_code == 200, joined.text
        sub = joined.json()["sub"]
        resp = await http.post("/api/safety-checks", headers=ADMIN, json={
            "tour_ids": ["T1"], "message": "ok?", "deadline": "2s", "repeat": "1s"})
        check_id = resp.json()["check_id"]
        roll = await get_json(http, f"/api/safety-checks/{check_id}")
        person = next(p for p in roll["tours"]["T1"]["people"] if p["sub"] == sub)
        assert (person["name"], person["status"], person["role"]) == ("王芳", "unanswered", "traveller")
        assert roll["overall"]["unknown"] == 2
        (alert,) = await eventually(lambda: _n_alerts(http, "safety_unaccounted", 1), "the unaccounted alert")
        assert set(alert["details"]["names"]) == {"g1", "王芳"} and alert["details"]["unknown"] == 2


async def test_a_check_a_choice_and_the_roll_up_work_on_a_cluster(app_factory, cluster_url: str) -> None:
    async with app_factory(DOC, run_watcher=True, url=cluster_url) as (base, _app), \
            httpx.AsyncClient(base_url=base) as http:
        for tour_id in ("T1", "T2"):  # on different shards, so different slots
            await register(http, tour_id, [f"g{tour_id}"], travellers=1)
        async with phones(base, [("traveller", "a", ("T1",)), ("traveller", "b", ("T2",))]) as ph:
            resp = await http.post("/api/safety-checks", headers=ADMIN, json={
                "tour_ids": ["T1", "T2"], "message": "ok?", "deadline": "60s"})
            check_id = resp.json()["check_id"]
            sent = await http.post("/api/notices", headers=ADMIN, json={
                "tour_ids": ["T1"], "title": "Plan?", "body": "Pick", "choices": ["A", "B"]})
            group_id = sent.json()["group_id"]
            await eventually(lambda: asyncio.sleep(0, ph["a"].of("notice") and ph["b"].of("safety_check")), "pushes")
            assert (await ph["a"].ask(safety("s1", check_id, "need_help")))["type"] == "ack"
            assert (await ph["b"].ask(safety("s1", check_id)))["type"] == "ack"
            nid = ph["a"].of("notice")[0]["notice_id"]
            assert (await ph["a"].ask({"type": "notice_reply", "id": "c1", "notice_id": nid, "choice": 1}))["type"] \
                == "ack"

            async def counted() -> dict[str, Any] | None:
                roll = await get_json(http, f"/api/safety-checks/{check_id}")
                return roll if roll["overall"]["safe"] + roll["overall"]["need_help"] == 2 else None

            roll = await eventually(counted, "both answers in the roll-up")
            assert roll["overall"] == {"safe": 1, "need_help": 1, "unanswered": 2, "unknown": 0}
            tally = await eventually(lambda: _tallied(http, group_id), "the choice tallied")
            assert [c["count"] for c in tally["choices"]] == [0, 1]
            await eventually(lambda: _n_alerts(http, "safety_help", 1), "the help alert")


async def _tallied(http: httpx.AsyncClient, group_id: str) -> dict[str, Any] | None:
    found = await get_json(http, f"/api/notices/{group_id}")
    return found if sum(c["count"] for c in found["choices"]) else None
