"""The rules, table by table: each condition met and missed, through fold then evaluate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from alerts.rules.effects import (
    ClearDeadline,
    CountComplaint,
    Effect,
    EscalateAlert,
    IncidentChanged,
    PullResources,
    ReleaseResources,
    ResolveAlert,
    SendNotice,
    SetDeadline,
    UpsertAlert,
)
from alerts.rules.evaluate import evaluate
from alerts.rules.fold import fold
from alerts.rules.state import TourState
from server.core.settings import RuleSettings, Settings

T0 = datetime(2025, 5, 12, 2, tzinfo=UTC).timestamp()  # 10:00 in Shanghai on the tour's first day
DAY1, DAY2, DAY3 = "2025-05-12", "2025-05-13", "2025-05-14"
TOUR = {"type": "tour", "route": "yunnan-6d", "region": "yn", "guides": ["g1"], "start": DAY1,
        "end": "2025-05-14", "timezone": "Asia/Shanghai", "travellers": 30}
E = TypeVar("E")


class Tour:
    """One tour's state fed event by event; each call returns that event's effects."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.state = TourState.new()
        self.n = 0
        self.feed(dict(TOUR, at=T0 - 86400.0))

    def feed(self, event: dict[str, Any], now: float | None = None) -> list[Effect]:
        self.n += 1
        event = {"tour_id": "T1", "sender": "x", "at": T0 + self.n, **event, "seq": f"{1000 + self.n}-0"}
        folded = fold(self.state, event, self.settings.rules)
        return evaluate(self.state, event, folded, self.settings, event["at"] if now is None else now)

    def rate(self, traveller: str, score: int, day: str = DAY1, **extra: Any) -> list[Effect]:
        return self.feed({"type": "rating", "traveller": traveller, "day": day, "score": score, **extra})

    def rate_all(self, scores: list[int], day: str = DAY1) -> list[Effect]:
        effects: list[Effect] = []
        for i, score in enumerate(scores):
            effects = self.rate(f"p{i}", score, day)
        return effects


def of(effects: list[Effect], cls: type[E]) -> list[E]:
    return [e for e in effects if isinstance(e, cls)]


def alert(effects: list[Effect], kind: str) -> UpsertAlert | None:
    found = [e for e in of(effects, UpsertAlert) if e.kind == kind]
    assert len(found) <= 1
    return found[0] if found else None


# ---- score_below_threshold -------------------------------------------------------------------------------

@pytest.mark.parametrize(("scores", "severity"), [
    ([3, 3], None),  # fewer than min_ratings: a lone low rating alerts no one
    ([4, 4, 4], None),  # at the threshold is not below it
    ([5, 5, 2], None),  # mean 4.0: not below
    ([4, 4, 3], "medium"),  # below, but the true mean may well be >= 4
    ([3, 3, 3], "high"),  # surely below (the floor keeps three equal ratings from being certain)
    ([2, 2, 3], "critical"),  # surely below and bad
])
def test_score_below_threshold_severity_grows(scores: list[int], severity: str | None) -> None:
    effects = Tour().rate_all(scores)
    found = alert(effects, "score_below_threshold")
    assert (found.severity if found else None) == severity
    if found:
        assert found.dedup_key == f"score_below_threshold:T1:{DAY1}"
        assert found.region == "yn" and found.tour_id == "T1"
        d = found.details
        assert d["day"] == DAY1 and d["count"] == len(scores)
        assert d["mean"] == round(sum(scores) / len(scores), 2)
        assert d["response_rate"] == round(len(scores) / 30, 3)
        assert d["upper_bound"] > d["mean"]
        assert 0.5 < d["confidence"] <= 1.0


def test_score_below_threshold_refires_on_each_rating_and_uses_latest_ratings() -> None:
    tour = Tour()
    tour.rate_all([3, 3, 3])
    assert alert(tour.rate("p3", 4), "score_below_threshold") is not None  # 13/4 = 3.25: still below
    # p0 and p1 change their minds: their new ratings replace the old ones in the mean (5, 5, 3, 4 -> 4.25)
    assert alert(tour.rate("p0", 5), "score_below_threshold") is not None  # 15/4 = 3.75
    assert alert(tour.rate("p1", 5), "score_below_threshold") is None


