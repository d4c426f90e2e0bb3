"""The supervisor's board in a real browser: headless Chromium (Debian's) driven by Playwright, against a real
uvicorn, watcher and Valkey, with alerts raised by real phones over WebSockets.

One browser serves the whole module; each test opens its own contexts (a context is a fresh browser profile, so
two contexts are two supervisors' tabs). The page's CSP forbids eval, so the tests wait on selectors only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Dialog, Page, async_playwright, expect
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import register_tour, token
from tests.e2e.test_ingest_ws import ask, phone, rating, today, ws_url

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

WAIT = 20.0  # seconds any one condition may take to come true on a loaded 2-core machine
expect.set_options(timeout=WAIT * 1000)  # assertions wait as long as any other step may
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FAST = {"watcher": {"block": "200ms", "tick": "200ms", "lease_ttl": "2s"}, "rules": {"min_ratings": 3}}
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
ROWS = "li.alert[data-alert-id]"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def contexts(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """A list the test appends its contexts to; every one is closed after the test."""
    opened: list[BrowserContext] = []
    try:
        yield opened
    finally:
        for context in opened:
            with contextlib.suppress(Exception):
                await context.close()


def supervisor(*regions: str, sub: str = "s1") -> str:
    return token("supervisor", sub, regions=regions)


async def open_board(browser: Browser, contexts: list[BrowserContext], base: str, bearer: str,
                     dialogs: list[str] | None = None) -> Page:
    """A fresh tab on the board, signed in with ``bearer``, once its first snapshot is shown."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    contexts.append(context)
    context.set_default_timeout(WAIT * 1000)
    page = await context.new_page()
    if dialogs is not None:

        async def refuse(dialog: Dialog) -> None:
            dialogs.append(dialog.message)
            await dialog.dismiss()

        page.on("dialog", refuse)
    await page.goto(f"{base}/board#token={bearer}")
    await page.wait_for_selector('body[data-synced="true"][data-connection="online"]', state="attached")
    return page


def row(alert_id: str, **attrs: str) -> str:
    selector = f"li.alert[data-alert-id={json.dumps(alert_id)}]"
    return selector + "".join(f"[data-{name.replace('_', '-')}={json.dumps(value)}]" for name, value in attrs.items())


async def bad_day(base: str, tour_id: str, tag: str = "", score: int = 2, day: str | None = None) -> None:
    """Three travellers of ``tour_id`` rate the day ``score``: one score alert once the third is stored. The day
    is read once (today, in the tours' Shanghai) unless given, so the three never straddle midnight."""
    day = day or today()
    for n in range(3):
        async with await phone(base, "traveller", f"{tour_id}-t{n}", tours=(tour_id,)) as ws:
            reply = await ask(ws, {**rating(f"{tag}r{n}", score, day=day), "tour_id": tour_id}, False)
            assert reply["type"] == "ack", reply


async def api_alerts(base: str, bearer: str, status: str = "open,acknowledged") -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base) as client:
        resp = await client.get("/api/alerts", params={"status": status},
                                headers={"Authorization": f"Bearer {bearer}"})
        resp.raise_for_status()
        return resp.json()["alerts"]


