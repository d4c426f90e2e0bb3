"""Closing the loop (contract §10): a complaint's answer and follow-up, the traveller's reply, a reopening. Pure.

A supervisor's resolve with a note is the answer: it goes to whoever complained (the traveller's phones, or the
tour's guides for a complaint a guide reported) as a notice of kind ``answer``; for an urgent complaint a
``followup`` notice goes with it, asking whether they are satisfied now. The reply (``followup_reply``, from the
phone or recorded by a supervisor who telephoned) meets the follow-up clock; "not satisfied" opens the complaint
again as a new ``urgent_complaint`` with its own clocks.
"""

from __future__ import annotations

from typing import Any

from alerts.rules.clocks import iso
from alerts.rules.effects import ClearDeadline, Effect, SendNotice, SetDeadline, UpsertAlert
from alerts.rules.fold import Folded
from alerts.rules.state import ComplaintTrack, TourState, region_of
from server.core.settings import Settings, SlaSettings


def clocks(track: ComplaintTrack, sla: SlaSettings) -> dict[str, str]:
    """The complaint's clocks as due times (ISO 8601): what the board counts down."""
    if track.kind == "urgent":
        return {"solution": iso(track.opened_at + sla.urgent_complaint_solution),
                "followup": iso(track.opened_at + sla.urgent_complaint_followup)}
    return {"response": iso(track.opened_at + sla.complaint_response)}


def urgent_clocks(key: str, track: ComplaintTrack, tour_id: str, sla: SlaSettings) -> list[Effect]:
    """The 2 h solution and 24 h follow-up deadlines of an urgent complaint that just opened."""
    subject: dict[str, Any] = {"dedup_key": key}
    if track.traveller is not None:
        subject.update(traveller=track.traveller, day=track.day)
    if track.incident_id is not None:
        subject["incident_id"] = track.incident_id
    return [SetDeadline(f"urgent_solution:{key}", track.opened_at + sla.urgent_complaint_solution,
                        "urgent_solution", tour_id, subject),
            SetDeadline(f"urgent_followup:{key}", track.opened_at + sla.urgent_complaint_followup,
                        "urgent_followup", tour_id, dict(subject))]


def _to(track: ComplaintTrack) -> dict[str, Any]:
    """Whom a complaint's answer reaches: the traveller who complained, else the guides who reported it."""
    if track.traveller:
        return {"audience": "travellers", "to": track.traveller}
    return {"audience": "guides", "to": None}


def answer_effects(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
                   now: float) -> list[Effect]:
    """A complaint resolved with a note: stop its solution clock, send the answer (and the follow-up question)."""
    key = folded.solved_key
    if key is None:
        return []
    track = state.complaints[key]
    tour_id = str(event["tour_id"])
    alert_id = event.get("alert_id")
    alert_id = str(alert_id) if alert_id else None
    about = f"About {track.day}: " if track.day else ""
    out: list[Effect] = [ClearDeadline(
        f"{'urgent_solution' if track.kind == 'urgent' else 'complaint_response'}:{key}", tour_id)]
    out.append(SendNotice(notice_id=f"answer:{key}", tour_id=tour_id, kind="answer",
                          title="Our answer to your feedback", body=f"{about}{track.resolved_note}",
                          alert_id=alert_id, **_to(track)))
    if track.kind == "urgent":
        out.append(SendNotice(notice_id=f"followup:{key}", tour_id=tour_id, kind="followup",
                              title="Is it put right?",
                              body=f"{about}{track.resolved_note}. Are you satisfied now? Answer yes or no, "
                                   "or rate the day again.",
                              alert_id=alert_id, **_to(track)))
    return out


def followup_reply_effects(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
                           now: float) -> list[Effect]:
    """A follow-up answered: the clock is met (the fold judged it); "not satisfied" reopens the complaint."""
    key = folded.answered_key
    if key is None:
        return []
    tour_id = str(event["tour_id"])
    out: list[Effect] = [ClearDeadline(f"urgent_followup:{key}", tour_id)]
    new_key = folded.complaint_key if folded.complaint_new else None
    if new_key is not None:
        out.extend(reopened(state, event, new_key, settings))
    return out


def reopened(state: TourState, event: dict[str, Any], key: str, settings: Settings) -> list[Effect]:
    """The new urgent complaint an unsatisfied answer opens, with clocks of its own."""
    track = state.complaints[key]
    tour_id = str(event["tour_id"])
    who = track.traveller or "the guides"
    details: dict[str, Any] = {"reopens": track.reopens, "reopen_count": track.reopen_count,
                               "at": iso(track.opened_at), "clocks": clocks(track, settings.sla),
                               "answered_by": event.get("sender")}
    for name in ("traveller", "day", "incident_id"):
        if getattr(track, name) is not None:
            details[name] = getattr(track, name)
    for name in ("score", "comment", "note"):
        if event.get(name) is not None:
            details[name] = event[name]
    return [UpsertAlert(kind="urgent_complaint", dedup_key=key, severity="high", region=region_of(state, event),
                        tour_id=tour_id, details=details,
                        summary=f"{tour_id}: complaint reopened - {who} is not satisfied after the follow-up"),
            *urgent_clocks(key, track, tour_id, settings.sla)]
