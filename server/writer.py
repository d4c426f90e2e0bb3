"""One shared writer per web process: every connection's store step goes out in one pipeline per round trip.

Measured here (docs/performance.md): a redis-py round trip is about two thirds of a frame's cost, and redis-py's
default asyncio pool *raises* once its 100 connections are busy. So connections never talk to Redis themselves:
they queue a script call and await its future; one task drains the queue, sends up to ``max_batch`` calls in one
write over one raw connection (``server/resp.py``), and resolves each future with its own result. Under light
load a batch is one call (no added latency); under heavy load the round trips are shared.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from server.keys import SCRIPTS
from server.resp import RespConnection, RespError, pack

log = logging.getLogger(__name__)


class StorageUnavailable(RedisConnectionError):
    """Redis could not be reached; nothing was stored."""


class Call:
    __slots__ = ("script", "keys", "args", "future")

    def __init__(self, script: str, keys: list[str], args: list[Any], future: asyncio.Future[Any]) -> None:
        self.script, self.keys, self.args, self.future = script, keys, args, future


class ScriptWriter:
    """``lanes`` connections each carry one batch at a time: with two, one batch is built and sent while Redis
    runs the other (the watcher's effects are Lua-heavy); each caller still awaits its own result, in order."""

    def __init__(self, url: str, max_batch: int = 256, lanes: int = 1) -> None:
        self.conns = [RespConnection(url) for _ in range(lanes)]
        self.max_batch = max_batch
        self.shas: dict[str, bytes] = {}
        self._queue: deque[Call] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.batches = 0
        self.calls = 0

    async def start(self) -> None:
        for conn in self.conns:
            await self._ensure_connected(conn)
        self._tasks = [asyncio.create_task(self._run(conn), name=f"script-writer-{n}")
                       for n, conn in enumerate(self.conns)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        while self._queue:
            call = self._queue.popleft()
            if not call.future.done():
                call.future.set_exception(StorageUnavailable("shutting down"))
        for conn in self.conns:
            await conn.close()

    async def _ensure_connected(self, conn: RespConnection) -> None:
        if conn.connected:
            return
        await conn.connect()
        await self._load_scripts(conn)

    async def _load_scripts(self, conn: RespConnection) -> None:
        names = list(SCRIPTS)
        replies = await conn.roundtrip([pack("SCRIPT", "LOAD", SCRIPTS[name]) for name in names])
        for name, sha in zip(names, replies, strict=True):
            if isinstance(sha, RespError):
                raise sha
            self.shas[name] = sha

    def call(self, script: str, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Queue one script call; the future resolves to its result or raises StorageUnavailable."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(Call(script, keys, args, future))
        self._wake.set()
        return future

    def command(self, *args: bytes | str | int | float) -> asyncio.Future[Any]:
        """Queue one plain command (``HSET``, ``XACK``...), batched with the script calls like them."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(Call("", [], list(args), future))
        self._wake.set()
        return future

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The :class:`server.scripts.ScriptRunner` interface: one call, batched with everyone else's."""
        return await self.call(name, list(keys), list(args))

    async def _run(self, conn: RespConnection) -> None:
        while True:
            await self._wake.wait()
            if not self._queue:
                self._wake.clear()
                continue
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            if not self._queue:
                self._wake.clear()
            await self._send(conn, batch)

    async def _send(self, conn: RespConnection, batch: list[Call]) -> None:
        # a caller that gave up (cancelled: its lease lost, its flush failed) must not have its write land later
        batch = [call for call in batch if not call.future.done()]
        if not batch:
            return
        self.batches += 1
        self.calls += len(batch)
        try:
            await self._ensure_connected(conn)
            results = await self._pipeline(conn, batch)
            if any(_noscript(r) for r in results):
                # the server restarted or was flushed: load the scripts again and retry just those calls
                await self._load_scripts(conn)
                retry = [i for i, r in enumerate(results) if _noscript(r)]
                again = await self._pipeline(conn, [batch[i] for i in retry])
                for i, result in zip(retry, again, strict=True):
                    results[i] = result
        except (OSError, ConnectionError, TimeoutError, RespError) as exc:
            log.warning("storage unavailable: %s", exc)
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(StorageUnavailable(str(exc) or type(exc).__name__))
            return
        except Exception as exc:  # noqa: BLE001 - e.g. an argument that cannot be packed: the lane lives on
            log.exception("writer batch failed")
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(exc)
            return
        for call, result in zip(batch, results, strict=True):
            if call.future.done():  # the waiting connection went away
                continue
            if isinstance(result, RespError):
                call.future.set_exception(ResponseError(str(result)))  # as redis-py would raise it
            else:
                call.future.set_result(result)

    async def _pipeline(self, conn: RespConnection, batch: list[Call]) -> list[Any]:
        return await conn.roundtrip([
            pack("EVALSHA", self.shas[call.script], len(call.keys), *call.keys, *call.args) if call.script
            else pack(*call.args)
            for call in batch
        ])


def _noscript(reply: Any) -> bool:
    return isinstance(reply, RespError) and str(reply).startswith("NOSCRIPT")
