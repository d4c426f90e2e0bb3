"""The page queue on the real embedded Valkey, with time as a parameter: a page is queued once ever, claimed for
one attempt at a time, recorded once, and dropped unsent once its alert no longer wants it."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis

from alerts.paging.queue import PageQueue
from alerts.rules.effects import UpsertAlert
from alerts.rules.rota import Page
from alerts.store import AlertStore
from server.core import keys
from server.core.settings import settings_from_mapping

NOW = 1_800_000_000.0
NOTIFY = {"people": [{"id": "p1", "name": "Pat", "webhook": "https://h.example.com/a"}],
          "rota": [{"region": "*", "levels": [["p1"]]}], "lease": "30s"}


@pytest.fixture
def settings():  # noqa: ANN201
    return settings_from_mapping({"notify": NOTIFY}, secret=b"test-secret")


async def open_alert(client: aioredis.Redis, settings) -> str:  # noqa: ANN001
    store = AlertStore(client, settings)
    result = await store.upsert(UpsertAlert(kind="incident", dedup_key="incident:I1", severity="critical",
                                            region="east", summary="s", tour_id=None), "ev1:0", NOW)
    assert result.alert is not None
    return str(result.alert["alert_id"])


def page(alert_id: str, reason: str = "rota") -> Page:
    return Page(alert_id, 0, "p1", "webhook", reason, 0)


async def test_a_page_is_queued_once_and_claimed_for_one_attempt_at_a_time(redis_client, settings) -> None:
    alert_id = await open_alert(redis_client, settings)
    queue = PageQueue(redis_client, settings)
    assert await queue.enqueue(page(alert_id), NOW)
    assert not await queue.enqueue(page(alert_id), NOW + 1)  # the identity is taken: nothing more
    [first] = await queue.claim(NOW)
    assert (first.job_id, first.attempt, first.person, first.level) == (f"{alert_id}:0:p1:webhook", 1, "p1", 0)
    assert first.alert["alert_id"] == alert_id and first.queued_at == NOW
    assert await queue.claim(NOW + 29) == []  # in flight: nobody else takes it during its lease
    [second] = await queue.claim(NOW + 31)  # its sender died: sent again
    assert second.attempt == 2
    assert not await queue.finish(first, "done", "sent", NOW + 32)  # the first attempt lost its claim
    assert await queue.finish(second, "done", "sent", NOW + 32)
    assert not await queue.finish(second, "done", "sent", NOW + 33)  # and finishes once
    audit = [json.loads(e) for e in await redis_client.lrange(keys.alert_audit(alert_id), 0, -1)]
    notified = [e for e in audit if e["action"] == "notified"]
    assert [(e["person"], e["channel"], e["level"], e["result"], e["attempt"]) for e in notified] == [
        ("p1", "webhook", 0, "sent", 2)]
    alert = await AlertStore(redis_client, settings).get(alert_id)
    assert alert is not None and alert["notified"]["p1"]["result"] == "sent" and alert["notified"]["p1"]["final"]
    assert await queue.claim(NOW + 1000) == [] and await queue.next_due() is None
    assert (await queue.job(first.job_id))["state"] == "done"


async def test_a_retry_is_due_later_and_recorded_each_time(redis_client, settings) -> None:
    alert_id = await open_alert(redis_client, settings)
    queue = PageQueue(redis_client, settings)
    await queue.enqueue(page(alert_id), NOW)
    [first] = await queue.claim(NOW)
    assert await queue.finish(first, "queued", "http 503", NOW + 1, next_due=NOW + 3)
    assert await queue.claim(NOW + 2) == [] and await queue.next_due() == NOW + 3
    [second] = await queue.claim(NOW + 3)
    assert await queue.finish(second, "failed", "http 400", NOW + 4)
    alert = await AlertStore(redis_client, settings).get(alert_id)
    assert alert is not None and alert["notified"]["p1"] == {
        "result": "http 400", "channel": "webhook", "level": 0, "at": "2027-01-15T08:00:04.000Z", "final": True,
        "name": "p1"}


async def test_pages_an_alert_no_longer_wants_are_dropped_unsent(redis_client, settings) -> None:
    alert_id = await open_alert(redis_client, settings)
    store, queue = AlertStore(redis_client, settings), PageQueue(redis_client, settings)
    await queue.enqueue(page(alert_id, "rota"), NOW)
    await queue.enqueue(Page(alert_id, 0, "p1", "email", "assign", 0), NOW)
    await store.act(alert_id, "ack", "supervisor:s1", NOW + 1, regions_check=lambda _r: True)
    claimed = await queue.claim(NOW + 2)
    assert [c.channel for c in claimed] == ["email"]  # the assignee's page still goes; the rota's stops
    assert (await queue.job(f"{alert_id}:0:p1:webhook"))["state"] == "cancelled"
    await store.act(alert_id, "resolve", "supervisor:s1", NOW + 3, regions_check=lambda _r: True)
    assert await queue.claim(NOW + 100) == []  # resolved: the in-flight one is not sent again either
