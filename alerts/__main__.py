"""``python -m alerts``: run one watcher against ``REDIS_URL`` until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from alerts.watcher import Watcher
from server.core.gctune import tune_gc
from server.core.ratelog import install_rate_limit
from server.core.settings import ConfigError, load_settings

_background: set[asyncio.Task[None]] = set()  # a strong reference, or the loop may drop the task


async def run() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"tourpulse watcher: {exc}", file=sys.stderr)
        return 2
    if not settings.redis_url:
        print("tourpulse watcher: REDIS_URL is required (tourpulse serve runs a watcher itself)", file=sys.stderr)
        return 2
    watcher = Watcher(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await watcher.start()
    tune_gc()
    logging.getLogger("alerts").info("watcher %s running", watcher.id)
    server = await serve_metrics(watcher, settings.port) if settings.port else None
    await stop.wait()
    if server is not None:
        server.should_exit = True
    await watcher.stop()
    watcher.metrics.close()
    return 0


async def serve_metrics(watcher: Watcher, port: int) -> uvicorn.Server:
    """The watcher's own /metrics (lag, pending, dead letters, alerts opened, latency) and /healthz on PORT."""

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(watcher.metrics.render(), media_type="text/plain; version=0.0.4")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "watcher": watcher.id, "shards": sorted(watcher.owned)})

    app = Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz)])
    server = uvicorn.Server(uvicorn.Config(app, host="0.0.0.0", port=port, log_level="warning", lifespan="off"))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]  # ours stop the watcher first
    _background.add(asyncio.create_task(server.serve(), name="watcher-metrics"))
    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_rate_limit()  # while storage is down, each retry would log a line
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
