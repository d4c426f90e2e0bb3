"""The alert store on the real embedded Valkey: dedup, replay, lifecycle, scoping, snapshot and changes."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import msgpack
import pytest
import redis.asyncio as aioredis

from alerts.rules.effects import UpsertAlert
from alerts.store import TRANSITIONS, AlertStore, changed_alert, next_status
from guide_app_api.errors import Conflict, Forbidden, Invalid, NotFound
from server.core import keys
from server.core.keys import parse_seq
from server.core.settings import Settings, StorageSettings

NOW = 1_800_000_000.0
ALL = lambda region: True  # noqa: E731 - a region filter that lets everything through


def incident(n: int = 1, severity: str = "high", region: str = "east", tour: str | None = "T1",
             **details: Any) -> UpsertAlert:
    return UpsertAlert(kind="incident", dedup_key=f"incident:I{n}", severity=severity, region=region,
                       summary=f"incident {n}", tour_id=tour, details={"incident_id": f"I{n}", **details})


@pytest.fixture
def store(redis_client: aioredis.Redis) -> AlertStore:
    return AlertStore(redis_client, Settings(secret=b"test-secret-of-16+"))


async def test_upsert_opens_then_dedups_and_counts(store: AlertStore) -> None:
    first = await store.upsert(incident(mean=3.5, xs=[]), "ev1:0", NOW)
    assert first.opened and first.changed
    alert = first.alert
    assert alert["status"] == "open" and alert["count"] == 1 and alert["escalation_level"] == 0
    assert alert["assignee"] is None and alert["tour_id"] == "T1" and alert["region"] == "east"
    assert alert["opened_at"] == alert["updated_at"] == "2027-01-15T08:00:00.000Z"
    assert alert["details"] == {"incident_id": "I1", "mean": 3.5, "xs": []}

    again = await store.upsert(incident(mean=2.5, extra=True), "ev2:0", NOW + 60)
    assert not again.opened and again.changed
    assert again.alert["alert_id"] == alert["alert_id"]
    assert again.alert["count"] == 2
    assert again.alert["details"] == {"incident_id": "I1", "mean": 2.5, "xs": [], "extra": True}
    assert again.alert["opened_at"] == alert["opened_at"] != again.alert["updated_at"]

    other = await store.upsert(incident(2), "ev3:0", NOW)
    assert other.opened and other.alert["alert_id"] != alert["alert_id"]


async def test_replayed_token_counts_once_and_tells_what_it_opened(store: AlertStore,
                                                                   redis_client: aioredis.Redis) -> None:
    first = await store.upsert(incident(), "ev1:0", NOW)
    changes = await redis_client.xlen(keys.ALERT_CHANGES)
    replay = await store.upsert(incident(), "ev1:0", NOW + 5)
    assert replay.replayed and not replay.changed and replay.opened
    assert replay.alert == first.alert
    assert (await store.get(first.alert["alert_id"]))["count"] == 1
    assert await redis_client.xlen(keys.ALERT_CHANGES) == changes
    # the marker, kept a week for every change, names the alert instead of keeping a copy of it
    alert_id, seq = first.alert["alert_id"], (await redis_client.xrevrange(keys.ALERT_CHANGES, count=1))[0][0]
    assert await redis_client.get(keys.alert_applied("ev1:0")) == b"1|" + seq + b"|" + alert_id.encode()
    # so a replay after a later change answers with the alert as it is now, still "opened" by its first try
    await store.upsert(incident(severity="critical"), "ev2:0", NOW + 10)
    late = await store.upsert(incident(), "ev1:0", NOW + 20)
    assert late.replayed and late.opened and late.alert["count"] == 2 and late.alert["severity"] == "critical"


async def test_a_marker_that_kept_the_alert_itself_still_replays(store: AlertStore,
                                                                 redis_client: aioredis.Redis) -> None:
    """Markers written before they were made small kept the alert's JSON: a replay answers with that."""
    old = {"alert_id": "A9", "kind": "incident", "count": 1}
    await redis_client.set(keys.alert_applied("old:0"), "1|1-0|" + json.dumps(old))
    replay = await store.upsert(incident(), "old:0", NOW)
    assert replay.replayed and replay.opened and replay.alert == old


