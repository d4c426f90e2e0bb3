"""The phone app in a real browser: Debian's headless Chromium with Playwright's Android and iPhone descriptors,
against a real uvicorn, watcher and Valkey. Every control is found by its contract §9 ``data-tp`` hook.

Waits are on selectors the app sets (``body[data-sw="ready"]`` once ``navigator.serviceWorker.ready`` resolved
and the worker controls the page; ``[data-tp=outbox]`` for what is still waiting), never fixed sleeps; the
server side is polled until it settles. No test asserts a timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.conftest import far_from_midnight, register_tour, token

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

WAIT = 20.0  # seconds any one condition may take to come true on a loaded 2-core machine
expect.set_options(timeout=WAIT * 1000)  # assertions wait as long as any other step may
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ANDROID, IPHONE = "Pixel 7", "iPhone 13"
FAST = {"watcher": {"block": "200ms", "tick": "200ms", "lease_ttl": "2s"}, "rules": {"min_ratings": 3}}
STAFF = token("supervisor", "s0", regions=("*",))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pw() -> AsyncIterator[Any]:
    async with async_playwright() as playwright:
        yield playwright


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(pw: Any) -> AsyncIterator[Browser]:
    chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield chromium
    finally:
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def phones(pw: Any, browser: Browser) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """``await phones(url, device=..., locale=..., **context_kw)``: a fresh phone (its own profile) showing ``url``;
    ``context_kw`` go to ``browser.new_context`` (``permissions``, ``geolocation``)."""
    opened: list[BrowserContext] = []
    crashes: list[str] = []  # uncaught errors in any page: a blank screen on a real phone

    async def open_phone(url: str, device: str = ANDROID, locale: str = "en-GB", **context_kw: Any) -> Page:
        descriptor = {k: v for k, v in pw.devices[device].items() if k != "default_browser_type"}
        context = await browser.new_context(**descriptor, locale=locale, **context_kw)
        opened.append(context)
        context.set_default_timeout(WAIT * 1000)
        page = await context.new_page()
        page.on("pageerror", lambda error: crashes.append(str(error)))
        await page.goto(url)
        return page

    try:
        yield open_phone
    finally:
        for context in opened:
            with contextlib.suppress(Exception):
                await context.close()
    assert crashes == []


async def open_app(phones: Callable[..., Awaitable[Page]], base: str, bearer: str, **kw: Any) -> Page:
    page = await phones(f"{base}/app#token={bearer}", **kw)
    await page.wait_for_selector('body[data-ready="true"][data-conn="online"]', state="attached")
    return page


def traveller(sub: str, tour_id: str = "T1", ttl: float = 3600, issued_ago: float = 0) -> str:
    return token("traveller", sub, tours=(tour_id,), ttl=ttl, issued_ago=issued_ago)


def guide(sub: str = "g1", tour_id: str = "T1") -> str:
    return token("guide", sub, tours=(tour_id,))


async def api(base: str, method: str, path: str, bearer: str = STAFF, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=base) as client:
        resp = await client.request(method, path, headers={"Authorization": f"Bearer {bearer}"}, **kw)
        resp.raise_for_status()
        return resp.json()


async def until(probe: Callable[[], Awaitable[Any]]) -> Any:
    """Poll ``probe`` until it returns something truthy (the server side settles asynchronously)."""
    async with asyncio.timeout(WAIT):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.1)


async def alerts_of(base: str, kind: str) -> list[dict[str, Any]]:
    return [a for a in (await api(base, "GET", "/api/alerts"))["alerts"] if a["kind"] == kind]


async def rate(page: Page, score: int, comment: str = "") -> None:
    await page.click(f'[data-tp="score-{score}"]')
    if comment:
        await page.fill('[data-tp="comment"]', comment)
    await page.click('[data-tp="send-rating"]')
    await expect(page.locator(".mine")).to_contain_text(f"{score} ★")  # taken into the outbox


async def test_a_traveller_rates_and_the_board_shows_the_alert(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, traveller("t1"))
        await page.click('[data-tp="aspect-guide-1"]')
        await page.click('[data-tp="aspect-meals-2"]')
        await rate(page, 1, "The bus left without us, nobody helped")
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")
        board = await phones(f"{base}/board#token={token('supervisor', 's1', regions=('yunnan',))}")
        await board.wait_for_selector('li.alert[data-kind="urgent_complaint"][data-tour-id="T1"]')
        assert len(await alerts_of(base, "urgent_complaint")) == 1


async def test_three_travellers_rate_2_2_3_and_one_score_alert_opens(phones, app_factory) -> None:
    # the tour, and the phones with it (a phone rates on its own date until it has the tour's timezone), where the
    # three ratings fall on one day that is still today when the tour's view is read
    zone = far_from_midnight()
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan", timezone=zone)
        for n, (score, device) in enumerate([(2, ANDROID), (2, IPHONE), (3, ANDROID)]):
            page = await open_app(phones, base, traveller(f"t{n}"), device=device, timezone_id=zone)
            await rate(page, score)
            await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")
        alerts = await until(lambda: alerts_of(base, "score_below_threshold"))
        live = await until(lambda: _today_count(base, 3))
        assert live["today_count"] == 3
        assert [a["count"] for a in await alerts_of(base, "score_below_threshold")] == [1]
        assert alerts[0]["tour_id"] == "T1"


async def _today_count(base: str, want: int) -> dict[str, Any] | None:
    live = (await api(base, "GET", "/api/tours/T1"))["live"]
    return live if live["today_count"] >= want else None


async def test_rated_offline_then_reloaded_offline_is_stored_once_when_back(phones, app_factory) -> None:
    zone = far_from_midnight()  # as above: today's rating is still today's when the view is read
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan", timezone=zone)
        page = await open_app(phones, base, traveller("t1"), device=IPHONE, timezone_id=zone)
        await page.wait_for_selector('body[data-sw="ready"]', state="attached")
        await page.context.set_offline(True)
        await page.wait_for_selector('body[data-conn="offline"]', state="attached")
        await rate(page, 4, "没有信号的山路")
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("1")
        await page.reload()  # no network: the service worker serves the shell, IndexedDB still holds the rating
        await page.wait_for_selector('body[data-ready="true"][data-conn="offline"]', state="attached")
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("1")
        await page.context.set_offline(False)
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")
        live = await until(lambda: _today_count(base, 1))
        assert live["today_count"] == 1 and live["today_mean"] == 4.0
        await page.reload()  # nothing is sent again after a reload
        await page.wait_for_selector('body[data-ready="true"][data-conn="online"]', state="attached")
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")


async def test_a_guide_reports_a_closed_attraction_and_posts_three_alternatives(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, guide())
        await page.click('[data-tp="report-incident"]')
        await page.select_option('[data-tp="incident-kind"]', "attraction_closed")
        await page.select_option('[data-tp="incident-severity"]', "medium")
        await page.fill('[data-tp="incident-summary"]', "Stone Forest closed for a landslide")
        await page.fill("#lat", "24.81")
        await page.fill("#lon", "103.32")
        await page.click('[data-tp="send-incident"]')
        await expect(page.locator('[data-countdown="alternatives"]')).to_contain_text(":")
        button = await page.locator('[data-tp="send-alternatives"]').element_handle()
        await expect(page.locator("article.incident")).not_to_have_attribute("data-incident-id", "")  # acked
        # the ack updated the card in place: a card drawn anew under a finger would lose the tap
        assert await button.evaluate("node => node.isConnected")
        for n, plan in enumerate(["Black Pine Lake", "Naigu Stone Forest", "Yi village lunch"], start=1):
            await page.fill(f'[data-tp="alternative-{n}"]', plan)
        await page.click('[data-tp="send-alternatives"]')
        await expect(page.locator('[data-tp="send-alternatives"]')).to_have_count(0)  # taken: the card says so
        await expect(page.locator('[data-tp="error"]')).to_be_hidden()
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")

        async def offered() -> Any:
            incidents = (await api(base, "GET", "/api/tours/T1/today", guide()))["live"]["open_incidents"]
            return incidents if incidents and incidents[0]["alternatives"] == 3 else None

        incidents = await until(offered)
        assert incidents[0]["kind"] == "attraction_closed" and incidents[0]["deadline"] is None


async def test_a_notice_pushed_from_the_api_appears_and_is_marked_read(phones, app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, traveller("t1"), device=IPHONE)
        supervisor = token("supervisor", "s1", regions=("yunnan",))
        await _notice_to_t1(base, supervisor, kind="risk_warning", title="<b>Road closed</b>",
                            body="Rockfall on G214: we wait in Shaxi <img src=x onerror=alert(1)>")
        notice = page.locator('[data-tp="notice"]')
        await expect(notice).to_have_count(1)
        await expect(notice.locator("h3")).to_have_text("<b>Road closed</b>")  # text, never markup
        await notice.locator('[data-tp="notice-read"]').click()
        await expect(notice).to_have_attribute("data-read", "true")
        reads = await until(lambda: _reads(base, supervisor))
        assert reads == 1


async def test_a_new_notice_leaves_the_one_being_answered_in_place(phones, app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, traveller("t1"), device=IPHONE)
        supervisor = token("supervisor", "s1", regions=("yunnan",))
        await _notice_to_t1(base, supervisor, kind="progress", title="Lunch", body="Where do we eat?",
                            choices=["Noodles in the old town", "Picnic by the lake"])
        notice = page.locator('[data-tp="notice"]')
        await expect(notice).to_have_count(1)
        choice = await notice.locator('[data-tp="choice-1"]').element_handle()
        await _notice_to_t1(base, supervisor, kind="risk_warning", title="Heat", body="Drink water")
        await expect(notice).to_have_count(2)
        # the list redrew around the first notice: its buttons are the same nodes, a tap on them is not lost
        assert await choice.evaluate("node => node.isConnected")
        await choice.click()
        await expect(notice.nth(1).locator('[data-tp="choice-1"]')).to_have_attribute("aria-pressed", "true")
        await expect(notice.nth(1).locator('[role="status"]')).to_contain_text("Picnic by the lake")


async def _notice_to_t1(base: str, bearer: str, **fields: Any) -> None:
    await api(base, "POST", "/api/notices", bearer, json={"tour_ids": ["T1"], **fields})


async def _reads(base: str, bearer: str) -> int:
    return (await api(base, "GET", "/api/notices/reads", bearer))["reads"]


async def test_a_join_code_works_and_a_reissued_code_stops_the_old(phones, app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        guide_page = await open_app(phones, base, guide())
        await guide_page.get_by_role("button", name="Show QR").click()
        await expect(guide_page.locator('[data-tp="join-qr"]')).to_be_visible()
        url = await guide_page.locator(".qr .url").text_content()
        assert url and "/join/" in url

        page = await phones(url, device=IPHONE)
        await page.fill('[data-tp="name"]', "Zhang Wei")
        await page.click('[data-tp="join"]')
        await page.wait_for_selector('body[data-role="traveller"][data-conn="online"]', state="attached")
        await rate(page, 5)
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")

        fresh = await api(base, "POST", "/api/tours/T1/join", guide(), json={})
        assert fresh["url"] != url
        late = await phones(url)
        await late.click('[data-tp="join"]')
        await expect(late.locator('[data-tp="error"]')).to_contain_text("no longer works")
        again = await phones(fresh["url"])
        await again.click('[data-tp="join"]')
        await again.wait_for_selector('body[data-role="traveller"]', state="attached")


async def test_a_traveller_who_just_joined_rates_on_the_tours_day_without_the_tours_details(phones,
                                                                                          app_factory) -> None:
    # the tour (UTC+14) is always one or two dates ahead of the phone (UTC-12): a rating dated on the phone's
    # clock would land on an earlier day of the tour
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan", timezone="Pacific/Kiritimati")
        code = await api(base, "POST", "/api/tours/T1/join", guide(), json={})
        page = await phones(code["url"], device=IPHONE, timezone_id="Etc/GMT+12")
        await page.route("**/api/tours/T1", lambda route: route.abort())  # the tour's details never arrive
        await page.click('[data-tp="join"]')
        await page.wait_for_selector('body[data-role="traveller"][data-conn="online"]', state="attached")
        before = _date_in("Pacific/Kiritimati")
        await rate(page, 4)
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")
        after = _date_in("Pacific/Kiritimati")

        async def rated_days() -> list[str]:
            days = (await api(base, "GET", "/api/tours/T1"))["live"]["days"]
            return [d["day"] for d in days if d["mean"] is not None]

        assert (await until(rated_days))[0] in {before, after}


def _date_in(zone: str) -> str:
    return dt.datetime.now(ZoneInfo(zone)).date().isoformat()


async def test_an_expired_token_shows_how_to_rejoin(phones, app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await phones(f"{base}/app#token={traveller('t1', ttl=60, issued_ago=120)}", locale="zh-CN")
        await expect(page.locator('[data-tp="error"]')).to_contain_text("二维码")
        await page.click("#lang")
        await expect(page.locator('[data-tp="error"]')).to_contain_text("scan it and tap “Join” again")


async def test_a_guide_of_two_tours_switches_between_them(phones, app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        await register_tour(base, "T2", region="yunnan")
        page = await open_app(phones, base, token("guide", "g1", tours=("T1", "T2")))
        await expect(page.locator("#today-h")).to_contain_text("T1")
        await page.select_option("#tour-pick", "T2")
        await expect(page.locator("#today-h")).to_contain_text("T2")
        await page.reload()
        await expect(page.locator("#today-h")).to_contain_text("T2")  # the choice is kept on the phone


SCREENS = {  # name -> how to reach it
    "traveller": lambda base: f"{base}/app#token={traveller('t1')}",
    "guide": lambda base: f"{base}/app#token={guide()}",
    "rejoin": lambda base: f"{base}/app#token={traveller('t1', ttl=60, issued_ago=120)}",
}


@pytest.mark.parametrize("locale", ["en-GB", "zh-CN"])
async def test_no_serious_or_critical_accessibility_violations_on_any_screen(phones, app_factory, locale) -> None:
    axe = Axe()
    async with app_factory() as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        code = await api(base, "GET", "/api/tours/T1/join", guide())
        targets = {name: make(base) for name, make in SCREENS.items()} | {"join": code["url"]}
        for name, url in targets.items():
            page = await phones(url, locale=locale)
            await page.wait_for_load_state("load")
            if name == "guide":
                await page.click('[data-tp="report-incident"]')
                await page.get_by_role("button", name="Show QR" if locale == "en-GB" else "显示二维码").click()
                await page.wait_for_selector('[data-tp="join-qr"]')
            elif name == "traveller":
                await page.click(".nps-box button")
            results = await axe.run(page)
            bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
            assert not bad, (name, [(v["id"], [n["target"] for n in v["nodes"]]) for v in bad])
