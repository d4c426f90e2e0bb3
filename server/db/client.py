"""How every process builds its Redis clients: one place, so web, watcher and tools agree."""

from __future__ import annotations

import redis.asyncio as aioredis

# a blocking read must return before the socket times out (redis-py 8 defaults socket_timeout to 5 s)
TAIL_BLOCK_S = 1.0
TAIL_SOCKET_TIMEOUT_S = 10.0


def redis_client(url: str, *, tail: bool = False, max_connections: int = 64) -> aioredis.Redis:
    """A client whose pool waits instead of raising when busy (redis-py's default pool raises at 100)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10,
        socket_timeout=TAIL_SOCKET_TIMEOUT_S if tail else 5.0, socket_connect_timeout=5.0,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)
