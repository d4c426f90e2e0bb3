"""One server under test, as its own OS process: ``python -m bench.serve <json>``.

The JSON argument: ``{"app": "tourpulse" | "bare" | "watcher", "port": int, "redis_url": str, "secret": str,
"doc": {settings sections}, "run_watcher": bool}``. Web apps run under uvicorn as production runs them
(uvloop, the Procfile's protocols and limits: httptools and ``websockets-sansio`` hardened, no
permessage-deflate, 64 KiB frames, no access log); ``watcher`` runs one :class:`alerts.watcher.Watcher` alone.
The process prints ``READY`` on stdout once it serves, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import signal
import sys
from typing import Any


def raise_nofile() -> int:
    """Lift the soft limit of open files to the hard one (10,000 sockets need it); returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def build_settings(spec: dict[str, Any]) -> Any:
    from server.core.settings import settings_from_mapping

    return settings_from_mapping(spec.get("doc") or {}, redis_url=spec["redis_url"], secret=spec["secret"].encode())


def loop_lag_probe(path: str) -> asyncio.Task[None]:
    """Diagnostics (``TP_LOOP_LAG=<file>``): every loop stall over 2 ms and every GC pass over 1 ms, as
    ``[time.monotonic(), ms, what]`` (the clock the bench's windows use), rewritten to ``path`` every second.
    """
    import gc
    import time

    seen: list[tuple[float, float, str]] = []
    gc_start = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        now = time.perf_counter()
        if phase == "start":
            gc_start[0] = now
        elif now - gc_start[0] > 0.001:
            seen.append((time.monotonic(), (now - gc_start[0]) * 1000, f"gc{info['generation']}"))

    gc.callbacks.append(on_gc)
    async def probe() -> None:
        written = time.monotonic()
        while True:
            if time.monotonic() - written > 1.0:
                with open(path, "w") as out:
                    out.write(json.dumps(seen))
                written = time.monotonic()
            before = time.monotonic()
            await asyncio.sleep(0.001)
            lag = time.monotonic() - before - 0.001
            if lag > 0.002:
                seen.append((before, lag * 1000, "loop"))

    return asyncio.create_task(probe())


async def serve_web(spec: dict[str, Any]) -> None:
    import os

    import uvicorn

    if os.environ.get("TP_LOOP_LAG"):
        probe = loop_lag_probe(os.environ["TP_LOOP_LAG"])  # noqa: F841 - kept referenced while serving

    if spec["app"] == "bare":
        from bench.bare import create_bare_app

        app: Any = create_bare_app(spec["redis_url"])
    else:
        from server.app import create_app

        app = create_app(build_settings(spec), run_watcher=bool(spec.get("run_watcher")))
    from server.web.protocols import UVICORN_LIMITS

    # the Procfile's uvicorn: its protocols (handshake timeout, UTF-8 check) and limits (§13)
    config = uvicorn.Config(app, host="127.0.0.1", port=int(spec["port"]), loop="uvloop", **UVICORN_LIMITS,
                            ws_per_message_deflate=False, ws_max_size=65536,
                            lifespan="on", access_log=False, log_level="warning", timeout_graceful_shutdown=2,
                            backlog=int(spec.get("backlog", 2048)))
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn exited during startup")
        await asyncio.sleep(0.01)
    print("READY", flush=True)
    await task


async def serve_watcher(spec: dict[str, Any]) -> None:
    from alerts.watcher import Watcher
    from server.core.gctune import tune_gc

    watcher = Watcher(build_settings(spec))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await watcher.start()
    tune_gc()  # as `python -m alerts` does
    print("READY", flush=True)
    await stop.wait()
    await watcher.stop()


def main() -> None:
    spec = json.loads(sys.argv[1])
    raise_nofile()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvloop

    runner = serve_watcher if spec["app"] == "watcher" else serve_web
    uvloop.run(runner(spec))


if __name__ == "__main__":
    main()
