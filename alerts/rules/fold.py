"""The fold: one event into one tour's state, in stream order, and a small record of what changed.

``fold`` is the only code that mutates a ``TourState``; the rules read the state and the returned ``Folded``
and decide effects without touching either. Every decision the rules need to remember between events (which
complaint is on the clock, whether an SLA breach was raised) is recorded here, so a replay from a saved state
folds to the same state and the same effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alerts.rules.classify import COMPLAINT, classify_comment, urgent_matches
from alerts.rules.clocks import local_date
from alerts.rules.crisis import DEADLINE_KINDS, EVENT_TYPES, CrisisFolded, fold_crisis
from alerts.rules.state import ComplaintTrack, IncidentState, RatingRecord, TourState
from server.core.keys import parse_seq
from server.core.settings import RuleSettings

_DEFAULT_RULES = RuleSettings()

ALTERNATIVES_REQUIRED = 3  # the service standard: three alternative plans when an attraction closes
REOPEN_BELOW = 4  # after a follow-up, a rating below this means the traveller is still not satisfied
URGENT_INCIDENT_KINDS = frozenset({"conflict", "complaint"})  # a guide's report of these is urgent at any severity


@dataclass(slots=True)
class Folded:
    """What one event changed; the rules read it beside the state."""

    type: str
    changed: bool = False
    # rating
    day: str | None = None
    rating: RatingRecord | None = None  # the event's rating (also when stale)
    previous: RatingRecord | None = None  # the rating it replaced
    stale: bool = False  # older by `at` than the traveller's kept rating of that day: kept out of the scores
    complaint_key: str | None = None  # the complaint track the rating opened or re-fired
    complaint_new: bool = False
    # incident, incident_update
    incident_id: str | None = None
    incident_new: bool = False
    status_changed: bool = False
    alternatives_added: int = 0
    proof_reached: bool = False  # this update brought the distinct alternatives to the required count
    # alert_action, incident resolved: the complaint track this event solved
    solved_key: str | None = None
    # followup_reply: the track it answered (None: nothing to answer), and the track "not satisfied" opened
    answered_key: str | None = None
    # deadline: the deadline passed unmet
    breach: bool = False
    # §11 crisis events (people, safety checks and answers, choices): alerts/rules/crisis.py
    crisis: CrisisFolded | None = None


def fold(state: TourState, event: dict[str, Any], rules: RuleSettings | None = None) -> Folded:
    """Fold one event (it carries ``seq``) into ``state``; ``rules`` gives the urgent keywords."""
    kind = str(event.get("type"))
    if kind in EVENT_TYPES or (kind == "deadline" and event.get("kind") in DEADLINE_KINDS):
        crisis = fold_crisis(state.crisis, event)
        state.touched |= state.crisis.take_touched()
        folded = Folded(kind, changed=crisis.changed, crisis=crisis)
        state.last_seq = str(event["seq"])
        return folded
    handler = _HANDLERS.get(kind)
    folded = handler(state, event, rules or _DEFAULT_RULES) if handler else Folded(kind)
    state.last_seq = str(event["seq"])
    return folded


def _fold_tour(state: TourState, event: dict[str, Any], rules: RuleSettings) -> Folded:
    state.tour = {name: event.get(name) for name in
                  ("route", "region", "guides", "start", "end", "timezone", "travellers")}
    return Folded("tour", changed=True)


def _newer(new: RatingRecord, old: RatingRecord) -> bool:
    """A later `at` wins; on equal `at` the later arrival (stream order) wins."""
    if new.at != old.at:
        return new.at > old.at
    return parse_seq(new.seq) >= parse_seq(old.seq)


def _fold_rating(state: TourState, event: dict[str, Any], rules: RuleSettings) -> Folded:
    day, traveller = str(event["day"]), str(event["traveller"])
    score = int(event["score"])
    comment = event.get("comment") or None
    urgent = urgent_matches(comment, rules.urgent_keywords)
    comment_class = classify_comment(comment, score)
    if urgent and comment_class is not None:
        comment_class = COMPLAINT  # an injury or a theft is a complaint whatever the score says
    record = RatingRecord(score=score, at=float(event["at"]), seq=str(event["seq"]),
                          aspects=event.get("aspects"), nps=event.get("nps"), comment=comment,
                          comment_class=comment_class, urgent=urgent)
    folded = Folded("rating", day=day, rating=record)
    ratings = state.days.get(day)
    previous = ratings.get(traveller) if ratings is not None else None
    if previous is not None and not _newer(record, previous):
        folded.stale = True  # an offline phone's older rating: feedback still, but not the day's score
    else:
        state.put_rating(day, traveller, record)
        folded.previous = previous
        folded.changed = True
    _track_rating_complaint(state, event, record, traveller, day, folded)
    return folded


def _next_key(state: TourState, base: str) -> str:
    """``base`` while its track is open (re-fire) or unused; past closed tracks, ``base#2``, ``base#3``..."""
    key, n = base, 1
    while key in state.complaints and state.complaints[key].closed:
        n += 1
        key = f"{base}#{n}"
    return key


