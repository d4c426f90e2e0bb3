"""One watcher process: shard leases, a consumer task per owned shard, and three periodic jobs.

APScheduler runs every periodic job (interval jobs, coalesced, one instance each, started by :meth:`Watcher.start`
and stopped by :meth:`Watcher.stop`); it only triggers, the jobs decide. A job's failure is logged and counted
(``tourpulse_watcher_job_errors_total{job}``) and the job runs again at its next interval.

- ``leases``: every ``lease_ttl / 3`` the watcher renews the leases it holds, and takes free shards up to its fair
  share (shards / live watchers, from a heartbeat set). A watcher that dies stops renewing; its leases expire and
  the others take its shards over, first finishing the entries it left pending.
- ``deadlines``: every ``tick`` due deadlines of the owned shards move into their streams, one Lua step per shard,
  as ``deadline`` events; from there they are read and acked like any event, so each fires once.
- ``retention``: every 30 s the owned streams are trimmed to the retention, never past an entry the group has not
  acked, and the lag and pending gauges are refreshed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import RedisError

from alerts.applier import EffectApplier
from alerts.consumer import ShardConsumer
from alerts.paging.runner import PagingThread
from alerts.pool import PoolStore
from alerts.store import AlertStore
from server.core import keys
from server.core.metrics import Registry
from server.core.settings import Settings
from server.db.client import close_client, redis_client
from server.db.cluster import make_writer
from server.db.durability import choose, server_facts
from server.db.scripts import script
from server.db.writer import REPLICA, WRITE

log = logging.getLogger(__name__)
logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs every run of every job at INFO

MOVE_LIMIT = 500
MOVE_CONCURRENCY = 16  # shards whose due deadlines are moved at once
RETENTION_EVERY = 30.0  # seconds between two trims of the owned streams


class Watcher:
    def __init__(self, settings: Settings, *, metrics: Registry | None = None, watcher_id: str | None = None) -> None:
        if not settings.redis_url:
            raise ValueError("the watcher needs settings.redis_url")
        self.settings = settings
        self.metrics = metrics or Registry()
        self.id = watcher_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.owned: dict[int, tuple[asyncio.Event, asyncio.Task[None]]] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._jobs: set[asyncio.Task[Any]] = set()  # the jobs running now, each in its own task
        # the jobs also stop on this flag, not only on cancellation: a cancellation that lands inside a redis-py
        # command is sometimes swallowed there, and the job would go on (consumers stop on their `owns` event)
        self.pager: PagingThread | None = None
        self._running = True
        # any watcher that trims a shard measures it: with several processes, the latest figure counts
        self.lag = self.metrics.gauge("tourpulse_consumer_lag", "Entries not yet read by the group, by shard",
                                      ("shard",), multiprocess_mode="livemostrecent")
        self.pending = self.metrics.gauge("tourpulse_consumer_pending", "Entries read but not acked, by shard",
                                          ("shard",), multiprocess_mode="livemostrecent")
        self.fired = self.metrics.counter("tourpulse_deadlines_fired_total", "Deadlines moved into streams")
        self.job_errors = self.metrics.counter("tourpulse_watcher_job_errors_total",
                                               "Failures of the watcher's periodic jobs, by job", ("job",))

    async def start(self) -> None:
        # with ack_after = "replica" the watcher's effects and acks wait for a replica too, so a failover never
        # loses an effect whose entry was acked (contract §14); it refuses to start, naming the setting, where a
        # primary has no replica
        acks = choose(self.settings.storage, await server_facts(self.settings.redis_url or ""))
        ack = REPLICA if acks.events & REPLICA else WRITE
        self.redis = redis_client(self.settings.redis_url or "", tail=True, max_connections=128)
        # every effect of every owned shard goes through one pipelined writer: shards share round trips
        self.writer = make_writer(self.settings.redis_url or "", lanes=2, ack=ack)
        await self.writer.start()
        self.store = AlertStore(self.redis, self.settings, self.writer)
        self.pool = PoolStore(self.redis, self.settings, self.writer)
        self.applier = EffectApplier(self.redis, self.settings, self.store, self.pool, self.metrics, self.writer)
        # paging people (contract §12), on a loop and Redis client of its own, when [notify] names people; before
        # the consumers, whose first alert changes it must see (the first start creates its group at the end)
        self.pager = PagingThread(self.settings, self.metrics, self.id) if self.settings.notify.enabled else None
        if self.pager is not None:
            await self.pager.start()
        await self._balance()
        self._scheduler = AsyncIOScheduler()
        jobs: dict[str, tuple[Callable[[], Awaitable[Any]], float]] = {
            "leases": (self._balance, self.settings.watcher.lease_ttl / 3),
            "deadlines": (self.move_due, self.settings.watcher.tick),
            "retention": (self.retention, RETENTION_EVERY),
        }
        for name, (job, seconds) in jobs.items():
            self._scheduler.add_job(self._job, "interval", (name, job), id=name, seconds=seconds, coalesce=True,
                                    max_instances=1, misfire_grace_time=None)
        self._scheduler.start()

    async def stop(self) -> None:
        # the jobs first, so that the lease job neither takes nor drops shards while they are dropped here
        self._running = False
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        if self.pager is not None:
            await self.pager.stop()
        for task in self._jobs:
            task.cancel()
        if self._jobs:
            await asyncio.wait(self._jobs)
        # together: a consumer may only notice its cancellation when its blocking read returns
        await asyncio.gather(*(self._drop(shard) for shard in list(self.owned)))
        with contextlib.suppress(RedisError):
            for shard in range(self.settings.storage.shards):
                await script(self.redis, "release_lease")(keys=[keys.lease(shard)], args=[self.id])
            await self.redis.zrem(keys.WATCHERS, self.id)
        await self.writer.stop()
        await close_client(self.redis)

    async def _job(self, name: str, job: Callable[[], Awaitable[Any]]) -> None:
        """One run of a periodic job, owned by the watcher (:meth:`stop` cancels and awaits it). A failure is logged
        and counted here, and the job runs again at its next interval."""
        if not self._running:
            return  # a run the scheduler had already started as the watcher stopped
        task = asyncio.current_task()
        assert task is not None
        self._jobs.add(task)
        try:
            await job()
        except asyncio.CancelledError:
            if self._running:
                raise
            # stopping: the task ends here (raising would only have the scheduler log the cancellation as an error)
        except Exception as exc:  # noqa: BLE001 - logged and counted; the next run tries again
            self._job_failed(name, exc)
        finally:
            self._jobs.discard(task)

    def _job_failed(self, name: str, exc: Exception, shard: int | None = None) -> None:
        where = f"shard {shard}: {name}" if shard is not None else f"watcher {self.id}: {name}"
        self.job_errors.inc(name)
        if isinstance(exc, RedisError):  # storage trouble: the next run tries again
            log.warning("%s failed: %s", where, exc)
        else:
            log.error("%s failed", where, exc_info=exc)

    # --- leases -------------------------------------------------------------------------------------------
    async def _balance(self) -> None:
        now = time.time()
        ttl = self.settings.watcher.lease_ttl
        shards = self.settings.storage.shards
        await self.redis.zadd(keys.WATCHERS, {self.id: now})
        await self.redis.zremrangebyscore(keys.WATCHERS, "-inf", now - ttl)
        live = max(1, await self.redis.zcard(keys.WATCHERS))
        share = math.ceil(shards / live)
        lease = script(self.redis, "lease")
        for shard, (owns, _task) in list(self.owned.items()):
            # a consumer that found its lease gone has stopped (`owns` cleared): drop it, take the shard anew below
            if not owns.is_set() or not await lease(keys=[keys.lease(shard)], args=[self.id, int(ttl * 1000)]):
                log.warning("watcher %s lost the lease of shard %s", self.id, shard)
                await self._drop(shard)
        while len(self.owned) > share:  # a new watcher joined: hand shards over
            shard = max(self.owned)
            await self._drop(shard)
            await script(self.redis, "release_lease")(keys=[keys.lease(shard)], args=[self.id])
        for shard in range(shards):
            if len(self.owned) >= share:
                break
            if shard not in self.owned and await lease(keys=[keys.lease(shard)], args=[self.id, int(ttl * 1000)]):
                self._own(shard)

    def _own(self, shard: int) -> None:
        owns = asyncio.Event()
        owns.set()
        consumer = ShardConsumer(self.redis, self.settings, shard, self.id, self.applier, self.metrics, self.writer)
        task = asyncio.create_task(consumer.run(owns), name=f"shard-{shard}")
        task.add_done_callback(self._surface)
        self.owned[shard] = (owns, task)

    async def _drop(self, shard: int) -> None:
        owns, task = self.owned.pop(shard)
        owns.clear()
        task.cancel()
        # asyncio.wait, never `await task` under suppress(CancelledError): a cancellation of the caller (stop()
        # cancelling the lease loop while it drops a shard) must reach the caller, not be swallowed with the
        # task's own; the task's error, if any, is logged by _surface
        await asyncio.wait([task])

    @staticmethod
    def _surface(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stopped: %r", task.get_name(), task.exception())

    # --- deadlines ----------------------------------------------------------------------------------------
    async def move_due(self) -> int:
        """Move due deadlines of the owned shards into their streams (each exactly once, atomically)."""
        now = time.time()
        mover = script(self.redis, "move_due")
        shards = list(self.owned)
        # side by side (one after the other, a busy watcher's loop made the job overrun its 1 s interval), but no
        # more at once than leaves the client's connection pool to the consumers
        gate = asyncio.Semaphore(MOVE_CONCURRENCY)

        async def move(shard: int) -> Any:
            async with gate:
                return await mover(keys=[keys.deadlines(shard), keys.events(shard)],
                                   args=[now, MOVE_LIMIT, keys.deadline_prefix(shard), keys.fired_prefix(shard),
                                         keys.FIRED_TTL])

        outcomes = await asyncio.gather(*(move(shard) for shard in shards), return_exceptions=True)
        moved = 0
        for shard, outcome in zip(shards, outcomes, strict=True):
            if isinstance(outcome, RedisError):
                self._job_failed("deadlines", outcome, shard)  # the other shards' deadlines moved all the same
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                moved += int(outcome)
        if moved:
            self.fired.inc(by=moved)
        return moved

    # --- housekeeping -------------------------------------------------------------------------------------
    async def retention(self) -> None:
        """Trim each owned stream; storage trouble with one shard does not keep the others untrimmed."""
        for shard in list(self.owned):
            if not self._running:
                return
            try:
                await self.trim(shard, time.time())
            except RedisError as exc:
                self._job_failed("retention", exc, shard)

    async def trim(self, shard: int, now: float) -> None:
        """Trim to the retention, but never past the oldest entry the group has not acked (no XTRIM ACKED)."""
        stream = keys.events(shard)
        groups: list[dict[str, Any]] = await self.redis.xinfo_groups(stream)
        group = next((g for g in groups if g["name"] in (keys.GROUP, keys.GROUP.encode())), None)
        if group is None:
            return
        self.lag.set(float(group.get("lag") or 0), str(shard))
        self.pending.set(float(group["pending"]), str(shard))
        floor = int((now - self.settings.storage.retention) * 1000)
        last = group["last-delivered-id"]
        last = last.decode() if isinstance(last, bytes) else str(last)
        floor = min(floor, int(last.split("-")[0]))
        if group["pending"]:
            summary = await self.redis.xpending(stream, keys.GROUP)
            oldest = summary["min"]
            oldest = oldest.decode() if isinstance(oldest, bytes) else str(oldest)
            floor = min(floor, int(oldest.split("-")[0]))
        if floor > 0:
            await self.redis.xtrim(stream, minid=f"{floor}-0", approximate=False)
