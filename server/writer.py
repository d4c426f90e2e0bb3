"""One shared writer per web process: every connection's store step goes out in one pipeline per round trip.

Measured here (docs/performance.md): a redis-py round trip is about two thirds of a frame's cost, and redis-py's
default asyncio pool *raises* once its 100 connections are busy. So connections never talk to Redis themselves:
they queue a script call and await its future; one task drains the queue, sends up to ``max_batch`` calls as one
non-transactional pipeline over one connection, and resolves each future with its own result. Under light load a
batch is one call (no added latency); under heavy load the round trips are shared.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, RedisError

from server.keys import SCRIPTS

log = logging.getLogger(__name__)


class StorageUnavailable(RuntimeError):
    """Redis could not be reached or failed the call; nothing was stored."""


class Call:
    __slots__ = ("script", "keys", "args", "future")

    def __init__(self, script: str, keys: list[str], args: list[Any], future: asyncio.Future[Any]) -> None:
        self.script, self.keys, self.args, self.future = script, keys, args, future


class ScriptWriter:
    def __init__(self, redis: aioredis.Redis, max_batch: int = 256) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self.shas: dict[str, str] = {}
        self._queue: deque[Call] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.calls = 0

    async def start(self) -> None:
        await self._load_scripts()
        self._task = asyncio.create_task(self._run(), name="script-writer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._queue:
            call = self._queue.popleft()
            if not call.future.done():
                call.future.set_exception(StorageUnavailable("shutting down"))

    async def _load_scripts(self) -> None:
        for name, source in SCRIPTS.items():
            self.shas[name] = await self.redis.script_load(source)

    def call(self, script: str, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Queue one script call; the future resolves to its result or raises StorageUnavailable."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(Call(script, keys, args, future))
        self._wake.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                await self._send(batch)

    async def _send(self, batch: list[Call]) -> None:
        self.batches += 1
        self.calls += len(batch)
        try:
            results = await self._pipeline(batch)
            if any(isinstance(r, NoScriptError) for r in results):
                # the server restarted or was flushed: load the scripts again and retry just those calls
                await self._load_scripts()
                retry = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
                again = await self._pipeline([batch[i] for i in retry])
                for i, result in zip(retry, again, strict=True):
                    results[i] = result
        except (RedisError, OSError) as exc:
            log.warning("storage unavailable: %s", exc)
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(StorageUnavailable(str(exc)))
            return
        for call, result in zip(batch, results, strict=True):
            if call.future.done():  # the waiting connection went away
                continue
            if isinstance(result, Exception):
                call.future.set_exception(StorageUnavailable(str(result)))
            else:
                call.future.set_result(result)

    async def _pipeline(self, batch: list[Call]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for call in batch:
            pipe.evalsha(self.shas[call.script], len(call.keys), *call.keys, *call.args)
        return list(await pipe.execute(raise_on_error=False))
