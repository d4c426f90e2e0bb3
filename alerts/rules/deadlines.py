"""Fired deadlines: SLA breaches, ack escalation and the daily prompt to rate. Pure.

A deadline reaches the rules as a ``deadline`` event in its tour's stream, so it is judged in stream order
against everything the tour's phones and supervisors did before it. The fold already decided whether an SLA
deadline passed unmet (``Folded.breach``); a deadline can fire late (every watcher was down), so a breach
reports both how late the clock fired and how overdue the duty is.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from alerts.rules.clocks import iso, next_prompt, prompt_due
from alerts.rules.effects import Effect, EscalateAlert, SendNotice, SetDeadline, UpsertAlert
from alerts.rules.fold import Folded
from alerts.rules.state import TourState, region_of
from server.core.settings import Settings

_DUTIES = {
    "attraction_alternatives": "three alternative plans for a closed attraction",
    "urgent_solution": "a solution to an urgent complaint",
    "urgent_followup": "a follow-up with the traveller after an urgent complaint",
    "complaint_response": "an answer to a complaint",
}


def deadline_effects(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
                     now: float) -> list[Effect]:
    kind = str(event.get("kind"))
    subject: dict[str, Any] = event.get("subject") or {}
    if kind == "escalation":
        # the alert store decides: an acknowledged or resolved alert does not climb
        return [EscalateAlert(str(subject["alert_id"]), int(subject["level"]))]
    if kind == "prompt":
        return prompt_effects(state, event, settings, now)
    if kind == "reprompt":
        return reprompt_effects(state, event, settings, now)
    if kind == "response_check":
        return response_check_effects(state, event, settings, now)
    if kind in _DUTIES and folded.breach:
        return [sla_breach(state, event, kind, subject, now)]
    return []


def sla_breach(state: TourState, event: dict[str, Any], kind: str, subject: dict[str, Any],
               now: float) -> UpsertAlert:
    deadline_id = str(event["deadline_id"])
    due = float(event["due"])
    fired_at = float(event.get("fired_at") or now)
    tour_id = str(event["tour_id"])
    details: dict[str, Any] = {
        "deadline": kind, "deadline_id": deadline_id, "due": iso(due), "fired_at": iso(fired_at),
        # how late the clock itself fired (e.g. every watcher was down), apart from the duty being late
        "late_by_s": round(max(0.0, fired_at - due), 1),
        "overdue": round(max(0.0, now - due), 1),
    }
    for name in ("incident_id", "dedup_key", "traveller", "day"):
        if subject.get(name) is not None:
            details[name] = subject[name]
    return UpsertAlert(
        kind="sla_breach", dedup_key=f"sla_breach:{deadline_id}", severity="high",
        region=region_of(state, event), tour_id=tour_id,
        summary=f"{tour_id}: no {_DUTIES[kind]} by {iso(due)}", details=details)


def prompt_effects(state: TourState, event: dict[str, Any], settings: Settings, now: float) -> list[Effect]:
    """Tonight's prompt to rate (unless hours late: nobody wants it at 3 a.m.), then arm the next one."""
    tour = state.tour
    if not tour:
        return []
    tour_id = str(event["tour_id"])
    day = str((event.get("subject") or {}).get("day"))
    due = float(event["due"])
    fired_at = float(event.get("fired_at") or now)
    out: list[Effect] = []
    if fired_at - due <= settings.sla.prompt_skip_after:
        out.append(SendNotice(
            notice_id=f"prompt:{tour_id}:{day}", tour_id=tour_id, kind="prompt", audience="travellers",
            title="How was your day?",
            body=f"Please rate today ({day}): one to five stars, and a word if you like. "
                 "Your guide and our team read every rating tonight."))
        # a skipped prompt arms neither: nobody was asked, so nobody is silent
        out.extend(silent_clocks(tour, tour_id, day, due, settings))
    # the next day's prompt; after an outage, skip days whose prompt would now be too late to send anyway
    sla = settings.sla
    upcoming = next_prompt(tour, max(due + 1.0, now - sla.prompt_skip_after), sla.prompt_hour)
    if upcoming is not None:
        day_after, due_after = upcoming
        out.append(SetDeadline(f"prompt:{tour_id}:{day_after}", due_after, "prompt", tour_id,
                               {"day": day_after}))
    return out


# ---- silent travellers (contract §10) ------------------------------------------------------------------------

def silent_clocks(tour: dict[str, Any], tour_id: str, day: str, prompt_due_at: float,
                  settings: Settings) -> list[Effect]:
    """Tonight's second prompt and response check, armed by tonight's prompt: each at its local hour of the same
    day, when that is not before the prompt."""
    out: list[Effect] = []
    zone = str(tour["timezone"])
    for kind, hour, deadline_id in (("reprompt", settings.sla.reprompt_at, f"prompt:{tour_id}:{day}:2"),
                                    ("response_check", settings.sla.response_check_hour,
                                     f"response_check:{tour_id}:{day}")):
        if hour < settings.sla.prompt_hour:
            # judged by the hour, not by the time it resolves to: on the night clocks spring forward an hour
            # before the prompt's may not exist and resolve to the prompt's own time (02:00 Paris is 03:00)
            continue
        due = prompt_due(date.fromisoformat(day), hour, zone)
        if due >= prompt_due_at:
            out.append(SetDeadline(deadline_id, due, kind, tour_id, {"day": day}))
    return out


def reprompt_effects(state: TourState, event: dict[str, Any], settings: Settings, now: float) -> list[Effect]:
    """One more prompt to the travellers who use the app and have not rated the day (unless hours late)."""
    day = str((event.get("subject") or {}).get("day"))
    fired_at = float(event.get("fired_at") or now)
    if fired_at - float(event["due"]) > settings.sla.prompt_skip_after:
        return []
    rated = state.days.get(day) or {}
    silent = tuple(sorted(who for who in state.crisis.people if who not in rated))  # joined or connected
    if not silent:
        return []
    tour_id = str(event["tour_id"])
    return [SendNotice(
        notice_id=f"prompt:{tour_id}:{day}:2", tour_id=tour_id, kind="prompt", audience="travellers", to=silent,
        title="A minute for today?",
        body=f"We have not heard from you about today ({day}) yet: one to five stars is enough.")]


def response_check_effects(state: TourState, event: dict[str, Any], settings: Settings,
                           now: float) -> list[Effect]:
    """``low_response``: fewer ratings than ``min_response_rate`` of the travellers who use the app. Judged only
    once at least ``min_ratings`` of them do, so a tour where few joined does not alert every night."""
    day = str((event.get("subject") or {}).get("day"))
    rated = state.days.get(day) or {}
    users = len(state.crisis.people.keys() | rated.keys())  # joined or connected (§11 `person`), or rated
    rules = settings.rules
    if users < rules.min_ratings or len(rated) >= rules.min_response_rate * users:
        return []
    tour_id = str(event["tour_id"])
    rate = len(rated) / users
    return [UpsertAlert(
        kind="low_response", dedup_key=f"low_response:{tour_id}:{day}", severity="medium",
        region=region_of(state, event), tour_id=tour_id, escalate=False,
        summary=f"{tour_id} {day}: {len(rated)} of {users} travellers using the app rated the day ({rate:.0%})",
        details={"day": day, "ratings": len(rated), "travellers_using_app": users, "response_rate": round(rate, 3),
                 "min_response_rate": rules.min_response_rate,
                 "travellers": (state.tour or {}).get("travellers")})]
