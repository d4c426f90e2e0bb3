"""The watcher's periodic jobs (leases, deadlines, retention) run on one APScheduler, owned by start and stop; a
job's failure is logged and counted, never lost."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from alerts.watcher import Watcher
from tests.conftest import make_settings


def job_errors(watcher: Watcher, job: str) -> str | None:
    prefix = f'tourpulse_watcher_job_errors_total{{job="{job}"}} '
    return next((line[len(prefix):] for line in watcher.metrics.render().splitlines() if line.startswith(prefix)),
                None)


async def test_every_periodic_job_is_one_coalesced_single_instance_scheduler_job(redis_url: str) -> None:
    watcher = Watcher(make_settings(redis_url, {"storage": {"shards": 2}}), watcher_id="w")
    await watcher.start()
    try:
        assert watcher._scheduler is not None
        jobs = {job.id: job for job in watcher._scheduler.get_jobs()}
        assert set(jobs) == {"leases", "deadlines", "retention"}
        assert all(job.coalesce and job.max_instances == 1 for job in jobs.values())
        assert sorted(watcher.owned) == [0, 1]  # the first lease round ran in start
    finally:
        await watcher.stop()
    assert watcher._scheduler is None and not watcher._jobs


@pytest.mark.parametrize(("error", "level"), [(ValueError("a bug"), logging.ERROR),
                                              (RedisConnectionError("gone"), logging.WARNING)])
async def test_a_failing_job_is_logged_and_counted_and_runs_again(redis_url: str, caplog: pytest.LogCaptureFixture,
                                                                  error: Exception, level: int) -> None:
    watcher = Watcher(make_settings(redis_url), watcher_id="w")
    runs = 0

    async def failing() -> None:
        nonlocal runs
        runs += 1
        raise error

    with caplog.at_level(logging.WARNING, logger="alerts.watcher"):
        await watcher._job("retention", failing)
        await watcher._job("retention", failing)
    assert runs == 2
    assert job_errors(watcher, "retention") in ("2", "2.0")
    failures = [r for r in caplog.records if "retention failed" in r.getMessage()]
    assert [r.levelno for r in failures] == [level, level]
    assert (failures[0].exc_info is not None) is (level == logging.ERROR)  # a bug comes with its traceback


async def test_stop_cancels_and_awaits_a_running_job(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    watcher = Watcher(make_settings(redis_url, {"storage": {"shards": 1}}), watcher_id="w")
    await watcher.start()
    started, finished = asyncio.Event(), asyncio.Event()

    async def hanging() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            finished.set()

    job = asyncio.create_task(watcher._job("leases", hanging))
    await started.wait()
    with caplog.at_level(logging.WARNING):
        await watcher.stop()
    assert finished.is_set() and job.done() and not job.cancelled()  # ended quietly, not as a failure
    assert job_errors(watcher, "leases") is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    await watcher._job("leases", hanging)  # a run the scheduler started as the watcher stopped does nothing
