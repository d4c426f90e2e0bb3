"""The pager: decides pages from alert changes and owns the sender, in each watcher process.

Every alert change (open, escalation, assignment, ack: whoever made it, watcher or web) is on the alert-changes
stream. The watchers read it as one consumer group (``pagers``), so each change is looked at by one of them, and a
watcher that dies leaves its unacked entries to the others (XAUTOCLAIM). For each change the pure
:func:`alerts.rules.rota.pages_for` says which pages the alert as it is now calls for; each is queued under its
identity, once ever, and the entry is acked after. A change looked at twice queues nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from typing import Any

from redis.exceptions import RedisError, ResponseError

from alerts.paging.queue import PageQueue
from alerts.paging.sender import Sender
from alerts.rules.rota import pages_for
from server.core import keys
from server.core.metrics import Registry
from server.core.settings import Settings
from server.db.client import close_client, redis_client
from server.db.scripts import as_text

log = logging.getLogger(__name__)

BATCH = 200
BLOCK_MS = 1000
CLAIM_EVERY = 5.0     # how often pending entries of a dead watcher are looked for ...
CLAIM_IDLE_MS = 10_000  # ... and taken over once idle this long
KNOWN = 50_000        # job ids this process has queued (or found queued), so a busy alert costs no Redis call


class Pager:
    def __init__(self, settings: Settings, metrics: Registry, consumer: str) -> None:
        self.settings = settings
        self.consumer = consumer
        self.redis = redis_client(settings.redis_url or "", tail=True, max_connections=16)
        self.queue = PageQueue(self.redis, settings)
        self.sender = Sender(self.queue, settings, metrics)
        self.queued = metrics.counter("tourpulse_pages_queued_total", "Pages queued, by reason", ("reason",))
        self._known: OrderedDict[str, None] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._running = True

    async def start(self) -> None:
        try:
            # the first start of paging begins at the end: the kept history (up to 100,000 changes) would page old
            # alerts, each at every level it passed. From then on the group's cursor outlives every watcher, so a
            # change made while none runs is paged when one starts.
            await self.redis.xgroup_create(keys.ALERT_CHANGES, keys.PAGE_GROUP, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._tasks = [asyncio.create_task(self._read_loop(), name="pager-changes"),
                       asyncio.create_task(self.sender.run(), name="pager-sender")]
        for task in self._tasks:
            task.add_done_callback(_surface)

    async def stop(self) -> None:
        self._running = False
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        await self.sender.stop()
        with contextlib.suppress(RedisError):
            # leave the group tidy, but never drop entries this watcher read and did not ack (others take them)
            if not await self.redis.xpending_range(keys.ALERT_CHANGES, keys.PAGE_GROUP, "-", "+", 1,
                                                   consumername=self.consumer):
                await self.redis.xgroup_delconsumer(keys.ALERT_CHANGES, keys.PAGE_GROUP, self.consumer)
        await close_client(self.redis)

    async def _read_loop(self) -> None:
        last_claim = 0.0
        while self._running:
            try:
                if time.monotonic() - last_claim > CLAIM_EVERY:
                    last_claim = time.monotonic()
                    await self._take_over()
                reply = await self.redis.xreadgroup(keys.PAGE_GROUP, self.consumer, {keys.ALERT_CHANGES: ">"},
                                                    count=BATCH, block=BLOCK_MS)
                for _stream, entries in reply or []:
                    await self.handle(entries)
            except RedisError as exc:
                log.warning("pager: reading alert changes failed: %s", exc)
                await asyncio.sleep(1.0)
            except Exception:  # noqa: BLE001 - a bug must not stop paging for good: say it, and go on
                log.exception("pager: a round failed")
                await asyncio.sleep(1.0)

    async def _take_over(self) -> None:
        """Finish the entries a dead watcher read and never acked."""
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(keys.ALERT_CHANGES, keys.PAGE_GROUP, self.consumer,
                                                min_idle_time=CLAIM_IDLE_MS, start_id=start, count=BATCH)
            start, entries = as_text(reply[0]), reply[1]
            await self.handle([e for e in entries if e and e[1]])
            if start == "0-0" or not entries:
                return

    async def handle(self, entries: list[Any]) -> None:
        now = time.time()
        queued = 0
        for seq, fields in entries:
            raw = fields.get(b"a") if isinstance(fields, dict) else None
            try:
                alert = json.loads(raw) if raw is not None else None
                pages = pages_for(alert, self.settings.notify, now) if isinstance(alert, dict) else []
            except (ValueError, KeyError, TypeError) as exc:  # a change this code cannot read: skipped, not retried
                log.error("pager: change %s unreadable: %r", as_text(seq), exc)
                continue
            for page in pages:
                if page.job_id in self._known:
                    continue
                if await self.queue.enqueue(page, now):
                    queued += 1
                    self.queued.inc(page.reason)
                self._remember(page.job_id)
        if queued:
            self.sender.wake.set()
        if entries:
            await self.redis.xack(keys.ALERT_CHANGES, keys.PAGE_GROUP, *(seq for seq, _f in entries))

    def _remember(self, job_id: str) -> None:
        self._known[job_id] = None
        if len(self._known) > KNOWN:
            self._known.popitem(last=False)


def _surface(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped: %r", task.get_name(), task.exception())