def test_a_stale_rating_fires_no_score_rule() -> None:
    tour = Tour()
    tour.rate_all([3, 3, 3])
    assert alert(tour.rate("p0", 3, at=T0 - 5000), "score_below_threshold") is None


def test_min_ratings_and_threshold_are_configurable() -> None:
    settings = Settings(rules=RuleSettings(min_ratings=2, score_threshold=4.5))
    assert alert(Tour(settings).rate_all([4, 4]), "score_below_threshold") is not None


def test_aspect_means_in_details() -> None:
    tour = Tour()
    for i, meals in enumerate((2, 3, 1)):
        effects = tour.rate(f"p{i}", 3, aspects={"meals": meals, "guide": 5})
    found = alert(effects, "score_below_threshold")
    assert found is not None and found.details["aspect_means"] == {"guide": 5.0, "meals": 2.0}


# ---- score_drop ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("days", "previous", "delta"), [
    ({DAY1: [5, 5, 5], DAY2: [4, 4, 4]}, DAY1, 1.0),
    ({DAY1: [5, 5, 5], DAY2: [5, 4, 5]}, None, None),  # down 0.33 only
    ({DAY1: [5, 5, 5], DAY2: [3, 3], DAY3: [4, 4, 4]}, DAY1, 1.0),  # DAY2 has too few ratings: skipped
    ({DAY1: [4, 4, 4], DAY2: [5, 5, 5], DAY3: [4, 4, 4]}, DAY2, 1.0),  # the most recent earlier day
    ({DAY1: [4, 4, 4], DAY2: [5, 5], DAY3: [4, 4, 4]}, None, None),  # DAY1 is the one compared: no drop
    ({DAY2: [5, 5, 5], DAY1: [3, 3, 3]}, None, None),  # a later day is never "previous"
    ({DAY1: [5, 4, 4], DAY2: [4, 3, 3]}, DAY1, 1.0),  # 4.33 -> 3.33: float sums still count as 1.0
])
def test_score_drop(days: dict[str, list[int]], previous: str | None, delta: float | None) -> None:
    tour = Tour()
    effects: list[Effect] = []
    for day, scores in days.items():
        effects = tour.rate_all(scores, day)
    found = alert(effects, "score_drop")
    assert (found.details["previous_day"] if found else None) == previous
    if found:
        last_day = list(days)[-1]
        assert found.dedup_key == f"score_drop:T1:{last_day}"
        assert found.details["delta"] == delta


# ---- urgent complaints -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("score", "comment", "severity"), [
    (1, None, "high"),
    (4, "someone stole my phone, theft!", "high"),
    (2, "I fell on the path and got injured", "critical"),
    (4, "我的护照丢了", "high"),
    (2, "the food was bad", None),  # a complaint, not urgent
])
def test_urgent_complaint(score: int, comment: str | None, severity: str | None) -> None:
    tour = Tour()
    at = T0 + 600
    effects = tour.rate("p1", score, comment=comment, at=at)
    found = alert(effects, "urgent_complaint")
    assert (found.severity if found else None) == severity
    if found:
        key = f"urgent_complaint:T1:{DAY1}:p1"
        assert found.dedup_key == key
        assert found.details["traveller"] == "p1" and found.details["score"] == score
        sla = tour.settings.sla
        assert {(d.deadline_id, d.due, d.kind) for d in of(effects, SetDeadline)} == {
            (f"urgent_solution:{key}", at + sla.urgent_complaint_solution, "urgent_solution"),
            (f"urgent_followup:{key}", at + sla.urgent_complaint_followup, "urgent_followup"),
        }