def _track_rating_complaint(state: TourState, event: dict[str, Any], record: RatingRecord, traveller: str,
                            day: str, folded: Folded) -> None:
    tour_id = event.get("tour_id")
    latest_key = state.urgent_latest.get(traveller)
    latest = state.complaints.get(latest_key) if latest_key else None
    # still unhappy after the follow-up: the follow-up asked whether all is well, and they rated the day again,
    # below 4: that is their answer ("not satisfied") if they gave none yet, and the complaint opens again
    reopened = (latest is not None and latest.solved_at is not None and latest.followup_sent_at is not None
                and latest.reopened_by is None and record.at >= latest.followup_sent_at
                and record.score < REOPEN_BELOW)
    if reopened and latest is not None and latest_key is not None and latest.followed_up_at is None:
        latest.followed_up_at = latest.answered_at = record.at
        latest.satisfied = False
        state.complaint_changed(latest_key)
    closed_before = latest is not None and latest.closed
    if record.score == 1 or record.urgent or reopened:
        kind, base = "urgent", f"urgent_complaint:{tour_id}:{day}:{traveller}"
    elif record.comment_class == COMPLAINT:
        kind, base = "normal", f"complaint:{tour_id}:{day}:{traveller}"
    else:
        return
    key = _next_key(state, base)
    folded.complaint_key = key
    if key in state.complaints:
        return  # an open complaint re-fired: its clocks keep running from when it opened
    reopens = latest_key if kind == "urgent" and closed_before else None
    track = ComplaintTrack(kind=kind, opened_at=record.at, traveller=traveller, day=day, reopens=reopens)
    if reopens is not None and latest is not None and latest_key is not None:
        track.reopen_count = latest.reopen_count + 1
        if latest.reopened_by is None:
            latest.reopened_by = key
            state.complaint_changed(latest_key)
    state.put_complaint(key, track)
    folded.complaint_new = True
    if kind == "urgent":
        state.urgent_latest[traveller] = key


def _fold_incident(state: TourState, event: dict[str, Any], rules: RuleSettings) -> Folded:
    incident_id = str(event["incident_id"])
    folded = Folded("incident", incident_id=incident_id)
    if incident_id in state.incidents:
        return folded  # the same incident twice (a replay): nothing new
    needs = event.get("needs")
    incident = IncidentState(
        kind=str(event["kind"]), severity=str(event["severity"]), opened_at=float(event["at"]),
        guide=event.get("guide"), summary=str(event.get("summary") or ""),
        needs=tuple(needs) if needs else None, travellers_affected=event.get("travellers_affected"),
        location=event.get("location"))
    state.incidents[incident_id] = incident
    folded.changed = folded.incident_new = True
    if incident.kind in URGENT_INCIDENT_KINDS:  # contract §10: urgent at any severity, the guides answered
        key = f"urgent_complaint:{incident_id}"
        tour = state.tour or {}
        day = local_date(incident.opened_at, str(tour["timezone"])).isoformat() if tour.get("timezone") else None
        state.put_complaint(key, ComplaintTrack(kind="urgent", opened_at=incident.opened_at, day=day,
                                                incident_id=incident_id))
        folded.complaint_key, folded.complaint_new = key, True
    return folded


