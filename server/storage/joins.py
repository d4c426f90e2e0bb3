"""Joining a tour (contract §9): join codes in Redis, the lifetime of a joined traveller's token, the QR code.

A code names one tour and works for the whole group until it expires or a new code replaces it (one QR on the
coach, scanned by every traveller). ``issue_code`` and ``current_code`` are one script each (``join_issue.lua``),
so re-issuing kills the old code in the same step that stores the new one. Pure helpers take ``now``.

Shared by the HTTP API (``server.web.api.join``) and ``tourpulse join``.
"""

from __future__ import annotations

import io
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import segno

from alerts.rules.clocks import iso
from server.core import keys
from server.db.scripts import as_text, script
from server.storage.tours import Tour

STAFF_REFRESH_TTL = 12 * 3600.0  # what a refreshed staff token lives for (never beyond max_token_ttl)
JOINS_PER_MINUTE = 60


@dataclass(frozen=True, slots=True)
class JoinCode:
    code: str
    tour_id: str
    expires_at: float

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}/join/{self.code}"

    def to_wire(self, base: str) -> dict[str, Any]:
        url = self.url(base)
        return {"code": self.code, "url": url, "expires_at": iso(self.expires_at), "qr_svg": qr_svg(url)}


def tour_over_at(tour: Tour) -> float:
    """The end of the day after the tour's last day, where the tour is: when its travellers' tokens lapse."""
    last = datetime.combine(tour.end + timedelta(days=2), time(0), ZoneInfo(tour.timezone))
    return last.timestamp()


def phone_expiry(tours: list[Tour], now: float, max_ttl: float) -> float:
    """A phone token's expiry: the latest of its tours' ends plus a day, capped by ``max_token_ttl`` from now."""
    ends = [tour_over_at(t) for t in tours]
    return min(max(ends) if ends else now + STAFF_REFRESH_TTL, now + max_ttl)


def new_code() -> str:
    """12 URL-safe characters (72 random bits): typed by no one, guessed by no one."""
    return secrets.token_urlsafe(9)


def qr_svg(url: str) -> str:
    """A standalone SVG (with its namespace, so it works as an ``<img>`` data URL) of the QR code of ``url``."""
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=6, border=2, xmldecl=False, svgns=True,
                                    dark="#000", light="#fff")
    return out.getvalue().decode()


def qr_terminal(url: str) -> str:
    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


async def _issue(redis: Any, tour_id: str, expires_at: float, now: float, mode: str) -> JoinCode:
    record = json.dumps({"tour_id": tour_id, "expires_at": expires_at})
    ttl = max(1, int(expires_at - now))
    code, raw = await script(redis, "join_issue")(
        keys=[keys.join_current(tour_id)], args=[new_code(), record, ttl, keys.join_code_prefix(), mode])
    doc = json.loads(as_text(raw))
    return JoinCode(as_text(code), doc["tour_id"], float(doc["expires_at"]))


async def issue_code(redis: Any, tour_id: str, expires_at: float, now: float) -> JoinCode:
    """A new code for the tour; the one it replaces stops working."""
    return await _issue(redis, tour_id, expires_at, now, "new")


async def current_code(redis: Any, tour_id: str, expires_at: float, now: float) -> JoinCode:
    """The tour's working code, issuing one (valid until ``expires_at``) only if there is none."""
    return await _issue(redis, tour_id, expires_at, now, "get")


async def find_code(redis: Any, code: str) -> JoinCode | None:
    if not code or len(code) > 64:
        return None
    raw = await redis.get(keys.join_code(code))
    if raw is None:
        return None
    doc = json.loads(raw)
    return JoinCode(code, doc["tour_id"], float(doc["expires_at"]))


async def allow_join(redis: Any, address: str, now: float) -> bool:
    """At most :data:`JOINS_PER_MINUTE` joins per address per clock minute (a fixed window: cheap and enough)."""
    key = keys.join_rate(address, int(now // 60))
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, 120)
        count, _ = await pipe.execute()
    return int(count) <= JOINS_PER_MINUTE


async def record_joined(redis: Any, tour_id: str, sub: str, name: str) -> None:
    await redis.hset(keys.joined(tour_id), sub, name)
