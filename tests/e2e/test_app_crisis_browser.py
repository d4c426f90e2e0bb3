"""The phone app's crisis screens (contract §11) in a real browser: a notice with choices, the safety check card
("I'm safe" / "I need help", with the phone's location) and the guide's roll-up with answers for travellers; and
the answer to a complaint with its satisfaction follow-up (contract §10).
Real uvicorn, watcher and Valkey; Debian's headless Chromium with Playwright's Android and iPhone descriptors.

As in ``test_app_browser``: waits are on what the app draws and on the server side settling (polled), never fixed
sleeps, and no test asserts a timing.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, expect

from tests.conftest import register_tour, token
from tests.e2e import test_app_browser as app_tests
from tests.e2e.test_app_browser import ANDROID, FAST, IPHONE, STAFF, alerts_of, api, guide, open_app, traveller, until

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

# the browser fixtures, shared with the app's other browser tests
pw, browser, phones = app_tests.pw, app_tests.browser, app_tests.phones

CHOICES = ["Wait at the hotel", "Detour by Weishan", "Old town walk"]
DALI = {"latitude": 25.6065, "longitude": 100.2676}


async def send_choices(base: str) -> str:
    sent = await api(base, "POST", "/api/notices", json={
        "tour_ids": ["T1"], "kind": "progress", "title": "Road to Dali closed",
        "body": "Choose your plan for this afternoon", "choices": CHOICES})
    return str(sent["group_id"])


async def start_check(base: str, message: str = "Typhoon Muifa: are you safe?") -> str:
    started = await api(base, "POST", "/api/safety-checks",
                        json={"tour_ids": ["T1"], "message": message, "deadline": "30m", "repeat": "5m"})
    return str(started["check_id"])


async def rollup(base: str, check_id: str, bearer: str = STAFF) -> dict[str, Any]:
    return dict(await api(base, "GET", f"/api/safety-checks/{check_id}", bearer))


async def join(base: str, name: str) -> tuple[str, str]:
    """A traveller joining with a display name, as the join page does: (token, sub)."""
    code = await api(base, "GET", "/api/tours/T1/join", guide())
    async with httpx.AsyncClient(base_url=base) as client:
        resp = await client.post("/api/join", json={"code": code["code"], "name": name})
        resp.raise_for_status()
        joined = resp.json()
    return joined["token"], joined["sub"]


async def test_a_notice_with_choices_is_answered_and_counted_once(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, traveller("t1"), device=IPHONE)
        group_id = await send_choices(base)
        notice = page.locator('[data-tp="notice"]')
        await expect(notice).to_have_count(1)
        for n, text in enumerate(CHOICES):
            await expect(notice.locator(f'[data-tp="choice-{n}"]')).to_have_text(text)
        await notice.locator('[data-tp="choice-1"]').click()
        await expect(notice.locator('[data-tp="choice-1"]')).to_have_attribute("aria-pressed", "true")
        await expect(notice.locator(".choices .status")).to_contain_text("Received")
        await notice.locator('[data-tp="choice-2"]').click()  # a later choice replaces the earlier
        await expect(notice.locator('[data-tp="choice-1"]')).to_have_attribute("aria-pressed", "false")
        await expect(notice.locator('[data-tp="choice-2"]')).to_have_attribute("aria-pressed", "true")
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")

        async def tallied() -> list[int] | None:
            counts = [c["count"] for c in (await api(base, "GET", f"/api/notices/{group_id}"))["choices"]]
            return counts if counts == [0, 0, 1] else None

        assert await until(tallied) == [0, 0, 1]  # one person, counted once, with the latest choice


async def test_a_safety_check_reaches_the_phone_once_and_im_safe_is_counted(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, traveller("t1"))
        check_id = await start_check(base)
        card = page.locator(f'[data-check-id="{check_id}"]')
        await expect(card).to_contain_text("Typhoon Muifa: are you safe?")
        await expect(card.locator("[data-check-deadline]")).to_contain_text("Please answer within")
        # the signal drops and comes back: the server sends the open check again, the phone shows it once
        await page.context.set_offline(True)
        await page.wait_for_selector('body[data-conn="offline"]', state="attached")
        await page.context.set_offline(False)
        await page.wait_for_selector('body[data-conn="online"]', state="attached")
        await expect(page.locator("[data-check-id]")).to_have_count(1)
        await card.locator('[data-tp="check-safe"]').click()
        await expect(card).to_have_attribute("data-status", "safe")
        await expect(card.locator('[data-delivered="true"]')).to_contain_text("Received")

        async def counted() -> dict[str, Any] | None:
            overall = (await rollup(base, check_id))["overall"]
            return overall if overall["safe"] == 1 else None

        overall = await until(counted)
        assert overall["need_help"] == 0
        await page.reload()  # answered: the card says so and does not ask again
        await page.wait_for_selector('body[data-ready="true"][data-conn="online"]', state="attached")
        await expect(page.locator("[data-check-id]")).to_have_count(1)
        await expect(card.locator('[data-tp="check-answer"]')).to_contain_text("I'm safe")
        await expect(page.locator('[data-tp="check-safe"]')).to_have_count(0)


async def test_i_need_help_opens_a_safety_help_alert_with_the_phones_location(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, traveller("t1"), device=IPHONE, locale="zh-CN",
                              permissions=["geolocation"], geolocation=DALI)
        check_id = await start_check(base, "台风梅花：您安全吗？")
        card = page.locator(f'[data-check-id="{check_id}"]')
        await expect(card).to_contain_text("台风梅花")
        await card.locator("textarea").fill("扭伤了脚踝，在大巴旁")
        await card.locator('[data-tp="check-help"]').click()
        await expect(card).to_have_attribute("data-status", "need_help")
        await expect(card.locator('[data-delivered="true"]')).to_contain_text("已附上您的位置")
        alerts = await until(lambda: alerts_of(base, "safety_help"))
        assert len(alerts) == 1 and alerts[0]["severity"] == "critical"
        details = alerts[0]["details"]
        assert details["check_id"] == check_id and details["sub"] == "t1" and details["note"] == "扭伤了脚踝，在大巴旁"
        assert details["location"] == pytest.approx({"lat": DALI["latitude"], "lon": DALI["longitude"]})


async def test_a_guide_answers_for_a_traveller_from_the_roll_up(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan", travellers=3)
        _token, wang = await join(base, "王芳")
        page = await open_app(phones, base, guide())
        check_id = await start_check(base)
        card = page.locator(f'[data-rollup="{check_id}"]')
        row = card.locator(f'li[data-sub="{wang}"]')
        await expect(row).to_contain_text("王芳")
        await expect(card.locator('[data-count="unknown"] dd')).to_have_text("2")  # 3 registered, 1 known
        await row.locator('[data-tp="answer-for-safe"]').click()
        await expect(page.locator('[data-tp="outbox"]')).to_have_text("0")
        await expect(card.locator('[data-count="safe"] dd')).to_have_text("1")
        await expect(row).to_have_count(0)  # answered: off the list of those to answer for
        people = (await rollup(base, check_id, guide()))["tours"]["T1"]["people"]
        answered = next(p for p in people if p["sub"] == wang)
        assert answered["status"] == "safe" and answered["by"] == "g1"


async def test_the_roll_up_redraws_around_the_next_person_to_answer_for(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan", travellers=3)
        _token, wang = await join(base, "王芳")
        _token, li = await join(base, "李雷")
        page = await open_app(phones, base, guide())
        check_id = await start_check(base)
        card = page.locator(f'[data-rollup="{check_id}"]')
        await expect(card.locator(f'li[data-sub="{li}"]')).to_contain_text("李雷")
        next_tap = await card.locator(f'li[data-sub="{li}"] [data-tp="answer-for-safe"]').element_handle()
        await card.locator(f'li[data-sub="{wang}"] [data-tp="answer-for-safe"]').click()
        await expect(card.locator('[data-count="safe"] dd')).to_have_text("1")  # acked, polled, redrawn
        assert await next_tap.evaluate("node => node.isConnected")  # the next person's button was not replaced
        await next_tap.click()
        await expect(card.locator('[data-count="safe"] dd')).to_have_text("2")
        await expect(card.locator("ul.answer-for li")).to_have_count(0)


@pytest.mark.parametrize("locale", ["en-GB", "zh-CN"])
async def test_no_serious_or_critical_accessibility_violations_on_the_crisis_cards(phones, app_factory,
                                                                                  locale) -> None:
    axe = Axe()
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        await join(base, "Li Na")
        phone = await open_app(phones, base, traveller("t1"), locale=locale)
        staff = await open_app(phones, base, guide(), device=ANDROID, locale=locale)
        await send_choices(base)
        check_id = await start_check(base)
        await phone.locator('[data-tp="notice"] [data-tp="choice-0"]').click()
        await expect(phone.locator(f'[data-check-id="{check_id}"] [data-tp="check-help"]')).to_be_visible()
        await staff.wait_for_selector(f'[data-rollup="{check_id}"] [data-tp="answer-for-safe"]')
        for page in (phone, staff):
            await _no_serious_violations(axe, page)
        await phone.locator('[data-tp="check-safe"]').click()  # the answered card too
        await expect(phone.locator('[data-delivered="true"]')).to_be_visible()
        await _no_serious_violations(axe, phone)


async def _no_serious_violations(axe: Axe, page: Page) -> None:
    results = await axe.run(page)
    bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert not bad, [(v["id"], [n["target"] for n in v["nodes"]]) for v in bad]


async def test_a_guide_of_two_tours_sees_one_card_and_each_tours_roll_up(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        for tour_id in ("T1", "T2"):
            await register_tour(base, tour_id, region="yunnan")
        page = await open_app(phones, base, token("guide", "g1", tours=("T1", "T2")))
        started = await api(base, "POST", "/api/safety-checks", json={"tour_ids": ["T1", "T2"], "message": "Safe?"})
        check_id = started["check_id"]
        await expect(page.locator(f'[data-rollup="{check_id}"] h2')).to_contain_text("T1")
        await page.select_option("#tour-pick", "T2")
        await expect(page.locator(f'[data-rollup="{check_id}"] h2')).to_contain_text("T2")
        await expect(page.locator("[data-check-id]")).to_have_count(1)  # one check to answer, for both tours


async def test_i_need_help_without_the_phones_location_still_goes_out(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, traveller("t1"))  # no geolocation permission granted
        check_id = await start_check(base)
        card = page.locator(f'[data-check-id="{check_id}"]')
        await card.locator('[data-tp="check-help"]').click()
        await expect(card.locator('[data-delivered="true"]')).to_contain_text("could not be added")
        alerts = await until(lambda: alerts_of(base, "safety_help"))
        assert [a["details"]["location"] for a in alerts] == [None]


async def test_an_answered_complaint_reaches_the_phone_and_not_satisfied_reopens_it(phones, app_factory) -> None:
    async with app_factory(FAST, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", region="yunnan")
        page = await open_app(phones, base, traveller("t1"), device=IPHONE)
        await page.click('[data-tp="score-1"]')
        await page.fill('[data-tp="comment"]', "The bus left without us, nobody helped")
        await page.click('[data-tp="send-rating"]')
        alert = (await until(lambda: alerts_of(base, "urgent_complaint")))[0]
        await api(base, "POST", f"/api/alerts/{alert['alert_id']}/resolve",
                  json={"note": "We are sorry: the driver was warned and we refund the afternoon"})
        answer = page.locator('[data-tp="notice"].kind-answer')
        await expect(answer).to_contain_text("we refund the afternoon")
        followup = page.locator('[data-tp="notice"].kind-followup')
        await expect(followup.locator('[data-tp="followup-yes"]')).to_be_visible()
        await _no_serious_violations(Axe(), page)
        await followup.locator('[data-tp="followup-score-2"]').click()
        await followup.locator("textarea").fill("Still waiting for the refund")
        await followup.locator('[data-tp="followup-no"]').click()
        await expect(followup.locator('[data-delivered="true"]')).to_contain_text("Received")
        await expect(followup.locator('[data-tp="followup-no"]')).to_have_count(0)  # asked once

        async def reopened() -> list[dict[str, Any]]:
            return [a for a in await alerts_of(base, "urgent_complaint") if a["details"].get("reopens")]

        again = (await until(reopened))[0]
        assert again["details"]["reopen_count"] == 1 and again["alert_id"] != alert["alert_id"]
