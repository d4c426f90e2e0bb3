"""The effects crisis rules ask for beyond the common ones (``alerts/rules/effects.py``). Plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Push:
    """A push for the phones of ``push["tour_id"]`` (``audience``, optional ``to``: one sub or a list), published
    once per ``push_id`` into the notices stream the web processes tail."""

    push_id: str
    push: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WarnRegion:
    """A ``risk_warning`` notice to every tour in progress in ``region`` except ``from_tour``, once per tour (the
    notice id names the incident): which tours are in progress is known only where the registry is read."""

    incident_id: str
    region: str
    from_tour: str
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class AnnotateAlert:
    """Merge ``details`` into the open or acknowledged alert of ``dedup_key`` without counting a firing (a late
    answer shrinks the list of a ``safety_unaccounted`` alert)."""

    dedup_key: str
    details: dict[str, Any] = field(default_factory=dict)