def test_urgent_complaint_refire_keeps_its_deadlines() -> None:
    tour = Tour()
    tour.rate("p1", 1)
    effects = tour.rate("p1", 1, comment="still no help, police now")
    assert alert(effects, "urgent_complaint") is not None
    assert of(effects, SetDeadline) == []


def test_solved_urgent_complaint_follows_up_and_a_new_low_rating_reopens() -> None:
    tour = Tour()
    key = f"urgent_complaint:T1:{DAY1}:p1"
    tour.rate("p1", 1)
    effects = tour.feed({"type": "alert_action", "dedup_key": key, "action": "resolve", "note": "moved hotel",
                         "alert_id": "a1"})
    # §10: the follow-up clock runs on until the traveller answers
    assert {c.deadline_id for c in of(effects, ClearDeadline)} == {f"urgent_solution:{key}"}
    answer, followup = of(effects, SendNotice)
    assert (answer.kind, answer.audience, answer.to, answer.alert_id) == ("answer", "travellers", "p1", "a1")
    assert "moved hotel" in answer.body and answer.notice_id == f"answer:{key}"
    assert (followup.kind, followup.audience, followup.to, followup.alert_id) == ("followup", "travellers", "p1",
                                                                                  "a1")
    assert followup.notice_id == f"followup:{key}"
    assert of(tour.rate("p1", 4), UpsertAlert) == []  # satisfied now
    effects = tour.rate("p1", 3)
    found = alert(effects, "urgent_complaint")
    assert found is not None and found.dedup_key == key + "#2" and found.details["reopens"] == key
    assert found.details["reopen_count"] == 1
    assert {d.deadline_id for d in of(effects, SetDeadline)} == {f"urgent_solution:{key}#2",
                                                                 f"urgent_followup:{key}#2"}


# ---- complaints, suggestions, praise ---------------------------------------------------------------------

def test_complaint_opens_low_alert_with_response_deadline_and_counts_its_category() -> None:
    tour = Tour()
    effects = tour.rate("p1", 2, comment="The dinner was cold and bad", at=T0 + 60)
    found = alert(effects, "complaint")
    key = f"complaint:T1:{DAY1}:p1"
    assert found is not None and found.severity == "low" and found.dedup_key == key
    assert found.details["category"] == "meals"
    (deadline,) = of(effects, SetDeadline)
    assert deadline.deadline_id == f"complaint_response:{key}"
    assert deadline.due == T0 + 60 + tour.settings.sla.complaint_response
    (count,) = of(effects, CountComplaint)
    assert (count.route, count.region, count.category, count.token) == ("yunnan-6d", "yn", "meals", "1002-0")
    again = tour.rate("p1", 2, comment="and the hotel was dirty")
    assert alert(again, "complaint") is not None
    assert of(again, SetDeadline) == [] and of(again, CountComplaint) == []  # one complaint, counted once


@pytest.mark.parametrize(("score", "comment", "notice"), [
    (5, "Our guide Li was wonderful, thank you", True),
    (5, "导游很专业，非常感谢", True),
    (5, "What a beautiful lake", False),  # praise, but not about the staff
    (5, "The driver was so careful, thank you", False),  # the driver's tally (reports), no phone to tell
    (5, "酒店前台很热情", False),
    (3, "Maybe the guide could speak slower", False),  # a suggestion
])
def test_praise_reaches_the_guides(score: int, comment: str, notice: bool) -> None:
    effects = Tour().rate("p1", score, comment=comment)
    notices = of(effects, SendNotice)
    assert bool(notices) == notice
    if notice:
        first = notices[0]
        assert (first.kind, first.audience, first.notice_id) == ("praise", "guides", "praise:1002-0")
    assert of(effects, UpsertAlert) == []


# ---- incidents -------------------------------------------------------------------------------------------

def incident(**extra: Any) -> dict[str, Any]:
    return {"type": "incident", "incident_id": "i1", "guide": "g1", "summary": "trouble", **extra}


