"""The hot paths on a Redis/Valkey Cluster: the pipelined writer and the shard readers, routed by slot.

Control paths use redis-py's ``RedisCluster`` (:func:`server.db.client.redis_client`). The hot paths keep their raw
connections (docs/performance.md: redis-py's machinery was a fifth of a web process's CPU at load), one
:class:`ScriptWriter` per primary, and route each call by the CRC16 slot of its first key (every script's keys
share one hash tag, docs/design.md). What moves:

- ``MOVED``: the slot's new owner is remembered, the whole map is read again, and the call is sent there;
- ``ASK`` (a slot being migrated): the call goes to the named node once, behind ``ASKING`` on the same connection;
- a node that stops answering (a primary killed): its calls fail as StorageUnavailable (every caller retries
  idempotently: phones get ``unavailable``) and the map is read again, every half second while it keeps
  failing, until the replica promoted in its place owns its slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from redis.crc import key_slot
from redis.exceptions import ResponseError

from server.db.client import Target, target
from server.db.resp import RespConnection, RespError, pack
from server.db.writer import LANE, WRITE, ScriptWriter, StorageUnavailable

log = logging.getLogger(__name__)

SLOTS = 16384
MAX_REDIRECTS = 5
REFRESH_EVERY_S = 0.5  # at most this often while calls keep failing
Node = tuple[str, int]


def slot_of(key: str | bytes) -> int:
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def parse_redirect(message: str) -> tuple[str, int, Node] | None:
    """``MOVED 3999 127.0.0.1:6381`` -> ("MOVED", 3999, ("127.0.0.1", 6381)); None for any other error."""
    parts = message.split()
    if len(parts) != 3 or parts[0] not in ("MOVED", "ASK"):
        return None
    host, _, port = parts[2].rpartition(":")
    return parts[0], int(parts[1]), (host, int(port))


async def read_slots(where: Target, nodes: Sequence[Node]) -> list[Node]:
    """Each slot's primary, from the first of ``nodes`` (then the seeds) that answers ``CLUSTER SLOTS``."""
    errors = []
    for host, port in dict.fromkeys([*nodes, *where.seeds]):
        conn = RespConnection(where.node_url(host, port))
        try:
            await conn.connect()
            (reply,) = await conn.roundtrip([pack("CLUSTER", "SLOTS")], timeout=2.0)
        except (OSError, ConnectionError, TimeoutError, RespError) as exc:
            errors.append(f"{host}:{port}: {exc or type(exc).__name__}")
            continue
        finally:
            await conn.close()
        if isinstance(reply, RespError):
            errors.append(f"{host}:{port}: {reply}")
            continue
        owners: list[Node] = [("", 0)] * SLOTS
        for start, end, primary, *_replicas in reply:
            node = ((primary[0].decode() or host), int(primary[1]))
            owners[int(start):int(end) + 1] = [node] * (int(end) - int(start) + 1)
        if ("", 0) not in owners:
            return owners
        errors.append(f"{host}:{port}: not every slot is served")
    raise StorageUnavailable("no cluster node could tell the slot map: " + "; ".join(errors))


