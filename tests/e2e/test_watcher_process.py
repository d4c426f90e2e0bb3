"""`python -m alerts` as production runs it (Procfile `watcher:`): serves its own /metrics on PORT, stops on
SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx

from server.db.embedded import free_port
from tests.conftest import SECRET

WAIT = 20.0


async def test_the_watcher_process_serves_metrics_and_stops_on_sigterm(redis_url: str, tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "PORT": str(port), "TOURPULSE_SECRET": SECRET.decode(),
           "TOURPULSE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "alerts"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client, asyncio.timeout(WAIT):
            while True:
                try:
                    health = await client.get("/healthz")
                    if health.status_code == 200 and health.json()["shards"]:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            text = (await client.get("/metrics")).text
        assert "# TYPE tourpulse_deadlines_fired_total counter" in text
        assert len(health.json()["shards"]) == 16
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=WAIT)
    assert code == 0
