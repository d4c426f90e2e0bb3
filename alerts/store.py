"""The alert store: every alert write is one Lua script in the ``{alerts}`` slot that also appends the changed
alert to the changes stream, so a board that has seen a change's seq has seen the alert as it was then.

The lifecycle is a state machine (:data:`TRANSITIONS`)::

    open ──ack──> acknowledged ──resolve──> resolved
     │  └─────────────resolve──────────────────^
     └─ assign (either status, keeps it);   ack of acknowledged: a no-op;   anything on resolved: Conflict

The table lives here; ``alert_act.lua`` applies it atomically. Effects of the watcher (upsert, system resolve,
escalate) are idempotent by the caller's token; a person's action is too when the caller passes one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from alerts.rules.clocks import iso
from alerts.rules.effects import UpsertAlert
from guide_app_api.codec import packb
from guide_app_api.errors import Conflict, Forbidden, Invalid, NotFound
from server.core import keys
from server.core.keys import parse_seq
from server.core.settings import Settings
from server.db.scripts import RedisScripts, ScriptRunner, as_text, to_json

ACTIONS = ("ack", "resolve", "assign")
STATUSES = ("open", "acknowledged", "resolved")
ACTIVE = frozenset({"open", "acknowledged"})
# alerts whose resolution is an answer to someone (contract §10): a resolve needs a note
ANSWERED_KINDS = frozenset({"complaint", "urgent_complaint"})

# (action, from status) -> to status; None = a no-op (the alert is returned unchanged); absent = Conflict
TRANSITIONS: dict[tuple[str, str], str | None] = {
    ("ack", "open"): "acknowledged",
    ("ack", "acknowledged"): None,
    ("resolve", "open"): "resolved",
    ("resolve", "acknowledged"): "resolved",
    ("assign", "open"): "open",
    ("assign", "acknowledged"): "acknowledged",
}

# how many of the newest alerts a list that includes resolved ones scans
LIST_SCAN = 2000
# alerts a board snapshot renders per call: ~30 µs each, so a call stays well under the 5 ms it may block Valkey
SNAPSHOT_PAGE = 50


def next_status(action: str, status: str) -> str | None:
    """The status an action leads to from ``status`` (None: nothing to do); Conflict when not allowed."""
    if (action, status) not in TRANSITIONS:
        raise Conflict(f"cannot {action} an alert that is {status}", field="alert_id")
    return TRANSITIONS[(action, status)]


@dataclass(frozen=True, slots=True)
class UpsertResult:
    body: str  # the alert as JSON (``alert`` parses it: most upserts of the watcher never look)
    opened: bool
    changed: bool
    # a replayed token: nothing changed now; ``opened`` is what the first application did, ``alert`` the alert as
    # it is now (None once it expired)
    replayed: bool = False

    @property
    def alert(self) -> dict[str, Any] | None:
        parsed: dict[str, Any] | None = json.loads(self.body)
        return parsed


@dataclass(frozen=True, slots=True)
class ActResult:
    alert: dict[str, Any]
    seq: str | None  # the change's seq (None: a no-op, nothing changed)
    duplicate: bool = False


def _unmark(marker: Any) -> tuple[bool, str, dict[str, Any]] | None:
    """A script's answer ``opened|seq|json`` -> (opened, seq, alert); None for a step that changed nothing (or
    replayed once its alert expired)."""
    text = as_text(marker)
    if not text:
        return None
    opened, seq, body = text.split("|", 2)
    alert = json.loads(body)
    return None if alert is None else (opened == "1", seq, alert)


def changed_alert(reply: Any) -> dict[str, Any] | None:
    """The alert after a resolve, escalate or annotate step; None when the step changed nothing."""
    _outcome, marker = reply
    applied = _unmark(marker)
    return applied[2] if applied else None


def upsert_result(reply: Any) -> UpsertResult:
    """The reply of ``alert_upsert.lua`` (an upsert always changes something the first time)."""
    outcome, marker = reply
    opened, _seq, body = as_text(marker).split("|", 2)
    replayed = as_text(outcome) == "replay"
    return UpsertResult(body=body, opened=opened == "1", changed=not replayed, replayed=replayed)


class AlertStore:
    def __init__(self, redis: aioredis.Redis, settings: Settings, runner: ScriptRunner | None = None) -> None:
        self.redis = redis
        self.settings = settings
        # the watcher passes its pipelined writer; web processes run the scripts over redis-py
        self.runner = runner or RedisScripts(redis)

    async def _call(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self.runner.run(name, keys, args)

    def _head(self, now: float, bound: int | float) -> list[Any]:
        """ARGV[1..6] every write script shares."""
        return [keys.ALERTS_TAG, self.settings.storage.changes_maxlen, iso(now), now, keys.EFFECT_MARKER_TTL,
                int(bound)]

    # --- watcher effects (idempotent by token) -----------------------------------------------------------
    async def upsert(self, effect: UpsertAlert, token: str, now: float) -> UpsertResult:
        return upsert_result(await self.upsert_call(effect, token, now))

    def upsert_call(self, effect: UpsertAlert, token: str, now: float) -> Awaitable[Any]:
        """:meth:`upsert`, started now (``ScriptRunner.call``); :func:`upsert_result` reads its reply."""
        args = [*self._head(now, keys.ALERT_INDEX_BOUND), effect.kind, effect.dedup_key, effect.severity, effect.region,
                effect.summary, effect.tour_id or ""]
        for name, value in effect.details.items():
            args.append(str(name))
            args.append(to_json(value))
        return self.runner.call(
            "alert_upsert", [keys.ALERT_CHANGES, keys.alert_applied(token), keys.alert_dedup(effect.dedup_key)], args)

    def resolve_call(self, dedup_key: str, note: str, by: str, token: str, now: float) -> Awaitable[Any]:
        """Resolve the open or acknowledged alert of a condition, started now (:func:`changed_alert` reads the
        reply: None when there is no such alert)."""
        return self.runner.call(
            "alert_resolve", [keys.ALERT_CHANGES, keys.alert_applied(token), keys.alert_dedup(dedup_key)],
            [*self._head(now, self.settings.storage.retention), by, note])

    async def annotate(self, dedup_key: str, details: dict[str, Any], token: str, now: float) -> dict[str, Any] | None:
        """Merge details into the open or acknowledged alert of a condition without counting a firing (None when
        there is no such alert)."""
        pairs: list[str] = []
        for name, value in details.items():
            pairs += [str(name), to_json(value)]
        return changed_alert(await self._call(
            "alert_annotate", keys=[keys.ALERT_CHANGES, keys.alert_applied(token), keys.alert_dedup(dedup_key)],
            args=[*self._head(now, 0), *pairs]))

    def escalate_call(self, alert_id: str, level: int, token: str, now: float) -> Awaitable[Any]:
        """Raise an open alert to ``level`` (severity one step up), started now (:func:`changed_alert` reads the
        reply: None when it was acknowledged, resolved or already at that level)."""
        return self.runner.call("alert_escalate", [keys.ALERT_CHANGES, keys.alert_applied(token)],
                                [*self._head(now, self.settings.storage.retention), alert_id, level])

    # --- a person's action -------------------------------------------------------------------------------
    async def act(self, alert_id: str, action: str, by: str, now: float, note: str | None = None,
                  assignee: str | None = None, *, regions_check: Callable[[str], bool],
                  token: str | None = None) -> dict[str, Any]:
        """Apply ``action`` for ``by`` (the sender, ``"<role>:<sub>"``) and return the alert after it."""
        return (await self.act_result(alert_id, action, by, now, note, assignee, regions_check=regions_check,
                                      token=token)).alert

    async def act_result(self, alert_id: str, action: str, by: str, now: float, note: str | None = None,
                         assignee: str | None = None, *, regions_check: Callable[[str], bool],
                         token: str | None = None) -> ActResult:
        """:meth:`act` with the change's seq and whether ``token`` was applied before."""
        if action not in ACTIONS:
            raise Invalid(f"unknown action {action!r}", field="action")
        if action == "assign" and not assignee:
            raise Invalid("assign needs an assignee", field="assignee")
        # a region and a kind never change, so checking them before the atomic step is safe; a refusal changes
        # nothing
        region, kind = await self.redis.hmget(keys.alert(alert_id), ["region", "kind"])
        if region is None:
            raise NotFound(f"no alert {alert_id!r}", field="alert_id")
        if not regions_check(as_text(region)):
            raise Forbidden("this alert is outside your regions", field="alert_id")
        if action == "resolve" and as_text(kind) in ANSWERED_KINDS and not (note or "").strip():
            raise Invalid("resolving a complaint needs a note: it is the answer the traveller receives",
                          field="note")
        pairs: list[str] = []
        for (act, status), to in TRANSITIONS.items():
            if act == action:
                pairs += [status, to or ""]
        marker_key = keys.alert_applied(f"act:{token}") if token else keys.ALERT_CHANGES
        reply = await self._call(
            "alert_act", keys=[keys.ALERT_CHANGES, marker_key],
            args=[*self._head(now, self.settings.storage.retention), alert_id, action, by, note or "",
                  assignee or "", "1" if token else "0", *pairs])
        outcome = as_text(reply[0])
        if outcome == "not_found":
            raise NotFound(f"no alert {alert_id!r}", field="alert_id")
        if outcome == "conflict":
            next_status(action, as_text(reply[1]))  # raises the Conflict that names the illegal transition
        if outcome == "noop":
            return ActResult(alert=json.loads(reply[1]), seq=None)
        applied = _unmark(reply[1])
        assert applied is not None
        _opened, seq, alert = applied
        # the shard write is idempotent per change, so a replayed token also finishes one a crash cut short
        await self._tell_watcher(alert, action, by, note, seq, token, now)
        return ActResult(alert=alert, seq=seq, duplicate=outcome == "replay")

    async def _tell_watcher(self, alert: dict[str, Any], action: str, by: str, note: str | None, seq: str,
                            token: str | None, now: float) -> None:
        """The action as an event of the alert's tour (a second, separate single-slot step)."""
        tour_id = alert.get("tour_id")
        if not tour_id:
            return
        shard = keys.shard_of(tour_id, self.settings.storage.shards)
        base = {"tour_id": tour_id, "sender": by, "msg_id": token or f"{action}:{alert['alert_id']}:{seq}",
                "at": now, "received_at": now}
        event = {"type": "alert_action", **base, "alert_id": alert["alert_id"],
                 "dedup_key": alert.get("dedup_key"), "action": action, "note": note,
                 "assignee": alert.get("assignee")}
        incident_id = (alert.get("details") or {}).get("incident_id")
        update = b""
        guard = keys.events(shard)
        if action == "resolve" and alert["kind"] == "incident" and isinstance(incident_id, str):
            guard = keys.incident(shard, incident_id)
            update = packb({"type": "incident_update", **base, "msg_id": f"{base['msg_id']}:incident",
                            "incident_id": incident_id, "status": "resolved", "alternatives": None, "note": note})
        await self._call(
            "alert_shard_action",
            keys=[keys.events(shard), keys.idem(shard, "alert", f"{alert['alert_id']}:{seq}"), guard],
            args=[packb(event), update, keys.EFFECT_MARKER_TTL])

    async def record_followup(self, alert_id: str, by: str, satisfied: bool, note: str | None, now: float, *,
                              regions_check: Callable[[str], bool]) -> dict[str, Any]:
        """A follow-up made by telephone (contract §10), as the ``followup_reply`` event of the alert's tour: the
        watcher folds it like a phone's reply. Returns the alert as it is now (the watcher may reopen it)."""
        alert = await self.get(alert_id)
        if alert is None:
            raise NotFound(f"no alert {alert_id!r}", field="alert_id")
        if not regions_check(alert["region"]):
            raise Forbidden("this alert is outside your regions", field="alert_id")
        if alert["kind"] != "urgent_complaint" or not alert.get("tour_id"):
            raise Conflict("a follow-up is recorded on an urgent complaint", field="alert_id")
        tour_id = alert["tour_id"]
        shard = keys.shard_of(tour_id, self.settings.storage.shards)
        msg_id = f"followup:{alert_id}:{now!r}"
        event = {"type": "followup_reply", "tour_id": tour_id, "sender": by, "msg_id": msg_id, "at": now,
                 "received_at": now, "alert_id": alert_id, "dedup_key": alert["dedup_key"],
                 "satisfied": satisfied, "note": note, "by_phone": False}
        await self._call("alert_shard_action",
                         keys=[keys.events(shard), keys.idem(shard, "alert", msg_id), keys.events(shard)],
                         args=[packb(event), b"", keys.EFFECT_MARKER_TTL])
        return alert

    # --- reads -------------------------------------------------------------------------------------------
    async def get(self, alert_id: str) -> dict[str, Any] | None:
        found = await self._call(
            # the script reads keys it builds from the prefix; ALERT_ALL only names its slot for a cluster to route by
            "alert_read", keys=[keys.ALERT_ALL], args=[keys.ALERTS_TAG, alert_id])
        return json.loads(found[0]) if found else None

    async def audit(self, alert_id: str) -> list[dict[str, Any]]:
        return [json.loads(entry) for entry in await self.redis.lrange(keys.alert_audit(alert_id), 0, -1)]

    async def regions(self) -> list[str]:
        return sorted(as_text(r) for r in await self.redis.smembers(keys.ALERT_REGIONS))

    async def list(self, statuses: set[str], region_filter: Callable[[str], bool], region: str | None = None,
                   kind: str | None = None) -> list[dict[str, Any]]:
        """Alerts of the given statuses in the regions that pass the filter, newest change first."""
        regions = [r for r in await self.regions() if region_filter(r) and (region is None or r == region)]
        if not regions or not statuses:
            return []
        scan = LIST_SCAN if statuses - ACTIVE else 0
        found = await self._call(
            "alert_list", keys=[keys.ALERT_ALL],  # names the {alerts} slot (the script builds its keys)
            args=[keys.ALERTS_TAG, "1" if statuses & ACTIVE else "0", scan, *regions])
        alerts = [json.loads(raw) for raw in found]
        alerts = [a for a in alerts if a["status"] in statuses and (kind is None or a["kind"] == kind)]
        alerts.sort(key=lambda a: (a["updated_at"], a["alert_id"]), reverse=True)
        return alerts

    async def snapshot(self, regions_filter: Callable[[str], bool]) -> tuple[list[dict[str, Any]], str]:
        """The open and acknowledged alerts of the regions that pass the filter, and the seq of that view.

        Read in pages (``alert_snapshot_page.lua``, at most about ``SNAPSHOT_PAGE`` alerts a call), so that no
        single call blocks the server for long however many alerts there are. Pages read at different moments are
        made one view by the changes stream: its last seq is read first, then the pages, then every change after
        that seq is applied in order (each carries the whole alert after it). Every state a page shows has its
        change in the stream already, so the result is exactly the view as of the last change applied: its seq.
        """
        while True:
            last = await self.redis.xrevrange(keys.ALERT_CHANGES, count=1)
            seq = as_text(last[0][0]) if last else "0-0"
            # read after the seq: a region first seen later has all its alerts in the changes after it
            regions = [r for r in await self.regions() if regions_filter(r)]
            by_id: dict[str, dict[str, Any]] = {}
            for region in regions:
                cursor = "0"
                while True:
                    found = await self._call("alert_snapshot_page", keys=[keys.alert_active(region)],
                                             args=[keys.ALERTS_TAG, cursor, SNAPSHOT_PAGE])
                    cursor = as_text(found[0])
                    for raw in found[1:]:
                        alert = json.loads(raw)
                        by_id[alert["alert_id"]] = alert
                    if cursor == "0":
                        break
            seq = await self._replay(by_id, seq, regions_filter)
            if seq is not None:
                return sorted(by_id.values(), key=lambda a: a["opened_at"]), seq
            # the changes after our seq were trimmed meanwhile (a storm of changes): read again

    async def _replay(self, by_id: dict[str, dict[str, Any]], seq: str,
                      regions_filter: Callable[[str], bool]) -> str | None:
        """Apply the changes after ``seq`` to a snapshot; its new seq, or None if some are no longer kept."""
        while True:
            changes = await self.changes_after(seq, SNAPSHOT_PAGE * 4)
            if changes is None:
                return None
            for change_seq, alert in changes:
                seq = change_seq
                if not regions_filter(alert.get("region", "")):
                    continue
                if alert.get("status") in ACTIVE:
                    by_id[alert["alert_id"]] = alert
                else:
                    by_id.pop(alert["alert_id"], None)
            if len(changes) < SNAPSHOT_PAGE * 4:
                return seq

    async def changes_after(self, seq: str, limit: int) -> list[tuple[str, dict[str, Any]]] | None:
        """Up to ``limit`` changes after ``seq``, oldest first; None when some of them are no longer kept (or
        ``seq`` is not from this stream), so the caller must start again from a snapshot."""
        start = parse_seq(seq)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xinfo_stream(keys.ALERT_CHANGES)
            pipe.xrange(keys.ALERT_CHANGES, min=f"({start[0]}-{start[1]}", count=limit)
            try:
                info, entries = await pipe.execute()
            except ResponseError:  # no stream yet: nothing happened, nothing was dropped
                return None if start > (0, 0) else []
        last = parse_seq(as_text(info.get("last-generated-id") or "0-0"))
        if start > last:
            return None
        # we never XDEL, so entries are missing only when trimmed, and then only before the first one kept
        # (Valkey 8.1 leaves max-deleted-entry-id at 0-0 on trimming)
        trimmed = int(info.get("entries-added", 0)) > int(info.get("length", 0))
        first = info.get("first-entry")
        if trimmed and start < last and (not first or start < parse_seq(as_text(first[0]))):
            return None
        return [(as_text(raw_seq), json.loads(fields[b"a"])) for raw_seq, fields in entries]
