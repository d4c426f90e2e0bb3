"""Paging on an event loop of its own, in a thread of the watcher process.

The watcher's loop folds events in long synchronous stretches (a batch of hundreds at a time): every await of the
pager's path (read the change, queue, claim, post, record) waited behind one of them, and under 1,000 ratings/s a
page took ten times as long as on an idle watcher. On its own loop, a page waits at most for the interpreter's
switch interval (5 ms) at each step. It shares nothing with the watcher's loop but the metrics registry (a counter
is one dict update) and the settings (frozen); its Redis and HTTP clients are its own.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from alerts.paging.pager import Pager
from server.core.metrics import Registry
from server.core.settings import Settings

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class PagingThread:
    def __init__(self, settings: Settings, metrics: Registry, consumer: str) -> None:
        self.settings, self.metrics, self.consumer = settings, metrics, consumer
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name=f"paging-{consumer}", daemon=True)

    async def start(self) -> None:
        """Start the thread; returns once the pager reads changes (raises what stopped it from starting)."""
        self._thread.start()
        if not await asyncio.to_thread(self._ready.wait, START_TIMEOUT):
            raise TimeoutError("paging did not start")
        if self._error is not None:
            raise self._error

    async def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(self._thread.join, STOP_TIMEOUT)
        if self._thread.is_alive():
            log.error("paging thread %s did not stop within %.0f s", self._thread.name, STOP_TIMEOUT)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 - said where the watcher can see it, never lost in the thread
            log.exception("paging thread %s failed", self._thread.name)
            self._error = self._error or exc
            self._ready.set()

    async def _run(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        pager = Pager(self.settings, self.metrics, self.consumer)
        try:
            await pager.start()
        except BaseException as exc:
            self._error = exc
            await pager.stop()
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await pager.stop()
