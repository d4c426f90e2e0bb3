"""``tourpulse dev-cluster`` as a child process, for the cluster tests and the cluster benchmark: one way to start
it on free ports, read its ``REDIS_URL`` line and stop it."""

from __future__ import annotations

import contextlib
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from server.db.cluster_dev import ports_free

START_TIMEOUT = 90.0  # a cluster slower than this to serve every slot counts as not started


def free_base_port(nodes: int = 6) -> int:
    """A first port whose nodes' ports and cluster bus ports (+10000) are free, below the ephemeral range."""
    for _ in range(200):
        base = random.randrange(12000, 20000)
        if ports_free(list(range(base, base + nodes))):
            return base
    raise RuntimeError("no free port range for a cluster")


def start_dev_cluster(folder: Path, *args: str) -> tuple[str, subprocess.Popen[str]]:
    """Start it and wait for the one line it prints once every slot is served: (REDIS_URL, process)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "dev-cluster", "--port", str(free_base_port()), "--dir", str(folder),
         *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + START_TIMEOUT
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("REDIS_URL=") or time.monotonic() > deadline:
        stop_dev_cluster(proc)
        raise RuntimeError(f"dev-cluster did not start: {line!r}, exit {proc.poll()}")
    return line.strip().removeprefix("REDIS_URL="), proc


def stop_dev_cluster(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.contextmanager
def running_dev_cluster(folder: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    url, proc = start_dev_cluster(folder, *args)
    try:
        yield url, proc
    finally:
        stop_dev_cluster(proc)
