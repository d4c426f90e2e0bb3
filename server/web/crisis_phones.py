"""The phone side of §11: a traveller who connects becomes one of the tour's people and gets the checks still open
for them; ``notice_reply`` and ``safety_reply`` are checked against their notice or check and stored in the tour's
shard stream with their idempotency key, like any event (``PhoneService`` stores them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from alerts.rules.crisis import SEP
from alerts.rules.crisis_rules import check_push
from guide_app_api.endpoints import PhoneConnection
from guide_app_api.errors import Forbidden, Invalid, NotFound, Unavailable
from guide_app_api.messages import NoticeReply, SafetyReply
from server.core import keys
from server.core.tokens import Claims
from server.db.writer import ScriptWriter
from server.storage.crisis import load_record, record_person

log = logging.getLogger(__name__)

Store = Callable[[Any, str, str, dict[str, Any]], Awaitable[dict[str, Any]]]
_CACHE = 10_000  # checks and notice metas kept per process (they never change once written)
_RECORDED = 200_000  # (tour, sub) pairs known to be recorded already


class CrisisPhones:
    """Per web process. It knows the open safety checks of every tour without asking Redis on each connection: it
    loads the recent ones at start (after the notice hub has fixed where its tail begins) and learns each new one
    from the hub, before the hub delivers it to any phone; so a phone either attached before the hub delivered a
    check (and got it live) or finds it here."""

    def __init__(self, redis: aioredis.Redis, writer: ScriptWriter, shards: int) -> None:
        self.redis = redis
        self.writer = writer
        self.shards = shards
        self._records: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._recorded: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loading: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        # tour -> check_id -> (deadline, epoch s; the check's frame)
        self.open: dict[str, dict[str, tuple[float, dict[str, Any]]]] = {}

    async def start(self) -> None:
        """The open checks of the recent ones (the hub has started: anything newer reaches :meth:`seen`)."""
        now = time.time()
        for raw in await self.redis.zrevrange(keys.CRISIS_RECENT, 0, -1):
            kind, _, ident = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
            check = await load_record(self.redis, keys.safety_check(ident)) if kind == "check" else None
            if check is not None and check["deadline"] > now:
                for tour_id in check["tour_ids"]:
                    self.seen(check_push(check["check_id"], check["message"], check["deadline"], tour_id))

    def seen(self, push: dict[str, Any]) -> None:
        """The notice hub's hook, for every push it reads, before it delivers it."""
        if push.get("type") == "safety_check" and push.get("tour_id"):
            frame = {k: v for k, v in push.items() if k not in ("audience", "to", "repeat", "seq")}
            deadline = datetime.fromisoformat(str(push["deadline"]).replace("Z", "+00:00")).timestamp()
            self.open.setdefault(str(push["tour_id"]), {})[str(push["check_id"])] = (deadline, frame)

    # --- connect -----------------------------------------------------------------------------------------------
    def attached(self, conn: PhoneConnection, now: float) -> None:
        """Record a traveller as one of each tour's people, and send the checks open for this person."""
        who = conn.who
        unrecorded = [t for t in sorted(who.tours) if (t, who.sub) not in self._recorded] \
            if who.role == "traveller" else []
        checks = self._open_now(who.tours, now)
        if not unrecorded and not checks:
            return  # the common case, and a reconnect storm's: nothing to ask Redis
        task = asyncio.create_task(self._on_connect(conn, unrecorded, checks, now))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _open_now(self, tours: frozenset[str], now: float) -> list[dict[str, Any]]:
        out = []
        for tour_id in tours:
            checks = self.open.get(tour_id)
            if not checks:
                continue
            for check_id, (deadline, frame) in list(checks.items()):
                if deadline <= now:
                    del checks[check_id]  # closed: late answers are still taken, but nobody is asked any more
                else:
                    out.append(frame)
        return out

    async def _on_connect(self, conn: PhoneConnection, unrecorded: list[str], checks: list[dict[str, Any]],
                          now: float) -> None:
        who = conn.who
        try:
            calls = [(tour_id, record_person(self.writer, self.shards, tour_id, who.sub, getattr(who, "name", None),
                                             now)) for tour_id in unrecorded]
            for tour_id, call in calls:
                await call
                self._remember((tour_id, who.sub))
            if checks:
                await self._send_open_checks(conn, checks)
        except (RedisError, OSError) as exc:
            log.warning("crisis: on connect of %s: %s", conn.sender, exc)

    def _remember(self, pair: tuple[str, str]) -> None:
        self._recorded[pair] = None
        if len(self._recorded) > _RECORDED:
            self._recorded.popitem(last=False)

    async def _send_open_checks(self, conn: PhoneConnection, checks: list[dict[str, Any]]) -> None:
        """Each open check this person has not answered (as far as the watcher has folded)."""
        pipe = self.redis.pipeline(transaction=False)
        for frame in checks:
            tour_id = frame["tour_id"]
            pipe.hexists(keys.state(keys.shard_of(tour_id, self.shards), tour_id),
                         f"a:{frame['check_id']}{SEP}{conn.who.sub}")
        for frame, done in zip(checks, await pipe.execute(), strict=True):
            if not done:
                with contextlib.suppress(Exception):  # a phone gone already misses nothing: it gets it next time
                    await conn.send(frame)

    async def _record(self, key: str) -> dict[str, Any] | None:
        """A check or notice meta (they never change once written), cached; the ten thousand answers that
        follow a check's push share one read (single flight), not one connection of the pool each."""
        record = self._records.get(key)
        if record is not None:
            return record
        pending = self._loading.get(key)
        if pending is None:
            pending = self._loading[key] = asyncio.ensure_future(load_record(self.redis, key))
            pending.add_done_callback(lambda _f: self._loading.pop(key, None))
        record = await asyncio.shield(pending)
        if record is not None:
            self._records[key] = record
            if len(self._records) > _CACHE:
                self._records.popitem(last=False)
        return record

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # --- replies -----------------------------------------------------------------------------------------------
    async def handle(self, msg: NoticeReply | SafetyReply, who: Claims, now: float, store: Store) -> dict[str, Any]:
        try:
            if isinstance(msg, NoticeReply):
                return await self._notice_reply(msg, who, now, store)
            return await self._safety_reply(msg, who, now, store)
        except RedisError:
            raise Unavailable("storage is unavailable: nothing was stored, retry later", msg_id=msg.id) from None

    async def _notice_reply(self, msg: NoticeReply, who: Claims, now: float, store: Store) -> dict[str, Any]:
        meta = await self._record(keys.notice_meta(msg.notice_id))
        if meta is None:
            raise NotFound(f"no notice with choices {msg.notice_id!r}", field="notice_id", msg_id=msg.id)
        tour_id = meta["tour_id"]
        if tour_id not in who.tours:
            raise Forbidden("that notice was not sent to your tours", field="notice_id", msg_id=msg.id)
        choices = int(meta["choices"])
        if msg.choice >= choices:
            raise Invalid(f"choice must be from 0 to {choices - 1}" if choices else "that notice has no choices",
                          field="choice", msg_id=msg.id)
        event = {"type": "notice_reply", "tour_id": tour_id, "at": msg.at, "notice_id": msg.notice_id,
                 "group_id": meta["group_id"], "choice": msg.choice, "person": who.sub, "person_role": who.role}
        return await store(msg, f"{who.role}:{who.sub}", tour_id, event)

    async def _safety_reply(self, msg: SafetyReply, who: Claims, now: float, store: Store) -> dict[str, Any]:
        check = await self._record(keys.safety_check(msg.check_id))
        if check is None:
            raise NotFound(f"no safety check {msg.check_id!r}", field="check_id", msg_id=msg.id)
        tours = [t for t in check["tour_ids"] if t in who.tours]
        if not tours:
            raise Forbidden("that check was not sent to your tours", field="check_id", msg_id=msg.id)
        sender = f"{who.role}:{who.sub}"
        base = {"type": "safety_reply", "at": msg.at, "check_id": msg.check_id, "status": msg.status,
                "note": msg.note, "location": msg.location}
        if msg.for_sub is not None and msg.for_sub != who.sub:
            if who.role != "guide":
                raise Forbidden("only a guide answers for someone else", field="for", msg_id=msg.id)
            tour_id = await self._tour_of(tours, msg.for_sub)
            event = {**base, "tour_id": tour_id, "person": msg.for_sub, "person_role": "traveller", "by": who.sub}
            return await store(msg, sender, tour_id, event)
        # one's own answer counts in each of one's tours the check was sent to
        replies = [await store(msg, sender, tour_id, {**base, "tour_id": tour_id, "person": who.sub,
                                                      "person_role": who.role, "by": None}) for tour_id in tours]
        return replies[0]

    async def _tour_of(self, tours: list[str], sub: str) -> str:
        """The guide's tour that the traveller is one of (the first of the check's, if none knows them yet)."""
        if len(tours) > 1:
            pipe = self.redis.pipeline(transaction=False)
            for tour_id in tours:
                pipe.sismember(keys.people(keys.shard_of(tour_id, self.shards), tour_id), sub)
            for tour_id, member in zip(tours, await pipe.execute(), strict=True):
                if member:
                    return tour_id
        return tours[0]