class ClusterWriter:
    """The :class:`ScriptWriter` interface over a cluster: one writer per primary, calls routed by slot."""

    def __init__(self, url: str, max_batch: int = 256, lanes: int = 1, *, ack: int = WRITE, **kw: Any) -> None:
        self.where = target(url)
        self._make = lambda node: ScriptWriter(self.where.node_url(*node), max_batch, lanes, ack=ack, **kw)
        self.ack = ack
        self.writers: dict[Node, ScriptWriter] = {}
        self.owners: list[Node] = []
        self.stopped = True
        self._refreshing: asyncio.Task[None] | None = None
        self._last_refresh = 0.0
        self.redirects = 0

    @property
    def batches(self) -> int:
        return sum(w.batches for w in self.writers.values())

    @property
    def calls(self) -> int:
        return sum(w.calls for w in self.writers.values())

    async def start(self) -> None:
        self.stopped = False
        await self.refresh()

    async def stop(self) -> None:
        self.stopped = True
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refreshing
        for writer in list(self.writers.values()):
            await writer.stop()
        self.writers.clear()

    async def refresh(self) -> None:
        """Read the slot map; start a writer for a new primary, stop those of nodes that own no slot now (their
        queued calls fail as StorageUnavailable: retried by their callers, to the new owner)."""
        self._last_refresh = asyncio.get_running_loop().time()
        owners = await read_slots(self.where, list(self.writers))
        primaries = set(owners)
        for node in primaries - set(self.writers):
            writer = self._make(node)
            await writer.start()
            self.writers[node] = writer
        self.owners = owners
        for node in set(self.writers) - primaries:
            await self.writers.pop(node).stop()

    def _refresh_soon(self) -> None:
        if self.stopped or (self._refreshing is not None and not self._refreshing.done()):
            return
        self._refreshing = asyncio.create_task(self._refresh_later(), name="cluster-refresh")

    async def _refresh_later(self) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, self._last_refresh + REFRESH_EVERY_S - loop.time()))
        try:
            await self.refresh()
        except Exception as exc:  # noqa: BLE001 - the next failing call asks again
            log.warning("cluster: reading the slot map failed: %s", exc)

    # --- calls ----------------------------------------------------------------------------------------------
    def call(self, script: str, keys: list[str], args: list[Any], ack: int | None = None) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._route(future, keys[0] if keys else None, script, keys, args, ack, 0, None)
        return future

    def command(self, *args: bytes | str | int | float, ack: int | None = None) -> asyncio.Future[Any]:
        """A plain command whose key is its first argument (``HSET key ...``, ``XACK key ...``)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._route(future, str(args[1]) if len(args) > 1 else None, "", [], list(args), ack, 0, None)
        return future

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self.call(name, list(keys), list(args))

    def _route(self, future: asyncio.Future[Any], key: str | None, script: str, keys: list[str], args: list[Any],
               ack: int | None, hops: int, asking: Node | None) -> None:
        if self.stopped or not self.owners:
            future.set_exception(StorageUnavailable("the writer is stopped"))
            return
        if key is None:
            future.set_exception(ResponseError("a call on a cluster needs a key to route it by"))
            return
        node = asking or self.owners[slot_of(key)]
        writer = self.writers.get(node)
        if writer is None:  # an ASK to a node we do not write to: it owns no slot yet
            future.set_exception(StorageUnavailable(f"no connection to {node[0]}:{node[1]}"))
            self._refresh_soon()
            return
        if asking is not None:
            # ASKING and the call on one lane, back to back: the lane writes them in that order
            token = LANE.set(0)
            try:
                writer.command("ASKING", ack=writer.ack if ack is None else ack)  # to the call's own lane
                inner = writer.call(script, keys, args, ack) if script else writer.command(*args, ack=ack)
            finally:
                LANE.reset(token)
        else:
            inner = writer.call(script, keys, args, ack) if script else writer.command(*args, ack=ack)
        inner.add_done_callback(lambda done: self._settle(done, future, key, script, keys, args, ack, hops))

    def _settle(self, inner: asyncio.Future[Any], future: asyncio.Future[Any], key: str, script: str,
                keys: list[str], args: list[Any], ack: int | None, hops: int) -> None:
        if future.done():
            if not inner.cancelled():
                inner.exception()  # the caller gave up: take the outcome so it is not reported as never retrieved
            return
        if inner.cancelled():
            future.cancel()
            return
        exc = inner.exception()
        if exc is None:
            future.set_result(inner.result())
            return
        redirect = parse_redirect(str(exc)) if isinstance(exc, ResponseError) else None
        if redirect is not None and hops < MAX_REDIRECTS:
            kind, slot, node = redirect
            self.redirects += 1
            if kind == "MOVED":
                self._refresh_soon()
                if node not in self.writers:  # a replica promoted since the map was read: connect to it first
                    task = asyncio.ensure_future(self._adopt(node))
                    task.add_done_callback(lambda done: self._adopted(done, node, slot, future, key, script, keys,
                                                                       args, ack, hops))
                    return
                self.owners[slot] = node
                self._route(future, key, script, keys, args, ack, hops + 1, None)
            else:
                self._route(future, key, script, keys, args, ack, hops + 1, node)
            return
        if isinstance(exc, StorageUnavailable) or str(exc).startswith(("CLUSTERDOWN", "TRYAGAIN", "READONLY")):
            self._refresh_soon()  # a node down, or a failover under way
        future.set_exception(exc)


    async def _adopt(self, node: Node) -> None:
        if node not in self.writers:
            writer = self._make(node)
            await writer.start()
            if node in self.writers or self.stopped:  # another call adopted it meanwhile, or we are stopping
                await writer.stop()
            else:
                self.writers[node] = writer

    def _adopted(self, done: asyncio.Future[None], node: Node, slot: int, future: asyncio.Future[Any], key: str,
                 script: str, keys: list[str], args: list[Any], ack: int | None, hops: int) -> None:
        failed = done.cancelled() or done.exception() is not None
        if future.done():
            return
        if failed or node not in self.writers:
            why = "cancelled" if done.cancelled() else str(done.exception() or "stopping")
            future.set_exception(StorageUnavailable(f"could not reach the slot's new owner: {why}"))
            return
        if self.owners:
            self.owners[slot] = node
        self._route(future, key, script, keys, args, ack, hops + 1, None)


def make_writer(url: str, max_batch: int = 256, lanes: int = 1, **kw: Any) -> ScriptWriter | ClusterWriter:
    """The pipelined writer for ``url``: routed by slot on a cluster."""
    if target(url).cluster:
        return ClusterWriter(url, max_batch, lanes, **kw)
    return ScriptWriter(url, max_batch, lanes, **kw)


class KeyConnection(RespConnection):
    """A raw connection to whichever primary owns ``key``'s slot (the watcher's reader of one shard's stream).

    It looks the owner up on every connect; a ``MOVED`` or ``ASK`` reply closes it, so the caller's retry
    connects to the new owner."""

    def __init__(self, where: Target, key: str) -> None:
        super().__init__("")
        self.where, self.key = where, key
        self._known: list[Node] = []

    async def connect(self) -> None:
        owners = await read_slots(self.where, self._known)
        node = owners[slot_of(self.key)]
        self._known = [node, *dict.fromkeys(o for o in owners if o != node)]
        self.url = self.where.node_url(*node)
        await super().connect()

    async def roundtrip(self, commands: list[bytes], timeout: float = 5.0) -> list[Any]:
        replies = await super().roundtrip(commands, timeout)
        if any(isinstance(r, RespError) and parse_redirect(str(r)) for r in replies):
            await self.close()
        return replies


def key_connection(url: str, key: str) -> RespConnection:
    """A raw connection for commands on ``key`` alone: to the one server, or to the key's primary."""
    where = target(url)
    return KeyConnection(where, key) if where.cluster else RespConnection(url)
