"""The consumer loop of one shard: read a batch, fold and evaluate it, hand the effects to the applier, then save
the states and ack. Nothing more: when and in what order effects reach Redis is :mod:`alerts.scheduling`'s.

Only the watcher holding the shard's lease runs this, so one tour's events are folded in stream order by one
process, and its folded states can be cached in memory while the lease lasts. Crash safety (docs/design.md):
effects are applied first; then the states are saved and the entries acked in one atomic step. An event whose
seq is not newer than its tour's ``last_seq`` was folded already and is only acked again. A failing entry stays
pending and is retried; after ``max_deliveries`` it goes to the shard's dead-letter stream with its error, and
the group moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from alerts.applier import EffectApplier
from alerts.rules.effects import Effect, EscalateAlert
from alerts.rules.evaluate import evaluate
from alerts.rules.fold import fold
from alerts.rules.state import TourState
from alerts.scheduling import Planned
from guide_app_api.codec import unpackb
from server.core import keys
from server.core.keys import parse_seq
from server.core.metrics import Registry
from server.core.settings import Settings
from server.db.cluster import key_connection
from server.db.resp import REPLY_TIMEOUT, RespError, pack
from server.db.scripts import script
from server.db.writer import ScriptWriter

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]


class MalformedEvent(ValueError):
    """An entry that decodes but is not an event: it can never be folded, so it is dead-lettered at once."""


def decode_entry(raw_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    event: dict[str, Any] = unpackb(fields[b"e"])
    # what the batch itself relies on (grouping by tour, dispatch by type) is checked here, so that one bad entry
    # fails alone with its real error instead of failing the whole batch again and again (a `tour_id` list once
    # stalled its shard for 72 s)
    if not isinstance(event, dict):
        raise MalformedEvent(f"the entry is a {type(event).__name__}, not a map")
    for name in ("type", "tour_id"):
        value = event.get(name)
        if value is not None and not isinstance(value, str):
            raise MalformedEvent(f"{name} is a {type(value).__name__}, not a string: {value!r:.200}")
    event["seq"] = raw_id.decode()
    fired_at = fields.get(b"fired_at")
    if fired_at is not None:
        event["fired_at"] = float(fired_at)
    return event


class LeaseLost(RedisError):
    """The shard's lease is no longer ours: nothing more is saved or acked; the new owner redoes the work."""


