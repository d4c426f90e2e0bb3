"""CSAT, NPS and complaint handling: the pure tally, and the report over a watcher's real folded states."""

from __future__ import annotations

import asyncio
from datetime import date

import httpx

from alerts.rules.fold import fold
from alerts.rules.state import TourState
from server.storage.tours import Tour
from server.web.api.reports import build_report
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
    assert [t["tour_id"] for t in body["tours"]] == ["T1"]
    assert other.json()["tours"] == []