@pytest.mark.parametrize(("kind", "severity", "needs", "alerts", "pulled"), [
    ("delay", "low", None, set(), None),
    ("delay", "medium", None, set(), None),
    ("medical", "high", None, {"incident"}, ("medical",)),
    ("vehicle_breakdown", "medium", None, set(), ("vehicle",)),
    ("accident", "critical", None, {"incident"}, ("medical", "vehicle")),
    ("other", "medium", ["interpreter"], set(), ("interpreter",)),
    ("complaint", "medium", None, {"urgent_complaint"}, None),
    ("conflict", "low", None, {"urgent_complaint"}, None),
    ("conflict", "high", None, {"urgent_complaint", "incident"}, None),
])
def test_incident(kind: str, severity: str, needs: list[str] | None, alerts: set[str],
                  pulled: tuple[str, ...] | None) -> None:
    effects = Tour().feed(incident(kind=kind, severity=severity, needs=needs, travellers_affected=12))
    assert {a.kind for a in of(effects, UpsertAlert)} == alerts
    for found in of(effects, UpsertAlert):
        assert found.details["incident_id"] == "i1"
        assert found.dedup_key == ("incident:i1" if found.kind == "incident" else "urgent_complaint:i1")
    pulls = of(effects, PullResources)
    assert (pulls[0].kinds if pulls else None) == pulled
    if pulls:
        assert (pulls[0].capacity, pulls[0].region) == (12, "yn")
    (changed,) = of(effects, IncidentChanged)
    assert changed.incident["incident_id"] == "i1" and changed.incident["status"] == "open"
    clocks = {d.deadline_id for d in of(effects, SetDeadline)}
    assert clocks == ({"urgent_solution:urgent_complaint:i1", "urgent_followup:urgent_complaint:i1"}
                      if kind in ("complaint", "conflict") else set())


def test_attraction_closed_alternatives_in_time_clear_the_clock() -> None:
    tour = Tour()
    effects = tour.feed(incident(kind="attraction_closed", severity="medium", at=T0))
    (deadline,) = of(effects, SetDeadline)
    assert (deadline.deadline_id, deadline.due) == ("alt:i1", T0 + 600)
    assert deadline.kind == "attraction_alternatives"
    assert deadline.subject == {"incident_id": "i1"}
    effects = tour.feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["a", "b"]})
    assert of(effects, ClearDeadline) == [] and len(of(effects, IncidentChanged)) == 1
    effects = tour.feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["b", "c"],
                         "at": T0 + 590})
    assert [c.deadline_id for c in of(effects, ClearDeadline)] == ["alt:i1"]
    assert of(effects, ResolveAlert) == []


def deadline_event(kind: str, deadline_id: str, due: float, fired_at: float,
                   **subject: Any) -> dict[str, Any]:
    return {"type": "deadline", "kind": kind, "deadline_id": deadline_id, "due": due, "fired_at": fired_at,
            "subject": subject, "at": due, "sender": "system"}


def test_alternatives_deadline_breach_and_a_late_proof_that_was_in_time() -> None:
    tour = Tour()
    tour.feed(incident(kind="attraction_closed", severity="medium", at=T0))
    # every watcher was down: the clock fires 20 minutes late, before the offline guide's proof arrives
    fired = deadline_event("attraction_alternatives", "alt:i1", T0 + 600, T0 + 1800, incident_id="i1")
    effects = tour.feed(fired, now=T0 + 1801)
    breach = alert(effects, "sla_breach")
    assert breach is not None and breach.dedup_key == "sla_breach:alt:i1" and breach.severity == "high"
    assert breach.details["incident_id"] == "i1" and breach.details["late_by_s"] == 1200.0
    assert breach.details["deadline"] == "attraction_alternatives"
    effects = tour.feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["a", "b", "c"],
                         "at": T0 + 500})
    (resolve,) = of(effects, ResolveAlert)
    assert resolve.dedup_key == "sla_breach:alt:i1" and "late" in resolve.note