async def api_get(base: str, bearer: str, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as client:
        resp = await client.get(path, headers={"Authorization": f"Bearer {bearer}"})
        resp.raise_for_status()
        return resp.json()


async def api_act(base: str, bearer: str, alert_id: str, action: str, body: dict[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        resp = await client.post(f"/api/alerts/{alert_id}/{action}", json=body,
                                 headers={"Authorization": f"Bearer {bearer}"})
        resp.raise_for_status()


async def shown_ids(page: Page) -> list[str]:
    return [await item.get_attribute("data-alert-id") or "" for item in await page.locator(ROWS).all()]


async def first_alert_of(page: Page, tour_id: str, kind: str = "score_below_threshold") -> str:
    selector = f'{ROWS}[data-tour-id="{tour_id}"][data-kind="{kind}"]'
    await page.wait_for_selector(selector)
    alert_id = await page.locator(selector).first.get_attribute("data-alert-id")
    assert alert_id
    return alert_id


async def test_an_alert_raised_by_real_ratings_appears_without_a_reload(browser, contexts, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        bearer = supervisor("yunnan")
        page = await open_board(browser, contexts, base, bearer)
        assert await page.locator(ROWS).count() == 0
        loads: list[str] = []
        page.on("framenavigated", lambda frame: loads.append(frame.url))
        await bad_day(base, "T1")
        alert_id = await first_alert_of(page, "T1")
        alerts = await api_alerts(base, bearer)
        assert [a["alert_id"] for a in alerts] == [alert_id]
        shown = page.locator(row(alert_id, status="open", region="yunnan", tour_id="T1"))
        await expect(shown).to_have_count(1)
        await expect(shown.locator(".summary")).to_have_text(alerts[0]["summary"])
        assert loads == []  # the row came over the WebSocket, not from a navigation


async def test_ack_assign_and_resolve_in_one_page_update_the_other(browser, contexts, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        bearer = supervisor("yunnan")
        first = await open_board(browser, contexts, base, bearer)
        second = await open_board(browser, contexts, base, supervisor("yunnan", sub="s2"))
        await bad_day(base, "T1")
        alert_id = await first_alert_of(first, "T1")
        await second.wait_for_selector(row(alert_id, status="open"))

        await first.locator(row(alert_id)).locator('[data-action="ack"]').click()
        await second.wait_for_selector(row(alert_id, status="acknowledged"))
        await first.wait_for_selector(row(alert_id, status="acknowledged"))
        await expect(second.locator(row(alert_id)).locator('[data-action="ack"]')).to_be_disabled()

        on_second = second.locator(row(alert_id))
        await on_second.locator('[data-field="assignee"]').fill("Li Wei 李伟")
        await on_second.locator('[data-action="assign"]').click()
        await expect(first.locator(row(alert_id)).locator(".assignee")).to_have_text("Li Wei 李伟")
        await expect(on_second.locator(".assignee")).to_have_text("Li Wei 李伟")

        on_first = first.locator(row(alert_id))
        await on_first.locator('[data-field="note"]').fill("called the traveller; refund agreed")
        await on_first.locator('[data-action="resolve"]').click()
        for page in (first, second):  # shown as resolved, then gone from the live list
            await page.wait_for_selector(row(alert_id), state="detached")
        assert await api_alerts(base, bearer) == []
        stored = await api_get(base, bearer, f"/api/alerts/{alert_id}")
        assert stored["status"] == "resolved" and stored["assignee"] == "Li Wei 李伟"
        assert "called the traveller; refund agreed" in json.dumps(stored["notes"], ensure_ascii=False)


async def test_killing_and_restoring_the_connection_loses_nothing(browser, contexts, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        for tour_id in ("T1", "T2", "T3", "T4"):
            await register_tour(base, tour_id, region="yunnan")
        bearer = supervisor("yunnan")
        page = await open_board(browser, contexts, base, bearer)
        day = today()  # T2 is rated again during the outage: the same day, so its alert's count grows
        await bad_day(base, "T1", day=day)
        await bad_day(base, "T2", day=day)
        before_t1 = await first_alert_of(page, "T1")
        before_t2 = await first_alert_of(page, "T2")

        await page.context.set_offline(True)
        await page.wait_for_selector('body[data-connection="offline"]', state="attached")
        await expect(page.locator("#offline-banner")).to_be_visible()
        # while it is down: two new alerts, one acknowledged, one resolved, and a repeat of a condition
        await bad_day(base, "T3", day=day)
        await bad_day(base, "T4", day=day)
        await bad_day(base, "T2", tag="again-", score=1, day=day)  # T2's score alert fires again (count grows)
        alerts = await _settled(base, bearer, _outage_done)
        t3 = next(a["alert_id"] for a in alerts if a["tour_id"] == "T3")
        await api_act(base, bearer, t3, "ack", {})
        await api_act(base, bearer, before_t1, "resolve", {"note": "handled by phone"})
        assert {a["alert_id"] for a in await api_alerts(base, bearer)} - set(await shown_ids(page))
        assert await page.locator('body[data-connection="online"]').count() == 0  # still down

        await page.context.set_offline(False)
        await page.wait_for_selector('body[data-connection="online"]', state="attached")
        await expect(page.locator("#offline-banner")).to_be_hidden()
        expected = await api_alerts(base, bearer)
        await expect(page.locator(ROWS)).to_have_count(len(expected))
        await page.wait_for_selector(row(before_t1), state="detached")
        await page.wait_for_selector(row(t3, status="acknowledged"))
        shown = await shown_ids(page)
        assert sorted(shown) == sorted(a["alert_id"] for a in expected)  # every one, exactly once
        assert len(set(shown)) == len(shown)
        t2_count = next(a["count"] for a in expected if a["alert_id"] == before_t2)
        assert t2_count > 1
        await expect(page.locator(row(before_t2)).locator(".count")).to_contain_text(str(t2_count))


def _outage_done(alerts: list[dict[str, Any]]) -> bool:
    """Everything the outage's ratings fire: T3's and T4's score alerts, T2's counted
    three more times (each re-rating finds it true), and three urgent complaints."""
    kinds = Counter((a["tour_id"], a["kind"]) for a in alerts)
    t2_score = [a["count"] for a in alerts if (a["tour_id"], a["kind"]) == ("T2", "score_below_threshold")]
    return (kinds[("T3", "score_below_threshold")] == 1 and kinds[("T4", "score_below_threshold")] == 1
            and kinds[("T2", "urgent_complaint")] == 3 and t2_score == [4])


async def _settled(base: str, bearer: str, want: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT):
            while True:
                alerts = await api_alerts(base, bearer)
                if want(alerts):
                    return alerts
                await asyncio.sleep(0.1)
    raise AssertionError(f"the alerts never settled: {[(a['tour_id'], a['kind'], a['count']) for a in alerts]}")


async def test_a_supervisor_sees_no_other_region(browser, contexts, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        await register_tour(base, "T2", region="tibet")
        yunnan = await open_board(browser, contexts, base, supervisor("yunnan"))
        tibet = await open_board(browser, contexts, base, supervisor("tibet", sub="s2"))
        await bad_day(base, "T2")  # tibet's first, so it is ahead of yunnan's in the change stream
        tibet_alert = await first_alert_of(tibet, "T2")
        await bad_day(base, "T1")
        yunnan_alert = await first_alert_of(yunnan, "T1")
        await tibet.wait_for_selector(ROWS)
        assert await shown_ids(yunnan) == [yunnan_alert]
        assert await shown_ids(tibet) == [tibet_alert]
        # a board opened afterwards: its snapshot holds its own region only
        late = await open_board(browser, contexts, base, supervisor("yunnan", sub="s3"))
        await late.wait_for_selector(row(yunnan_alert))
        assert await shown_ids(late) == [yunnan_alert]
        assert await late.locator('[data-region="tibet"]').count() == 0
        # and the other region's alert is not its to act on
        with pytest.raises(httpx.HTTPStatusError):
            await api_act(base, supervisor("yunnan"), tibet_alert, "ack", {})


async def test_hostile_text_from_phones_shows_as_text(browser, contexts, app_factory) -> None:
    dialogs: list[str] = []
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_board(browser, contexts, base, supervisor("yunnan"), dialogs)
        errors: list[str] = []  # markup parsed from the text would also show as CSP refusals here
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        async with await phone(base, "guide", "g1") as ws:
            incident = {"type": "incident", "id": "i1", "tour_id": "T1", "kind": "medical", "severity": "high",
                        "summary": HOSTILE}
            assert (await ask(ws, incident, False))["type"] == "ack"
        async with await phone(base, "traveller", "t1") as ws:
            assert (await ask(ws, rating("r1", 1, comment=HOSTILE), False))["type"] == "ack"
        incident_alert = await first_alert_of(page, "T1", kind="incident")
        complaint_alert = await first_alert_of(page, "T1", kind="urgent_complaint")
        await expect(page.locator(row(incident_alert)).locator(".summary")).to_have_text(f"T1: medical - {HOSTILE}")
        await expect(page.locator(row(complaint_alert)).locator(".details")).to_contain_text(f"“{HOSTILE}”")
        assert await page.locator("#alert-list script, #alert-list img").count() == 0
        await page.locator(row(incident_alert)).locator('[data-action="ack"]').click()  # one more round trip
        await page.wait_for_selector(row(incident_alert, status="acknowledged"))
        assert dialogs == []
        assert errors == []


async def test_the_page_is_served_with_a_strict_csp_and_the_socket_checks_origin(browser, contexts,
                                                                                   app_factory) -> None:
    async with app_factory(FAST) as (base, _app):
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        response = await page.goto(f"{base}/board")
        assert response is not None and response.ok
        csp = (await response.all_headers())["content-security-policy"]
        directives = {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}
        assert directives["default-src"] == ["'self'"] and directives["script-src"] == ["'self'"]
        assert directives["frame-ancestors"] == ["'none'"]
        assert not any("unsafe" in value for values in directives.values() for value in values)
        script = await page.request.get(f"{base}/board/static/board.js")
        assert "content-security-policy" in script.headers

        url = f"{ws_url(base, '/ws/board')}?token={supervisor('yunnan')}"
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, origin="http://evil.example")
        assert refused.value.response.status_code == 403
        async with await connect(url, origin=base) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"


async def test_a_complaints_clocks_count_down_and_an_empty_answer_is_refused(browser, contexts, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        bearer = supervisor("yunnan")
        page = await open_board(browser, contexts, base, bearer)
        async with await phone(base, "traveller", "t1") as ws:
            assert (await ask(ws, rating("u1", 1, comment="the guide shouted at us"), False))["type"] == "ack"
            assert (await ask(ws, {**rating("c1", 2, comment="the dinner was cold"), "day": _yesterday()},
                              False))["type"] == "ack"
        urgent = await first_alert_of(page, "T1", "urgent_complaint")
        plain = await first_alert_of(page, "T1", "complaint")
        card = page.locator(row(urgent))
        await expect(card.locator('.clock[data-clock="solution"] .countdown')).to_have_text(_DUE_IN)
        await expect(card.locator('.clock[data-clock="followup"] .countdown')).to_have_text(_DUE_IN)
        await expect(page.locator(row(plain)).locator('.clock[data-clock="response"] .countdown')).to_have_text(
            _DUE_IN)
        await card.locator('[data-action="resolve"]').click()  # no note: refused, with the reason
        await expect(page.locator(".toast-error")).to_contain_text("note")
        await expect(page.locator(row(urgent, status="open"))).to_have_count(1)


_DUE_IN = re.compile(r"due in \d")


def _yesterday() -> str:
    import datetime as dt
    from zoneinfo import ZoneInfo

    return (dt.datetime.now(ZoneInfo("Asia/Shanghai")).date() - dt.timedelta(days=1)).isoformat()


async def test_the_feedback_tab_reads_filters_and_jumps_to_the_tour_and_alert(browser, contexts, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_board(browser, contexts, base, supervisor("yunnan"))
        said = [("a", 2, "the dinner was cold " + HOSTILE), ("b", 3, "建议多安排一些自由时间"),
                ("c", 5, "our guide was wonderful, thank you")]
        for who, score, comment in said:
            async with await phone(base, "traveller", who) as ws:
                assert (await ask(ws, rating(f"f{who}", score, comment=comment), False))["type"] == "ack"
        complaint = await first_alert_of(page, "T1", "complaint")
        await page.wait_for_selector('#tours-table tr[data-tour-id="T1"]')
        # the tab reads the inbox once when opened: open it once the watcher has saved all three (an alert can be
        # on the board before its tour's state is saved, and a loaded machine widens that gap)
        async with asyncio.timeout(WAIT):
            while len((await api_get(base, supervisor("yunnan"), "/api/feedback?tour_id=T1"))["items"]) < 3:
                await asyncio.sleep(0.1)
        await page.click('.tab[data-tab="feedback"]')
        items = page.locator("#feedback-list .feedback-item")
        await expect(items).to_have_count(3)
        hostile = page.locator('.feedback-item[data-kind="complaint"] .comment')
        await expect(hostile).to_have_text("the dinner was cold " + HOSTILE)  # text, never markup
        assert await page.locator("#feedback-list img").count() == 0
        await page.select_option("#feedback-kind", "suggestion")
        await page.click("#feedback-apply")
        await expect(items).to_have_count(1)
        await expect(items.first).to_have_attribute("data-kind", "suggestion")
        await page.select_option("#feedback-kind", "complaint")
        await page.click("#feedback-apply")
        await expect(items).to_have_count(1)
        await items.first.locator('[data-action="alert"]').click()
        await expect(page.locator(row(complaint))).to_have_class(re.compile(r"\bfocus\b"))
        await expect(page.locator("#alerts")).to_be_visible()
        await page.click('.tab[data-tab="feedback"]')
        await items.first.locator('[data-action="tour"]').click()
        await expect(page.locator('#tours-table tr[data-tour-id="T1"]')).to_have_class(re.compile(r"\bfocus\b"))


async def test_the_reports_tab_draws_csat_and_nps_per_route_with_the_targets(browser, contexts, app_factory) -> None:
    doc = {**FAST, "targets": {"csat": 0.8, "nps": 30}}
    yesterday = _yesterday()  # read once: the three ratings fall on one day of each route, whatever the time
    async with app_factory(doc, run_watcher=True) as (base, _app):
        admin = token("admin", "ops", regions=("*",))
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {admin}"}) as client:
            for tour_id, route in (("T1", "Lijiang 5 days"), ("T2", "Dali 3 days <b>")):
                start = yesterday
                end = (dt.date.fromisoformat(start) + dt.timedelta(days=2)).isoformat()
                body = {"route": route, "region": "yunnan", "guides": ["g1"], "timezone": "Asia/Shanghai",
                        "start": start, "end": end, "travellers": 10}
                assert (await client.put(f"/api/tours/{tour_id}", json=body)).status_code == 200
        for n, (tour_id, score, nps) in enumerate((("T1", 5, 10), ("T1", 4, 9), ("T2", 2, 3))):
            async with await phone(base, "traveller", f"p{n}", tours=(tour_id,)) as ws:
                msg = {**rating(f"q{n}", score, nps=nps), "tour_id": tour_id, "day": yesterday}
                assert (await ask(ws, msg, False))["type"] == "ack"
        page = await open_board(browser, contexts, base, supervisor("yunnan"))
        await page.click('.tab[data-tab="reports"]')
        await page.select_option("#reports-period", "day")
        charts = page.locator("#reports-charts figure.chart")
        for _ in range(int(WAIT * 4)):  # until the watcher folded all three (T1 and T2 fold on their own shards)
            await page.click("#reports-apply")
            await expect(charts).to_have_count(2)
            if (await page.locator('g.group[data-group="Dali 3 days <b>"] circle').count() >= 1
                    and await page.locator('g.group[data-group="Lijiang 5 days"] circle').count() >= 1):
                break
            await asyncio.sleep(0.25)
        csat, nps = charts.nth(0), charts.nth(1)
        await expect(csat.locator("line.target")).to_have_attribute("data-target", "0.8")
        await expect(nps.locator("line.target")).to_have_attribute("data-target", "30")
        await expect(csat.locator('g.group[data-group="Lijiang 5 days"] circle[data-value="1"]')).to_have_count(1)
        await expect(csat.locator('g.group[data-group="Dali 3 days <b>"] circle[data-value="0"]')).to_have_count(1)
        await expect(nps.locator('g.group[data-group="Lijiang 5 days"] circle[data-value="100"]')).to_have_count(1)
        await expect(csat.locator(".legend li")).to_have_count(2)
        await expect(csat.locator('.legend li[data-group="Dali 3 days <b>"]')).to_have_text("Dali 3 days <b>")
        assert await page.locator("#reports-charts b").count() == 0  # a route's name is text, never markup
