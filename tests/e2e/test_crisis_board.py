"""The board's crisis panel in headless Chromium: a safety check's live roll-up per tour, its CSV, and the tally of
a notice with choices, all text rendered as text. Real uvicorn, watcher, Valkey and WebSocket phones."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext

from tests.conftest import register_tour
from tests.e2e.test_board_browser import HOSTILE, browser, contexts, open_board, supervisor  # noqa: F401 - fixtures
from tests.e2e.test_crisis import DOC, Phone, open_phone, safety

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_the_board_shows_a_checks_roll_up_per_tour_live_and_a_notices_tally(
        app_factory, browser: Browser, contexts: list[BrowserContext]) -> None:  # noqa: F811 - fixtures
    async with app_factory(DOC, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1", travellers=3)
        await register_tour(base, "T2", travellers=2)
        phones: list[Phone] = [await open_phone(base, "traveller", sub, (tour,))
                               for sub, tour in (("a", "T1"), ("b", "T1"), ("c", "T2"))]
        bearer = supervisor("yunnan")
        headers = {"Authorization": f"Bearer {bearer}"}
        resp = await http.post("/api/safety-checks", headers=headers, json={
            "tour_ids": ["T1", "T2"], "message": HOSTILE, "deadline": "10m", "repeat": "5m"})
        check_id = resp.json()["check_id"]
        resp = await http.post("/api/notices", headers=headers, json={
            "tour_ids": ["T1"], "title": "Plan?", "body": "Pick one", "choices": [HOSTILE, "Plan B"]})
        assert resp.status_code == 200
        dialogs: list[str] = []
        page = await open_board(browser, contexts, base, bearer, dialogs)
        article = page.locator(f'#crisis article[data-check-id="{check_id}"]')
        await article.wait_for()
        assert HOSTILE in await article.locator("p span").first.text_content()
        row = article.locator("tbody tr").first
        assert await row.locator("td").first.text_content() == "T1"
        # answers arrive: the panel follows without a reload
        for phone, status in zip(phones, ("safe", "need_help", "safe"), strict=True):
            assert (await phone.ask(safety("s1", check_id, status)))["type"] == "ack"
        await page.wait_for_selector(f'#crisis article[data-check-id="{check_id}"] tbody tr:last-child '
                                     'td[data-count="safe"]:text-is("2")')
        await page.wait_for_selector(f'#crisis article[data-check-id="{check_id}"] tbody tr:first-child '
                                     'td[data-count="need_help"]:text-is("1")')
        group = page.locator("#crisis article.crisis-group")
        await group.wait_for()
        assert HOSTILE in await group.locator("ol li").first.text_content()
        csv = await article.locator("button[data-csv]").element_handle()
        assert (await phones[0].ask(safety("s2", check_id, "need_help")))["type"] == "ack"  # a changed answer
        await page.wait_for_selector(f'#crisis article[data-check-id="{check_id}"] tbody tr:first-child '
                                     'td[data-count="need_help"]:text-is("2")')
        assert await csv.evaluate("node => node.isConnected")  # polls swap the table, not the button under the pointer
        async with page.expect_download() as info:
            await csv.click()
        download = await info.value
        assert download.suggested_filename == f"safety-check-{check_id}.csv"
        assert not dialogs  # nothing the users typed ran
        for phone in phones:
            await phone.close()