async def test_severity_only_rises(store: AlertStore) -> None:
    await store.upsert(incident(severity="medium"), "a", NOW)
    assert (await store.upsert(incident(severity="critical"), "b", NOW)).alert["severity"] == "critical"
    assert (await store.upsert(incident(severity="low"), "c", NOW)).alert["severity"] == "critical"


async def test_a_resolved_condition_opens_a_new_alert(store: AlertStore) -> None:
    first = (await store.upsert(incident(), "a", NOW)).alert
    await store.act(first["alert_id"], "resolve", "supervisor:sue", NOW, note="fixed", regions_check=ALL)
    second = await store.upsert(incident(), "b", NOW + 1)
    assert second.opened and second.alert["alert_id"] != first["alert_id"] and second.alert["count"] == 1


@pytest.mark.parametrize(("action", "status", "expected"), [
    (action, status, TRANSITIONS.get((action, status), "conflict"))
    for action in ("ack", "resolve", "assign") for status in ("open", "acknowledged", "resolved")
])
def test_transition_table(action: str, status: str, expected: str | None) -> None:
    if expected == "conflict":
        with pytest.raises(Conflict):
            next_status(action, status)
    else:
        assert next_status(action, status) == expected


async def test_act_transitions_and_audit(store: AlertStore) -> None:
    alert_id = (await store.upsert(incident(tour=None), "a", NOW)).alert["alert_id"]
    assigned = await store.act(alert_id, "assign", "supervisor:sue", NOW + 1, assignee="ann",
                               regions_check=ALL)
    assert assigned["status"] == "open" and assigned["assignee"] == "ann"
    acked = await store.act(alert_id, "ack", "supervisor:sue", NOW + 2, regions_check=ALL)
    assert acked["status"] == "acknowledged"
    again = await store.act(alert_id, "ack", "supervisor:bob", NOW + 3, regions_check=ALL)
    assert again == acked  # acknowledging twice is a no-op
    resolved = await store.act(alert_id, "resolve", "supervisor:sue", NOW + 4, note="sorted",
                               regions_check=ALL)
    assert resolved["status"] == "resolved" and resolved["notes"][-1]["note"] == "sorted"
    for action in ("ack", "resolve"):
        with pytest.raises(Conflict):
            await store.act(alert_id, action, "supervisor:sue", NOW + 5, regions_check=ALL)
    with pytest.raises(Conflict):
        await store.act(alert_id, "assign", "supervisor:sue", NOW + 5, assignee="x", regions_check=ALL)
    trail = await store.audit(alert_id)
    assert [(e["action"], e["by"]) for e in trail] == [
        ("opened", "system"), ("assign", "supervisor:sue"), ("ack", "supervisor:sue"),
        ("resolve", "supervisor:sue")]
    assert trail[-1]["note"] == "sorted" and trail[-1]["from"] == "acknowledged"
    assert await store.list({"open", "acknowledged"}, ALL) == []


async def test_act_refusals_change_nothing(store: AlertStore, redis_client: aioredis.Redis) -> None:
    alert_id = (await store.upsert(incident(region="west"), "a", NOW)).alert["alert_id"]
    changes = await redis_client.xlen(keys.ALERT_CHANGES)
    with pytest.raises(NotFound):
        await store.act("A999", "ack", "supervisor:sue", NOW, regions_check=ALL)
    with pytest.raises(Forbidden):
        await store.act(alert_id, "resolve", "supervisor:sue", NOW, regions_check=lambda r: r == "east")
    with pytest.raises(Invalid):
        await store.act(alert_id, "assign", "supervisor:sue", NOW, regions_check=ALL)
    with pytest.raises(Invalid):
        await store.act(alert_id, "delete", "supervisor:sue", NOW, regions_check=ALL)
    assert (await store.get(alert_id))["status"] == "open"
    assert await redis_client.xlen(keys.ALERT_CHANGES) == changes


async def test_act_with_a_token_is_idempotent(store: AlertStore) -> None:
    alert_id = (await store.upsert(incident(tour=None), "a", NOW)).alert["alert_id"]
    first = await store.act_result(alert_id, "resolve", "supervisor:sue", NOW, note="x", regions_check=ALL,
                                   token="supervisor:sue:m1")
    again = await store.act_result(alert_id, "resolve", "supervisor:sue", NOW, note="x", regions_check=ALL,
                                   token="supervisor:sue:m1")
    assert again.duplicate and again.seq == first.seq and again.alert == first.alert


