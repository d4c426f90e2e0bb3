"""The ``tourpulse`` command: token, tours import and pool import against the real embedded Valkey.

(``serve`` is tested with the app, in tests of its own.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from server.cli import main
from server.core import keys
from server.core.access_log import RedactTokens, install_redaction, redact
from server.core.settings import Settings
from server.core.tokens import verify
from server.db.embedded import EmbeddedRedis
from server.storage.tours import Tour, TourRegistry

SECRET = "cli-test-secret-16+"
TOURS_CSV = """tour_id,route,region,guides,start,end,timezone,travellers
T1,Silk Road,cn-west,g1;g2,2025-05-01,2025-05-10,Asia/Shanghai,32
T2,Amalfi Coast,eu-south,g3,2025-06-01,2025-06-07,Europe/Rome,18
"""


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment for in-process runs of ``main``: own data dir and secret, no Redis named."""
    for name in ("REDIS_URL", "TOURPULSE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOURPULSE_SECRET", SECRET)
    monkeypatch.setenv("TOURPULSE_DATA_DIR", str(tmp_path / "var"))
    return tmp_path


def _read_tours(url: str) -> list[Tour]:
    async def read() -> list[Tour]:
        client = aioredis.Redis.from_url(url)
        try:
            return await TourRegistry(client, Settings()).list()
        finally:
            await client.aclose()

    return asyncio.run(read())


