"""One shared writer per process: every connection's store step goes out pipelined over one raw connection.

Measured here (docs/performance.md): a redis-py round trip is about two thirds of a frame's cost, and redis-py's
default asyncio pool *raises* once its 100 connections are busy. So connections never talk to Redis themselves:
they queue a script call and await its future. Each lane streams: one task writes whatever is queued (up to
``max_batch`` calls a write) as soon as the event loop lets it, without waiting for the replies of what it wrote
before; another reads replies as they come and resolves the oldest calls in flight. Under light load a write is
one call (no added latency); under heavy load writes and reads carry many, and a call never waits for a batch
it was not in.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from server.db.resp import REPLY_TIMEOUT, RespConnection, RespError, pack
from server.db.scripts import SCRIPTS

log = logging.getLogger(__name__)


class StorageUnavailable(RedisConnectionError):
    """Redis could not be reached; nothing was stored."""


# The lane of the calls made in this context (a task and the tasks it starts): calls on one lane reach Redis in
# the order they were queued, so a caller that must keep an order (one tour's effects) pins itself to a lane
# and may queue many calls without awaiting each. None: any lane.
LANE: ContextVar[int | None] = ContextVar("writer_lane", default=None)

# the scripts' SHA1s are known before they are loaded: a script lost by the server (restarted, flushed) is loaded
# again in the same stream as the call that missed it, ahead of the call's second try
SHAS: dict[str, str] = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in SCRIPTS.items()}
_LOAD_ALL = [("SCRIPT", "LOAD", source) for source in SCRIPTS.values()]

# What a call's reply waits for besides Redis memory (contract §14, ``[storage] ack_after``), as bits: FSYNC, the
# primary's AOF fsynced (WAITAOF 1 0); REPLICA, a replica has the write (WAIT 1). A batch's calls that ask for it
# share one barrier written right behind them: the write is acked once the barrier says so, never before.
WRITE, FSYNC, REPLICA = 0, 1, 2
ACKS = {"write": WRITE, "fsync": FSYNC, "replica": REPLICA}
_UNSET = object()


class Call:
    __slots__ = ("script", "keys", "args", "future", "written", "retried", "ack", "reply", "held", "check")

    def __init__(self, script: str, keys: list[str], args: list[Any], future: asyncio.Future[Any] | None,
                 ack: int = WRITE) -> None:
        self.script, self.keys, self.args, self.future = script, keys, args, future
        self.written = 0  # the lane's count of calls written when this one was
        self.retried = False
        self.ack = ack
        self.reply: Any = _UNSET  # a durable call's reply, held until its barrier answers
        # a barrier: the durable calls it stands for, and the test its reply must pass
        self.held: list[Call] | None = None
        self.check: Any = None


class _Lane:
    __slots__ = ("conn", "queue", "wake", "inflight", "reader", "written", "reloaded", "progress")

    def __init__(self, url: str) -> None:
        self.conn = RespConnection(url)
        self.queue: deque[Call] = deque()  # not written yet
        self.wake = asyncio.Event()
        self.inflight: deque[Call] = deque()  # written on the current connection, in order, replies pending
        self.reader: asyncio.Task[None] | None = None
        self.written = 0
        self.reloaded = 0  # `written` when the scripts were last loaded on this connection
        self.progress = 0.0  # loop time of the last reply (or of the first call in flight after none were)


class ScriptWriter:
    """``lanes`` connections, each streaming its calls in the order they were queued (:data:`LANE` pins a caller
    to one); each caller awaits its own result. A connection lost fails the calls in flight on it (their outcome
    is unknown: every caller retries idempotently) and the next write connects again."""

    def __init__(self, url: str, max_batch: int = 256, lanes: int = 1, *, ack: int = WRITE,
                 fsync_timeout: float = 2.0, replica_timeout: float = 1.0) -> None:
        self.lanes = [_Lane(url) for _ in range(lanes)]
        # fsync acks get a lane of their own: a WAITAOF holds its connection until the next fsync (~100 ms with
        # appendfsync everysec, measured here), and nothing else should wait behind it
        self.fsync_lane = _Lane(url)
        self._every = [*self.lanes, self.fsync_lane]
        self.conns = [lane.conn for lane in self._every]
        self.max_batch = max_batch
        self.ack = ack  # for calls that do not say
        self.fsync_ms, self.replica_ms = int(fsync_timeout * 1000), int(replica_timeout * 1000)
        self._next = 0  # the lane of the next unpinned call: round robin
        self._tasks: list[asyncio.Task[None]] = []
        self.stopped = True  # until started: a call then fails at once instead of waiting for nobody
        self.batches = 0  # writes
        self.calls = 0

    async def start(self) -> None:
        self.stopped = False
        try:
            for lane in self.lanes:
                await self._ensure_connected(lane)
        except BaseException:
            await self.stop()
            raise
        self._tasks = [asyncio.create_task(self._run(lane), name=f"script-writer-{n}")
                       for n, lane in enumerate(self._every)]
        self._tasks.append(asyncio.create_task(self._watchdog(), name="script-writer-watchdog"))

    async def stop(self) -> None:
        self.stopped = True
        tasks = self._tasks + [lane.reader for lane in self._every if lane.reader is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        for lane in self._every:
            lane.reader = None
            _fail(lane.queue, StorageUnavailable("shutting down"))
            _fail(lane.inflight, StorageUnavailable("shutting down"))
            await lane.conn.close()

    async def _ensure_connected(self, lane: _Lane) -> None:
        if lane.conn.connected and lane.reader is not None and not lane.reader.done():
            return
        if lane.reader is not None:  # the old connection's reader: what was in flight there is lost with it
            lane.reader.cancel()
            lane.reader = None
        _fail(lane.inflight, StorageUnavailable("connection lost"))
        await lane.conn.close()
        await lane.conn.connect()
        for reply in await lane.conn.roundtrip([pack(*load) for load in _LOAD_ALL]):
            if isinstance(reply, RespError):
                await lane.conn.close()
                raise reply
        lane.inflight = deque()
        lane.reloaded = lane.written
        lane.reader = asyncio.create_task(self._read(lane, lane.inflight), name="script-writer-reader")

    def call(self, script: str, keys: list[str], args: list[Any], ack: int | None = None) -> asyncio.Future[Any]:
        """Queue one script call; the future resolves to its result (once as durable as ``ack`` asks, by default
        the writer's) or raises StorageUnavailable."""
        return self._queue(Call(script, keys, args, asyncio.get_running_loop().create_future(),
                                self.ack if ack is None else ack))

    def command(self, *args: bytes | str | int | float, ack: int | None = None) -> asyncio.Future[Any]:
        """Queue one plain command (``HSET``, ``XACK``...), streamed with the script calls like them."""
        return self._queue(Call("", [], list(args), asyncio.get_running_loop().create_future(),
                                self.ack if ack is None else ack))

    def _queue(self, call: Call) -> asyncio.Future[Any]:
        assert call.future is not None
        if self.stopped:
            call.future.set_exception(StorageUnavailable("the writer is stopped"))
            return call.future
        pinned = LANE.get()
        if call.ack & FSYNC:
            lane = self.fsync_lane
        else:
            if pinned is None:
                pinned = self._next = (self._next + 1) % len(self.lanes)
            lane = self.lanes[pinned % len(self.lanes)]
        lane.queue.append(call)
        lane.wake.set()
        return call.future

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """The :class:`server.db.scripts.ScriptRunner` interface: one call, streamed with everyone else's."""
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
            await self._send(lane, batch)

    async def _send(self, lane: _Lane, batch: list[Call]) -> None:
        written = False
        try:
            await self._ensure_connected(lane)
            # a caller that gave up (cancelled: its lease lost, its flush failed) must not have its write land
            # later, even one that gave up while the lane was connecting
            batch = [call for call in batch if call.future is None or not call.future.done()]
            self._write(lane, batch)
            written = True
            await lane.conn.drain()
        except (OSError, ConnectionError, TimeoutError, RespError) as exc:
            log.warning("storage unavailable: %s", exc)
            if not written:
                _fail(batch, StorageUnavailable(str(exc) or type(exc).__name__))
        except BaseException:  # stopped while connecting: what was taken from the queue fails with the rest
            if not written:
                _fail(batch, StorageUnavailable("shutting down"))
            raise

    def _write(self, lane: _Lane, batch: list[Call]) -> None:
        packed, sent = [], []
        for call in batch:
            try:
                packed.append(pack("EVALSHA", SHAS[call.script], len(call.keys), *call.keys, *call.args)
                              if call.script else pack(*call.args))
                sent.append(call)
            except Exception as exc:  # noqa: BLE001 - an argument that cannot be packed fails its own call only
                if call.future is not None and not call.future.done():
                    call.future.set_exception(exc)
        if not sent:
            return
        durable = [call for call in sent if call.ack and call.future is not None]
        if durable:
            for barrier in self._barriers(durable):
                packed.append(pack(*barrier.args))
                sent.append(barrier)
        lane.conn.send(packed)
        if not lane.inflight:
            lane.progress = asyncio.get_running_loop().time()
        for call in sent:
            lane.written += 1
            call.written = lane.written
        lane.inflight.extend(sent)
        self.batches += 1
        self.calls += len(sent)

    def _barriers(self, durable: list[Call]) -> list[Call]:
        """The commands that make the durable calls' writes as durable as they asked, each with the test of its
        reply. They run after the calls on the same connection, so they cover them."""
        need = 0
        for call in durable:
            need |= call.ack
        barriers = []
        if need & FSYNC:
            barrier = Call("", [], ["WAITAOF", 1, 0, self.fsync_ms], None)
            barrier.check = lambda reply: isinstance(reply, list) and int(reply[0]) >= 1
            barriers.append(barrier)
        if need & REPLICA:
            barrier = Call("", [], ["WAIT", 1, self.replica_ms], None)
            barrier.check = lambda reply: isinstance(reply, int) and reply >= 1
            barriers.append(barrier)
        for barrier in barriers:
            barrier.held = durable
        return barriers

    @staticmethod
    def _barrier(barrier: Call, reply: Any, last: bool) -> None:
        held = barrier.held or []
        if isinstance(reply, RespError) or not barrier.check(reply):
            why = str(reply) if isinstance(reply, RespError) else f"{barrier.args[0]} answered {reply!r}"
            _fail(list(held), StorageUnavailable(f"the write could not be made durable as asked: {why}"))
            return
        if last:
            for call in held:
                if call.reply is not _UNSET and call.future is not None and not call.future.done():
                    call.future.set_result(call.reply)

    async def _read(self, lane: _Lane, inflight: deque[Call]) -> None:
        """Resolve the calls in flight on one connection with their replies, in order, until it fails."""
        conn, loop = lane.conn, asyncio.get_running_loop()
        try:
            while True:
                replies = await conn.replies()
                lane.progress = loop.time()
                for reply in replies:
                    call = inflight.popleft()
                    if call.held is not None:  # the last barrier of its batch decides
                        self._barrier(call, reply, not inflight or inflight[0].held is not call.held)
                    elif isinstance(reply, RespError):
                        self._error(lane, call, reply)
                    elif call.future is not None and not call.future.done():
                        if call.ack:
                            call.reply = reply  # answered; acked once its barrier says it is durable
                        else:
                            call.future.set_result(reply)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the connection is gone or out of step: fail what it carried
            if inflight:
                log.warning("storage unavailable: %s", exc)
            _fail(inflight, StorageUnavailable(str(exc) or type(exc).__name__))
            conn.abort()

    def _error(self, lane: _Lane, call: Call, reply: RespError) -> None:
        if call.future is None or call.future.done():
            return  # a script load of our own (its call fails on its own if it did not take), or a caller gone
        if call.script and not call.retried and str(reply).startswith("NOSCRIPT"):
            # the server lost its scripts (restarted, flushed): load them once more ahead of this second try,
            # unless that was done after this call was written
            call.retried = True
            try:
                if call.written > lane.reloaded:
                    self._write(lane, [Call("", [], list(load), None) for load in _LOAD_ALL])
                    lane.reloaded = lane.written
                self._write(lane, [call])
            except (OSError, ConnectionError) as exc:
                call.future.set_exception(StorageUnavailable(str(exc) or type(exc).__name__))
            return
        call.future.set_exception(ResponseError(str(reply)))  # as redis-py would raise it

    async def _watchdog(self) -> None:
        """A connection whose replies stopped coming for REPLY_TIMEOUT while calls wait is dropped: its calls
        fail (StorageUnavailable) instead of hanging, and the next write connects again."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            for lane in self._every:
                if lane.inflight and loop.time() - lane.progress > REPLY_TIMEOUT:
                    log.warning("storage unavailable: no reply in %.0fs", REPLY_TIMEOUT)
                    lane.conn.abort()


def _fail(calls: deque[Call] | list[Call], exc: BaseException) -> None:
    """Fail the calls (oldest first), and those a barrier among them stood for, and empty ``calls``."""
    for call in calls:
        if call.future is not None and not call.future.done():
            call.future.set_exception(exc)
        for held in call.held or ():
            if held.future is not None and not held.future.done():
                held.future.set_exception(exc)
    calls.clear()