async def escalate(store: AlertStore, alert_id: str, level: int, token: str, now: float) -> dict[str, Any] | None:
    """The applier's escalation step (an `EscalateAlert` effect), read as the alert it changed."""
    return changed_alert(await store.escalate_call(alert_id, level, token, now))


async def resolve(store: AlertStore, dedup_key: str, note: str, by: str, token: str,
                  now: float) -> dict[str, Any] | None:
    """The applier's resolve step (a `ResolveAlert` effect), read as the alert it changed."""
    return changed_alert(await store.resolve_call(dedup_key, note, by, token, now))


@pytest.mark.parametrize("ack_first", [True, False])
async def test_escalate_versus_ack_has_one_winner(store: AlertStore, ack_first: bool) -> None:
    alert_id = (await store.upsert(incident(severity="medium"), "a", NOW)).alert["alert_id"]
    if ack_first:
        await store.act(alert_id, "ack", "supervisor:sue", NOW + 1, regions_check=ALL)
        assert await escalate(store, alert_id, 1, "esc:1", NOW + 2) is None
        final = await store.get(alert_id)
        assert final["escalation_level"] == 0 and final["severity"] == "medium"
    else:
        escalated = await escalate(store, alert_id, 1, "esc:1", NOW + 1)
        assert escalated is not None and escalated["severity"] == "high"
        final = await store.act(alert_id, "ack", "supervisor:sue", NOW + 2, regions_check=ALL)
        assert final["escalation_level"] == 1 and final["severity"] == "high"
    assert final["status"] == "acknowledged"


async def test_escalation_steps_once_per_level_and_caps(store: AlertStore) -> None:
    alert_id = (await store.upsert(incident(severity="high"), "a", NOW)).alert["alert_id"]
    assert (await escalate(store, alert_id, 1, "e1", NOW))["severity"] == "critical"
    assert await escalate(store, alert_id, 1, "e1-again", NOW) is None  # already at that level
    second = await escalate(store, alert_id, 2, "e2", NOW)
    assert second["escalation_level"] == 2 and second["severity"] == "critical"
    assert await escalate(store, "A999", 3, "e3", NOW) is None


async def test_concurrent_ack_and_escalation_agree(store: AlertStore) -> None:
    alert_id = (await store.upsert(incident(severity="low"), "a", NOW)).alert["alert_id"]
    acked, escalated = await asyncio.gather(
        store.act(alert_id, "ack", "supervisor:sue", NOW, regions_check=ALL),
        escalate(store, alert_id, 1, "e1", NOW))
    final = await store.get(alert_id)
    assert final["status"] == "acknowledged"
    # either the escalation came first (the ack saw it), or it found the alert acknowledged and did nothing
    assert final["escalation_level"] == (1 if escalated else 0) == acked["escalation_level"]


async def test_resolve_by_dedup(store: AlertStore) -> None:
    alert_id = (await store.upsert(incident(), "a", NOW)).alert["alert_id"]
    resolved = await resolve(store, "incident:I1", "guide resolved it", "system", "r1", NOW)
    assert resolved is not None and resolved["status"] == "resolved" and resolved["alert_id"] == alert_id
    assert await resolve(store, "incident:I1", "again", "system", "r1", NOW) == resolved
    assert await resolve(store, "incident:I1", "again", "system", "r2", NOW) is None
    assert await resolve(store, "incident:nope", "x", "system", "r3", NOW) is None


