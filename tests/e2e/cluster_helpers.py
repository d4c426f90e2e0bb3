"""Talk to the nodes of a ``tourpulse dev-cluster`` the tests started (``running_dev_cluster``, as the bench does)."""

from __future__ import annotations

import redis

from server.db.client import target
from server.tools.dev_cluster_process import running_dev_cluster  # noqa: F401 - the tests' way in


def node_clients(url: str) -> list[redis.Redis]:
    where = target(url)
    return [redis.Redis(host=h, port=p, username=where.username, password=where.password, socket_timeout=5.0)
            for h, p in where.seeds]


def primaries(url: str) -> list[redis.Redis]:
    out = []
    for client in node_clients(url):
        try:
            if client.info("replication")["role"] == "master":
                out.append(client)
                continue
        except redis.RedisError:
            pass
        client.close()
    return out


def flush_cluster(url: str) -> None:
    for client in primaries(url):
        client.flushall()
        client.close()