def test_token_subprocess_prints_one_verifiable_line(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TOURPULSE_CONFIG")}
    environ.update(TOURPULSE_SECRET=SECRET, TOURPULSE_DATA_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "token", "--role", "guide", "--sub", "g1", "--tour", "T1",
         "--tour", "T2", "--ttl", "2h"],
        env=environ, capture_output=True, text=True, check=True, timeout=60,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and done.stdout.endswith("\n")
    claims = verify(SECRET.encode(), lines[0], time.time())
    assert (claims.role, claims.sub, claims.tours) == ("guide", "g1", frozenset({"T1", "T2"}))


def test_token_regions(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--role", "supervisor", "--sub", "s1", "--region", "*"]) == 0
    claims = verify(SECRET.encode(), capsys.readouterr().out.strip(), 0.0)
    assert claims.regions == frozenset({"*"})


@pytest.mark.parametrize("args", [
    ["--role", "king", "--sub", "x"],
    ["--role", "guide", "--sub", "x", "--ttl", "soon"],
    ["--role", "guide", "--sub", "x", "--ttl", "0s"],
    ["--role", "guide", "--sub", ""],
])
def test_token_refuses_bad_arguments(env: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    try:
        code = main(["token", *args])
    except SystemExit as exc:  # argparse refuses a role outside its choices
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err


def test_tours_import_via_redis_url(env: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    path = env / "tours.csv"
    path.write_text(TOURS_CSV)
    assert main(["tours", "import", str(path)]) == 0
    assert "imported 2 tours (2 new or changed, 0 unchanged)" in capsys.readouterr().out
    tours = _read_tours(redis_url)
    assert [(t.tour_id, t.region, t.guides) for t in tours] == [("T1", "cn-west", ("g1", "g2")),
                                                                ("T2", "eu-south", ("g3",))]
    assert main(["tours", "import", str(path)]) == 0  # again: nothing changes
    assert "(0 new or changed, 2 unchanged)" in capsys.readouterr().out
    client = redis.Redis.from_url(redis_url)
    try:
        stream = keys.events(keys.shard_of("T1", Settings().storage.shards))
        assert client.xlen(stream) >= 1
    finally:
        client.close()


def test_bad_tours_file_exits_1_and_stores_nothing(env: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    path = env / "tours.csv"
    path.write_text(TOURS_CSV + "T3,Fjords,eu-north,,2025-07-03,2025-07-01,Europe/Oslo,5\n")
    assert main(["tours", "import", str(path)]) == 1
    err = capsys.readouterr().err
    assert "line 4: end" in err and "nothing imported" in err
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()


def test_import_finds_the_running_serve(env: Path, redis_url: str) -> None:
    data_dir = env / "var"
    data_dir.mkdir()
    (data_dir / "redis.url").write_text(redis_url + "\n")
    path = env / "tours.json"
    path.write_text('{"T9": {"route": "r", "region": "x", "start": "2025-01-01", "end": "2025-01-02",'
                    ' "timezone": "UTC", "travellers": 3}}')
    assert main(["tours", "import", str(path)]) == 0
    assert [t.tour_id for t in _read_tours(redis_url)] == ["T9"]


def test_import_without_a_server_starts_one_on_the_data_dir(env: Path) -> None:
    path = env / "tours.csv"
    path.write_text(TOURS_CSV)
    (env / "var").mkdir()
    (env / "var" / "redis.url").write_text("redis://127.0.0.1:1/0\n")  # a serve that is gone
    assert main(["tours", "import", str(path)]) == 0
    # the embedded server stopped with the command; its AOF keeps what was imported
    with EmbeddedRedis(env / "var") as server:
        assert [t.tour_id for t in _read_tours(server.url)] == ["T1", "T2"]


def test_bad_pool_file_exits_1(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = env / "pool.csv"
    path.write_text("resource_id,kind,region,capacity,partner,contact\nbus-1,bus,cn-west,40,P,C\n")
    assert main(["pool", "import", str(path)]) == 1
    assert "line 2: kind must be one of" in capsys.readouterr().err


# --- access-log redaction ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("/ws/board?token=v1.abc.def", "/ws/board?token=<redacted>"),
    ("/ws/board?since=1-0&token=v1.abc.def&x=1", "/ws/board?since=1-0&token=<redacted>&x=1"),
    ("/api/alerts?status=open", "/api/alerts?status=open"),
    ("/x?mytoken=keep", "/x?mytoken=keep"),
    ("Authorization: Bearer v1.abc.def", "Authorization: <redacted>"),
    ("{'authorization': 'Bearer v1.abc'}", "{'authorization': '<redacted>'}"),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_filter_redacts_uvicorn_records() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/ws/guide?token=v1.secret.sig", "1.1", 101), None)
    assert RedactTokens().filter(record)
    assert "v1.secret.sig" not in record.getMessage()
    assert "token=<redacted>" in record.getMessage()


def test_install_redaction_once() -> None:
    first = install_redaction()
    second = install_redaction()
    try:
        assert first is second
        for name in ("uvicorn.access", "uvicorn.error"):
            assert sum(isinstance(f, RedactTokens) for f in logging.getLogger(name).filters) == 1
    finally:
        for name in ("uvicorn.access", "uvicorn.error"):
            logging.getLogger(name).removeFilter(first)


def test_pool_import_loads_the_resources(env: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from alerts.pool import PoolStore

    monkeypatch.setenv("REDIS_URL", redis_url)
    path = env / "pool.json"
    path.write_text(json.dumps([
        {"resource_id": "V1", "kind": "vehicle", "region": "yunnan", "capacity": 45, "partner": "Dian Coach",
         "contact": "+86 871 0001"},
        {"resource_id": "M1", "kind": "medical", "region": "yunnan", "capacity": 2, "partner": "Kunming Clinic",
         "contact": "+86 871 0002"},
        {"resource_id": "L1", "kind": "lodging", "region": "sichuan", "capacity": 30, "partner": "Chengdu Inn",
         "contact": "+86 28 0003"},
    ]))
    assert main(["pool", "import", str(path)]) == 0
    assert "loaded 3 resources in 2 regions" in capsys.readouterr().out

    async def listing() -> list[dict]:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await PoolStore(client, Settings()).list()
        finally:
            await client.aclose()

    resources = asyncio.run(listing())
    assert sorted((r["resource_id"], r["region"], r["state"]) for r in resources) == [
        ("L1", "sichuan", "free"), ("M1", "yunnan", "free"), ("V1", "yunnan", "free")]
