"""Shared fixtures: one real embedded Valkey for the session, flushed before each test.

No fake stands in for Redis anywhere: the server is the same valkey-server binary ``tourpulse serve`` runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from server.db.embedded import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("valkey")), appendonly=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    import redis as sync_redis

    client = sync_redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.script_flush()
    client.close()
    return redis_server.url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


# --- a whole tourpulse app under a real uvicorn ----------------------------------------------------------
SECRET = b"test-secret-of-16+"


def make_settings(redis_url: str, doc: dict | None = None):  # noqa: ANN201 - Settings
    from server.core.settings import settings_from_mapping

    return settings_from_mapping(quiet_prompt(doc), redis_url=redis_url, secret=SECRET)


def quiet_prompt(doc: dict | None) -> dict:
    """``doc`` with the daily prompt to rate where no test run can meet it, unless the test sets ``prompt_hour``.

    A watcher arms each tour's prompt as it folds the registration, and sends it at once when it fell due less than
    ``prompt_skip_after`` (2 h) ago; a prompt sent arms the second prompt an hour later and the response check at
    22:00 (``low_response``). At the default 20:00 in the tours' Shanghai, every test that registers a tour and runs
    a watcher between 12:00 and 14:00 UTC got prompts on its travellers' phones, where it waited for other notices
    or for an answer. Twelve hours from now in Shanghai, the prompt is at least four hours away, before or after,
    for a tour anywhere from UTC to UTC+8."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    doc = dict(doc or {})
    sla = dict(doc.get("sla") or {})
    if "prompt_hour" not in sla:
        sla["prompt_hour"] = (dt.datetime.now(ZoneInfo("Asia/Shanghai")).hour + 12) % 24
        doc["sla"] = sla
    return doc


def token(role: str, sub: str, *, tours: tuple[str, ...] = (), regions: tuple[str, ...] = (),
          ttl: float = 3600, issued_ago: float = 0.0) -> str:
    import time

    from server.core.tokens import issue

    return issue(SECRET, role=role, sub=sub, tours=tours, regions=regions, ttl=ttl,
                 now=time.time() - issued_ago)


def quiet_config(directory: Path) -> str:
    """A settings file for a test's own ``tourpulse serve`` (its watcher folds the test's tours too), with the
    prompt to rate as quiet as :func:`quiet_prompt` puts it."""
    path = directory / "tourpulse.toml"
    path.write_text(f"[sla]\nprompt_hour = {quiet_prompt(None)['sla']['prompt_hour']}\n")
    return str(path)


def far_from_midnight() -> str:
    """The timezone for a tour whose test rates today and then reads the tour's today back (the live view's
    ``today_count``): the server takes today as the date where the tour is when it answers, so a run across the
    tour's midnight read a day without the test's ratings. The tours' Asia/Shanghai, but UTC from 14:00 to 17:00 UTC
    (22:00 to 01:00 in Shanghai): two hours or more from midnight either way, and the quiet prompt hours away."""
    import datetime as dt

    return "UTC" if 14 <= dt.datetime.now(dt.UTC).hour < 17 else "Asia/Shanghai"


def tour_doc(region: str = "yunnan", travellers: int = 30, timezone: str = "Asia/Shanghai",
             days_before: int = 2, days_after: int = 3) -> dict:
    import datetime as dt
    from zoneinfo import ZoneInfo

    today = dt.datetime.now(ZoneInfo(timezone)).date()
    return {"route": "Yunnan 6 days", "region": region, "guides": ["g1"], "timezone": timezone,
            "start": (today - dt.timedelta(days=days_before)).isoformat(),
            "end": (today + dt.timedelta(days=days_after)).isoformat(), "travellers": travellers}


@pytest.fixture
def app_factory(redis_url: str):  # noqa: ANN201
    """``async with app_factory(doc, run_watcher=...) as (base_url, app):`` a real server on a loopback port."""
    import contextlib

    from server.app import create_app
    from tests.e2e.helpers_server import running_server

    @contextlib.asynccontextmanager
    async def start(doc: dict | None = None, *, run_watcher: bool = False, url: str | None = None):  # noqa: ANN202
        app = create_app(make_settings(url or redis_url, doc), run_watcher=run_watcher)
        async with running_server(app) as base_url:
            yield base_url, app

    return start


async def register_tour(base_url: str, tour_id: str, **kw) -> dict:  # noqa: ANN003
    import httpx

    async with httpx.AsyncClient(base_url=base_url) as client:
        resp = await client.put(f"/api/tours/{tour_id}", json=tour_doc(**kw),
                                headers={"Authorization": f"Bearer {token('admin', 'ops')}"})
        resp.raise_for_status()
        return resp.json()


# --- a Valkey Cluster (contract §14), for the few tests that need one ------------------------------------
@pytest.fixture(scope="session")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``tourpulse dev-cluster`` as a real process (3 primaries, 1 replica each), started once; its REDIS_URL."""
    from tests.e2e.cluster_helpers import running_dev_cluster

    with running_dev_cluster(Path(tmp_path_factory.mktemp("cluster"))) as (url, _proc):
        yield url


@pytest.fixture
def cluster_url(cluster_server: str) -> str:
    from tests.e2e.cluster_helpers import flush_cluster

    flush_cluster(cluster_server)
    return cluster_server