def test_alternatives_really_late_keep_the_breach() -> None:
    tour = Tour()
    tour.feed(incident(kind="attraction_closed", severity="medium", at=T0))
    tour.feed(deadline_event("attraction_alternatives", "alt:i1", T0 + 600, T0 + 601, incident_id="i1"))
    effects = tour.feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["a", "b", "c"],
                         "at": T0 + 900})
    assert of(effects, ResolveAlert) == [] and of(effects, ClearDeadline) == []


def test_a_guides_conflict_is_answered_and_followed_up_to_the_guides() -> None:
    tour = Tour()
    tour.feed(incident(kind="conflict", severity="low"))
    key = "urgent_complaint:i1"
    effects = tour.feed({"type": "alert_action", "dedup_key": key, "action": "resolve", "alert_id": "a9",
                         "note": "separated the two groups"})
    assert [(n.kind, n.audience, n.to, n.alert_id) for n in of(effects, SendNotice)] == [
        ("answer", "guides", None, "a9"), ("followup", "guides", None, "a9")]
    effects = tour.feed({"type": "followup_reply", "dedup_key": key, "satisfied": False, "sender": "supervisor:s1",
                         "note": "they still argue"})
    assert [c.deadline_id for c in of(effects, ClearDeadline)] == [f"urgent_followup:{key}"]
    found = alert(effects, "urgent_complaint")
    assert found is not None and found.dedup_key == key + "#2"
    assert (found.details["reopens"], found.details["reopen_count"], found.details["incident_id"]) == (key, 1, "i1")
    assert {d.deadline_id for d in of(effects, SetDeadline)} == {f"urgent_solution:{key}#2",
                                                                 f"urgent_followup:{key}#2"}


def test_alternatives_deadline_with_proof_in_time_is_no_breach() -> None:
    tour = Tour()
    tour.feed(incident(kind="attraction_closed", severity="medium", at=T0))
    tour.feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["a", "b", "c"],
               "at": T0 + 100})
    fired = deadline_event("attraction_alternatives", "alt:i1", T0 + 600, T0 + 600, incident_id="i1")
    effects = tour.feed(fired)
    assert effects == []


@pytest.mark.parametrize(("kind", "alerts"), [("attraction_closed", []), ("complaint", [])])
def test_resolving_an_incident_resolves_its_alerts_and_releases_the_pool(kind: str,
                                                                          alerts: list[str]) -> None:
    tour = Tour()
    tour.feed(incident(kind=kind, severity="high"))
    effects = tour.feed({"type": "incident_update", "incident_id": "i1", "status": "resolved", "note": "done",
                         "sender": "guide:g1"})
    assert of(effects, ReleaseResources) == [ReleaseResources("i1", "T1", "yn")]
    assert [r.dedup_key for r in of(effects, ResolveAlert)] == ["incident:i1", *alerts]
    cleared = [c.deadline_id for c in of(effects, ClearDeadline)]
    # a guide's complaint is urgent (§10): resolving the incident leaves its alert and clocks to the supervisor
    assert cleared == (["alt:i1"] if kind == "attraction_closed" else [])
    (changed,) = of(effects, IncidentChanged)
    assert changed.incident["status"] == "resolved"
    again = tour.feed({"type": "incident_update", "incident_id": "i1", "status": "resolved"})
    assert of(again, ReleaseResources) == [] and of(again, ResolveAlert) == []


# ---- complaint clocks ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "solve_at", "breach"), [
    ("urgent_solution", None, True),
    ("urgent_solution", 3600.0, False),
    ("urgent_solution", 9000.0, True),  # solved, but after the due time: still a breach
    ("urgent_followup", None, True),
    ("urgent_followup", 3600.0, True),  # §10: an answer with no reply to the follow-up is not a follow-up
])
def test_urgent_complaint_clocks(kind: str, solve_at: float | None, breach: bool) -> None:
    tour = Tour()
    key = f"urgent_complaint:T1:{DAY1}:p1"
    tour.rate("p1", 1, at=T0)
    if solve_at is not None:
        tour.feed({"type": "alert_action", "dedup_key": key, "action": "resolve", "note": "ok",
                   "at": T0 + solve_at})
    due = T0 + (7200 if kind == "urgent_solution" else 86400)
    effects = tour.feed(deadline_event(kind, f"{kind}:{key}", due, due + 1, dedup_key=key, traveller="p1",
                                       day=DAY1), now=due + 2)
    found = alert(effects, "sla_breach")
    assert (found is not None) == breach
    if found:
        assert found.dedup_key == f"sla_breach:{kind}:{key}"
        assert found.details["dedup_key"] == key and found.details["traveller"] == "p1"


