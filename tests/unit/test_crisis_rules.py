"""The crisis fold and rules (§11), pure: no loop, no Redis; the clock is an argument."""

from __future__ import annotations

from typing import Any

from alerts.rules.crisis_effects import AnnotateAlert, Push, WarnRegion
from alerts.rules.effects import SetDeadline, UpsertAlert
from alerts.rules.evaluate import evaluate
from alerts.rules.fold import fold
from alerts.rules.state import TourState
from server.core.settings import Settings

SETTINGS = Settings(secret=b"x" * 16)
T0 = 1_800_000_000.0
_seq = iter(range(1, 1_000_000))


def run(state: TourState, event: dict[str, Any], now: float = T0) -> list[Any]:
    event = {"tour_id": "T1", "at": now, **event, "seq": f"{int(now * 1000)}-{next(_seq)}"}
    folded = fold(state, event)
    return evaluate(state, event, folded, SETTINGS, now)


def tour(travellers: int = 3) -> TourState:
    state = TourState.new()
    run(state, {"type": "tour", "route": "R", "region": "yunnan", "guides": ["g1"], "start": "2027-01-01",
                "end": "2027-01-09", "timezone": "UTC", "travellers": travellers})
    return state


def check(state: TourState, deadline: float = 60.0, repeat: float = 20.0) -> list[Any]:
    return run(state, {"type": "safety_check", "check_id": "c1", "message": "ok?", "deadline": T0 + deadline,
                       "repeat": repeat})


def reply(state: TourState, person: str, status: str = "safe", at: float = T0 + 1, **extra: Any) -> list[Any]:
    return run(state, {"type": "safety_reply", "check_id": "c1", "person": person, "person_role": "traveller",
                       "status": status, "at": at, **extra}, now=at)


def deadline(state: TourState, kind: str, due: float, **subject: Any) -> list[Any]:
    return run(state, {"type": "deadline", "kind": kind, "deadline_id": f"{kind}:x", "due": due,
                       "subject": {"check_id": "c1", **subject}}, now=due)


def test_a_check_pushes_to_every_phone_and_arms_its_repeats_and_deadline() -> None:
    state = tour()
    effects = check(state)
    assert isinstance(effects[0], Push) and effects[0].push["audience"] == "all"
    assert [(e.kind, e.due) for e in effects[1:] if isinstance(e, SetDeadline)] == [
        ("safety_repeat", T0 + 20), ("safety_deadline", T0 + 60)]
    assert check(state) == []  # the same check again: nothing


def test_a_repeat_goes_to_the_unanswered_only_and_arms_the_next_before_the_deadline() -> None:
    state = tour()
    check(state)
    run(state, {"type": "person", "person": "t1", "name": "Li"})
    run(state, {"type": "person", "person": "t2", "name": None})
    reply(state, "t1")
    effects = deadline(state, "safety_repeat", T0 + 20, n=1)
    push = next(e for e in effects if isinstance(e, Push))
    assert sorted(push.push["to"]) == ["g1", "t2"] and push.push["repeat"] == 1
    assert [e.due for e in effects if isinstance(e, SetDeadline)] == [T0 + 40]
    effects = deadline(state, "safety_repeat", T0 + 40, n=2)
    assert not [e for e in effects if isinstance(e, SetDeadline)]  # the next would fall after the deadline


def test_need_help_opens_one_alert_per_person_and_a_later_answer_replaces_an_earlier() -> None:
    state = tour()
    check(state)
    first = reply(state, "t1", "need_help", location={"lat": 1.0, "lon": 2.0}, note="hurt")
    assert [(e.kind, e.severity, e.details["location"]) for e in first] == [
        ("safety_help", "critical", {"lat": 1.0, "lon": 2.0})]
    assert reply(state, "t1", "need_help", at=T0 + 2) == []  # once per check and person
    reply(state, "t1", "safe", at=T0 + 3)
    reply(state, "t1", "need_help", at=T0 + 2.5)  # older by `at`: the newer answer stands
    assert state.crisis.answers["c1"]["t1"].status == "safe"


def test_the_deadline_names_the_unanswered_and_counts_the_unknown() -> None:
    state = tour(travellers=3)
    check(state)
    run(state, {"type": "person", "person": "t1", "name": "Li"})
    run(state, {"type": "person", "person": "t2"})
    reply(state, "t2")
    (alert,) = deadline(state, "safety_deadline", T0 + 60)
    assert isinstance(alert, UpsertAlert) and alert.kind == "safety_unaccounted"
    assert alert.details["names"] == ["g1", "Li"] and alert.details["unknown"] == 1
    assert deadline(state, "safety_deadline", T0 + 60) == []  # fired once
    assert deadline(state, "safety_repeat", T0 + 61, n=3) == []  # closed: no more repeats
    (note,) = reply(state, "t1", at=T0 + 70)
    assert state.crisis.answers["c1"]["t1"].late is True
    assert isinstance(note, AnnotateAlert) and note.dedup_key == "safety_unaccounted:c1:T1"
    assert note.details["names"] == ["g1"] and note.details["unknown"] == 1


def test_everyone_accounted_for_opens_nothing_at_the_deadline() -> None:
    state = tour(travellers=1)
    check(state)
    run(state, {"type": "person", "person": "t1"})
    reply(state, "t1")
    run(state, {"type": "safety_reply", "check_id": "c1", "person": "g1", "person_role": "guide",
                "status": "safe"})
    assert deadline(state, "safety_deadline", T0 + 60) == []


def test_the_state_saves_and_loads_whole() -> None:
    state = tour()
    check(state)
    run(state, {"type": "person", "person": "t1", "name": "Li"})
    reply(state, "t1", "need_help", by="g1")
    run(state, {"type": "notice_reply", "notice_id": "n:1", "person": "t1", "choice": 2})
    loaded = TourState.from_fields(state.to_fields())
    assert loaded.crisis == state.crisis
    assert set(state.take_changes()) >= {"m", "p:t1", "k:c1", "a:c1\tt1", "n:n:1\tt1"}


def test_a_weather_incident_of_high_severity_warns_the_region_once() -> None:
    state = tour()
    base = {"type": "incident", "kind": "weather", "summary": "typhoon", "guide": "g1"}
    assert not [e for e in run(state, {**base, "incident_id": "T1~a", "severity": "medium"})
                if isinstance(e, WarnRegion)]
    (warn,) = [e for e in run(state, {**base, "incident_id": "T1~b", "severity": "critical"})
               if isinstance(e, WarnRegion)]
    assert (warn.region, warn.from_tour, warn.incident_id) == ("yunnan", "T1", "T1~b")
    assert not [e for e in run(state, {**base, "incident_id": "T1~b", "severity": "critical"})
                if isinstance(e, WarnRegion)]  # the same incident again
