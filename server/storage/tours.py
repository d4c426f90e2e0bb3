"""Tours: their registration (validated by pure code) and the registry that stores them in Redis.

A tour lives in its shard's slot as a hash (``keys.tour``); registering or changing it appends a ``tour``
event to the shard's stream in the same Lua step (``lua/put_tour.lua``), so the watcher folds tour changes in
stream order with everything else. The set of all tour ids (``keys.TOUR_INDEX``) is another slot, written as a
second step.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis.asyncio as aioredis

from guide_app_api.codec import packb
from server.core import keys
from server.core.settings import Settings
from server.db.scripts import SCRIPTS

ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_TEXT = 100
MAX_GUIDE = 128
MAX_DAYS = 366
MAX_TRAVELLERS = 1000
CACHE_TTL = 5.0
STALE_GRACE = 30.0  # an expired entry is still served (while it refreshes) for this long, no longer
_CACHE_MAX = 50_000
_FIELDS = ("route", "region", "guides", "start", "end", "timezone", "travellers")


class TourInvalid(ValueError):
    """A tour registration with a missing or out-of-range field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Tour:
    tour_id: str
    route: str
    region: str
    guides: tuple[str, ...]
    start: date
    end: date
    timezone: str
    travellers: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "tour_id": self.tour_id, "route": self.route, "region": self.region, "guides": list(self.guides),
            "start": self.start.isoformat(), "end": self.end.isoformat(), "timezone": self.timezone,
            "travellers": self.travellers,
        }

    def local_today(self, now: float) -> date:
        """The date at ``now`` where the tour is (its timezone), not where the server is."""
        return datetime.fromtimestamp(now, ZoneInfo(self.timezone)).date()

    def day_allowed(self, day: date, now: float) -> bool:
        """A day of the tour that has begun in the tour's timezone (ratings of future days are refused)."""
        return self.start <= day <= self.end and day <= self.local_today(now)


