"""How every process builds its Redis clients: one place, so web, watcher and tools agree.

``REDIS_URL`` names one server (``redis://``, ``rediss://``, ``unix://``) or a cluster (contract §14): the
``redis+cluster://`` scheme with comma-separated ``host:port`` seeds, or a ``redis://`` node whose ``INFO cluster``
says ``cluster_enabled:1``. Control paths get redis-py's ``RedisCluster`` there; the hot paths (the pipelined
writer, the watcher's shard readers) route by slot themselves (:mod:`server.db.cluster`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

# a blocking read must return before the socket times out (redis-py 8 defaults socket_timeout to 5 s)
TAIL_BLOCK_S = 1.0
TAIL_SOCKET_TIMEOUT_S = 10.0
CLUSTER_SCHEME = "redis+cluster"


@dataclass(frozen=True, slots=True)
class Target:
    """Where ``REDIS_URL`` points: one node, or a cluster's seeds."""

    cluster: bool
    seeds: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None
    tls: bool = False

    def node_url(self, host: str, port: int) -> str:
        """A ``redis://`` URL of one node of the cluster, with its credentials (for raw connections)."""
        auth = ""
        if self.password is not None:
            auth = f"{quote(self.username or '', safe='')}:{quote(self.password, safe='')}@"
        return f"{'rediss' if self.tls else 'redis'}://{auth}{host}:{port}/0"


def parse_cluster_url(url: str) -> Target:
    """``redis+cluster://[user:password@]host:port[,host:port...][/0]`` (urlsplit refuses several ports)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme != CLUSTER_SCHEME:
        raise ValueError(f"not a {CLUSTER_SCHEME}:// URL: {url!r}")
    auth, at, hosts = rest.rpartition("@")
    hosts = hosts.split("/", 1)[0].split("?", 1)[0]
    username: str | None = None
    password: str | None = None
    if at:
        user, colon, secret = auth.partition(":")
        username, password = (unquote(user) or None, unquote(secret)) if colon else (None, unquote(user))
    seeds = []
    for seed in hosts.split(","):
        host, colon, port = seed.strip().rpartition(":")
        if not colon or not port.isdigit() or not host:
            raise ValueError(f"REDIS_URL: a cluster seed must be host:port, not {seed!r}")
        seeds.append((host.strip("[]"), int(port)))
    return Target(cluster=True, seeds=tuple(seeds), username=username, password=password)


@functools.cache
def _probe(url: str) -> bool:
    """Whether the one node ``url`` names runs in cluster mode (asked once per process; a failure is not cached)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        return int(client.info("cluster").get("cluster_enabled", 0)) == 1
    finally:
        client.close()


def target(url: str) -> Target:
    """Where ``url`` points. A ``redis://`` node is asked (once) whether it belongs to a cluster; one that cannot
    be reached is taken as a single server (the process then fails to reach it like any other)."""
    if url.startswith(CLUSTER_SCHEME + "://"):
        return parse_cluster_url(url)
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss"):
        try:
            cluster = _probe(url)
        except (redis.RedisError, OSError):
            cluster = False
        if cluster:
            return Target(cluster=True, seeds=((parts.hostname or "127.0.0.1", parts.port or 6379),),
                          username=unquote(parts.username) if parts.username else None,
                          password=unquote(parts.password) if parts.password is not None else None,
                          tls=parts.scheme == "rediss")
    return Target(cluster=False, seeds=((parts.hostname or "", parts.port or 6379),))


def is_cluster(url: str) -> bool:
    return target(url).cluster


class _RedisCluster(RedisCluster):
    """redis-py's cluster client. While a primary is lost in a failover it sometimes raises from inside a connection
    torn down under a command (AttributeError: no writer; RuntimeError: the transport is closed; seen here): those
    are raised as the ConnectionError they are, which every caller already retries."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().execute_command(*args, **kwargs)
        except (AttributeError, RuntimeError) as exc:
            raise RedisConnectionError(f"cluster connection lost: {exc!r}") from exc


def redis_client(url: str, *, tail: bool = False, max_connections: int = 64) -> Any:
    """A client whose pool waits instead of raising when busy (redis-py's default pool raises at 100); on a
    cluster, redis-py's ``RedisCluster`` (MOVED, ASK and failovers are its business there)."""
    socket_timeout = TAIL_SOCKET_TIMEOUT_S if tail else 5.0
    where = target(url)
    if where.cluster:
        return _RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in where.seeds],
            username=where.username, password=where.password, ssl=where.tls,
            max_connections=max_connections, socket_timeout=socket_timeout, socket_connect_timeout=5.0,
            # after a primary dies, its slots move once its replica is promoted (seconds): keep asking meanwhile
            retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=1.0), retries=6),
        )
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=10,
        socket_timeout=socket_timeout, socket_connect_timeout=5.0,
        health_check_interval=30,
    )
    return aioredis.Redis(connection_pool=pool)


async def close_client(client: Any) -> None:
    """Close a client of :func:`redis_client` and its connections (a cluster client has no pool argument)."""
    if isinstance(client, RedisCluster):
        await client.aclose()
    else:
        await client.aclose(close_connection_pool=True)
