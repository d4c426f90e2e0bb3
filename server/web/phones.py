"""The phone backend: what ``guide_app_api.endpoints`` calls to authenticate, rate-limit and store a message.

Each accepted message becomes one call of ``lua/ingest.lua`` through the shared writer: the event and its
idempotency key are stored together in the tour's shard, and only then is the ack sent.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from datetime import date
from typing import Any

from redis.exceptions import RedisError
from starlette.websockets import WebSocket

from alerts.rules.clocks import iso
from guide_app_api.codec import packb
from guide_app_api.endpoints import PhoneConnection
from guide_app_api.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable, UnknownTour
from guide_app_api.messages import (
    FollowupReply,
    Incident,
    IncidentUpdate,
    Message,
    NoticeRead,
    NoticeReply,
    Rating,
    SafetyReply,
)
from guide_app_api.ratelimit import TokenBucket
from guide_app_api.scope import check_tour, followup_subject, incident_tour, make_incident_id
from server.core import keys
from server.core.metrics import Registry
from server.core.settings import Settings
from server.core.tokens import Claims
from server.db.durability import Acks
from server.db.writer import ScriptWriter
from server.storage.tours import TourRegistry
from server.web.auth import authenticate
from server.web.closing import close_socket
from server.web.crisis_phones import CrisisPhones
from server.web.hub import NoticeHub
from server.web.sessions import Sessions

CLOSE_TRY_AGAIN = 1013
_MAX_SENDERS = 100_000  # rate-limit buckets kept per process (least recently used dropped first)


class PhoneService:
    def __init__(self, settings: Settings, writer: ScriptWriter, tours: TourRegistry, hub: NoticeHub,
                 metrics: Registry, sessions: Sessions, acks: Acks | None = None,
                 crisis: CrisisPhones | None = None) -> None:
        self.settings = settings
        self.acks = acks or Acks()  # what each kind of message's ack waits for (contract §14)
        self.crisis = crisis  # §11: people of a tour, open safety checks, replies
        self.writer = writer
        self.tours = tours
        self.hub = hub
        self.sessions = sessions
        hub.overflow = self.overflow
        self.max_frame_bytes = settings.limits.max_frame_bytes
        self.bad_frames_per_minute = settings.limits.bad_frames_per_minute
        self._ttl = int(settings.storage.idempotency_ttl)
        self._shards = settings.storage.shards
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self.frames = metrics.counter("tourpulse_frames_total", "Frames received from phones, by outcome",
                                      ("outcome",))
        self.latency = metrics.histogram("tourpulse_ack_seconds", "Frame in to ack out, seconds")
        self.connections = metrics.gauge("tourpulse_phone_connections", "Connected phones, by role", ("role",))
        self.overflowed = 0  # this process's count, beside the metric
        self.overflows = metrics.counter("tourpulse_phone_send_queue_closed_total",
                                         "Phones closed (1013) for not reading their pushes")

    # --- the PhoneBackend protocol --------------------------------------------------------------------
    def authenticate(self, websocket: WebSocket, role: str) -> Claims:
        return authenticate(websocket, (role,))

    def allow(self, sender: str, now: float) -> bool:
        bucket = self._buckets.get(sender)
        if bucket is None:
            limits = self.settings.limits
            bucket = self._buckets[sender] = TokenBucket(limits.messages_per_second, limits.burst, now)
            if len(self._buckets) > _MAX_SENDERS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(sender)
        return bucket.take(now)

    def attach(self, conn: PhoneConnection, since: str | None) -> None:
        async def close(code: int) -> None:
            await close_socket(conn.websocket, code)

        conn.ticket = self.sessions.open(conn.who, close, capped=True)  # may close this sender's oldest
        self.hub.attach(conn, since)
        self._count(conn, 1)
        if self.crisis is not None:
            self.crisis.attached(conn, time.time())

    def detach(self, conn: PhoneConnection) -> None:
        self.hub.detach(conn)
        if conn.ticket is not None:
            self.sessions.forget(conn.ticket)
        self._count(conn, -1)

    def overflow(self, conn: PhoneConnection) -> None:
        """More pushes wait for this phone than ``send_queue``: it stopped reading; close it to resume later."""
        if conn.ticket is not None and not conn.ticket.closed:
            self.overflows.inc()
            self.overflowed += 1
            self.sessions.close(conn.ticket, CLOSE_TRY_AGAIN)

    def observe(self, outcome: str, started: float) -> None:
        self.frames.inc(outcome)
        if outcome == "ack":
            self.latency.observe(time.perf_counter() - started)

    def _count(self, conn: PhoneConnection, by: int) -> None:
        role = conn.who.role
        self.connections.set(self.connections.values.get((role,), 0) + by, role)

    async def handle(self, msg: Message, who: Claims, now: float) -> dict[str, Any]:
        sender = f"{who.role}:{who.sub}"
        if isinstance(msg, Rating):
            check_tour(who.tours, msg.tour_id, msg.id)
            tour = await self._tour(msg.tour_id, msg.id)
            if not tour.day_allowed(date.fromisoformat(msg.day), now):
                raise Invalid(f"{msg.day} is not a day of tour {msg.tour_id} up to today in {tour.timezone}",
                              field="day", msg_id=msg.id)
            event = self._event(msg, sender, now, traveller=who.sub)
            return await self._store(msg, sender, msg.tour_id, event, "plain", "")
        if isinstance(msg, Incident):
            check_tour(who.tours, msg.tour_id, msg.id)
            await self._tour(msg.tour_id, msg.id)
            incident_id = make_incident_id(msg.tour_id, sender, msg.id)
            event = self._event(msg, sender, now, incident_id=incident_id, guide=who.sub)
            reply = await self._store(msg, sender, msg.tour_id, event, "create", msg.tour_id)
            reply["incident_id"] = incident_id
            return reply
        if isinstance(msg, IncidentUpdate):
            tour_id = incident_tour(msg.incident_id, msg.id)
            check_tour(who.tours, tour_id, msg.id, field="incident_id")
            event = self._event(msg, sender, now, tour_id=tour_id)
            return await self._store(msg, sender, tour_id, event, "update", msg.status or "")
        if isinstance(msg, NoticeRead):
            return await self._notice_read(msg, sender, now)
        if isinstance(msg, FollowupReply):
            return await self._followup_reply(msg, who, sender, now)
        if isinstance(msg, NoticeReply | SafetyReply) and self.crisis is not None:
            return await self.crisis.handle(msg, who, now, self._store_reply)
        raise Invalid(f"{type(msg).__name__} is not accepted here", field="type", msg_id=msg.id)

    # --- helpers ----------------------------------------------------------------------------------------
    async def _tour(self, tour_id: str, msg_id: str) -> Any:
        tour = self.tours.peek(tour_id)
        if tour is None:
            try:
                tour = await self.tours.get(tour_id)
            except (RedisError, OSError):
                raise Unavailable("storage is unavailable: nothing was stored, retry later", msg_id=msg_id) from None
        if tour is None:
            raise UnknownTour(f"no tour {tour_id!r}", field="tour_id", msg_id=msg_id)
        return tour

    @staticmethod
    def _event(msg: Rating | Incident | IncidentUpdate | FollowupReply, sender: str, now: float,
               **extra: Any) -> dict[str, Any]:
        event = msg.event_fields()
        event["sender"] = sender
        event["msg_id"] = msg.id
        event["received_at"] = now
        event.update(extra)
        return event

    async def _store(self, msg: Message, sender: str, tour_id: str, event: dict[str, Any], mode: str,
                     arg: str) -> dict[str, Any]:
        shard = keys.shard_of(tour_id, self._shards)
        idem = keys.idem(shard, sender, msg.id)
        guard = keys.incident(shard, event["incident_id"]) if mode != "plain" else idem
        payload = packb(event)
        # safety replies are acked like incidents (contract §14: `ack_after_incident`)
        ack = self.acks.incidents if isinstance(msg, Incident | IncidentUpdate | SafetyReply) else self.acks.events
        outcome, seq = await self._call([idem, keys.events(shard), guard],
                                        [msg.fingerprint(), payload, self._ttl, mode, arg], msg.id, ack)
        return self._reply(outcome, seq, msg)

    async def _store_reply(self, msg: Message, sender: str, tour_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """A §11 reply (its fields made by ``CrisisPhones``), stored like a rating."""
        event.update(sender=sender, msg_id=msg.id, received_at=time.time())
        return await self._store(msg, sender, tour_id, event, "plain", "")

    async def _notice_read(self, msg: NoticeRead, sender: str, now: float) -> dict[str, Any]:
        event = {"notice_id": msg.notice_id, "sender": sender, "at": msg.at, "received_at": now}
        idem = keys.notice_idem(sender, msg.id)
        payload = packb(event)
        outcome, seq = await self._call([idem, keys.NOTICE_READS, idem],
                                        [msg.fingerprint(), payload, self._ttl, "plain", ""], msg.id,
                                        self.acks.events)
        reply = self._reply(outcome, seq, msg)
        # §11: a per-person read receipt, the first read kept (a re-sent read changes nothing)
        with contextlib.suppress(RedisError):
            await self.writer.command("HSETNX", keys.notice_read_by(msg.notice_id), sender, iso(msg.at))
        return reply

    async def _followup_reply(self, msg: FollowupReply, who: Claims, sender: str, now: float) -> dict[str, Any]:
        """A reply to a follow-up: only to one this traveller was sent (contract §10), stored like a rating."""
        dedup_key, tour_id, traveller = followup_subject(msg.notice_id, msg.id)
        check_tour(who.tours, tour_id, msg.id, field="notice_id")
        if traveller != who.sub:
            raise Forbidden("this follow-up was sent to someone else", field="notice_id", msg_id=msg.id)
        try:
            sent = await self.writer.command("EXISTS", keys.notice_sent(msg.notice_id), ack=0)  # a read
        except RedisError:
            raise Unavailable("storage is unavailable: nothing was stored, retry later", msg_id=msg.id) from None
        if not sent:
            raise NotFound(f"no follow-up {msg.notice_id!r}", field="notice_id", msg_id=msg.id)
        event = self._event(msg, sender, now, tour_id=tour_id, traveller=who.sub, dedup_key=dedup_key)
        return await self._store(msg, sender, tour_id, event, "plain", "")

    async def _call(self, keys_: list[str], args: list[Any], msg_id: str, ack: int) -> tuple[str, str]:
        try:
            # a durable ack that cannot be had (no replica) fails as StorageUnavailable: `unavailable`, retried
            outcome, seq = await self.writer.call("ingest", keys_, args, ack)
        except RedisError:
            raise Unavailable("storage is unavailable: nothing was stored, retry later", msg_id=msg_id) from None
        return outcome.decode(), seq.decode()

    @staticmethod
    def _reply(outcome: str, seq: str, msg: Message) -> dict[str, Any]:
        if outcome == "new":
            return {"seq": seq, "duplicate": False}
        if outcome == "dup":
            return {"seq": seq, "duplicate": True}
        if outcome == "conflict":
            raise Conflict(f"id {msg.id!r} was already used for a different message", field="id", msg_id=msg.id)
        if outcome == "not_found":
            raise NotFound("no such incident", field="incident_id", msg_id=msg.id)
        if outcome == "closed":
            raise Conflict("the incident is already resolved", field="status", msg_id=msg.id)
        raise Unavailable(f"unexpected storage answer {outcome!r}", msg_id=msg.id)
