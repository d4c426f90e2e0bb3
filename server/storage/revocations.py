"""Token revocations as stored data (contract §13): refuse every token of a sub (and role) issued up to a moment.

An admin's ``POST /api/tokens/revoke`` writes the moment into one hash and bumps a version beside it, in one
MULTI (one slot). Each web process keeps a copy of the hash, re-read when the version moves
(:meth:`Revocations.refresh`, polled by ``server.web.sessions``), so that the check on every connect and request
is a dict lookup, and open connections of a revoked token are found and closed within the poll interval.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from server.core import keys


class Revocations:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.version = -1
        self.by_field: dict[str, int] = {}  # revoked_field -> epoch ms

    async def revoke(self, sub: str, role: str | None, now_ms: int, keep_s: float) -> None:
        """Refuse every token of ``sub`` (of ``role``, else every role) issued at or before ``now_ms``."""
        field = keys.revoked_field(sub, role)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.REVOKED, field, now_ms)
            pipe.incr(keys.REVOKED_VERSION)
            await pipe.execute()
        self.by_field[field] = max(self.by_field.get(field, 0), now_ms)
        await self._prune(now_ms, keep_s)

    async def _prune(self, now_ms: int, keep_s: float) -> None:
        # a revocation older than the longest token lifetime can refuse no live token: let the hash stay small
        stale = [f for f, ms in self.by_field.items() if ms < now_ms - keep_s * 1000]
        if stale:
            await self.redis.hdel(keys.REVOKED, *stale)
            for field in stale:
                self.by_field.pop(field, None)

    async def refresh(self) -> bool:
        """Re-read the hash if another process revoked something; True when the copy changed."""
        raw = await self.redis.get(keys.REVOKED_VERSION)
        version = int(raw or 0)
        if version == self.version:
            return False
        entries: dict[Any, Any] = await self.redis.hgetall(keys.REVOKED)
        self.by_field = {k.decode(): int(v) for k, v in entries.items()}
        self.version = version
        return True

    def refuses(self, role: str, sub: str, iat: int) -> bool:
        """Pure check against the local copy: was this token issued at or before a revocation of its sub?"""
        by_field = self.by_field
        if not by_field:
            return False
        for field in (keys.revoked_field(sub, role), keys.revoked_field(sub, None)):
            ms = by_field.get(field)
            if ms is not None and iat <= ms:
                return True
        return False