async def test_supervisor_resolving_an_incident_alert_tells_the_watcher(store: AlertStore,
                                                                        redis_client: aioredis.Redis) -> None:
    shard = keys.shard_of("T1", store.settings.storage.shards)
    await redis_client.hset(keys.incident(shard, "I1"), mapping={"status": "open", "tour_id": "T1"})
    alert_id = (await store.upsert(incident(), "a", NOW)).alert["alert_id"]
    await store.act(alert_id, "ack", "supervisor:sue", NOW, regions_check=ALL, token="supervisor:sue:1")
    await store.act(alert_id, "resolve", "supervisor:sue", NOW, note="ok", regions_check=ALL)
    events = [msgpack.unpackb(f[b"e"]) for _, f in await redis_client.xrange(keys.events(shard))]
    assert [(e["type"], e.get("action") or e.get("status")) for e in events] == [
        ("alert_action", "ack"), ("alert_action", "resolve"), ("incident_update", "resolved")]
    assert events[0]["msg_id"] == "supervisor:sue:1" and events[1]["note"] == "ok"
    assert all(e["sender"] == "supervisor:sue" and e["tour_id"] == "T1" for e in events)
    assert events[2]["incident_id"] == "I1"
    assert await redis_client.hget(keys.incident(shard, "I1"), "status") == b"resolved"


async def test_list_and_region_scoping(store: AlertStore) -> None:
    east = (await store.upsert(incident(1, region="east"), "a", NOW)).alert
    west = (await store.upsert(incident(2, region="west"), "b", NOW)).alert
    score = (await store.upsert(dataclasses.replace(incident(3, region="east"), kind="score_drop",
                                                    dedup_key="score_drop:T1:2027-01-15"), "c", NOW)).alert
    await store.act(score["alert_id"], "resolve", "admin:root", NOW, regions_check=ALL)
    only_east = lambda r: r == "east"  # noqa: E731
    open_east = await store.list({"open", "acknowledged"}, only_east)
    assert [a["alert_id"] for a in open_east] == [east["alert_id"]]
    everything = await store.list({"open", "acknowledged", "resolved"}, ALL)
    assert {a["alert_id"] for a in everything} == {east["alert_id"], west["alert_id"], score["alert_id"]}
    assert [a["alert_id"] for a in await store.list({"resolved"}, only_east, kind="score_drop")] == [
        score["alert_id"]]
    assert await store.list({"open"}, only_east, region="west") == []
    alerts, _seq = await store.snapshot(only_east)
    assert [a["alert_id"] for a in alerts] == [east["alert_id"]]


async def test_snapshot_seq_and_changes_after_are_consistent(store: AlertStore) -> None:
    alerts, seq = await store.snapshot(ALL)
    assert (alerts, seq) == ([], "0-0")
    assert await store.changes_after(seq, 10) == []
    await store.upsert(incident(1), "a", NOW)
    alerts, seq = await store.snapshot(ALL)
    assert len(alerts) == 1
    assert await store.changes_after(seq, 10) == []
    second = await store.upsert(incident(2), "b", NOW)
    third = await store.upsert(incident(1), "c", NOW)
    changes = await store.changes_after(seq, 10)
    assert changes is not None
    assert [c[1] for c in changes] == [second.alert, third.alert]
    assert parse_seq(changes[0][0]) > parse_seq(seq)
    assert await store.changes_after(seq, 1) == changes[:1]
    with pytest.raises(ValueError):
        await store.changes_after("not-a-seq", 10)


async def test_changes_after_a_trimmed_seq_asks_for_a_reset(redis_client: aioredis.Redis) -> None:
    store = AlertStore(redis_client, Settings(storage=StorageSettings(changes_maxlen=5)))
    _, start = await store.snapshot(ALL)
    for n in range(300):  # MAXLEN ~ trims whole nodes, so write well past one node (100 entries)
        await store.upsert(incident(n), f"t{n}", NOW)
    assert await redis_client.xlen(keys.ALERT_CHANGES) < 300
    assert await store.changes_after(start, 10) is None
    last = (await redis_client.xrevrange(keys.ALERT_CHANGES, count=1))[0][0].decode()
    assert await store.changes_after(last, 10) == []
    ms, n = parse_seq(last)
    assert await store.changes_after(f"{ms + 10_000}-0", 10) is None  # a seq from another stream


async def test_an_upsert_answers_with_the_alert_as_stored(store: AlertStore) -> None:
    """The upsert renders the record it wrote without reading it back: what it answers is what a read finds."""
    first = incident(details_x=0.1, empty=[], none=None)
    for n, (effect, token) in enumerate([(first, "a"), (dataclasses.replace(
            first, severity="critical", summary="worse", tour_id=None, details={"y": 1e20}), "b"), (first, "c")]):
        result = await store.upsert(effect, token, NOW + n)
        assert result.alert == await store.get(result.alert["alert_id"])
