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
from contextvars import ContextVar
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from server.keys import SCRIPTS
from server.resp import RespConnection, RespError, pack

log = logging.getLogger(__name__)


class StorageUnavailable(RedisConnectionError):
    """Redis could not be reached; nothing was stored."""


# The lane of the calls made in this context (a task and the tasks it starts): calls on one lane reach Redis in
# the order they were queued, so a caller that must keep an order (one tour's effects) pins itself to a lane
# and may queue many calls without awaiting each. None: any lane.
LANE: ContextVar[int | None] = ContextVar("writer_lane", default=None)


class Call:
    __slots__ = ("script", "keys", "args", "future")

    def __init__(self, script: str, keys: list[str], args: list[Any], future: asyncio.Future[Any]) -> None:
        self.script, self.keys, self.args, self.future = script, keys, args, future


class _Lane:
    __slots__ = ("conn", "queue", "wake")

    def __init__(self, url: str) -> None:
        self.conn = RespConnection(url)
        self.queue: deque[Call] = deque()
        self.wake = asyncio.Event()


class ScriptWriter:
    """``lanes`` connections each carry one batch at a time: with two, one batch is built and sent while Redis
    runs the other (the watcher's effects are Lua-heavy). Each lane sends its calls in the order they were
    queued (:data:`LANE` pins a caller to one); each caller awaits its own result."""

    def __init__(self, url: str, max_batch: int = 256, lanes: int = 1) -> None:
        self.lanes = [_Lane(url) for _ in range(lanes)]
        self.conns = [lane.conn for lane in self.lanes]
        self.max_batch = max_batch
        self.shas: dict[str, bytes] = {}
        self._next = 0  # the lane of the next unpinned call: round robin
        self._tasks: list[asyncio.Task[None]] = []
        self.batches = 0
        self.calls = 0

    async def start(self) -> None:
        for conn in self.conns:
            await self._ensure_connected(conn)
        self._tasks = [asyncio.create_task(self._run(lane), name=f"script-writer-{n}")
                       for n, lane in enumerate(self.lanes)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        for lane in self.lanes:
            while lane.queue:
                call = lane.queue.popleft()
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
        return self._queue(Call(script, keys, args, asyncio.get_running_loop().create_future()))

    def command(self, *args: bytes | str | int | float) -> asyncio.Future[Any]:
        """Queue one plain command (``HSET``, ``XACK``...), batched with the script calls like them."""
        return self._queue(Call("", [], list(args), asyncio.get_running_loop().create_future()))

    def _queue(self, call: Call) -> asyncio.Future[Any]:
        pinned = LANE.get()
        if pinned is None:
            pinned = self._next = (self._next + 1) % len(self.lanes)
        lane = self.lanes[pinned % len(self.lanes)]
        lane.queue.append(call)
        lane.wake.set()
        return call.future

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The :class:`server.scripts.ScriptRunner` interface: one call, batched with everyone else's."""
        return await self.call(name, list(keys), list(args))

    async def _run(self, lane: _Lane) -> None:
        queue = lane.queue
        while True:
            await lane.wake.wait()
            if not queue:
                lane.wake.clear()
                continue
            batch = [queue.popleft() for _ in range(min(self.max_batch, len(queue)))]
            if not queue:
                lane.wake.clear()
            await self._send(lane.conn, batch)

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
