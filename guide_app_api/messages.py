"""Client messages (contract §5): a decoded map in, one validated, immutable message out.

``parse_message(obj, role, now)`` checks everything a message can be judged by on its own and raises
:class:`Invalid` naming the offending ``field``. What needs outside knowledge (the token's scope, the tour's
dates and timezone, whether an incident or alert exists) is the endpoint's job, not this module's.

Each message has ``fingerprint()``, the digest its idempotency entry stores: a re-sent identical message
matches it, the same ``id`` with other content does not. It digests ``at`` *as sent* (``sent_at``, None when
absent), not as clamped: the clamp depends on when each copy arrived, and a phone re-sending after a lost ack
must still be answered ``duplicate``, not ``conflict``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from hashlib import blake2b
from typing import Any, ClassVar, TypeAlias

from guide_app_api.codec import packb
from guide_app_api.errors import Invalid

MAX_SKEW = 86400.0  # `at` is kept no earlier than this before receipt
ASPECTS = frozenset({"guide", "transport", "meals", "lodging", "itinerary"})
INCIDENT_KINDS = frozenset({
    "attraction_closed", "vehicle_breakdown", "medical", "lost_document", "accident", "delay", "weather",
    "lodging_problem", "conflict", "complaint", "other",
})
SEVERITIES = frozenset({"low", "medium", "high", "critical"})
# the emergency pool's resource kinds (contract §7): the one list, for `needs`, the pool and its importer
POOL_KINDS: tuple[str, ...] = ("vehicle", "lodging", "medical", "guide", "interpreter")
UPDATE_STATUSES = frozenset({"in_progress", "resolved"})

TYPES_BY_ROLE: dict[str, frozenset[str]] = {
    "traveller": frozenset({"rating", "notice_read", "followup_reply"}),
    "guide": frozenset({"incident", "incident_update", "notice_read"}),
    "supervisor": frozenset({"ack_alert", "resolve_alert", "assign_alert", "subscribe"}),
}

_TOUR_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_STREAM_ID = re.compile(r"\d{1,20}(?:-\d{1,20})?", re.ASCII)


class _Message:
    """Behaviour shared by every message; each subclass is a slotted frozen dataclass."""

    __slots__ = ()
    TYPE: ClassVar[str]

    def fingerprint(self) -> str:
        parts: list[Any] = [self.TYPE]
        for name in self.__slots__:  # the dataclass fields, in declaration order
            if name == "at":
                continue  # as clamped on arrival; `sent_at` is the content
            value = getattr(self, name)
            if type(value) is dict:
                value = sorted(value.items())  # key order on the wire is not content
            parts.append(value)
        return blake2b(packb(parts), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Rating(_Message):
    TYPE: ClassVar[str] = "rating"
    id: str
    at: float
    tour_id: str
    day: str
    score: int
    aspects: dict[str, int] | None
    comment: str | None
    nps: int | None
    sent_at: float | None = field(default=None, kw_only=True)

    def event_fields(self) -> dict[str, Any]:
        return {"type": "rating", "tour_id": self.tour_id, "at": self.at, "day": self.day,
                "score": self.score, "aspects": self.aspects, "comment": self.comment, "nps": self.nps}


@dataclass(frozen=True, slots=True)
class Incident(_Message):
    TYPE: ClassVar[str] = "incident"
    id: str
    at: float
    tour_id: str
    kind: str
    severity: str
    summary: str
    location: dict[str, float] | None
    needs: tuple[str, ...] | None
    travellers_affected: int | None
    sent_at: float | None = field(default=None, kw_only=True)

    def event_fields(self) -> dict[str, Any]:
        return {"type": "incident", "tour_id": self.tour_id, "at": self.at, "kind": self.kind,
                "severity": self.severity, "summary": self.summary, "location": self.location,
                "needs": None if self.needs is None else list(self.needs),
                "travellers_affected": self.travellers_affected}


@dataclass(frozen=True, slots=True)
class IncidentUpdate(_Message):
    TYPE: ClassVar[str] = "incident_update"
    id: str
    at: float
    incident_id: str
    status: str | None
    alternatives: tuple[str, ...] | None
    note: str | None
    sent_at: float | None = field(default=None, kw_only=True)

    def event_fields(self) -> dict[str, Any]:
        return {"type": "incident_update", "at": self.at, "incident_id": self.incident_id,
                "status": self.status,
                "alternatives": None if self.alternatives is None else list(self.alternatives),
                "note": self.note}


@dataclass(frozen=True, slots=True)
class NoticeRead(_Message):
    TYPE: ClassVar[str] = "notice_read"
    id: str
    at: float
    notice_id: str
    sent_at: float | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class FollowupReply(_Message):
    """The traveller's answer to a follow-up notice (contract §10): satisfied or not, with an optional score and
    comment. Which complaint it answers is read from ``notice_id`` (``followup:<dedup key>``) by the endpoint."""

    TYPE: ClassVar[str] = "followup_reply"
    id: str
    at: float
    notice_id: str
    satisfied: bool
    score: int | None
    comment: str | None
    sent_at: float | None = field(default=None, kw_only=True)

    def event_fields(self) -> dict[str, Any]:
        return {"type": "followup_reply", "at": self.at, "notice_id": self.notice_id,
                "satisfied": self.satisfied, "score": self.score, "comment": self.comment}


@dataclass(frozen=True, slots=True)
class AckAlert(_Message):
    TYPE: ClassVar[str] = "ack_alert"
    id: str
    at: float
    alert_id: str
    sent_at: float | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class BoardResolve(_Message):
    """A board's ``resolve_alert``; the watcher's effect of that name is :class:`alerts.rules.effects.ResolveAlert`."""

    TYPE: ClassVar[str] = "resolve_alert"
    id: str
    at: float
    alert_id: str
    note: str | None
    sent_at: float | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class AssignAlert(_Message):
    TYPE: ClassVar[str] = "assign_alert"
    id: str
    at: float
    alert_id: str
    assignee: str
    sent_at: float | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class Subscribe(_Message):
    TYPE: ClassVar[str] = "subscribe"
    id: str
    at: float
    since: str
    sent_at: float | None = field(default=None, kw_only=True)


Message: TypeAlias = (
    Rating | Incident | IncidentUpdate | NoticeRead | FollowupReply | AckAlert | BoardResolve | AssignAlert
    | Subscribe
)


# --- field checks: each raises Invalid(field=...) without msg_id; parse_message adds it in one place ---

def _opt_text(obj: dict[str, Any], name: str, max_len: int) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not str:
        raise Invalid(f"{name} must be a string", field=name)
    if len(value) > max_len:  # characters, not bytes: any language gets the same room
        raise Invalid(f"{name} must be at most {max_len} characters", field=name)
    return value


def _req_text(obj: dict[str, Any], name: str, max_len: int, strip: bool = False) -> str:
    value = obj.get(name)
    if value is None:
        raise Invalid(f"{name} is required", field=name)
    if type(value) is not str:
        raise Invalid(f"{name} must be a string", field=name)
    if strip:
        value = value.strip()
    if not value or len(value) > max_len:
        raise Invalid(f"{name} must be 1-{max_len} characters", field=name)
    return value


def _opt_choice(obj: dict[str, Any], name: str, allowed: frozenset[str]) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not str or value not in allowed:
        raise Invalid(f"{name} must be one of {', '.join(sorted(allowed))}", field=name)
    return value


def _req_choice(obj: dict[str, Any], name: str, allowed: frozenset[str]) -> str:
    value = _opt_choice(obj, name, allowed)
    if value is None:
        raise Invalid(f"{name} is required", field=name)
    return value


def _int(value: Any, where: str, low: int, high: int) -> int:
    # `type(...) is int` on purpose: bool is an int subclass, and 4.0 is not a score
    if type(value) is not int or not low <= value <= high:
        raise Invalid(f"{where} must be an integer from {low} to {high}", field=where)
    return value


def _opt_int(obj: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = obj.get(name)
    return None if value is None else _int(value, name, low, high)


def _parse_at(value: Any, now: float) -> tuple[float, float | None]:
    """-> (at clamped to [now - 24 h, now], at as sent or None)."""
    if value is None:
        return now, None
    if type(value) is not str or len(value) > 64:
        raise Invalid("at must be an ISO 8601 time string", field="at")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # a naive time is taken as UTC
        sent = moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise Invalid(f"at is not an ISO 8601 time: {value[:64]!r}", field="at") from None
    return min(max(sent, now - MAX_SKEW), now), sent


def _tour_id(obj: dict[str, Any]) -> str:
    value = obj.get("tour_id")
    if type(value) is not str or _TOUR_ID.fullmatch(value) is None:
        raise Invalid("tour_id must be 1-64 characters of A-Z a-z 0-9 _ . -", field="tour_id")
    return value


def _day(obj: dict[str, Any]) -> str:
    value = obj.get("day")
    if type(value) is not str or _DAY.fullmatch(value) is None:
        raise Invalid("day must be a date YYYY-MM-DD", field="day")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"day is not a calendar date: {value!r}", field="day") from None
    return value


def _aspects(obj: dict[str, Any]) -> dict[str, int] | None:
    value = obj.get("aspects")
    if value is None:
        return None
    if type(value) is not dict:
        raise Invalid("aspects must be a map of aspect to score", field="aspects")
    out: dict[str, int] = {}
    for key, score in value.items():
        if type(key) is not str or key not in ASPECTS:
            raise Invalid(f"aspects may only name {', '.join(sorted(ASPECTS))}",
                          field=f"aspects.{str(key)[:64]}")
        out[key] = _int(score, f"aspects.{key}", 1, 5)
    return out


def _coordinate(location: dict[str, Any], name: str, limit: float) -> float:
    value = location.get(name)
    where = f"location.{name}"
    # the range test also refuses NaN and the infinities, and never converts a huge int to float
    if (type(value) is not int and type(value) is not float) or not -limit <= value <= limit:
        raise Invalid(f"{where} must be a number from {-limit:g} to {limit:g}", field=where)
    return float(value)


def _location(obj: dict[str, Any]) -> dict[str, float] | None:
    value = obj.get("location")
    if value is None:
        return None
    if type(value) is not dict:
        raise Invalid("location must be a map with lat and lon", field="location")
    return {"lat": _coordinate(value, "lat", 90.0), "lon": _coordinate(value, "lon", 180.0)}


def _str_list(obj: dict[str, Any], name: str, max_items: int) -> list[Any] | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not list:
        raise Invalid(f"{name} must be a list", field=name)
    if len(value) > max_items:
        raise Invalid(f"{name} may hold at most {max_items} entries", field=name)
    return value


def _needs(obj: dict[str, Any]) -> tuple[str, ...] | None:
    value = _str_list(obj, "needs", 10)
    if value is None:
        return None
    for i, kind in enumerate(value):
        if type(kind) is not str or kind not in POOL_KINDS:
            raise Invalid(f"needs entries must be among {', '.join(sorted(POOL_KINDS))}", field=f"needs[{i}]")
    return tuple(dict.fromkeys(value))  # deduplicated, first mention first


def _alternatives(obj: dict[str, Any]) -> tuple[str, ...] | None:
    value = _str_list(obj, "alternatives", 20)
    if value is None:
        return None
    if not value:
        raise Invalid("alternatives must hold at least one plan", field="alternatives")
    out = []
    for i, plan in enumerate(value):
        where = f"alternatives[{i}]"
        if type(plan) is not str or not (plan := plan.strip()) or len(plan) > 300:
            raise Invalid(f"{where} must be a non-empty string of at most 300 characters", field=where)
        out.append(plan)
    return tuple(out)


# --- one parser per type ---

def _rating(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> Rating:
    return Rating(mid, at, _tour_id(obj), _day(obj), _int(obj.get("score"), "score", 1, 5), _aspects(obj),
                  _opt_text(obj, "comment", 2000), _opt_int(obj, "nps", 0, 10), sent_at=sent)


def _incident(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> Incident:
    return Incident(mid, at, _tour_id(obj), _req_choice(obj, "kind", INCIDENT_KINDS),
                    _req_choice(obj, "severity", SEVERITIES), _req_text(obj, "summary", 500, strip=True),
                    _location(obj), _needs(obj), _opt_int(obj, "travellers_affected", 0, 1000), sent_at=sent)


def _incident_update(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> IncidentUpdate:
    incident_id = _req_text(obj, "incident_id", 100)
    status = _opt_choice(obj, "status", UPDATE_STATUSES)
    alternatives = _alternatives(obj)
    note = _opt_text(obj, "note", 2000)
    if status is None and alternatives is None and note is None:
        raise Invalid("an incident_update needs status, alternatives or note", field="status")
    return IncidentUpdate(mid, at, incident_id, status, alternatives, note, sent_at=sent)


def _notice_read(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> NoticeRead:
    return NoticeRead(mid, at, _req_text(obj, "notice_id", 100), sent_at=sent)


def _followup_reply(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> FollowupReply:
    satisfied = obj.get("satisfied")
    if type(satisfied) is not bool:
        raise Invalid("satisfied must be true or false", field="satisfied")
    return FollowupReply(mid, at, _req_text(obj, "notice_id", 300), satisfied, _opt_int(obj, "score", 1, 5),
                         _opt_text(obj, "comment", 2000), sent_at=sent)


def _ack_alert(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> AckAlert:
    return AckAlert(mid, at, _req_text(obj, "alert_id", 100), sent_at=sent)


def _resolve_alert(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> BoardResolve:
    return BoardResolve(mid, at, _req_text(obj, "alert_id", 100), _opt_text(obj, "note", 2000), sent_at=sent)


def _assign_alert(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> AssignAlert:
    return AssignAlert(mid, at, _req_text(obj, "alert_id", 100), _req_text(obj, "assignee", 64), sent_at=sent)


def _subscribe(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> Subscribe:
    since = obj.get("since")
    if type(since) is not str or _STREAM_ID.fullmatch(since) is None:
        raise Invalid("since must be a stream id like 1700000000000-0", field="since")
    return Subscribe(mid, at, since, sent_at=sent)


_PARSERS: dict[str, Callable[[dict[str, Any], str, float, float | None], Message]] = {
    "rating": _rating, "incident": _incident, "incident_update": _incident_update,
    "notice_read": _notice_read, "followup_reply": _followup_reply, "ack_alert": _ack_alert,
    "resolve_alert": _resolve_alert,
    "assign_alert": _assign_alert, "subscribe": _subscribe,
}


def parse_message(obj: dict[str, Any], role: str, now: float) -> Message:
    """A decoded frame from a sender of ``role``, received at ``now`` (epoch s) -> a message, or Invalid."""
    raw_id = obj.get("id")
    msg_id = raw_id if type(raw_id) is str and 0 < len(raw_id) <= 64 else None
    kind = obj.get("type")
    if type(kind) is not str or kind not in TYPES_BY_ROLE.get(role, ()):
        raise Invalid(f"type must name a message a {role} may send", field="type", msg_id=msg_id)
    if msg_id is None:
        raise Invalid("id must be a string of 1-64 characters", field="id")
    try:
        at, sent = _parse_at(obj.get("at"), now)
        return _PARSERS[kind](obj, msg_id, at, sent)
    except Invalid as exc:
        exc.msg_id = msg_id
        raise


# --- §11 crisis: answers to a notice with choices, and to a safety check ------------------------------------
# Kept in one block so it merges cleanly beside other additions: the types register themselves below.

SAFETY_STATUSES = frozenset({"safe", "need_help"})
MAX_CHOICES = 5


@dataclass(frozen=True, slots=True)
class NoticeReply(_Message):
    """A person's choice on a notice with ``choices`` (0-based); whether it is in range needs the notice."""

    TYPE: ClassVar[str] = "notice_reply"
    id: str
    at: float
    notice_id: str
    choice: int
    sent_at: float | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class SafetyReply(_Message):
    """An answer to a safety check, for oneself or (a guide, ``for``) for a traveller of the tour."""

    TYPE: ClassVar[str] = "safety_reply"
    id: str
    at: float
    check_id: str
    status: str
    note: str | None
    location: dict[str, float] | None
    for_sub: str | None
    sent_at: float | None = field(default=None, kw_only=True)


def _notice_reply(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> NoticeReply:
    # the upper bound is the notice's own number of choices, checked where the notice is known
    return NoticeReply(mid, at, _req_text(obj, "notice_id", 200), _int(obj.get("choice"), "choice", 0,
                                                                          MAX_CHOICES - 1), sent_at=sent)


def _safety_reply(obj: dict[str, Any], mid: str, at: float, sent: float | None) -> SafetyReply:
    return SafetyReply(mid, at, _req_text(obj, "check_id", 100), _req_choice(obj, "status", SAFETY_STATUSES),
                       _opt_text(obj, "note", 2000), _location(obj), _for_sub(obj), sent_at=sent)


def _for_sub(obj: dict[str, Any]) -> str | None:
    value = obj.get("for")
    if value is None:
        return None
    if type(value) is not str or not 0 < len(value) <= 128:
        raise Invalid("for must be a traveller's sub of 1-128 characters", field="for")
    return value


_PARSERS.update(notice_reply=_notice_reply, safety_reply=_safety_reply)
for _role in ("traveller", "guide"):
    TYPES_BY_ROLE[_role] = TYPES_BY_ROLE[_role] | {"notice_reply", "safety_reply"}