def _text(doc: Mapping[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str) or not value.strip():
        raise TourInvalid(name, f"{name} must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise TourInvalid(name, f"{name} must be at most {MAX_TEXT} characters")
    return value


def _date(doc: Mapping[str, Any], name: str) -> date:
    value = doc.get(name)
    if not isinstance(value, str) or not DATE_RE.fullmatch(value):
        raise TourInvalid(name, f"{name} must be a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TourInvalid(name, f"{name} is not a calendar date") from None


def validate_tour(tour_id: str, doc: Mapping[str, Any]) -> Tour:
    """A :class:`Tour` from a registration document, or :class:`TourInvalid` naming the first bad field."""
    if not isinstance(tour_id, str) or not ID_RE.fullmatch(tour_id):
        raise TourInvalid("tour_id", "tour_id must be 1-64 characters of A-Z a-z 0-9 _ . -")
    if not isinstance(doc, Mapping):
        raise TourInvalid("tour", "a tour must be an object")
    route = _text(doc, "route")
    region = _text(doc, "region")
    if not ID_RE.fullmatch(region):
        raise TourInvalid("region", "region must be 1-64 characters of A-Z a-z 0-9 _ . -")
    guides = doc.get("guides", [])
    if not isinstance(guides, list | tuple) or not all(
        isinstance(g, str) and 0 < len(g) <= MAX_GUIDE for g in guides
    ):
        raise TourInvalid("guides", f"guides must be a list of ids (strings of 1-{MAX_GUIDE} characters)")
    start, end = _date(doc, "start"), _date(doc, "end")
    if end < start:
        raise TourInvalid("end", "end must not be before start")
    if (end - start).days + 1 > MAX_DAYS:
        raise TourInvalid("end", f"a tour lasts at most {MAX_DAYS} days")
    timezone = doc.get("timezone")
    if not isinstance(timezone, str) or not timezone:
        raise TourInvalid("timezone", "timezone must be an IANA zone name such as Asia/Shanghai")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise TourInvalid("timezone", f"unknown timezone {timezone!r}") from None
    travellers = doc.get("travellers")
    if isinstance(travellers, bool) or not isinstance(travellers, int) \
            or not 1 <= travellers <= MAX_TRAVELLERS:
        raise TourInvalid("travellers", f"travellers must be an integer within 1..{MAX_TRAVELLERS}")
    return Tour(tour_id=tour_id, route=route, region=region, guides=tuple(dict.fromkeys(guides)), start=start,
                end=end, timezone=timezone, travellers=travellers)


def _to_hash(tour: Tour) -> dict[str, str]:
    doc = tour.to_dict()
    doc["guides"] = json.dumps(doc["guides"], ensure_ascii=False)
    doc["travellers"] = str(tour.travellers)
    del doc["tour_id"]
    return doc


def _from_hash(tour_id: str, raw: Mapping[Any, Any]) -> Tour | None:
    if not raw:
        return None
    h = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
         for k, v in raw.items()}
    # stored by put() after validation: trusted, so rebuilt directly rather than validated again
    return Tour(tour_id=tour_id, route=h["route"], region=h["region"], guides=tuple(json.loads(h["guides"])),
                start=date.fromisoformat(h["start"]), end=date.fromisoformat(h["end"]),
                timezone=h["timezone"], travellers=int(h["travellers"]))


def tour_event(tour: Tour, sender: str, now: float) -> dict[str, Any]:
    """The ``tour`` event of docs/design.md; its msg_id is a digest of the content (same tour, same id)."""
    doc = tour.to_dict()
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]
    event: dict[str, Any] = {"type": "tour", "sender": sender, "msg_id": f"tour:{digest}", "at": now,
                             "received_at": now}
    event.update(doc)
    return event


class TourRegistry:
    """Tours in Redis, with a short in-process cache so the hot path need not round-trip per frame."""

    def __init__(self, redis: aioredis.Redis, settings: Settings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = redis
        self._shards = settings.storage.shards
        self._put_script = redis.register_script(SCRIPTS["put_tour"])
        self._clock = clock
        self._cache: dict[str, tuple[float, Tour]] = {}
        self._loading: dict[str, asyncio.Future[Tour | None]] = {}

    def _remember(self, tour: Tour) -> None:
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()  # crude, but bounded; entries live seconds anyway
        # jittered, so a web process's tours do not all expire (and reload) in the same instant
        self._cache[tour.tour_id] = (self._clock() + CACHE_TTL * random.uniform(0.8, 1.2), tour)

    def peek(self, tour_id: str) -> Tour | None:
        """The hot path's read: the cached tour, even a little stale, refreshing it in the background once it
        expired (so no frame waits for that read); None when unknown here or stale for too long."""
        entry = self._cache.get(tour_id)
        if entry is None:
            return None
        expires, tour = entry
        now = self._clock()
        if now < expires:
            return tour
        if now > expires + STALE_GRACE:
            return None
        if tour_id not in self._loading:
            self._load_once(tour_id)
        return tour

    def get_cached(self, tour_id: str) -> Tour | None:
        """The tour if it was read or written here within the last few seconds, else None (no I/O)."""
        entry = self._cache.get(tour_id)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._cache[tour_id]
            return None
        return entry[1]

    async def put(self, tour: Tour, now: float, sender: str = "admin:cli") -> str | None:
        """Store the tour and append its ``tour`` event; the stream id, or None if nothing changed."""
        shard = keys.shard_of(tour.tour_id, self._shards)
        fields = _to_hash(tour)
        args: list[Any] = [packb(tour_event(tour, sender, now))]
        for name in _FIELDS:
            args += [name, fields[name]]
        seq = await self._put_script(keys=[keys.tour(shard, tour.tour_id), keys.events(shard)], args=args)
        # a second slot, so a second step; repeating it is harmless if we crashed in between
        await self._redis.sadd(keys.TOUR_INDEX, tour.tour_id)
        self._remember(tour)
        if isinstance(seq, bytes):
            seq = seq.decode()
        return seq or None

    async def get(self, tour_id: str) -> Tour | None:
        cached = self.get_cached(tour_id)
        if cached is not None:
            return cached
        if not ID_RE.fullmatch(tour_id):
            return None
        # single flight: when a popular tour's entry expires, its hundred phones share one read
        pending = self._loading.get(tour_id) or self._load_once(tour_id)
        return await asyncio.shield(pending)

    def _load_once(self, tour_id: str) -> asyncio.Future[Tour | None]:
        pending = self._loading[tour_id] = asyncio.ensure_future(self._load(tour_id))
        pending.add_done_callback(self._loaded(tour_id))
        return pending

    def _loaded(self, tour_id: str) -> Callable[[asyncio.Future[Tour | None]], None]:
        def done(future: asyncio.Future[Tour | None]) -> None:
            self._loading.pop(tour_id, None)
            if not future.cancelled() and future.exception() is None and future.result() is None:
                self._cache.pop(tour_id, None)  # gone from Redis: stop serving it
        return done

    async def _load(self, tour_id: str) -> Tour | None:
        raw = await self._redis.hgetall(keys.tour(keys.shard_of(tour_id, self._shards), tour_id))
        tour = _from_hash(tour_id, raw)
        if tour is not None:
            self._remember(tour)
        return tour

    async def list_ids(self) -> list[str]:
        members = await self._redis.smembers(keys.TOUR_INDEX)
        return sorted(m.decode() if isinstance(m, bytes) else m for m in members)

    async def list(self, region_filter: Callable[[str], bool] | None = None) -> list[Tour]:
        """Every registered tour (sorted by id) whose region passes ``region_filter``."""
        ids = await self.list_ids()
        if not ids:
            return []
        # not a transaction: the hashes are in many slots, which a plain pipeline may span
        pipe = self._redis.pipeline(transaction=False)
        for tour_id in ids:
            pipe.hgetall(keys.tour(keys.shard_of(tour_id, self._shards), tour_id))
        out = []
        for tour_id, raw in zip(ids, await pipe.execute(), strict=True):
            tour = _from_hash(tour_id, raw)
            if tour is None:
                continue
            self._remember(tour)
            if region_filter is None or region_filter(tour.region):
                out.append(tour)
        return out
