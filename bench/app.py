"""app: the phone app on a bad network, in Debian's Chromium (Playwright, Android descriptor), against a real
``tourpulse`` web process.

- ``shell_bytes_gz``: every file of the first visit as sent with ``Accept-Encoding: gzip`` (the page, its styles and
  modules, the manifest, the SVG icon and the service worker, which fetches the same shell again into its cache:
  counted once, as the browser's HTTP cache answers that second fetch by revalidation).
- ``first_render_slow3g_ms``: a cold phone (fresh profile) opens ``/app#token=...`` with the network emulated
  through the DevTools protocol (``Network.emulateNetworkConditions``: 400 ms latency, 50,000 B/s each way) until
  the rating screen's stars are visible. Median of 3 (quick: 1).
- ``reopen_offline_ms``: the same phone, once the service worker controls it, with no network at all: navigation
  to visible stars. Median of 5 (quick: 3).
- ``outbox_drain_ms``: 50 ratings written offline (so 50 messages in the IndexedDB outbox), then the network
  returns: ``online`` event to an empty outbox. ``outbox_acked`` counts the stored events of that traveller (must be
  50) and ``outbox_doubled`` the message ids stored twice (must be 0).
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Any

import httpx
import msgpack
import redis.asyncio as aioredis

from bench.common import SHARDS, Ctx, ServerProc, register_tours, start_servers, token
from server.core import keys

KEYS = ("shell_bytes_gz", "first_render_slow3g_ms", "reopen_offline_ms", "outbox_drain_ms", "outbox_acked",
        "outbox_doubled")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SLOW = {"offline": False, "latency": 400, "downloadThroughput": 50_000, "uploadThroughput": 50_000}
TOUR = "APP1"
DRAIN = 50
STARS = '[data-tp="score-5"]'


def app_url(base: str, sub: str) -> str:
    return f"{base}/app#token={token('traveller', sub, tours=(TOUR,))}"


async def shell_bytes(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, headers={"Accept-Encoding": "gzip"}) as http:
        worker = await http.get("/app/sw.js")
        shell = re.search(r"const SHELL = \[(.*?)\];", worker.text)
        assert shell, "sw.js carries no shell list"
        urls = [u.strip('"') for u in shell.group(1).split(",")]
        total = worker.num_bytes_downloaded
        for url in urls:
            resp = await http.get(url)
            resp.raise_for_status()
            total += resp.num_bytes_downloaded
        return total


async def first_render(browser: Any, device: dict[str, Any], url: str) -> float:
    context = await browser.new_context(**device)
    try:
        page = await context.new_page()
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        await cdp.send("Network.emulateNetworkConditions", SLOW)
        started = time.perf_counter()
        await page.goto(url, wait_until="commit")
        await page.wait_for_selector(STARS, state="visible", timeout=60_000)
        return (time.perf_counter() - started) * 1000
    finally:
        await context.close()


async def reopen_offline(browser: Any, device: dict[str, Any], url: str, runs: int) -> list[float]:
    context = await browser.new_context(**device)
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector('body[data-sw="ready"]', state="attached", timeout=30_000)
        await context.set_offline(True)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            await page.goto(url.split("#")[0], wait_until="commit")
            await page.wait_for_selector(STARS, state="visible")
            times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        await context.close()


async def drain(browser: Any, device: dict[str, Any], url: str) -> float:
    context = await browser.new_context(**device)
    try:
        page = await context.new_page()
        await page.goto(url)
        await page.wait_for_selector('body[data-conn="online"]', state="attached", timeout=30_000)
        await context.set_offline(True)
        await page.wait_for_selector('body[data-conn="offline"]', state="attached")
        for n in range(DRAIN):
            await page.click(f'[data-tp="score-{1 + n % 5}"]')
            await page.click('[data-tp="send-rating"]')
        await page.wait_for_selector(f'body[data-outbox="{DRAIN}"]', state="attached")
        started = time.perf_counter()
        await context.set_offline(False)
        await page.wait_for_selector('body[data-outbox="0"]', state="attached", timeout=60_000)
        return (time.perf_counter() - started) * 1000
    finally:
        await context.close()


async def stored(ctx: Ctx, sender: str) -> tuple[int, int]:
    """(events stored from ``sender``, message ids stored more than once)."""
    client = aioredis.Redis.from_url(ctx.redis_url)
    try:
        entries = await client.xrange(keys.events(keys.shard_of(TOUR, SHARDS)))
    finally:
        await client.aclose()
    ids = [e["msg_id"] for e in (msgpack.unpackb(f[b"e"]) for _, f in entries) if e.get("sender") == sender]
    return len(ids), len(ids) - len(set(ids))


async def run(ctx: Ctx, doc: dict[str, Any]) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    await ctx.flush()
    server = ServerProc(ctx, "tourpulse")
    await start_servers(server)
    base = f"http://127.0.0.1:{server.port}"
    await register_tours(ctx, [TOUR])
    out: dict[str, Any] = {"shell_bytes_gz": await shell_bytes(base)}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            device = {k: v for k, v in pw.devices["Pixel 7"].items() if k != "default_browser_type"}
            renders = [await first_render(browser, device, app_url(base, f"r{n}"))
                       for n in range(1 if ctx.quick else 3)]
            out["first_render_slow3g_ms"] = round(statistics.median(renders))
            out["first_render_runs_ms"] = [round(r) for r in renders]
            reopens = await reopen_offline(browser, device,
                                           app_url(base, "o1"),
                                           3 if ctx.quick else 5)
            out["reopen_offline_ms"] = round(statistics.median(reopens))
            out["reopen_runs_ms"] = [round(r) for r in reopens]
            out["outbox_drain_ms"] = round(await drain(browser, device,
                                                       app_url(base, "d1")))
        finally:
            await browser.close()
    out["outbox_acked"], out["outbox_doubled"] = await stored(ctx, "traveller:d1")
    return out