class ShardConsumer:
    def __init__(self, redis: aioredis.Redis, settings: Settings, shard: int, consumer: str,
                 applier: EffectApplier, metrics: Registry, writer: ScriptWriter | None = None) -> None:
        self.redis = redis
        # saves and acks of every shard share the watcher's pipelined writer (redis-py when there is none)
        self.writer = writer
        self.settings = settings
        self.shard = shard
        self.consumer = consumer
        self.applier = applier
        self.stream = keys.events(shard)
        self.reader = key_connection(settings.redis_url or "", self.stream)  # to the stream's primary
        self.states: dict[str, TourState] = {}
        self.last_seqs: dict[str, tuple[str, tuple[int, int]]] = {}  # tour -> its state's last_seq, parsed
        self.retry_pending = True  # first finish what a previous owner (or we) left pending
        # failures of an entry itself (not of entries held back behind it, which are re-delivered too)
        self.failures: dict[bytes, tuple[int, str]] = {}
        # folded and effects applied, state not yet saved / entries not yet acked: flushed together, at most
        # `flush` seconds later, so a busy tour's state is serialised once per flush rather than once per read
        self.unsaved: set[str] = set()  # tours whose state changed (each state knows which of its fields)
        self.unacked: dict[str, list[bytes]] = {}
        self.last_flush = time.monotonic()
        # one family however many shards the watcher owns: the registry returns the metric registered first
        self.folded = metrics.counter("tourpulse_events_folded_total", "Events folded, by type", ("type",))
        self.dead = metrics.counter("tourpulse_dead_letters_total", "Entries moved to a dead-letter stream")

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def take_over(self) -> None:
        """Claim every entry other consumers left pending: their owner lost the lease, so they are ours now."""
        cursor = "0-0"
        while True:
            # not JUSTID: redis-py then drops the cursor from the answer
            reply = await self.redis.xautoclaim(self.stream, keys.GROUP, self.consumer, min_idle_time=0,
                                                start_id=cursor, count=1000)
            cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            if cursor == "0-0":
                break

    async def run_once(self) -> int:
        """One read and its processing; returns how many entries were read."""
        watcher = self.settings.watcher
        if self.retry_pending:
            await self.flush()  # what succeeded is saved and acked first, so only what failed is read again
            entries = await self._read("0", None)
            if not entries:
                self.retry_pending = False
                return 0
            entries = await self._drop_poison(entries)
        else:
            entries = await self._read(">", min(watcher.block, watcher.flush) if self.unacked else watcher.block)
        if entries:
            await self.process(entries, time.time())
        if not entries or time.monotonic() - self.last_flush >= watcher.flush \
                or sum(map(len, self.unacked.values())) >= watcher.batch:
            await self.flush()
        return len(entries)

    async def _read(self, start: str, block: float | None) -> list[Entry]:
        """XREADGROUP over the consumer's own raw connection (a blocking read holds one): measured here, redis-py's
        machinery around each read was a tenth of a web-and-watcher process at 1,000 events/s."""
        conn = self.reader
        if not conn.connected:
            await conn.connect()
        command: list[Any] = ["XREADGROUP", "GROUP", keys.GROUP, self.consumer, "COUNT", self.settings.watcher.batch]
        if block is not None:
            command += ["BLOCK", max(1, int(block * 1000))]
        (reply,) = await conn.roundtrip([pack(*command, "STREAMS", self.stream, start)],
                                        timeout=(block or 0.0) + REPLY_TIMEOUT)
        if isinstance(reply, RespError):
            raise ResponseError(str(reply))
        if not reply:
            return []
        # fields come flat (name, value, ...); a pending entry trimmed away since comes with none
        return [(raw_id, dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}) for raw_id, flat in reply[0][1]]

    async def flush(self) -> None:
        """Save the states folded since the last flush and ack their entries, in one atomic, fenced step."""
        self.last_flush = time.monotonic()
        if not self.unacked and not self.unsaved:
            return
        acked = [seq for seqs in self.unacked.values() for seq in seqs]
        try:
            await self._commit(self.unsaved, acked)
        except BaseException:
            self._forget_unsaved()
            raise
        for seq in acked:  # an entry that failed before and now went through
            self.failures.pop(seq, None)
        self.unsaved.clear()
        self.unacked.clear()

    def _forget_unsaved(self) -> None:
        """States ahead of Redis are dropped: their entries stay pending and are folded again from Redis."""
        for tour_id in self.unsaved:
            self.states.pop(tour_id, None)
        self.unsaved.clear()
        self.unacked.clear()
        self.retry_pending = True

    async def _drop_poison(self, entries: list[Entry]) -> list[Entry]:
        """An entry that itself failed ``max_deliveries`` times goes to the dead-letter stream, acked, with its
        error. Delivery counts alone also count entries held back behind a failing one of the same tour, so they
        only serve as a backstop for an entry that crashes its whole process (4x the limit)."""
        limit = self.settings.watcher.max_deliveries
        first, last = entries[0][0], entries[-1][0]
        pending = await self.redis.xpending_range(self.stream, keys.GROUP, min=first, max=last,
                                                  count=len(entries) + 10, consumername=self.consumer)
        delivered = {p["message_id"]: p["times_delivered"] for p in pending}
        keep = []
        for raw_id, fields in entries:
            failed, error = self.failures.get(raw_id, (0, ""))
            if failed >= limit:
                await self._dead_letter(raw_id, fields, f"failed {failed} deliveries: {error}")
                self.failures.pop(raw_id, None)
            elif delivered.get(raw_id, 0) >= 4 * limit:
                await self._dead_letter(raw_id, fields, f"delivered {delivered[raw_id]} times without an ack")
            else:
                keep.append((raw_id, fields))
        return keep

    async def _dead_letter(self, raw_id: bytes, fields: dict[bytes, bytes], error: str) -> None:
        body = {b"seq": raw_id, b"error": error.encode()[-4000:], **fields}
        pipe = self.redis.pipeline(transaction=True)  # one slot: the dead letter and the ack land together
        pipe.xadd(keys.dead_letters(self.shard), body, maxlen=keys.DEAD_LETTERS_MAXLEN, approximate=True)
        pipe.xack(self.stream, keys.GROUP, raw_id)
        await pipe.execute()
        self.dead.inc()
        log.error("shard %s: entry %s moved to dead letters: %s", self.shard, raw_id, error.splitlines()[-1:])

    async def _load_states(self, tour_ids: list[str]) -> None:
        missing = [t for t in tour_ids if t not in self.states]
        if not missing:
            return
        pipe = self.redis.pipeline(transaction=False)
        for tour_id in missing:
            pipe.hgetall(keys.state(self.shard, tour_id))
        for tour_id, fields in zip(missing, await pipe.execute(), strict=True):
            self.states[tour_id] = TourState.from_fields(fields)

    async def process(self, entries: list[Entry], now: float) -> None:
        """Fold every event in stream order (pure), then apply each tour's effects in order, tours side by side:
        effects of different tours are independent, and the pipelined writer sends them together."""
        events: list[dict[str, Any]] = []
        for raw_id, fields in entries:
            try:
                events.append(decode_entry(raw_id, fields))
            except Exception:  # noqa: BLE001 - an undecodable entry can never succeed: dead-letter it now
                await self._dead_letter(raw_id, fields, traceback.format_exc())
        await self._load_states(list({e["tour_id"] for e in events if e.get("tour_id")}))
        plans: dict[str, Planned] = {}
        dirty: set[str] = set()
        failed_tours: set[str] = set()
        types: dict[str, int] = {}
        try:
            for event in events:
                kind = str(event.get("type"))
                types[kind] = types.get(kind, 0) + 1
                tour_id = event.get("tour_id") or ""
                if tour_id in failed_tours:
                    continue  # keep one tour's events in order: retry them after the failed one
                try:
                    changed, effects = self._plan(event, tour_id, now)
                except Exception:  # noqa: BLE001 - a poison entry: retried, then dead-lettered
                    self._failed(event, tour_id, traceback.format_exc(), plans, dirty, failed_tours)
                    continue
                plans.setdefault(tour_id, []).append((event, effects))
                if changed:
                    dirty.add(tour_id)
            for kind, count in types.items():
                self.folded.inc(kind, by=count)
            for tour_id, (event, error) in (await self.applier.apply_tours(plans, now)).items():
                self._failed(event, tour_id, error, plans, dirty, failed_tours)
        except BaseException:
            # effects may be half-applied and states ahead of Redis: forget the cache, retry from Redis
            for tour_id in set(dirty) | failed_tours | set(plans):
                self.states.pop(tour_id, None)
            self._forget_unsaved()
            raise
        self.unsaved |= dirty
        for tour_id, planned in plans.items():
            self.unacked.setdefault(tour_id, []).extend(event["seq"].encode() for event, _ in planned)

    def _failed(self, event: dict[str, Any], tour_id: str, error: str, plans: dict[str, Any],
                dirty: set[str], failed_tours: set[str]) -> None:
        """One event failed: its tour's state is dropped (reloaded on retry) and none of its events are acked,
        this read's or earlier ones'; the failure counts against that event alone."""
        log.warning("shard %s: event %s failed:\n%s", self.shard, event["seq"], error)
        raw = event["seq"].encode()
        self.failures[raw] = (self.failures.get(raw, (0, ""))[0] + 1, error)
        failed_tours.add(tour_id)
        self.states.pop(tour_id, None)  # the fold may have half-happened
        plans.pop(tour_id, None)
        dirty.discard(tour_id)
        self.unsaved.discard(tour_id)
        self.unacked.pop(tour_id, None)
        self.retry_pending = True

    def _plan(self, event: dict[str, Any], tour_id: str, now: float) -> tuple[bool, list[Effect]]:
        """Fold one event (pure): whether its tour's state changed, and the effects it asks for."""
        if event.get("type") == "deadline" and event.get("kind") == "escalation":
            # an ack clock belongs to the alert, not to the tour's state: the alert store decides
            subject = event.get("subject") or {}
            return False, [EscalateAlert(subject["alert_id"], int(subject["level"]))]
        state = self.states[tour_id]
        seq = parse_seq(event["seq"])
        last = self.last_seqs.get(tour_id)  # the tour's last seq as parsed when it was folded, if still current
        if seq <= (last[1] if last is not None and last[0] == state.last_seq else parse_seq(state.last_seq)):
            return False, []  # folded before a crash that came before its ack
        folded = fold(state, event, self.settings.rules)
        self.last_seqs[tour_id] = (state.last_seq, seq)
        return True, evaluate(state, event, folded, self.settings, now)

    async def _commit(self, tours: set[str], ids: list[bytes]) -> None:
        """Each tour's meta and the records that changed, and the entries folded into them, in one step that is
        refused whole once the lease is gone (``flush.lua``). A failed commit drops the states
        (``_forget_unsaved``): what they had not written is folded again from Redis."""
        script_keys = [keys.lease(self.shard), self.stream]
        args: list[Any] = [self.consumer, keys.GROUP, len(ids), *ids]
        for tour_id in tours:
            state = self.states[tour_id]
            changes, stale = state.take_changes(), state.take_stale_fields()
            script_keys.append(keys.state(self.shard, tour_id))
            args.append(2 * len(changes))
            for name, value in changes.items():
                args += (name, value)
            args += (len(stale), *stale)
        if int(await self._script("flush", script_keys, args)) < 0:
            raise LeaseLost(f"shard {self.shard}: lease lost, nothing saved or acked; the new owner redoes it")

    async def _script(self, name: str, script_keys: list[str], args: list[Any]) -> Any:
        if self.writer is not None:
            return await self.writer.run(name, script_keys, args)
        return await script(self.redis, name)(keys=script_keys, args=args)

    async def run(self, owns: asyncio.Event) -> None:
        """Loop while the lease is held (``owns`` set); errors back off and retry, never kill the loop."""
        await self.ensure_group()
        await self.take_over()
        backoff = 0.1
        try:
            while owns.is_set():
                try:
                    await self.run_once()
                    backoff = 0.1
                except asyncio.CancelledError:
                    raise
                except LeaseLost as exc:
                    # read no more: what a read now delivered would sit in this consumer's pending list, where the
                    # new owner does not look; the watcher sees `owns` cleared and drops the shard
                    log.warning("%s", exc)
                    owns.clear()
                except Exception as exc:  # noqa: BLE001 - storage trouble: wait and retry, the entries stay pending
                    log.warning("shard %s: %s; retrying in %.1fs", self.shard, exc, backoff)
                    self.retry_pending = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            await self.reader.close()
