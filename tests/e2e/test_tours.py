"""Tours: the pure validation table, then the registry through the real embedded Valkey."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgpack
import pytest
import redis.asyncio as aioredis

from server.core import keys
from server.core.settings import Settings
from server.storage.tours import Tour, TourInvalid, TourRegistry, validate_tour

DOC: dict[str, Any] = {
    "route": "Silk Road", "region": "cn-west", "guides": ["g1", "g2"], "start": "2025-05-01",
    "end": "2025-05-10", "timezone": "Asia/Shanghai", "travellers": 32,
}


def _doc(**changes: Any) -> dict[str, Any]:
    doc = dict(DOC)
    for name, value in changes.items():
        if value is ...:
            del doc[name]
        else:
            doc[name] = value
    return doc


def test_valid_tour() -> None:
    tour = validate_tour("t-1.a_b", DOC)
    assert tour == Tour(tour_id="t-1.a_b", route="Silk Road", region="cn-west", guides=("g1", "g2"),
                        start=date(2025, 5, 1), end=date(2025, 5, 10), timezone="Asia/Shanghai",
                        travellers=32)
    assert tour.to_dict() == {"tour_id": "t-1.a_b", **DOC}


@pytest.mark.parametrize(("tour_id", "changes", "field"), [
    ("bad id", {}, "tour_id"),
    ("", {}, "tour_id"),
    ("x" * 65, {}, "tour_id"),
    ("t1", {"route": ...}, "route"),
    ("t1", {"route": ""}, "route"),
    ("t1", {"route": "r" * 101}, "route"),
    ("t1", {"region": 5}, "region"),
    ("t1", {"region": "cn west"}, "region"),
    ("t1", {"guides": "g1"}, "guides"),
    ("t1", {"guides": ["g1", 2]}, "guides"),
    ("t1", {"start": "2025-5-1"}, "start"),
    ("t1", {"start": "2025-02-30"}, "start"),
    ("t1", {"end": ...}, "end"),
    ("t1", {"end": "2025-04-30"}, "end"),
    ("t1", {"end": "2026-05-02"}, "end"),
    ("t1", {"timezone": "Mars/Olympus"}, "timezone"),
    ("t1", {"timezone": "../etc/passwd"}, "timezone"),
    ("t1", {"timezone": None}, "timezone"),
    ("t1", {"travellers": 0}, "travellers"),
    ("t1", {"travellers": 1001}, "travellers"),
    ("t1", {"travellers": True}, "travellers"),
    ("t1", {"travellers": 3.0}, "travellers"),
    ("t1", {"travellers": "3"}, "travellers"),
])
def test_invalid_tours(tour_id: str, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(TourInvalid) as info:
        validate_tour(tour_id, _doc(**changes))
    assert info.value.field == field
    assert info.value.message


def test_longest_tour_is_366_days() -> None:
    assert validate_tour("t1", _doc(start="2024-01-01", end="2024-12-31")).end == date(2024, 12, 31)


def test_local_today_and_day_allowed() -> None:
    tour = validate_tour("t1", DOC)
    # 2025-05-03 17:00 UTC is already 2025-05-04 01:00 in Shanghai
    now = datetime(2025, 5, 3, 17, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert tour.local_today(now) == date(2025, 5, 4)
    assert tour.day_allowed(date(2025, 5, 4), now)
    assert tour.day_allowed(date(2025, 5, 1), now)
    assert not tour.day_allowed(date(2025, 5, 5), now)  # the future, in the tour's timezone
    assert not tour.day_allowed(date(2025, 4, 30), now)  # before the tour
    later = datetime(2025, 6, 1, tzinfo=ZoneInfo("UTC")).timestamp()
    assert tour.day_allowed(date(2025, 5, 10), later)
    assert not tour.day_allowed(date(2025, 5, 11), later)  # after the tour


SETTINGS = Settings()


async def _events(redis: aioredis.Redis, tour_id: str) -> list[dict[str, Any]]:
    stream = keys.events(keys.shard_of(tour_id, SETTINGS.storage.shards))
    return [msgpack.unpackb(fields[b"e"]) for _seq, fields in await redis.xrange(stream)]


async def test_put_get_list(redis_client: aioredis.Redis) -> None:
    registry = TourRegistry(redis_client, SETTINGS)
    t1 = validate_tour("t1", DOC)
    t2 = validate_tour("t2", _doc(region="eu-south", timezone="Europe/Rome"))
    assert await registry.put(t1, 1000.0, sender="admin:ops")
    await registry.put(t2, 1001.0)
    fresh = TourRegistry(redis_client, SETTINGS)  # another process: nothing cached
    assert fresh.get_cached("t1") is None
    assert await fresh.get("t1") == t1
    assert fresh.get_cached("t1") == t1
    assert await fresh.get("nope") is None
    assert await fresh.get("bad id") is None
    assert await fresh.list_ids() == ["t1", "t2"]
    assert await fresh.list(None) == [t1, t2]
    assert await fresh.list(lambda region: region == "eu-south") == [t2]


async def test_tour_event_appended_once_for_identical_puts(redis_client: aioredis.Redis) -> None:
    registry = TourRegistry(redis_client, SETTINGS)
    tour = validate_tour("t1", DOC)
    seq = await registry.put(tour, 1000.0, sender="admin:ops")
    assert seq is not None
    assert await registry.put(tour, 1005.0, sender="admin:ops") is None
    events = await _events(redis_client, "t1")
    assert len(events) == 1
    event = events[0]
    assert event["type"] == "tour" and event["tour_id"] == "t1" and event["sender"] == "admin:ops"
    assert event["at"] == event["received_at"] == 1000.0
    assert event["msg_id"].startswith("tour:")
    assert {k: event[k] for k in DOC} == DOC


async def test_changed_tour_appends_a_new_event(redis_client: aioredis.Redis) -> None:
    registry = TourRegistry(redis_client, SETTINGS)
    await registry.put(validate_tour("t1", DOC), 1000.0)
    changed = validate_tour("t1", _doc(travellers=40, guides=["g3"]))
    assert await registry.put(changed, 1010.0)
    events = await _events(redis_client, "t1")
    assert [e["travellers"] for e in events] == [32, 40]
    assert events[0]["msg_id"] != events[1]["msg_id"]
    assert await TourRegistry(redis_client, SETTINGS).get("t1") == changed


async def test_cache_expires(redis_client: aioredis.Redis) -> None:
    clock = [0.0]
    registry = TourRegistry(redis_client, SETTINGS, clock=lambda: clock[0])
    tour = validate_tour("t1", DOC)
    await registry.put(tour, 1000.0)
    assert registry.get_cached("t1") == tour
    clock[0] = 10.0
    assert registry.get_cached("t1") is None


async def test_an_expired_entry_is_served_while_one_background_read_refreshes_it(
        redis_client: aioredis.Redis) -> None:
    import asyncio

    clock = [0.0]
    registry = TourRegistry(redis_client, SETTINGS, clock=lambda: clock[0])
    tour = validate_tour("t1", DOC)
    await registry.put(tour, 1000.0)
    changed = validate_tour("t1", {**DOC, "travellers": 40})
    await TourRegistry(redis_client, SETTINGS).put(changed, 1001.0)  # another web process changed it
    clock[0] = 10.0  # expired here
    assert registry.peek("t1") == tour  # the stale copy, at once; the refresh runs in the background
    assert registry.peek("t1") == tour  # still one refresh in flight
    for _ in range(100):
        if registry.get_cached("t1") == changed:
            break
        await asyncio.sleep(0.01)
    assert registry.peek("t1") == changed
    clock[0] = 1000.0  # stale far beyond the grace: not served
    assert registry.peek("t1") is None
