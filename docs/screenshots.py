"""Take the README's phone screenshots: ``.venv/bin/python docs/screenshots.py``.

Starts an embedded Valkey and the app (with its watcher) on a loopback port, registers a tour, lets a few
travellers rate and a guide report a closed attraction, pushes a notice, then shoots the traveller's and the guide's
screens in English and Chinese in headless Chromium with the Pixel 7 viewport; then starts a safety check and
shoots its card on a traveller's phone and the roll-up on the guide's (contract §11), in both languages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import uvicorn
from playwright.async_api import Browser, async_playwright
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.app import create_app  # noqa: E402
from server.core.settings import settings_from_mapping  # noqa: E402
from server.core.tokens import issue  # noqa: E402
from server.db.embedded import EmbeddedRedis  # noqa: E402

SECRET = b"screenshot-secret-0123456789"
OUT = Path(__file__).parent
TZ = "Asia/Shanghai"


def tok(role: str, sub: str, **kw: object) -> str:
    return issue(SECRET, role=role, sub=sub, ttl=86400, now=time.time(), **kw)  # type: ignore[arg-type]


async def send(base: str, role: str, sub: str, msg: dict[str, object]) -> None:
    url = base.replace("http", "ws") + f"/ws/{role}?token={tok(role, sub, tours=['T1'])}"
    async with connect(url) as ws:
        import json

        await ws.send(json.dumps(msg))
        await ws.recv()


async def main() -> None:
    today = dt.datetime.now(ZoneInfo(TZ)).date()
    with tempfile.TemporaryDirectory() as data, EmbeddedRedis(Path(data), appendonly=False) as valkey:
        settings = settings_from_mapping({"watcher": {"block": "200ms", "tick": "200ms"}}, redis_url=valkey.url,
                                         secret=SECRET)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(create_app(settings, run_watcher=True), log_level="warning",
                                               ws="websockets-sansio"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.05)
        admin = {"Authorization": f"Bearer {tok('admin', 'ops', regions=['*'])}"}
        async with httpx.AsyncClient(base_url=base, headers=admin) as http:
            await http.put("/api/tours/T1", json={
                "route": "Yunnan 6 days", "region": "yunnan", "guides": ["g1"], "timezone": TZ, "travellers": 12,
                "start": (today - dt.timedelta(days=2)).isoformat(), "end": (today + dt.timedelta(days=3)).isoformat()})
            for n, score in enumerate([5, 4, 4, 3, 2]):
                for back in (2, 1, 0):
                    day = (today - dt.timedelta(days=back)).isoformat()
                    await send(base, "traveller", f"t{n}", {"type": "rating", "id": f"r{n}{back}", "tour_id": "T1",
                                                             "day": day, "score": max(1, score - back % 2)})
            await send(base, "guide", "g1", {"type": "incident", "id": "i1", "tour_id": "T1",
                                             "kind": "attraction_closed", "severity": "medium",
                                             "summary": "Stone Forest closed after a landslide / 石林因塌方关闭"})
            await http.post("/api/notices", json={"tour_ids": ["T1"], "kind": "risk_warning",
                                                  "title": "Heavy rain tomorrow / 明日大雨",
                                                  "body": "Bring a raincoat; we leave at 8:00. 请带雨衣，8 点出发。"})
            await asyncio.sleep(2)  # let the watcher fold the ratings (a script, not a test)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path="/usr/bin/chromium",
                                               args=["--headless", "--no-sandbox", "--disable-gpu"])
            device = {k: v for k, v in pw.devices["Pixel 7"].items() if k != "default_browser_type"}
            device["device_scale_factor"] = 1
            for lang, locale in (("en", "en-GB"), ("zh", "zh-CN")):
                for role, sub in (("traveller", "t9"), ("guide", "g1")):
                    context = await browser.new_context(**device, locale=locale)
                    page = await context.new_page()
                    await page.goto(f"{base}/app#token={tok(role, sub, tours=['T1'])}")
                    await page.wait_for_selector('body[data-conn="online"]', state="attached")
                    await page.wait_for_selector('[data-tp="notice"]')
                    if role == "traveller":
                        await page.click('[data-tp="score-4"]')
                        await page.click('[data-tp="aspect-guide-5"]')
                    else:
                        await page.wait_for_selector('[data-tp="today-score"]:not(:text("—"))')
                        await page.click(".qr-actions .btn")
                        await page.wait_for_selector('[data-tp="join-qr"]')
                    await page.evaluate("window.scrollTo(0, 0)")
                    await page.screenshot(path=str(OUT / f"app-{role}-{lang}.png"), full_page=True)
                    await context.close()
            await crisis_shots(base, browser, device)
            await browser.close()
        server.should_exit = True
        await task


async def crisis_shots(base: str, browser: Browser, device: dict[str, object]) -> None:
    """A safety check to T1, two named travellers who joined, one of them answered: the card and the roll-up."""
    supervisor = {"Authorization": f"Bearer {tok('supervisor', 's1', regions=['yunnan'])}"}
    guide = {"Authorization": f"Bearer {tok('guide', 'g1', tours=['T1'])}"}
    async with httpx.AsyncClient(base_url=base) as http:
        code = (await http.get("/api/tours/T1/join", headers=guide)).json()["code"]
        for name in ("王芳", "Anna Schmidt"):
            await http.post("/api/join", json={"code": code, "name": name})
        check = (await http.post("/api/safety-checks", headers=supervisor, json={
            "tour_ids": ["T1"], "deadline": "30m",
            "message": "Typhoon Muifa reaches Dali at 18:00. Are you safe? / 台风梅花 18:00 抵达大理，您安全吗？",
        })).json()
    await send(base, "traveller", "t0", {"type": "safety_reply", "id": "s0", "check_id": check["check_id"],
                                         "status": "safe"})
    for lang, locale in (("en", "en-GB"), ("zh", "zh-CN")):
        for role, sub, shot in (("traveller", "t9", "safety"), ("guide", "g1", "rollup")):
            context = await browser.new_context(**device, locale=locale)
            page = await context.new_page()
            await page.goto(f"{base}/app#token={tok(role, sub, tours=['T1'])}")
            await page.wait_for_selector('body[data-conn="online"]', state="attached")
            if role == "traveller":
                await page.wait_for_selector('[data-tp="check-help"]')
                await page.screenshot(path=str(OUT / f"app-{shot}-{lang}.png"))
            else:
                await page.wait_for_selector('[data-tp="answer-for-safe"]')
                await page.evaluate("document.querySelector('.bar').style.position = 'static'")  # not over the card
                await page.locator("[data-rollup]").screenshot(path=str(OUT / f"app-{shot}-{lang}.png"))
            await context.close()


if __name__ == "__main__":
    asyncio.run(main())
