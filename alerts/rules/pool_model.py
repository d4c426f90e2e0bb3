"""The emergency pool's plain data: resources, pull and release results, validation, and its errors.

Pure: no Redis here. :mod:`alerts.pool` stores what :func:`validate_resource` accepts and decodes what its Lua
scripts answer with :func:`decode_resource`.

A resource's lifecycle (a guarded state machine, enforced by the scripts)::

    free --pull--> held --dispatch--> dispatched
     ^              |                     |
     +---release----+---------------------+        retire: only while free

Exceptions::

    Exception
     └── PoolError            anything the pool refuses
          ├── PoolInvalid     a field is missing or out of range (``field`` names it): HTTP 400 ``invalid``
          ├── PoolNotFound    no such resource: HTTP 404 ``not_found``
          └── PoolConflict    the resource's state does not allow it: HTTP 409 ``conflict``
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from guide_app_api.messages import POOL_KINDS

KINDS: tuple[str, ...] = POOL_KINDS  # the one list of resource kinds, with the protocol at the bottom
STATES: tuple[str, ...] = ("free", "held", "dispatched")
MAX_CAPACITY = 100_000
MAX_TEXT = 200
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class PoolError(Exception):
    """Anything the pool refuses."""


class PoolInvalid(PoolError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PoolNotFound(PoolError):
    """No such resource."""


class PoolConflict(PoolError):
    """The resource's state does not allow the change."""


@dataclass(frozen=True, slots=True)
class PullResult:
    status: Literal["held", "queued"]
    resource: dict[str, Any] | None
    region: str
    shortfall: int = 0
    fallback: bool = False
    # True when the request already held this resource (a retried pull)
    retry: bool = False
    # place in the home region's queue (0 = next served) when queued
    position: int | None = None


@dataclass(frozen=True, slots=True)
class Served:
    """A waiting incident that a freed resource went to: the caller tells its guides."""

    incident_id: str
    request: str
    resource: dict[str, Any]
    region: str
    shortfall: int = 0


@dataclass(frozen=True, slots=True)
class Released:
    resource_id: str
    kind: str
    region: str
    held_seconds: float


@dataclass(frozen=True, slots=True)
class ReleaseOutcome:
    released: list[Released] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)


def check_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise PoolInvalid(name, f"{name} must be 1-64 letters, digits, '_', '.' or '-'")
    return value


def check_kind(value: Any) -> str:
    if value not in KINDS:
        raise PoolInvalid("kind", f"kind must be one of {', '.join(KINDS)}")
    return str(value)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    # bool is an int to Python, but `true` is not a capacity
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PoolInvalid(name, f"{name} must be an integer {low}-{high}")
    return value


def check_capacity(value: Any, low: int = 1) -> int:
    return _integer("capacity", value, low, MAX_CAPACITY)


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise PoolInvalid(name, f"{name} must be a string of at most {MAX_TEXT} characters")
    return value


def _coordinate(name: str, value: Any, limit: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not -limit <= value <= limit:
        raise PoolInvalid(name, f"{name} must be a number within -{limit:g}..{limit:g}")
    return float(value)


def check_location(value: Any, name: str = "location") -> dict[str, float] | None:
    """``{"lat", "lon"}`` or None."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise PoolInvalid(name, f"{name} must be an object with lat and lon")
    return {"lat": _coordinate("lat", value.get("lat"), 90), "lon": _coordinate("lon", value.get("lon"), 180)}


def validate_resource(body: Mapping[str, Any]) -> dict[str, Any]:
    """A resource as stored: every field checked; lat/lon given top-level or as ``location``.

    The one resource validator (the HTTP API and ``tourpulse pool import``); raises the first problem."""
    resource, problems = check_resource(body)
    if problems:
        raise problems[0]
    return resource


def check_resource(body: Any) -> tuple[dict[str, Any], list[PoolInvalid]]:
    """A resource as stored and every problem found in it, in field order (an importer reports them all)."""
    if not isinstance(body, Mapping):
        return {}, [PoolInvalid("resource", "a resource must be an object")]
    out: dict[str, Any] = {}
    problems: list[PoolInvalid] = []

    def take(name: str, check: Callable[..., Any], *args: Any) -> None:
        try:
            out[name] = check(*args)
        except PoolInvalid as exc:
            problems.append(exc)

    take("resource_id", check_id, "resource_id", body.get("resource_id"))
    take("kind", check_kind, body.get("kind"))
    take("region", check_id, "region", body.get("region"))
    take("capacity", check_capacity, body.get("capacity"))
    take("partner", _text, body, "partner")
    take("contact", _text, body, "contact")
    lat, lon = body.get("lat"), body.get("lon")
    take("location", check_location, {"lat": lat, "lon": lon} if lat is not None or lon is not None
         else body.get("location"))
    out.update(out.pop("location", None) or {})  # stored as top-level lat and lon
    return out, problems


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_resource(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored resource hash (bytes or str, as Redis or a script returns it) -> the API's resource."""
    r = {_str(k): _str(v) for k, v in raw.items()}
    out: dict[str, Any] = {
        "resource_id": r.get("resource_id", ""),
        "kind": r.get("kind", ""),
        "region": r.get("region", ""),
        "capacity": int(r.get("capacity", 0)),
        "partner": r.get("partner", ""),
        "contact": r.get("contact", ""),
        "state": r.get("state", "free"),
        "held_by": r.get("held_by") or None,
        "held_since": float(r["held_since"]) if r.get("held_since") else None,
        "dispatched_by": r.get("dispatched_by") or None,
        "dispatched_at": float(r["dispatched_at"]) if r.get("dispatched_at") else None,
    }
    if r.get("lat") and r.get("lon"):
        out["lat"], out["lon"] = float(r["lat"]), float(r["lon"])
    return out


def as_list(value: Any) -> list[Any]:
    """cjson encodes an empty Lua table as ``{}``: read it as the empty list it is."""
    return value if isinstance(value, list) else []
