"""The board's side of paging: each card says its alert as a person would read it (said.js, the port of
alerts/rules/say.py, checked against it here) and shows who was paged and whether they were reached."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, expect

from alerts.rules.say import say
from alerts.store import AlertStore
from tests.conftest import make_settings, register_tour
from tests.e2e.paging_helpers import smtp_server, webhook_receiver
from tests.e2e.test_board_browser import WAIT, browser, contexts, open_board, row, supervisor  # noqa: F401
from tests.e2e.test_paging import conf, critical_incident, no_paging_thread_outlives_its_test  # noqa: F401
from tests.unit.test_say import NOW, complaint_alert, incident_alert

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


def sla_alert() -> dict[str, Any]:
    return {"alert_id": "A9", "kind": "sla_breach", "severity": "high", "status": "open", "tour_id": "T3",
            "region": "yunnan", "summary": "T3: no solution by 2026-12-04T04:00:00Z", "escalation_level": 2,
            "assignee": None, "opened_at": "2026-12-03T22:00:00Z",
            "details": {"deadline": "urgent_solution", "due": "2026-12-04T04:00:00Z", "threshold": 4.0}}


async def test_said_js_says_what_say_py_says(browser: Browser, contexts: list[BrowserContext],  # noqa: F811
                                             app_factory) -> None:
    async with app_factory({}) as (base, _app):
        context = await browser.new_context(timezone_id="Asia/Shanghai")
        contexts.append(context)
        page = await context.new_page()
        await page.goto(f"{base}/board")
        await page.wait_for_function("window.TP && window.TP.said")
        for alert in (incident_alert(), complaint_alert(), sla_alert()):
            for lang in ("en", "zh"):
                said = say(alert, lang, "Asia/Shanghai", NOW)
                expected = {"sentence": said.sentence,
                            "fields": [{k: v for k, v in dataclasses.asdict(f).items() if v is not None}
                                       for f in said.fields]}
                got = await page.evaluate(
                    """([alert, lang, now]) => {
                        const said = TP.said.say(alert, lang, now);
                        said.fields = said.fields.map((f) => Object.fromEntries(
                            Object.entries(f).filter(([, v]) => v !== null && v !== undefined)));
                        return said;
                    }""", [alert, lang, NOW * 1000])
                assert got == expected, (alert["kind"], lang)


async def test_the_board_shows_who_was_paged_and_whether_they_were_reached(
        browser: Browser, contexts: list[BrowserContext], app_factory, redis_client) -> None:  # noqa: F811
    with smtp_server() as (_mailbox, port):
        async with webhook_receiver() as receiver:
            receiver.plans["li"] = ["bad", "bad", "bad"]
            doc = conf(receiver, port)
            doc["notify"]["rota"] = [{"region": "*", "levels": [["wang.fang", "li.lei"]]}]
            async with app_factory(doc, run_watcher=True) as (base, _app):
                await register_tour(base, "T1", region="yunnan")
                page = await open_board(browser, contexts, base, supervisor("yunnan"))
                await critical_incident(base)
                card = page.locator("li.alert[data-kind='incident']")
                await expect(card).to_have_count(1)
                alert_id = await card.get_attribute("data-alert-id")
                assert alert_id
                paged = page.locator(row(alert_id)).locator(".paged")
                await expect(paged.locator("[data-state='reached']")).to_contain_text("王芳")
                try:
                    await expect(paged.locator("[data-state='failed']")).to_contain_text("Li Lei",
                                                                                         timeout=WAIT * 1000)
                except AssertionError:  # say what the card and the store had
                    stored = await AlertStore(redis_client, make_settings("redis://unused")).audit(alert_id)
                    raise AssertionError(f"card: {await paged.inner_text()!r}; hits: {receiver.hits!r}; "
                                         f"audit: {stored!r}") from None
                await expect(paged.locator("[data-state='failed']")).to_contain_text("http 400")
                details = page.locator(row(alert_id)).locator(".details")
                await expect(details).to_contain_text("a hailstorm stopped the coach")
                text = await details.inner_text()
                for raw in ("incident_id", "T1~", "{", "travellers_affected"):
                    assert raw not in text, raw
                href = await details.locator("a").first.get_attribute("href")
                assert href and href.startswith("https://www.openstreetmap.org/?mlat=25.03890")
