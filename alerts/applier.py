"""Apply effects: each one an idempotent Redis step keyed by the seq of the event that caused it.

Effects of one event are applied in order (:mod:`alerts.scheduling` keeps the order, tour by tour). A crash
anywhere leaves the event unacked; its next reader folds it again from the saved state, gets the same effects, and
every step here then changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from alerts.crisis import warn_region
from alerts.pool import PoolStore
from alerts.rules.aggregates import pool_exhausted
from alerts.rules.category import category_share_alerts, category_window_days, window_start
from alerts.rules.crisis_effects import AnnotateAlert, Push, WarnRegion
from alerts.rules.effects import (
    ClearDeadline,
    CountComplaint,
    Effect,
    EscalateAlert,
    IncidentChanged,
    PullResources,
    ReleaseResources,
    ResolveAlert,
    SendNotice,
    SetDeadline,
    UpsertAlert,
)
from alerts.scheduling import EffectFailed, Planned, Step, apply_in_order
from alerts.store import AlertStore, upsert_result
from guide_app_api.codec import packb
from guide_app_api.scope import incident_tour
from server.core import keys
from server.core.metrics import Registry
from server.core.settings import Settings
from server.db.scripts import RedisScripts, ScriptRunner
from server.db.writer import LANE
from server.storage.notices import dispatched, incident_push, publish_call

log = logging.getLogger(__name__)

HELD_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0)


class EffectApplier:
    def __init__(self, redis: aioredis.Redis, settings: Settings, store: AlertStore, pool: PoolStore,
                 metrics: Registry, runner: ScriptRunner | None = None) -> None:
        self.redis = redis
        # every effect is a script: through the watcher's pipelined writer, all shards' effects share round trips
        self.runner = runner or RedisScripts(redis)
        self.settings = settings
        self.store = store
        self.pool = pool
        self.opened = metrics.counter("tourpulse_alerts_opened_total", "Alerts opened, by kind", ("kind",))
        self.alert_latency = metrics.histogram("tourpulse_event_to_alert_seconds",
                                               "From an event's receipt to its alert change being stored")
        self.pool_pulls = metrics.counter("tourpulse_pool_pulls_total", "Pool pulls, by outcome", ("outcome",))
        self.pool_held = metrics.histogram("tourpulse_pool_held_seconds", "How long a resource was held, by kind",
                                           HELD_BUCKETS, ("kind",))

    def _shard(self, tour_id: str) -> int:
        return keys.shard_of(tour_id, self.settings.storage.shards)

    async def apply_tours(self, plans: dict[str, Planned], now: float) -> dict[str, tuple[dict[str, Any], str]]:
        """Each tour's effects in order, tours side by side: effects of different tours are independent, and the
        pipelined writer sends them together. Returns the tours whose effects failed, each with the event the
        failure is charged to and its error. Storage trouble (or a cancellation) is raised instead, once every tour
        has settled: the whole read is then retried as it is, and no event is charged."""
        tours = list(plans)
        outcomes = await asyncio.gather(*(self.apply_tour(plans[t], now) for t in tours), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, RedisError | asyncio.CancelledError):
                raise outcome
        return {tour_id: outcome.args if isinstance(outcome, EffectFailed) else (plans[tour_id][0][0], repr(outcome))
                for tour_id, outcome in zip(tours, outcomes, strict=True) if isinstance(outcome, BaseException)}

    async def apply_tour(self, planned: Planned, now: float) -> None:
        """One tour's effects, in stream order (:mod:`alerts.scheduling` keeps the order and says whose failure is
        whose), on the writer lane the tour is pinned to."""
        LANE.set(zlib.crc32(str(planned[0][0].get("tour_id")).encode()))
        await apply_in_order(planned, self.apply_one, now)

    def apply_one(self, effect: Effect, index: int, event: dict[str, Any], now: float) -> Awaitable[Any]:
        """Start the step of an event's ``index``-th effect, idempotent by a token naming both, and return what to
        await for it. A single-step effect's script call is queued before this returns (so the effects a caller
        starts in turn on one writer lane reach Redis in that order, however they are awaited): a :class:`Step`,
        whose reply may call for more (an upsert that opened an alert arms its escalation clocks; a complaint
        count may upsert its category's alert), with no task. A multi-step effect (a pool pull or release) is a
        coroutine that starts when awaited."""
        token = f"{event.get('tour_id')}:{event['seq']}:{index}"
        match effect:
            case UpsertAlert():
                return Step(self.store.upsert_call(effect, token, now),
                            lambda reply: self._upserted(reply, effect, event, now))
            case ResolveAlert():
                return Step(self.store.resolve_call(effect.dedup_key, effect.note, "system", token, now))
            case EscalateAlert():
                return Step(self.store.escalate_call(effect.alert_id, effect.level, token, now))
            case SetDeadline():
                return Step(self.set_deadline_call(effect))
            case ClearDeadline():
                shard = self._shard(effect.tour_id)
                return Step(self.runner.call(
                    "clear_deadline", [keys.deadlines(shard), keys.deadline(shard, effect.deadline_id)],
                    [effect.deadline_id]))
            case SendNotice():
                push = {"type": "notice", "notice_id": effect.notice_id, "kind": effect.kind, "title": effect.title,
                        "body": effect.body, "tour_id": effect.tour_id, "audience": effect.audience,
                        "to": list(effect.to) if isinstance(effect.to, tuple) else effect.to}
                if effect.alert_id is not None:
                    push["alert_id"] = effect.alert_id
                return Step(publish_call(self.runner, effect.notice_id, push))
            case IncidentChanged():
                return Step(self.push_incident_call(effect.tour_id, effect.incident, token))
            case CountComplaint():
                return Step(self.count_call(effect), lambda reply: self._counted(reply, effect, now))
            case PullResources():
                return self.pull(effect, token, now)
            case ReleaseResources():
                return self.release(effect, token, now)
            case Push():  # §11: a safety check or its repeat
                return Step(publish_call(self.runner, effect.push_id, effect.push))
            case WarnRegion():  # §11: reads the tour registry, so not a single step
                return warn_region(self.redis, self.runner, self.settings, effect, now)
            case AnnotateAlert():  # §11: a late answer to a closed check (rare: awaited alone)
                return self.store.annotate(effect.dedup_key, effect.details, token, now)
        raise TypeError(f"not an effect: {effect!r}")

    async def upsert(self, effect: UpsertAlert, token: str, event: dict[str, Any], now: float) -> None:
        await Step(self.store.upsert_call(effect, token, now), lambda reply: self._upserted(reply, effect, event, now))

    def _upserted(self, reply: Any, effect: UpsertAlert, event: dict[str, Any], now: float) -> list[Awaitable[Any]]:
        """What an upsert's reply calls for, queued: the ack clocks of an alert it opened, or nothing."""
        result = upsert_result(reply)
        if result.changed and "received_at" in event:
            self.alert_latency.observe(max(0.0, time.time() - float(event["received_at"])))
        if not result.opened:
            return []
        self.opened.inc(effect.kind)
        alert = result.alert  # None: a replay of an alert since expired, whose clocks no longer matter
        if effect.escalate and alert is not None:
            return self.arm_escalation(alert, now)
        return []

    def arm_escalation(self, alert: dict[str, Any], now: float) -> list[Awaitable[Any]]:
        """The ack clocks of a newly opened alert, queued: each level fires unless it was acknowledged by then."""
        home = alert.get("tour_id") or f"region:{alert['region']}"
        return [self.set_deadline_call(SetDeadline(
            deadline_id=f"esc:{alert['alert_id']}:{level}", due=now + after, kind="escalation",
            tour_id=home, subject={"alert_id": alert["alert_id"], "level": level}))
            for level, after in enumerate(self.settings.sla.ack_escalation, start=1)]

    def set_deadline_call(self, effect: SetDeadline) -> Awaitable[Any]:
        shard = self._shard(effect.tour_id)
        payload = packb({
            "type": "deadline", "tour_id": effect.tour_id, "deadline_id": effect.deadline_id,
            "kind": effect.kind, "due": effect.due, "subject": effect.subject, "sender": "system",
            "msg_id": effect.deadline_id, "at": effect.due, "received_at": effect.due,
        })
        return self.runner.call(
            "set_deadline",
            [keys.deadlines(shard), keys.deadline(shard, effect.deadline_id), keys.fired(shard, effect.deadline_id)],
            [effect.deadline_id, effect.due, payload])

    async def push_incident(self, tour_id: str, incident: dict[str, Any], token: str) -> None:
        await self.push_incident_call(tour_id, incident, token)

    def push_incident_call(self, tour_id: str, incident: dict[str, Any], token: str) -> Awaitable[Any]:
        return publish_call(self.runner, f"incident:{token}", incident_push(tour_id, incident))

    async def pull(self, effect: PullResources, token: str, now: float) -> None:
        for kind in effect.kinds:
            result = await self.pool.pull_with_fallback(effect.incident_id, effect.region, kind,
                                                        effect.capacity, kind, effect.location, now)
            self.pool_pulls.inc("fallback" if result.fallback else result.status)
            if result.status == "queued":
                waiting = await self.pool.waiting(effect.region, kind)
                await self.upsert(pool_exhausted(effect.region, kind, waiting, effect.incident_id),
                                  f"{token}:{kind}", {}, now)
            else:
                sent = dispatched(effect.incident_id, result.resource, result.region, fallback=result.fallback,
                                  shortfall=result.shortfall)
                # the incident's alert (if it has one) shows what was sent, and any shortfall (contract §7);
                # before the guides' push, so whoever hears of the dispatch finds it on the alert too
                await self.store.annotate(f"incident:{effect.incident_id}", {
                    f"dispatched_{kind}": {key: sent[key] for key in ("dispatched", "region", "fallback")},
                    f"shortfall_{kind}": result.shortfall,
                }, f"{token}:{kind}:annotate", now)
                await self.push_incident(effect.tour_id, sent, f"{token}:{kind}")

    async def release(self, effect: ReleaseResources, token: str, now: float) -> None:
        outcome = await self.pool.release_detailed(effect.incident_id, effect.region, now)
        for freed in outcome.released:  # a replayed release frees nothing, so each hold is timed once
            self.pool_held.observe(freed.held_seconds, freed.kind)
        for item in outcome.served:
            # a waiting incident got the freed resource: tell its guides
            tour_id = incident_tour(item.incident_id)
            await self.push_incident(tour_id, dispatched(item.incident_id, item.resource, item.region,
                                                         fallback=False, shortfall=item.shortfall),
                                     f"{token}:served:{item.incident_id}:{item.request}")

    def count_call(self, effect: CountComplaint) -> Awaitable[Any]:
        window = category_window_days(self.settings.rules)
        route = effect.route
        return self.runner.call(
            "count_categories",
            [keys.route_complaint_token(route, effect.token), keys.route_category_window(route),
             keys.route_category_days(route)],
            [keys.EFFECT_MARKER_TTL, (window + 2) * 86400, (window + 30) * 86400, "1" if effect.judge else "0",
             keys.route_category_prefix(route), window_start(window, effect.window_end), effect.day,
             *effect.categories])

    def _counted(self, flat: Any, effect: CountComplaint, now: float) -> list[Awaitable[Any]]:
        """What a count's reply calls for, queued: the alert of every category above its share of the route's
        window (``alerts.rules.category``), or nothing."""
        counts = {flat[i].decode(): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        upserts = category_share_alerts(effect.route, effect.region, counts, self.settings.rules,
                                        category_window_days(self.settings.rules), effect.categories)
        return [Step(self.store.upsert_call(upsert, f"category:{effect.token}:{upsert.dedup_key}", now),
                     lambda reply, upsert=upsert: self._upserted(reply, upsert, {}, now)) for upsert in upserts]