def test_complaint_response_clock() -> None:
    tour = Tour()
    tour.rate("p1", 2, comment="bad food", at=T0)
    key = f"complaint:T1:{DAY1}:p1"
    due = T0 + 172800
    event = deadline_event("complaint_response", f"complaint_response:{key}", due, due, dedup_key=key)
    assert alert(tour.feed(dict(event)), "sla_breach") is not None
    tour.feed({"type": "alert_action", "dedup_key": key, "action": "resolve", "note": "refunded",
               "at": T0 + 10})
    assert tour.feed(dict(event)) == []


def test_escalation_deadline_asks_the_store() -> None:
    effects = Tour().feed(deadline_event("escalation", "esc:a1:1", T0, T0, alert_id="a1", level=1))
    assert effects == [EscalateAlert("a1", 1)]


# ---- daily prompts ---------------------------------------------------------------------------------------

PROMPT_DAY1 = datetime(2025, 5, 12, 12, tzinfo=UTC).timestamp()  # 20:00 in Shanghai


def test_tour_event_arms_the_first_prompt_not_yet_past_or_skipped() -> None:
    tour = Tour()
    effects = tour.feed(dict(TOUR, at=T0), now=T0)
    assert effects == [SetDeadline(f"prompt:T1:{DAY1}", PROMPT_DAY1, "prompt", "T1", {"day": DAY1})]
    # registered just after tonight's prompt hour: still asked tonight (it fires at once)
    effects = tour.feed(dict(TOUR, at=T0), now=PROMPT_DAY1 + 1)
    assert [d.deadline_id for d in of(effects, SetDeadline)] == [f"prompt:T1:{DAY1}"]
    # more than prompt_skip_after (2 h) after it: too late tonight, tomorrow's
    effects = tour.feed(dict(TOUR, at=T0), now=PROMPT_DAY1 + 7201)
    assert [d.deadline_id for d in of(effects, SetDeadline)] == [f"prompt:T1:{DAY2}"]
    assert tour.feed(dict(TOUR, at=T0), now=PROMPT_DAY1 + 3 * 86400) == []  # the tour is over


@pytest.mark.parametrize(("day", "late_by", "sent", "next_day"), [
    (DAY1, 5.0, True, DAY2),
    (DAY1, 7199.0, True, DAY2),
    (DAY1, 7201.0, False, DAY2),  # hours late (every watcher was down): skipped, but the chain goes on
    (DAY3, 1.0, True, None),  # the last day: no next prompt
])
def test_prompt_deadline(day: str, late_by: float, sent: bool, next_day: str | None) -> None:
    due = PROMPT_DAY1 + 86400 * [DAY1, DAY2, DAY3].index(day)
    effects = Tour().feed(deadline_event("prompt", f"prompt:T1:{day}", due, due + late_by, day=day),
                          now=due + late_by)
    notices = of(effects, SendNotice)
    assert bool(notices) == sent
    if notices:
        assert (notices[0].notice_id, notices[0].kind, notices[0].audience) == (f"prompt:T1:{day}", "prompt",
                                                                                "travellers")
    prompts = [d.subject["day"] for d in of(effects, SetDeadline) if d.kind == "prompt"]
    assert prompts == ([next_day] if next_day else [])
    # tonight's second prompt (21:00) and response check (22:00) are armed with it, on the same day
    assert {(d.deadline_id, d.due - due) for d in of(effects, SetDeadline) if d.kind != "prompt"} == ({
        (f"prompt:T1:{day}:2", 3600.0), (f"response_check:T1:{day}", 7200.0)} if sent else set())


