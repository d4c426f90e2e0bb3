"""The feedback inbox (contract §10) through the real server: what travellers wrote, with its handling status,
filtered, searched, paged by cursor and exported as CSV, within the caller's regions."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from tests.conftest import register_tour, token
from tests.e2e.test_ingest_ws import ask, phone, rating
from tests.e2e.test_watcher_crash import FAST
from tests.e2e.waiting import eventually

ADMIN = {"Authorization": f"Bearer {token('admin', 'ops', regions=('*',))}"}
SUP = {"Authorization": f"Bearer {token('supervisor', 's1', regions=('yunnan',))}"}

FEEDBACK = [  # (tour, traveller, score, comment)
    ("T1", "a", 2, "the dinner was cold and the restaurant dirty"),
    ("T1", "b", 3, "建议多安排一些自由时间"),
    ("T1", "c", 5, "our guide Li was wonderful, thank you"),
    ("T1", "d", 4, None),  # a plain score: not feedback
    ("T1", "e", 1, None),  # a score of 1: an urgent complaint without words
    ("T2", "f", 2, "the bus was late and the driver rude"),
]


async def get(base: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base) as client:
        return await client.get("/api/feedback", params=params, headers=headers)


async def test_the_inbox_filters_searches_pages_and_exports(app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1")
        await register_tour(base, "T2", region="guilin")
        for n, (tour_id, who, score, comment) in enumerate(FEEDBACK):
            async with await phone(base, "traveller", who, tours=(tour_id,)) as ws:
                msg = {**rating(f"r{n}", score, comment=comment), "tour_id": tour_id}
                assert (await ask(ws, msg, False))["type"] == "ack"

        async def all_in() -> list[dict[str, Any]]:
            items = (await get(base, ADMIN)).json()["items"]
            return items if len(items) == 5 and all(i["status"] for i in items) else []

        try:
            items = await eventually(all_in, "every piece of feedback folded")
        except TimeoutError:
            raise AssertionError((await get(base, ADMIN)).text) from None
        assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)  # newest first
        by_who = {i["traveller"]: i for i in items}
        assert set(by_who) == {"a", "b", "c", "e", "f"}
        assert (by_who["a"]["kind"], by_who["a"]["category"], by_who["a"]["status"]) == ("complaint", "meals", "open")
        assert by_who["a"]["alert_key"].startswith("complaint:T1:")
        assert (by_who["b"]["kind"], by_who["b"]["status"], by_who["b"]["category"]) == ("suggestion", "received",
                                                                                         None)
        assert (by_who["c"]["kind"], by_who["c"]["status"]) == ("praise", "shared")  # it reached the guides
        assert (by_who["e"]["kind"], by_who["e"]["comment"]) == ("complaint", None)
        assert by_who["f"]["route"] == "Yunnan 6 days" and by_who["f"]["region"] == "guilin"
        assert by_who["a"]["guides"] == ["g1"]
        # filters
        suggestions = (await get(base, ADMIN, kind="suggestion")).json()["items"]
        assert [i["traveller"] for i in suggestions] == ["b"]  # one filter away for the product team
        assert [i["traveller"] for i in (await get(base, ADMIN, q="DINNER")).json()["items"]] == ["a"]
        assert {i["traveller"] for i in (await get(base, ADMIN, tour_id="T2")).json()["items"]} == {"f"}
        assert (await get(base, ADMIN, guide="nobody")).json()["items"] == []
        assert {i["traveller"] for i in (await get(base, SUP)).json()["items"]} == {"a", "b", "c", "e"}
        # cursor paging: every item once, in order
        seen, cursor = [], None
        while True:
            page = (await get(base, ADMIN, limit=2, **({"cursor": cursor} if cursor else {}))).json()
            seen += [i["traveller"] for i in page["items"]]
            cursor = page["next"]
            if cursor is None:
                break
        assert seen == [i["traveller"] for i in items]
        # CSV
        resp = await get(base, ADMIN, format="csv", kind="complaint")
        assert resp.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(resp.text)))
        assert {r["traveller"] for r in rows} == {"a", "e", "f"} and rows[0]["guides"] == "g1"
        # bad input: 400 naming the field
        for params, field in (({"kind": "rant"}, "kind"), ({"from": "2026-13-01"}, "from"),
                              ({"cursor": "!!"}, "cursor"), ({"limit": "0"}, "limit"), ({"format": "xml"}, "format")):
            resp = await get(base, ADMIN, **params)
            assert (resp.status_code, resp.json()["field"]) == (400, field)
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/api/feedback")).status_code == 401
