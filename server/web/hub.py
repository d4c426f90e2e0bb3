"""The notice hub: every web process runs one, which tails the notices stream and hands each push to the
connected phones of its tour. A phone that reconnects with ``?since=<seq>`` first gets what it missed after that
seq, then the live feed, each push once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from guide_app_api.endpoints import PhoneConnection, SharedFrame
from server.core import keys
from server.core.keys import parse_seq

log = logging.getLogger(__name__)

# a catch-up reads this many entries after `since` (all tours together, before filtering) and no more, as
# docs/protocol.md says: one bounded read per connect, however old `since` is (`?since=0` paged through the whole
# stream before, 0.45 CPU-seconds a connect)
CATCH_UP_LIMIT = 1000


def addressed_to(push: dict[str, Any], conn: PhoneConnection) -> bool:
    role = conn.who.role
    audience = push.get("audience", "travellers")
    if audience != "all" and audience != ("guides" if role == "guide" else "travellers"):
        return False
    to = push.get("to")
    # several people of the tour: a check's repeat goes to those who have not answered (§11), the second prompt
    # to rate to those who have not rated (§10)
    if isinstance(to, list | frozenset):
        return conn.who.sub in to
    return to is None or to == conn.who.sub


def frame_of(push: dict[str, Any], seq: str) -> SharedFrame:
    """What a phone receives: the push without its routing fields, plus its seq (to resume from); encoded once per
    encoding however many phones it goes to."""
    frame = SharedFrame((k, v) for k, v in push.items() if k not in ("audience", "to"))
    frame["seq"] = seq
    return frame


class NoticeHub:
    def __init__(self, redis: aioredis.Redis, block: float = 1.0, send_queue: int = 256) -> None:
        self.redis = redis
        self.send_queue = send_queue
        # called for a phone with more than ``send_queue`` pushes waiting (the app closes it with 1013)
        self.overflow: Callable[[PhoneConnection], None] = lambda conn: None
        self.block_ms = int(block * 1000)
        self.by_tour: dict[str, set[PhoneConnection]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()  # strong references, or the loop may drop them
        self.delivered = 0
        self.on_push: Callable[[dict[str, Any]], None] | None = None  # §11: sees every push before delivery

    def attach(self, conn: PhoneConnection, since: str | None) -> None:
        for tour_id in conn.who.tours:
            self.by_tour[tour_id].add(conn)
        if since:
            # created before any live push can be, and it takes the connection's lock first: so live pushes
            # wait behind the catch-up and are dropped if it already sent them
            conn.catch_up = asyncio.create_task(self._catch_up(conn, since))

    def detach(self, conn: PhoneConnection) -> None:
        for tour_id in conn.who.tours:
            members = self.by_tour.get(tour_id)
            if members is not None:
                members.discard(conn)
                if not members:
                    del self.by_tour[tour_id]
        if conn.catch_up is not None:
            conn.catch_up.cancel()
        conn.outbox = ()  # what it did not get it gets on resuming
        if conn.pusher is not None:
            conn.pusher.cancel()

    async def _catch_up(self, conn: PhoneConnection, since: str) -> None:
        async with conn.lock:
            try:
                start = parse_seq(since)
            except ValueError:
                return
            conn.last_seq = max(conn.last_seq, start)
            try:
                entries = await self.redis.xrange(keys.NOTICES, min=f"({start[0]}-{start[1]}", count=CATCH_UP_LIMIT)
            except RedisError as exc:
                log.warning("notice catch-up failed: %s", exc)
                return
            for raw_seq, fields in entries:
                push = json.loads(fields[b"n"])
                if push.get("tour_id") in conn.who.tours and addressed_to(push, conn):
                    seq = raw_seq.decode()
                    with contextlib.suppress(Exception):
                        await conn.push_locked(frame_of(push, seq), parse_seq(seq))

    async def start(self) -> None:
        last = await self.redis.xrevrange(keys.NOTICES, count=1)
        last_id = last[0][0].decode() if last else "0-0"
        self._task = asyncio.create_task(self._tail(last_id), name="notice-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _tail(self, last_id: str) -> None:
        while True:
            try:
                result = await self.redis.xread({keys.NOTICES: last_id}, count=500, block=self.block_ms)
            except RedisError as exc:
                log.warning("notice hub: %s; retrying", exc)
                await asyncio.sleep(1.0)
                continue
            for _stream, entries in result or ():
                for raw_seq, fields in entries:
                    last_id = raw_seq.decode()
                    self._deliver(json.loads(fields[b"n"]), last_id)

    def _deliver(self, push: dict[str, Any], seq: str) -> None:
        if self.on_push is not None:
            self.on_push(push)
        conns = self.by_tour.get(push.get("tour_id", ""))
        if not conns:
            return
        if isinstance(push.get("to"), list):
            push["to"] = frozenset(push["to"])  # one lookup per phone, however long the list
        frame = frame_of(push, seq)
        key = parse_seq(seq)
        for conn in list(conns):
            if addressed_to(push, conn):
                outbox = conn.outbox
                if len(outbox) >= self.send_queue:
                    self.overflow(conn)  # it stopped reading: holding more for it would grow without bound
                    continue
                self.delivered += 1
                if not outbox:  # nothing waiting: its deque is made now (an idle phone holds none, see PhoneConnection)
                    outbox = conn.outbox = deque()
                outbox.append((frame, key))  # the frame itself is shared by every phone it goes to
                if conn.pusher is None:
                    conn.pusher = task = asyncio.create_task(self._drain(conn))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)

    @staticmethod
    async def _drain(conn: PhoneConnection) -> None:
        """Write a phone's waiting pushes in order: one task per phone with pushes waiting, not one per push."""
        try:
            while conn.outbox:
                frame, key = conn.outbox[0]
                try:
                    await conn.push(frame, key)
                except Exception:  # noqa: BLE001 - a phone that went away misses the live copies; it resumes
                    conn.outbox = ()
                    return
                if conn.outbox:
                    conn.outbox.popleft()
        finally:
            conn.pusher = None
            if not conn.outbox:
                conn.outbox = ()  # all written: the deque goes until a push waits again
