"""Crisis rules (contract §11): safety checks, their repeats and deadline, help alerts, and risk warnings. Pure.

A safety check reaches a tour as a ``safety_check`` event in its stream; the rules push it to every phone of the
tour, arm a repeat every ``repeat`` (to those who have not answered) and the deadline. A ``need_help`` answer opens
one critical ``safety_help`` alert per check and person; at the deadline a tour with people unanswered, or
registered travellers never seen, opens one critical ``safety_unaccounted`` alert naming them. A guide's weather
incident of high or critical severity warns the other tours of its region, once per incident.
"""

from __future__ import annotations

from typing import Any

from alerts.rules.clocks import iso
from alerts.rules.crisis import CrisisFolded, CrisisState, unanswered
from alerts.rules.crisis_effects import AnnotateAlert, Push, WarnRegion
from alerts.rules.effects import Effect, SetDeadline, UpsertAlert
from alerts.rules.fold import Folded
from alerts.rules.state import TourState, region_of
from server.core.settings import Settings

WARNING_SEVERITIES = frozenset({"high", "critical"})


def crisis_effects(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
                   now: float) -> list[Effect]:
    crisis_folded: CrisisFolded | None = folded.crisis
    if crisis_folded is None or crisis_folded.check_id is None:
        return []
    crisis: CrisisState = state.crisis
    check = crisis.checks.get(crisis_folded.check_id)
    if check is None:
        return []
    tour_id = str(event["tour_id"])
    out: list[Effect] = []
    if crisis_folded.check_new:
        out.append(Push(f"check:{check.check_id}:{tour_id}:0", check_push(check.check_id, check.message,
                                                                          check.deadline, tour_id)))
        if check.repeat > 0 and check.started_at + check.repeat < check.deadline:
            out.append(_repeat(check.check_id, tour_id, 1, check.started_at + check.repeat))
        out.append(SetDeadline(f"safety_deadline:{check.check_id}:{tour_id}", check.deadline, "safety_deadline",
                               tour_id, {"check_id": check.check_id}))
    elif crisis_folded.answer is not None:
        if crisis_folded.help_new:
            out.append(_help_alert(state, event, crisis_folded))
        if check.closed:  # a late answer: the tour's unaccounted alert shows who is still missing
            out.append(AnnotateAlert(f"safety_unaccounted:{check.check_id}:{tour_id}",
                                     _missing(state, check.check_id)))
    elif crisis_folded.deadline_kind == "safety_repeat" and crisis_folded.deadline_due:
        n = int((event.get("subject") or {}).get("n") or 1)
        due = float(event["due"])
        guides = (state.tour or {}).get("guides") or ()
        targets = [p.sub for p in unanswered(crisis, check.check_id, guides)]
        if targets and due < check.deadline:
            push = check_push(check.check_id, check.message, check.deadline, tour_id)
            push.update(repeat=n, to=targets)
            out.append(Push(f"check:{check.check_id}:{tour_id}:{n}", push))
            if due + check.repeat < check.deadline:
                out.append(_repeat(check.check_id, tour_id, n + 1, due + check.repeat))
    elif crisis_folded.deadline_kind == "safety_deadline" and crisis_folded.deadline_due:
        out.extend(_unaccounted(state, event, check.check_id, check.message, check.deadline))
    return out


def check_push(check_id: str, message: str, deadline: float, tour_id: str) -> dict[str, Any]:
    """What every phone of the tour receives (and a phone that connects while the check is open)."""
    return {"type": "safety_check", "check_id": check_id, "message": message, "deadline": iso(deadline),
            "tour_id": tour_id, "audience": "all"}


def _repeat(check_id: str, tour_id: str, n: int, due: float) -> SetDeadline:
    return SetDeadline(f"safety_repeat:{check_id}:{tour_id}:{n}", due, "safety_repeat", tour_id,
                       {"check_id": check_id, "n": n})


def _help_alert(state: TourState, event: dict[str, Any], crisis_folded: CrisisFolded) -> UpsertAlert:
    answer = crisis_folded.answer
    assert answer is not None
    tour_id = str(event["tour_id"])
    person = state.crisis.people.get(answer.sub)
    name = person.name if person is not None else None
    who = f"{name} ({answer.sub})" if name else answer.sub
    return UpsertAlert(
        kind="safety_help", dedup_key=f"safety_help:{answer.check_id}:{answer.sub}", severity="critical",
        region=region_of(state, event), tour_id=tour_id,
        summary=f"{tour_id}: {who} needs help" + (f" - {answer.note}" if answer.note else ""),
        details={"check_id": answer.check_id, "sub": answer.sub, "name": name, "role": answer.role,
                 "note": answer.note, "location": answer.location, "answered_by": answer.by,
                 "at": iso(answer.at), "late": answer.late})


def _missing(state: TourState, check_id: str) -> dict[str, Any]:
    """Who of the tour has not answered (``unanswered``, ``names``) and how many registered travellers it has never
    seen (``unknown``)."""
    tour = state.tour or {}
    crisis = state.crisis
    missing = unanswered(crisis, check_id, tour.get("guides") or ())
    registered = tour.get("travellers") if isinstance(tour.get("travellers"), int) else 0
    return {"unanswered": [{"sub": p.sub, "name": p.name, "role": p.role} for p in missing],
            "names": [p.name or p.sub for p in missing], "unknown": max(0, registered - len(crisis.people))}


def _unaccounted(state: TourState, event: dict[str, Any], check_id: str, message: str,
                 deadline: float) -> list[Effect]:
    found = _missing(state, check_id)
    missing, names, unknown = found["unanswered"], found["names"], found["unknown"]
    if not missing and not unknown:
        return []
    tour_id = str(event["tour_id"])
    return [UpsertAlert(
        kind="safety_unaccounted", dedup_key=f"safety_unaccounted:{check_id}:{tour_id}", severity="critical",
        region=region_of(state, event), tour_id=tour_id,
        summary=f"{tour_id}: {len(missing)} unanswered, {unknown} unknown at the deadline of check {check_id}"
                + (f": {', '.join(names[:20])}" + ("..." if len(names) > 20 else "") if names else ""),
        details={"check_id": check_id, "message": message, "deadline": iso(deadline), **found})]


def risk_warning_effects(state: TourState, event: dict[str, Any], folded: Folded) -> list[Effect]:
    """A guide's weather incident of high or critical severity warns every other tour in progress in its region."""
    incident_id = folded.incident_id
    if not folded.incident_new or incident_id is None:
        return []
    incident = state.incidents[incident_id]
    if incident.kind != "weather" or incident.severity not in WARNING_SEVERITIES:
        return []
    region = region_of(state, event)
    if not region:
        return []
    tour_id = str(event["tour_id"])
    return [WarnRegion(incident_id=incident_id, region=region, from_tour=tour_id,
                       title=f"Weather warning in {region}",
                       body=f"A guide nearby reports: {incident.summary}. Follow your guide's instructions.")]