def _fold_incident_update(state: TourState, event: dict[str, Any], rules: RuleSettings) -> Folded:
    incident_id = str(event["incident_id"])
    folded = Folded("incident_update", incident_id=incident_id)
    incident = state.incidents.get(incident_id)
    if incident is None:
        return folded  # an update for an incident this tour never saw: nothing to change
    at = float(event["at"])
    incident.updates += 1
    folded.changed = True
    for plan in event.get("alternatives") or ():
        if plan not in incident.alternatives:
            incident.alternatives.append(plan)
            folded.alternatives_added += 1
    if incident.alternatives_proof_at is None and len(incident.alternatives) >= ALTERNATIVES_REQUIRED:
        incident.alternatives_proof_at = at
        folded.proof_reached = True
    status = event.get("status")
    if status and status != incident.status and incident.status != "resolved":
        incident.status = status
        folded.status_changed = True
        if status == "resolved":
            incident.resolved_at = at
            track = state.complaints.get(f"complaint:{incident_id}")
            if track is not None and track.solved_at is None:
                track.solved_at = at
                track.resolved_note = event.get("note") or "incident resolved"
                folded.solved_key = f"complaint:{incident_id}"
                state.complaint_changed(folded.solved_key)
    return folded


def _fold_alert_action(state: TourState, event: dict[str, Any], rules: RuleSettings) -> Folded:
    folded = Folded("alert_action")
    note = str(event.get("note") or "").strip()
    if event.get("action") != "resolve" or not note:
        return folded  # an answer needs words: a bare resolve closes the alert but leaves the clock running
    key = str(event.get("dedup_key") or "")
    track = state.complaints.get(key)
    if track is None or track.solved_at is not None:
        return folded
    at = float(event["at"])
    track.solved_at, track.resolved_note = at, note
    if track.kind == "urgent":
        track.followup_sent_at = at  # the rules send the follow-up question now, with the answer
    state.complaint_changed(key)
    folded.changed, folded.solved_key = True, key
    return folded


def _fold_followup_reply(state: TourState, event: dict[str, Any], rules: RuleSettings) -> Folded:
    """The answer to a follow-up (the traveller's phone, or a supervisor who telephoned): the first one meets the
    follow-up clock; the latest one is kept; "not satisfied" opens the complaint again, once."""
    folded = Folded("followup_reply")
    key = str(event.get("dedup_key") or "")
    track = state.complaints.get(key)
    if track is None or track.kind != "urgent":
        return folded
    at = float(event["at"])
    satisfied = bool(event.get("satisfied"))
    if track.followed_up_at is None:
        track.followed_up_at = at
    if track.answered_at is None or at >= track.answered_at:  # answered twice: the later answer stands
        track.satisfied, track.answered_at = satisfied, at
    state.complaint_changed(key)
    folded.changed, folded.answered_key = True, key
    if satisfied or track.reopened_by is not None:
        return folded
    base = key.split("#", 1)[0]
    n = 2
    while f"{base}#{n}" in state.complaints:
        n += 1
    new_key = f"{base}#{n}"
    state.put_complaint(new_key, ComplaintTrack(
        kind="urgent", opened_at=at, traveller=track.traveller, day=track.day, reopens=key,
        reopen_count=track.reopen_count + 1, incident_id=track.incident_id))
    track.reopened_by = new_key
    if track.traveller:
        state.urgent_latest[track.traveller] = new_key
    folded.complaint_key, folded.complaint_new = new_key, True
    return folded


def _fold_deadline(state: TourState, event: dict[str, Any], rules: RuleSettings) -> Folded:
    folded = Folded("deadline")
    kind, due = event.get("kind"), float(event.get("due") or 0.0)
    subject = event.get("subject") or {}
    if kind == "attraction_alternatives":
        incident = state.incidents.get(str(subject.get("incident_id")))
        if incident is None:
            return folded
        proved = incident.alternatives_proof_at is not None and incident.alternatives_proof_at <= due
        settled = incident.resolved_at is not None and incident.resolved_at <= due
        if not proved and not settled:
            incident.breached = folded.breach = folded.changed = True
    elif kind in ("urgent_solution", "urgent_followup", "complaint_response"):
        track = state.complaints.get(str(subject.get("dedup_key")))
        if track is None:
            return folded
        done = track.followed_up_at if kind == "urgent_followup" else track.solved_at
        folded.breach = done is None or done > due
    return folded


_HANDLERS = {
    "tour": _fold_tour,
    "rating": _fold_rating,
    "incident": _fold_incident,
    "incident_update": _fold_incident_update,
    "alert_action": _fold_alert_action,
    "followup_reply": _fold_followup_reply,
    "deadline": _fold_deadline,
}
