"""Every open WebSocket of this process, by sender: the per-sender cap, revocation and expiry (contract §13).

- A phone sender (``role:sub``) keeps at most ``[limits] connections_per_sender`` connections here: the next one
  closes its oldest with 1008 (a phone that reconnects after losing its network replaces its stale socket).
- Every ``POLL_S`` the process re-reads the revocations if another process changed them, and closes (1008) each
  open connection whose token is now refused, and each whose token has expired: a revoked or expired token never
  keeps a connection longer than a poll.

Boards are tracked for revocation and expiry too, but not capped (a supervisor may open several screens).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.exceptions import RedisError

from server.core.tokens import Claims
from server.storage.revocations import Revocations

log = logging.getLogger(__name__)

POLL_S = 1.0
CLOSE_POLICY = 1008

Closer = Callable[[int], Awaitable[None]]


@dataclass(eq=False, slots=True)  # one per open connection: slots keep it small
class Tracked:
    claims: Claims
    close: Closer
    capped: bool
    id: int = 0
    closed: bool = field(default=False)


class Sessions:
    def __init__(self, revocations: Revocations, connections_per_sender: int) -> None:
        self.revocations = revocations
        self.cap = connections_per_sender
        # insertion-ordered: the first entry is a sender's oldest connection (a plain dict is far smaller than an
        # OrderedDict, and most senders have one connection)
        self.by_sender: dict[str, dict[int, Tracked]] = {}
        self.open_: dict[int, Tracked] = {}
        self._expiries: list[tuple[float, int]] = []
        self._ids = itertools.count(1)
        self._closing: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.evicted = 0

    # --- connections ------------------------------------------------------------------------------------
    def open(self, claims: Claims, close: Closer, *, capped: bool) -> Tracked:
        entry = Tracked(claims, close, capped, next(self._ids))
        self.open_[entry.id] = entry
        heapq.heappush(self._expiries, (claims.exp, entry.id))
        if capped:
            mine = self.by_sender.setdefault(f"{claims.role}:{claims.sub}", {})
            mine[entry.id] = entry
            while len(mine) > self.cap:
                oldest = mine.pop(next(iter(mine)))
                self.evicted += 1
                self.close(oldest, CLOSE_POLICY)
        return entry

    def forget(self, entry: Tracked) -> None:
        entry.closed = True
        self.open_.pop(entry.id, None)
        if entry.capped:
            sender = f"{entry.claims.role}:{entry.claims.sub}"
            mine = self.by_sender.get(sender)
            if mine is not None:
                mine.pop(entry.id, None)
                if not mine:
                    del self.by_sender[sender]

    def open_for(self, sender: str) -> int:
        return len(self.by_sender.get(sender, ()))

    def close(self, entry: Tracked, code: int) -> None:
        if entry.closed:
            return
        self.forget(entry)
        task = asyncio.create_task(entry.close(code))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- the poll ---------------------------------------------------------------------------------------
    def sweep(self, now: float, revocations_changed: bool) -> int:
        """Close what expired by ``now`` and, if the revocations changed, what they now refuse."""
        closed = 0
        while self._expiries and self._expiries[0][0] <= now:
            _exp, entry_id = heapq.heappop(self._expiries)
            entry = self.open_.get(entry_id)
            if entry is not None:
                self.close(entry, CLOSE_POLICY)
                closed += 1
        if revocations_changed:
            for entry in list(self.open_.values()):
                claims = entry.claims
                if self.revocations.refuses(claims.role, claims.sub, claims.iat):
                    self.close(entry, CLOSE_POLICY)
                    closed += 1
        if len(self._expiries) > 2 * len(self.open_) + 1024:  # forgotten entries: rebuild now and then
            self._expiries = [(e.claims.exp, e.id) for e in self.open_.values()]
            heapq.heapify(self._expiries)
        return closed

    async def start(self) -> None:
        try:
            await self.revocations.refresh()
        except (RedisError, OSError) as exc:
            log.warning("revocations not read at start: %s", exc)
        self._task = asyncio.create_task(self._poll(), name="sessions")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            changed = False
            try:
                changed = await self.revocations.refresh()
            except (RedisError, OSError) as exc:
                log.warning("revocations not refreshed: %s", exc)
            self.sweep(time.time(), changed)
