"""Incident rules: alerts, pool pulls, the attraction-alternatives clock and the guides' view. Pure.

An incident of severity high or critical alerts a supervisor; one whose ``needs`` are set (or whose kind needs
something by ``[pool] kind_needs``) pulls from the emergency pool; an attraction closure starts the clock for
three alternatives; a conflict or complaint opens an urgent complaint with its two clocks, which resolving the
incident leaves open (a supervisor answers it). Every change goes to the tour's guides. Resolving an incident
resolves its own alerts and returns what it holds to the pool; an SLA breach it caused stays, because the breach
happened.
"""

from __future__ import annotations

from typing import Any

from alerts.rules.answers import clocks, urgent_clocks
from alerts.rules.clocks import iso
from alerts.rules.effects import (
    ClearDeadline,
    Effect,
    IncidentChanged,
    PullResources,
    ReleaseResources,
    ResolveAlert,
    SetDeadline,
    UpsertAlert,
)
from alerts.rules.fold import Folded
from alerts.rules.state import IncidentState, TourState, region_of
from server.core.settings import Settings

ALERTING_SEVERITIES = frozenset({"high", "critical"})


def incident_effects(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
                     now: float) -> list[Effect]:
    incident_id = folded.incident_id or ""
    if not folded.incident_new:
        return []
    incident = state.incidents[incident_id]
    tour_id = str(event["tour_id"])
    region = region_of(state, event)
    out: list[Effect] = []
    if incident.severity in ALERTING_SEVERITIES:
        out.append(UpsertAlert(
            kind="incident", dedup_key=f"incident:{incident_id}", severity=incident.severity, region=region,
            tour_id=tour_id,
            summary=f"{tour_id}: {incident.kind.replace('_', ' ')} - {incident.summary}"[:300],
            details={"incident_id": incident_id, "kind": incident.kind, "severity": incident.severity,
                     "summary": incident.summary, "guide": incident.guide,
                     "travellers_affected": incident.travellers_affected, "location": incident.location}))
    if folded.complaint_key is not None:  # a conflict or complaint: urgent at any severity (contract §10)
        key = folded.complaint_key
        track = state.complaints[key]
        out.append(UpsertAlert(
            kind="urgent_complaint", dedup_key=key,
            severity="critical" if incident.severity == "critical" else "high", region=region, tour_id=tour_id,
            summary=f"{tour_id}: {incident.kind} reported by the guide - {incident.summary}"[:300],
            details={"incident_id": incident_id, "kind": incident.kind, "summary": incident.summary,
                     "guide": incident.guide, "day": track.day, "at": iso(track.opened_at),
                     "clocks": clocks(track, settings.sla)}))
        out.extend(urgent_clocks(key, track, tour_id, settings.sla))
    kinds = incident.needs or tuple(settings.pool.kind_needs.get(incident.kind, ()))
    if kinds:
        out.append(PullResources(incident_id=incident_id, tour_id=tour_id, region=region, kinds=tuple(kinds),
                                 capacity=incident.travellers_affected or 1, location=incident.location))
    if incident.kind == "attraction_closed":
        due = incident.opened_at + settings.sla.attraction_alternatives
        out.append(SetDeadline(f"alt:{incident_id}", due, "attraction_alternatives", tour_id,
                               {"incident_id": incident_id}))
    out.append(IncidentChanged(tour_id, incident.public(incident_id)))
    return out


def incident_update_effects(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
                            now: float) -> list[Effect]:
    incident_id = folded.incident_id or ""
    if not folded.changed:
        return []
    incident = state.incidents[incident_id]
    tour_id = str(event["tour_id"])
    out: list[Effect] = []
    if folded.proof_reached and incident.kind == "attraction_closed":
        out.extend(_alternatives_proved(incident_id, incident, tour_id, settings))
    if folded.status_changed and incident.status == "resolved":
        out.append(ReleaseResources(incident_id=incident_id, tour_id=tour_id, region=region_of(state, event)))
        by = event.get("sender") or "its guide"
        note = str(event.get("note") or "").strip() or f"incident resolved by {by}"
        out.append(ResolveAlert(f"incident:{incident_id}", note))
        if f"complaint:{incident_id}" in state.complaints:  # a guide's complaint from before §10 made it urgent
            out.append(ResolveAlert(f"complaint:{incident_id}", note))
        if folded.solved_key:
            out.append(ClearDeadline(f"complaint_response:{folded.solved_key}", tour_id))
        if incident.kind == "attraction_closed":
            out.append(ClearDeadline(f"alt:{incident_id}", tour_id))
    out.append(IncidentChanged(tour_id, incident.public(incident_id)))
    return out


def _alternatives_proved(incident_id: str, incident: IncidentState, tour_id: str,
                         settings: Settings) -> list[Effect]:
    """Three alternatives: in time stops the clock; in time but heard late also takes back the breach."""
    due = incident.opened_at + settings.sla.attraction_alternatives
    proof_at = incident.alternatives_proof_at
    if proof_at is None or proof_at > due:
        return []  # late for real: the deadline fires (or fired) and its breach stands
    out: list[Effect] = [ClearDeadline(f"alt:{incident_id}", tour_id)]
    if incident.breached:
        out.append(ResolveAlert(
            f"sla_breach:alt:{incident_id}",
            f"the guide offered {len(incident.alternatives)} alternatives at {iso(proof_at)}, before the "
            f"deadline ({iso(due)}); the proof arrived late (the phone was offline)"))
    return out
