"""CSAT, NPS and complaint handling: the pure tally, and the report over a watcher's real folded states."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx

from alerts.rules.fold import fold
from alerts.rules.state import TourState
from server.storage.tours import Tour
from server.web.reporting import build_report
from tests.conftest import register_tour, token
from tests.e2e.test_ingest_ws import ask, phone, rating

TOUR = Tour("T1", "Yunnan 6 days", "yunnan", ("g1",), date(2026, 5, 12), date(2026, 5, 17), "Asia/Shanghai", 30)


def folded(*ratings: tuple[str, str, int, int | None, str | None]) -> TourState:
    state = TourState.new()
    for n, (traveller, day, score, nps, comment) in enumerate(ratings, start=1):
        fold(state, {"type": "rating", "tour_id": "T1", "traveller": traveller, "day": day, "score": score,
                     "nps": nps, "comment": comment, "aspects": None, "at": float(n), "received_at": float(n),
                     "seq": f"{n}-0", "sender": f"traveller:{traveller}", "msg_id": str(n)})
    return state


def test_csat_nps_and_targets() -> None:
    state = folded(("a", "2026-05-12", 5, 10, None), ("b", "2026-05-12", 4, 9, None),
                   ("c", "2026-05-12", 3, 7, None), ("d", "2026-05-12", 2, 3, None),
                   ("a", "2026-05-13", 5, None, None))
    total = build_report([(TOUR, state)])["total"]
    assert total["ratings"] == 5 and total["csat"] == 0.6 and total["csat_met"] is False
    assert total["nps_answers"] == 4 and total["nps"] == 25.0 and total["nps_met"] is False
    only_13 = build_report([(TOUR, state)], "2026-05-13", "2026-05-13")["total"]
    assert (only_13["ratings"], only_13["csat"], only_13["nps"]) == (1, 1.0, None)


def test_a_replaced_rating_counts_once_and_complaints_are_tracked() -> None:
    state = folded(("a", "2026-05-12", 2, 2, "the meals were cold and late, terrible"),
                   ("a", "2026-05-12", 5, 10, None))
    report = build_report([(TOUR, state)])
    assert report["total"]["ratings"] == 1 and report["total"]["csat"] == 1.0
    assert report["total"]["complaints"] == 1 and report["total"]["complaints_open"] == 1
    assert report["routes"]["Yunnan 6 days"]["ratings"] == 1


async def test_report_over_the_watchers_state(app_factory) -> None:
    doc = {"watcher": {"block": "100ms", "tick": "100ms"}}
    async with app_factory(doc, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        for n, score in enumerate((5, 5, 4, 2)):
            async with await phone(base, "traveller", f"t{n}") as ws:
                assert (await ask(ws, rating(f"r{n}", score, nps=10 if score >= 4 else 2), True))["type"] == "ack"
        headers = {"Authorization": f"Bearer {token('supervisor', 's', regions=('yunnan',))}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as client:
            async with asyncio.timeout(20):
                while True:
                    body = (await client.get("/api/reports")).json()
                    if body["total"]["ratings"] == 4:
                        break
                    await asyncio.sleep(0.1)
            other = await client.get("/api/reports", params={"region": "sichuan"})
            assert body["total"]["csat"] == 0.75 and body["total"]["nps"] == 50.0
            # the web process keeps the states it parsed, and the counts of that range: a save of the watcher
            # after them is read all the same (the state's meta changed with it)
            async with await phone(base, "traveller", "t4") as ws:
                assert (await ask(ws, rating("r4", 5, nps=10), True))["type"] == "ack"
            async with asyncio.timeout(20):
                while True:
                    later = (await client.get("/api/reports")).json()
                    if later["total"]["ratings"] == 5:
                        break
                    assert later["total"] == body["total"]  # before the save: the same figures, from the cache
                    await asyncio.sleep(0.1)
    assert later["total"]["csat"] == 0.8 and later["total"]["nps"] == 60.0
    assert later["routes"] != body["routes"] and later["periods"] != body["periods"]
    assert [t["tour_id"] for t in body["tours"]] == ["T1"]
    assert other.json()["tours"] == []


# --- contract §10: periods, groups, categories, targets from the configuration, scorecards --------------------

def _tour(route: str, region: str, guide: str, today: date) -> dict:
    import datetime as dt

    return {"route": route, "region": region, "guides": [guide], "timezone": "Asia/Shanghai",
            "start": (today - dt.timedelta(days=2)).isoformat(), "end": (today + dt.timedelta(days=3)).isoformat(),
            "travellers": 10}


async def test_reports_over_three_days_and_two_routes_match_the_hand_count(app_factory) -> None:
    import datetime as dt
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()  # the tours' days and the ratings' from one reading
    d0, d1, d2 = ((today - dt.timedelta(days=n)).isoformat() for n in (2, 1, 0))
    doc = {"watcher": {"block": "100ms", "tick": "100ms"}, "targets": {"csat": 0.5, "nps": 20}}
    admin = {"Authorization": f"Bearer {token('admin', 'ops', regions=('*',))}"}
    sent = [  # (tour, traveller, day, score, nps, comment), in this order (a's answer on d1 is their latest)
        ("T1", "a", d0, 5, 10, None), ("T1", "b", d0, 3, 6, None), ("T1", "a", d1, 4, 8, None),
        ("T1", "c", d2, 2, None, "the dinner was cold"),
        ("T2", "x", d0, 5, 9, None), ("T2", "y", d1, 5, 10, None), ("T2", "z", d2, 1, None, None),
    ]
    async with app_factory(doc, run_watcher=True) as (base, _app):
        async with httpx.AsyncClient(base_url=base, headers=admin) as client:
            for tour_id, route, region, guide in (("T1", "Lijiang 5 days", "yunnan", "g1"),
                                                  ("T2", "Guilin 4 days", "guilin", "g2")):
                resp = await client.put(f"/api/tours/{tour_id}", json=_tour(route, region, guide, today))
                assert resp.status_code == 200
            for n, (tour_id, who, day, score, nps, comment) in enumerate(sent):
                async with await phone(base, "traveller", who, tours=(tour_id,)) as ws:
                    msg = {**rating(f"r{n}", score, nps=nps, comment=comment), "tour_id": tour_id, "day": day}
                    assert (await ask(ws, msg, False))["type"] == "ack"
            params = {"from": d0, "to": d2, "period": "day", "group": "route"}
            async with asyncio.timeout(20):
                while (body := (await client.get("/api/reports", params=params)).json())["total"]["ratings"] < 7 \
                        or body["total"]["complaints"] < 2:
                    await asyncio.sleep(0.1)
            assert body["targets"]["csat"] == 0.5 and body["targets"]["nps"] == 20.0  # from [targets]
            total = body["total"]
            # CSAT 4 of 7; NPS once per traveller: a 8 (latest), b 6, x 9, y 10 -> (2 - 1) / 4
            assert (total["ratings"], total["csat"], total["nps"], total["nps_answers"]) == (7, 0.571, 25.0, 4)
            assert [p["start"] for p in body["periods"]] == [d0, d1, d2]
            first, second, third = (p["groups"] for p in body["periods"])
            lij, gui = "Lijiang 5 days", "Guilin 4 days"
            assert (first[lij]["ratings"], first[lij]["csat"], first[lij]["csat_met"]) == (2, 0.5, True)
            assert (first[lij]["nps"], first[lij]["nps_answers"]) == (-100.0, 1)  # only b's answer was given on d0
            assert (first[gui]["csat"], first[gui]["nps"]) == (1.0, 100.0)
            assert (second[lij]["csat"], second[lij]["nps"], second[gui]["nps"]) == (1.0, 0.0, 100.0)
            assert (third[lij]["complaints"], third[gui]["complaints"], third[lij]["csat"]) == (1, 1, 0.0)
            assert body["periods"][2]["categories"] == {"meals": 1}
            by_region = (await client.get("/api/reports", params={**params, "group": "region"})).json()
            assert set(by_region["periods"][0]["groups"]) == {"yunnan", "guilin"}
            monthly = (await client.get("/api/reports", params={**params, "period": "month"})).json()
            assert sum(g["ratings"] for p in monthly["periods"] for g in p["groups"].values()) == 7
            for bad, field in (({"period": "year"}, "period"), ({"group": "city"}, "group"),
                               ({"from": "2026-02-30"}, "from"), ({"from": d2, "to": d0}, "from"),
                               ({"to": "tomorrow"}, "to")):
                resp = await client.get("/api/reports", params={**params, **bad})
                assert (resp.status_code, resp.json()["error"], resp.json()["field"]) == (400, "invalid", field)
            cards = (await client.get("/api/reports/guides", params={"from": d0, "to": d2})).json()
            by_guide = {g["guide"]: g for g in cards["guides"]}
            assert (by_guide["g1"]["ratings"], by_guide["g1"]["csat"], by_guide["g1"]["nps"]) == (4, 0.5, -50.0)
            assert (by_guide["g2"]["ratings"], by_guide["g2"]["csat"], by_guide["g2"]["nps"]) == (3, 0.667, 100.0)
            assert (by_guide["g1"]["complaints"], by_guide["g2"]["complaints"]) == (1, 1)
            assert by_guide["g1"]["response_rate"] == round(4 / 30, 3)  # 10 travellers x 3 days
            assert cards["star"] == "g2"
            # MTTA and MTTR per kind: the complaint answered
            alerts = (await client.get("/api/alerts")).json()["alerts"]
            complaint = next(a for a in alerts if a["kind"] == "complaint")
            assert (await client.post(f"/api/alerts/{complaint['alert_id']}/ack")).status_code == 200
            resp = await client.post(f"/api/alerts/{complaint['alert_id']}/resolve", json={"note": "refunded"})
            assert resp.status_code == 200 and resp.json()["resolved_at"] and resp.json()["acked_at"]
            times = (await client.get("/api/reports", params=params)).json()["alerts"]
            assert times["complaint"]["resolved"] == 1 and times["complaint"]["mttr_s"] >= times["complaint"]["mtta_s"]
            assert times["urgent_complaint"]["count"] == 1 and times["urgent_complaint"]["mttr_s"] is None
