"""What the rules ask for: plain data, applied by the consumer shell, each step idempotent.

The rules (pure) return a list of these; ``alerts/consumer.py`` applies them in order, keyed by the seq of the
event that caused them, before it acks that event. None of them does I/O itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alerts.rules.crisis_effects import AnnotateAlert, Push, WarnRegion


@dataclass(frozen=True, slots=True)
class UpsertAlert:
    """Open the alert for (kind, subject) or, while one is open or acknowledged, update it (count + 1)."""

    kind: str
    dedup_key: str
    severity: str
    region: str
    summary: str
    tour_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # schedule the [sla] ack_escalation clocks when this opens a new alert
    escalate: bool = True


@dataclass(frozen=True, slots=True)
class ResolveAlert:
    """Resolve the open or acknowledged alert with this dedup key, if there is one."""

    dedup_key: str
    note: str


@dataclass(frozen=True, slots=True)
class EscalateAlert:
    """Raise an alert to ``level`` (and severity one step) if it is still open, i.e. unacknowledged."""

    alert_id: str
    level: int


@dataclass(frozen=True, slots=True)
class SetDeadline:
    """A clock in the tour's shard; setting the same id twice keeps one deadline (the later due time)."""

    deadline_id: str
    due: float
    kind: str
    tour_id: str
    subject: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClearDeadline:
    deadline_id: str
    tour_id: str


@dataclass(frozen=True, slots=True)
class PullResources:
    """Take one resource of each kind from the region's pool (falling back to neighbours) for an incident."""

    incident_id: str
    tour_id: str
    region: str
    kinds: tuple[str, ...]
    capacity: int
    location: dict[str, float] | None = None


@dataclass(frozen=True, slots=True)
class ReleaseResources:
    """Return everything an incident holds to the pool (and serve whoever waits for it)."""

    incident_id: str
    tour_id: str
    region: str


@dataclass(frozen=True, slots=True)
class SendNotice:
    """A notice to the phones of one tour: all its travellers, its guides, or one person (``to`` = sub)."""

    notice_id: str
    tour_id: str
    kind: str
    title: str
    body: str
    audience: str = "travellers"  # "travellers" | "guides" | "all"
    to: str | tuple[str, ...] | None = None  # one person's sub, or several (the second prompt to rate)
    alert_id: str | None = None  # an answer or follow-up names the complaint's alert (contract §10)


@dataclass(frozen=True, slots=True)
class IncidentChanged:
    """Push an incident's new state to the guides of its tour."""

    tour_id: str
    incident: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CountComplaint:
    """Count a rating's complaint categories toward its route (once per rating, in the bucket of ``day``), then,
    when ``judge``, judge every category's share of the route's trailing window (``alerts.rules.category``)."""

    route: str
    region: str
    category: str  # the complaint's own category ("" when only low aspects are counted)
    token: str
    categories: tuple[str, ...] = ()  # every category counted (the complaint's and its low aspects'), each once
    day: str = ""  # the UTC date of the rating's `at`: its window bucket
    window_end: str = ""  # the UTC date the window ends on (the watcher's now): the buckets summed
    judge: bool = True


Effect = (
    UpsertAlert | ResolveAlert | EscalateAlert | SetDeadline | ClearDeadline | PullResources
    | ReleaseResources | SendNotice | IncidentChanged | CountComplaint
    | Push | WarnRegion | AnnotateAlert  # §11, alerts/rules/crisis_effects.py
)
