"""§13 at the process level: short secrets refused by every entry point, private files, and `serve` supervising
its embedded server (restart with acked data intact; exit non-zero after 5 deaths in a minute)."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from server.db.embedded import free_port, give_up
from tests.conftest import token, tour_doc
from tests.e2e.test_ingest_ws import ask, phone, rating
from tests.e2e.test_push_and_serve import _until_up, serve_process

WAIT = 20.0  # the longest any one condition may take to come true on a loaded machine; never a measured time

ENTRY_POINTS = {
    "serve": [sys.executable, "-m", "server.cli", "serve", "--port", "0"],
    "token": [sys.executable, "-m", "server.cli", "token", "--role", "admin", "--sub", "a"],
    "watcher": [sys.executable, "-m", "alerts"],
    "web": [sys.executable, "-m", "uvicorn", "server.app:app", "--port", "0"],
}


def _env(tmp_path: Path, secret: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TOURPULSE_SECRET", "TOURPULSE_CONFIG")}
    env.update(TOURPULSE_DATA_DIR=str(tmp_path / "var"), REDIS_URL="redis://127.0.0.1:1/0")
    if secret is not None:
        env["TOURPULSE_SECRET"] = secret
    return env


@pytest.mark.parametrize("secret", ["", "fifteen-bytes!!", None], ids=["empty", "short", "empty-key-file"])
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_refuses_an_empty_or_short_secret(tmp_path: Path, entry: str, secret: str | None) -> None:
    env = _env(tmp_path, secret)
    if entry == "serve":
        env.pop("REDIS_URL")
    if secret is None:  # the dev key file exists but is empty
        (tmp_path / "var").mkdir()
        (tmp_path / "var" / "secret.key").write_text("\n")
    done = subprocess.run(ENTRY_POINTS[entry], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "secret" in done.stderr and "16 bytes" in done.stderr
    assert done.stdout == ""  # no token printed, nothing served


def _kill_valkey(data_dir: Path) -> None:
    client = redis.Redis.from_url((data_dir / "redis.url").read_text().strip(), socket_timeout=2)
    try:
        pid = int(client.info("server")["process_id"])
    finally:
        client.close()
    os.kill(pid, signal.SIGKILL)


async def _until_down(base: str) -> None:
    async with asyncio.timeout(WAIT), httpx.AsyncClient(base_url=base) as client:
        while (await client.get("/readyz")).status_code == 200:
            await asyncio.sleep(0.05)


async def test_serve_restarts_a_dead_embedded_server_then_gives_up_after_five_deaths(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = serve_process(tmp_path, port, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        await _until_up(base)
        # private files: the data dir 0700, the AOF files 0600
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
        aof = [p for p in (tmp_path / "redis").rglob("*") if p.is_file() and "appendonly" in p.name]
        assert aof and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in aof)
        assert stat.S_IMODE((tmp_path / "redis").stat().st_mode) == 0o700
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.put("/api/tours/T1", json=tour_doc(),
                                     headers={"Authorization": f"Bearer {token('admin', 'ops')}"})).status_code == 200
        sent = [rating(f"r{i}", 4) for i in range(5)]
        async with await phone(base, "traveller", "t1") as ws:
            acks = [await ask(ws, msg, True) for msg in sent]
        _kill_valkey(tmp_path)
        await _until_down(base)
        await _until_up(base)  # restarted, on the same port and files
        async with await phone(base, "traveller", "t1") as ws:
            again = [await ask(ws, msg, True) for msg in sent]
        assert [a["seq"] for a in again] == [a["seq"] for a in acks]  # every acked event is still there
        assert all(a["duplicate"] for a in again)
        for _death in range(4):  # four more deaths within the minute: it stops, non-zero
            await _until_up(base)
            _kill_valkey(tmp_path)
            await _until_down(base)
        code = await asyncio.to_thread(proc.wait, WAIT)
        assert code != 0
        assert proc.stderr is not None
        log = proc.stderr.read()
        assert "giving up" in log
        assert log.count("\n") < 400  # rate-limited: not a line per retry of every loop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def test_giving_up_counts_deaths_within_the_window_only() -> None:
    assert not give_up([0.0, 1.0, 2.0, 3.0], 3.0)
    assert give_up([0.0, 1.0, 2.0, 3.0, 4.0], 4.0)
    assert not give_up([0.0, 1.0, 2.0, 3.0, 70.0], 70.0)
