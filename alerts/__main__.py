"""``python -m alerts``: run one watcher against ``REDIS_URL`` until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from alerts.watcher import Watcher
from server.gctune import tune_gc
from server.settings import ConfigError, load_settings


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
    await stop.wait()
    await watcher.stop()
    return 0


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(run()))


if __name__ == "__main__":
    main()