def _evening(tour: Tour, kind: str, deadline_id: str, late_by: float = 1.0) -> list[Any]:
    due = PROMPT_DAY1 + (3600 if kind == "reprompt" else 7200)
    return tour.feed(deadline_event(kind, deadline_id, due, due + late_by, day=DAY1), now=due + late_by)


def _seen(tour: Tour, *travellers: str) -> None:
    """Each joined or connected: one of the tour's people (the §11 `person` event, written by the web process)."""
    for who in travellers:
        tour.feed({"type": "person", "person": who, "name": None, "sender": "system"})


def test_the_second_prompt_goes_to_the_silent_travellers_who_use_the_app() -> None:
    tour = Tour()
    _seen(tour, "p1", "p2", "p3")
    tour.rate("p1", 5)
    tour.rate("p4", 4)  # rated without a `person` event first: uses the app all the same
    (notice,) = of(_evening(tour, "reprompt", f"prompt:T1:{DAY1}:2"), SendNotice)
    assert (notice.notice_id, notice.kind, notice.to) == (f"prompt:T1:{DAY1}:2", "prompt", ("p2", "p3"))
    assert _evening(tour, "reprompt", f"prompt:T1:{DAY1}:2", late_by=7201.0) == []  # hours late: skipped
    tour.rate("p2", 4)
    tour.rate("p3", 4)
    assert _evening(tour, "reprompt", f"prompt:T1:{DAY1}:2") == []  # everyone rated: nobody to ask


@pytest.mark.parametrize(("seen", "rated", "alerts"), [
    (["p1", "p2", "p3", "p4"], ["p1"], True),  # 1 of 4 < 50 %
    (["p1", "p2", "p3", "p4"], ["p1", "p2"], False),  # 2 of 4: the line itself is met
    (["p1", "p2"], [], False),  # two joined a tour of 30: too few to judge, no nightly alert
    ([], [], False),
    (["p1", "p2", "p3"], ["p9"], True),  # 1 of 4 (p9 rated, so uses the app)
])
def test_low_response_is_measured_against_the_travellers_who_use_the_app(seen: list[str], rated: list[str],
                                                                         alerts: bool) -> None:
    tour = Tour()
    _seen(tour, *seen)
    for who in rated:
        tour.rate(who, 5)
    effects = _evening(tour, "response_check", f"response_check:T1:{DAY1}")
    found = alert(effects, "low_response")
    assert (found is not None) == alerts
    if found is not None:
        assert (found.dedup_key, found.severity, found.escalate) == (f"low_response:T1:{DAY1}", "medium", False)
        users = len(set(seen) | set(rated))
        assert (found.details["ratings"], found.details["travellers_using_app"]) == (len(rated), users)


# ---- replay ----------------------------------------------------------------------------------------------

def test_replay_from_a_saved_state_gives_the_same_effects() -> None:
    tour = Tour()
    tour.rate_all([3, 3])
    saved = tour.state.to_fields()
    event = {"type": "rating", "tour_id": "T1", "traveller": "p9", "day": DAY1, "score": 1,
             "comment": "injured", "at": T0 + 50, "seq": "5000-0"}
    first = evaluate(tour.state, event, fold(tour.state, dict(event)), tour.settings, T0 + 60)
    restored = TourState.from_fields(saved)
    second = evaluate(restored, event, fold(restored, dict(event)), tour.settings, T0 + 60)
    assert first == second
    assert {type(e).__name__ for e in first} >= {"UpsertAlert", "SetDeadline"}


def test_praise_of_the_guide_and_the_driver_names_both() -> None:
    (notice,) = of(Tour().rate("p1", 5, comment="导游很专业，司机师傅开车很稳"), SendNotice)
    assert notice.title == "A traveller praised you and the driver" and notice.audience == "guides"
