"""The rules: from (state, event, what the fold changed, settings, now) to a list of effects. Pure.

Nothing here reads a clock, Redis or the environment, and nothing mutates the state (the fold did that):
the same inputs give the same effects, so a replayed event asks for the same idempotent steps. Dedup keys are
the ones docs/design.md lists; deadline and notice ids are built from the subject or the event's seq so a
replay names the same ones. Ratings, complaints and tours live here; answers and follow-ups in
``alerts/rules/answers.py``; incidents in
``alerts/rules/incidents.py``, fired deadlines in ``alerts/rules/deadlines.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alerts.rules.answers import answer_effects, clocks, followup_reply_effects, urgent_clocks
from alerts.rules.category import LOW_ASPECT, counted_categories
from alerts.rules.classify import COMPLAINT, PRAISE, complaint_category, is_safety, mentions_guide, praised_staff
from alerts.rules.clocks import iso, next_prompt
from alerts.rules.crisis_rules import crisis_effects, risk_warning_effects
from alerts.rules.deadlines import deadline_effects
from alerts.rules.effects import ClearDeadline, CountComplaint, Effect, SendNotice, SetDeadline, UpsertAlert
from alerts.rules.fold import Folded
from alerts.rules.incidents import incident_effects, incident_update_effects
from alerts.rules.state import DayStats, TourState, day_stats, region_of
from server.core.settings import Settings

CRITICAL_MEAN = 3.0  # a tour-day this bad, and surely so, is critical rather than high
CONFIDENCE = 0.9  # one-sided: how sure the upper bound on a day's true mean is


def evaluate(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
             now: float) -> list[Effect]:
    """The effects of one folded event, in the order they are to be applied."""
    if folded.crisis is not None:
        return crisis_effects(state, event, folded, settings, now)
    rule = _RULES.get(folded.type)
    effects = rule(state, event, folded, settings, now) if rule else []
    if folded.type == "incident":
        effects += risk_warning_effects(state, event, folded)
    return effects


# ---- ratings -----------------------------------------------------------------------------------------------

def _rating(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
            now: float) -> list[Effect]:
    out: list[Effect] = []
    day = folded.day or ""
    agg = state.aggs.get(day)
    # a stale rating did not move the day's scores, so it cannot fire a score rule; whether one fires depends on
    # the means alone (free from the running sums), so the full statistics are computed only when one does
    rules = settings.rules
    if folded.changed and agg is not None and agg.n >= rules.min_ratings:
        mean = agg.total / agg.n
        previous = state.previous_day(day, rules.min_ratings)
        dropped = previous is not None and _dropped(state.aggs[previous].mean, mean, rules.drop_delta)
        if mean < rules.score_threshold or dropped:
            stats = day_stats(state, day)
            out.extend(score_below_threshold(state, event, day, stats, settings))
            out.extend(score_drop(state, event, day, stats, settings))
    out.extend(complaint_effects(state, event, folded, settings))
    out.extend(category_counts(state, event, folded, now))
    out.extend(praise_effects(state, event, folded))
    return out


def score_below_threshold(state: TourState, event: dict[str, Any], day: str, stats: DayStats,
                          settings: Settings) -> list[Effect]:
    rules = settings.rules
    if stats.count < rules.min_ratings or stats.mean is None or stats.mean >= rules.score_threshold:
        return []
    tour_id = str(event["tour_id"])
    bound = stats.upper_bound(CONFIDENCE)
    if bound < rules.score_threshold:
        severity = "critical" if stats.mean < CRITICAL_MEAN else "high"
    else:
        severity = "medium"  # below the line, but the true mean may still be above it
    return [UpsertAlert(
        kind="score_below_threshold", dedup_key=f"score_below_threshold:{tour_id}:{day}", severity=severity,
        region=region_of(state, event), tour_id=tour_id,
        summary=f"{tour_id} {day}: mean {stats.mean:.2f} from {stats.count} ratings "
                f"(below {rules.score_threshold:g})",
        details={
            "day": day, "mean": round(stats.mean, 2), "count": stats.count,
            "response_rate": None if stats.response_rate is None else round(stats.response_rate, 3),
            "stdev": round(stats.stdev, 3), "upper_bound": round(bound, 2),
            "confidence": round(stats.below_probability(rules.score_threshold), 3),
            "aspect_means": {name: round(mean, 2) for name, mean in stats.aspect_means.items()},
            "threshold": rules.score_threshold,
        })]


def score_drop(state: TourState, event: dict[str, Any], day: str, stats: DayStats,
               settings: Settings) -> list[Effect]:
    rules = settings.rules
    if stats.count < rules.min_ratings or stats.mean is None:
        return []
    previous_day = state.previous_day(day, rules.min_ratings)
    if previous_day is None:
        return []
    previous_mean = state.aggs[previous_day].mean or 0.0
    delta = previous_mean - stats.mean
    if not _dropped(previous_mean, stats.mean, rules.drop_delta):
        return []
    tour_id = str(event["tour_id"])
    return [UpsertAlert(
        kind="score_drop", dedup_key=f"score_drop:{tour_id}:{day}", severity="medium",
        region=region_of(state, event), tour_id=tour_id,
        summary=f"{tour_id} {day}: mean {stats.mean:.2f}, down {delta:.2f} from {previous_day}",
        details={"day": day, "previous_day": previous_day, "mean": round(stats.mean, 2),
                 "previous_mean": round(previous_mean, 2), "delta": round(delta, 2), "count": stats.count})]


def _dropped(previous_mean: float | None, mean: float, drop_delta: float) -> bool:
    # float sums: 4.333... - 3.333... must count as a drop of 1.0
    return (previous_mean or 0.0) - mean >= drop_delta - 1e-9


def complaint_effects(state: TourState, event: dict[str, Any], folded: Folded,
                      settings: Settings) -> list[Effect]:
    key, record = folded.complaint_key, folded.rating
    if key is None or record is None:
        return []
    track = state.complaints[key]
    tour_id = str(event["tour_id"])
    traveller = str(event["traveller"])
    details: dict[str, Any] = {"traveller": traveller, "day": folded.day, "score": record.score,
                               "comment": record.comment, "at": iso(record.at), "rating_seq": record.seq}
    out: list[Effect] = []
    details["clocks"] = clocks(track, settings.sla)
    if track.kind == "urgent":
        details["matched"] = list(record.urgent)
        if track.reopens:
            details["reopens"] = track.reopens
            details["reopen_count"] = track.reopen_count
        critical = record.score <= 2 and is_safety(record.comment)
        out.append(UpsertAlert(
            kind="urgent_complaint", dedup_key=key, severity="critical" if critical else "high",
            region=region_of(state, event), tour_id=tour_id,
            summary=f"{tour_id} {folded.day}: urgent complaint from {traveller} (score {record.score})",
            details=details))
        if folded.complaint_new:
            out.extend(urgent_clocks(key, track, tour_id, settings.sla))
            if track.reopens:  # the low rating answered the earlier complaint's follow-up
                out.append(ClearDeadline(f"urgent_followup:{track.reopens}", tour_id))
    else:
        category = complaint_category(record.comment, record.aspects)
        details["category"] = category
        # the response deadline is the clock here; the ack escalation would only add noise to a low alert
        out.append(UpsertAlert(
            kind="complaint", dedup_key=key, severity="low", region=region_of(state, event), tour_id=tour_id,
            summary=f"{tour_id} {folded.day}: complaint from {traveller} about {category}",
            details=details, escalate=False))
        if folded.complaint_new:
            due = track.opened_at + settings.sla.complaint_response
            out.append(SetDeadline(f"complaint_response:{key}", due, "complaint_response", tour_id,
                                   {"dedup_key": key, "traveller": traveller, "day": folded.day}))
    return out


def category_counts(state: TourState, event: dict[str, Any], folded: Folded, now: float) -> list[Effect]:
    """A new complaint counts toward its route's categories and asks for a judgement; a rating's aspects scored
    1 or 2 count too, but judge nothing by themselves (``alerts.rules.category``)."""
    record = folded.rating
    if record is None or not state.tour or folded.stale:
        return []
    complaint = folded.complaint_new and record.comment_class == COMPLAINT
    aspects = record.aspects
    if not complaint and not (folded.changed and aspects and min(aspects.values()) <= LOW_ASPECT):
        return []  # the common case, a plain good rating, in two comparisons
    category = complaint_category(record.comment, aspects) if complaint else None
    categories = counted_categories(category, aspects if folded.changed else None)
    if not categories:
        return []
    return [CountComplaint(route=str(state.tour.get("route")), region=region_of(state, event),
                           category=category or "", token=record.seq, categories=categories,
                           day=iso(record.at)[:10], window_end=iso(now)[:10], judge=complaint)]


def praise_effects(state: TourState, event: dict[str, Any], folded: Folded) -> list[Effect]:
    """Praise that names the guide reaches the tour's guides, word for word. Praise of the driver or the hotel
    goes to their tallies (reports, the feedback inbox), not to a phone: they have none here."""
    record = folded.rating
    if record is None or record.comment_class != PRAISE or not mentions_guide(record.comment):
        return []  # most praise names nobody: one word list read, as before §10
    others = [s for s in praised_staff(record.comment) if s != "guide"]
    title = "A traveller praised you" + (f" and the {' and the '.join(others)}" if others else "")
    return [SendNotice(notice_id=f"praise:{record.seq}", tour_id=str(event["tour_id"]), kind="praise",
                       title=title, body=f"{folded.day}: \u201c{record.comment}\u201d", audience="guides")]


# ---- tours ------------------------------------------------------------------------------------------------------

def _tour(state: TourState, event: dict[str, Any], folded: Folded, settings: Settings,
          now: float) -> list[Effect]:
    """Arm the daily prompt to rate (the prompt deadline re-arms the one after it): the next one, or tonight's
    if it fell due less than ``prompt_skip_after`` ago (a tour registered at 20:30 is still asked tonight; a
    prompt already sent is never armed again: its fired marker refuses it)."""
    tour = state.tour
    if not tour or not (tour.get("start") and tour.get("end") and tour.get("timezone")):
        return []
    upcoming = next_prompt(tour, now - settings.sla.prompt_skip_after, settings.sla.prompt_hour)
    if upcoming is None:
        return []
    day, due = upcoming
    tour_id = str(event["tour_id"])
    return [SetDeadline(f"prompt:{tour_id}:{day}", due, "prompt", tour_id, {"day": day})]


_Rule = Callable[[TourState, dict[str, Any], Folded, Settings, float], list[Effect]]

_RULES: dict[str, _Rule] = {
    "rating": _rating,
    "alert_action": answer_effects,
    "followup_reply": followup_reply_effects,
    "tour": _tour,
    "incident": incident_effects,
    "incident_update": incident_update_effects,
    "deadline": deadline_effects,
}
