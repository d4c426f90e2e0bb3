"""Start ``tourpulse dev-cluster`` as a real process and talk to its nodes (for the cluster tests and the bench)."""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from server.db.client import target
from server.db.cluster_dev import ports_free

START_TIMEOUT = 90.0


def free_base_port(nodes: int = 6) -> int:
    """A first port whose nodes' ports and cluster bus ports (+10000) are free, below the ephemeral range."""
    for _ in range(200):
        base = random.randrange(12000, 20000)
        if ports_free(list(range(base, base + nodes))):
            return base
    raise RuntimeError("no free port range for a cluster")


@contextlib.contextmanager
def running_dev_cluster(folder: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "dev-cluster", "--port", str(free_base_port()), "--dir", str(folder),
         *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the one line it prints once the cluster is ok
        if not line.startswith("REDIS_URL=") or time.monotonic() > deadline:
            raise RuntimeError(f"dev-cluster did not start: {line!r}, exit {proc.poll()}")
        yield line.strip().removeprefix("REDIS_URL="), proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


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
