"""The simulator's world and actions: deterministic for a seed, shaped like a real day, valid on the wire."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from statistics import mean
from zoneinfo import ZoneInfo

import pytest

from guide_app_api.messages import parse_message
from server.core.settings import DEFAULT_URGENT_KEYWORDS
from server.storage.tours import validate_tour
from server.tools import phrases
from server.tools.scenario import Action, World, actions, build_world

NOW = 1_795_000_000.0  # a fixed moment: nothing here reads the clock
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(7, tours=40, travellers=25, regions=4, now=NOW)


@pytest.fixture(scope="module")
def day(world: World) -> list[Action]:
    return list(actions(world, rate=100, duration=120, run_id="t"))


def _urgent(text: str) -> bool:
    low = text.lower()
    return any(k in low for k in DEFAULT_URGENT_KEYWORDS)


def test_same_seed_same_world_and_actions(world: World, day: list[Action]) -> None:
    again = build_world(7, tours=40, travellers=25, regions=4, now=NOW)
    assert again == world
    assert list(actions(again, rate=100, duration=120, run_id="t")) == day
    other = build_world(8, tours=40, travellers=25, regions=4, now=NOW)
    assert other.tours != world.tours


def test_tours_are_valid_registrations_that_started_two_days_ago(world: World) -> None:
    assert [t.tour_id for t in world.tours] == [f"T{n:04d}" for n in range(1, 41)]
    assert world.regions == ("yunnan", "sichuan", "guangxi", "xinjiang")
    assert Counter(t.region for t in world.tours) == {r: 10 for r in world.regions}
    for tour in world.tours:
        registered = validate_tour(tour.tour_id, tour.doc())
        assert registered.travellers == len(tour.travellers) and 15 <= registered.travellers <= 45
        assert 1 <= len(tour.guides) <= 2
        today = datetime.fromtimestamp(NOW, ZoneInfo(tour.timezone)).date()
        assert (tour.start, tour.end) == (today - timedelta(days=2), today + timedelta(days=3))
    zones = Counter(t.timezone for t in world.tours)
    assert zones.most_common(1)[0][0] == "Asia/Shanghai" and set(zones) <= {"Asia/Shanghai", "Europe/Paris",
                                                                            "Asia/Tokyo"}
    assert {r.kind for r in world.resources} == {"vehicle", "lodging", "medical", "guide", "interpreter"}
    assert {r.region for r in world.resources} == set(world.regions)


def test_every_message_is_valid_on_the_wire(world: World, day: list[Action]) -> None:
    assert len(day) == 100 * 120
    assert [a.at for a in day] == sorted(a.at for a in day) and 0 <= day[0].at and day[-1].at <= 120
    seen: set[tuple[str, str]] = set()
    for action in day:
        msg = dict(action.msg)
        if action.after is not None:
            msg["incident_id"] = f"{action.person.tour_id}~0123456789"
        parse_message(msg, action.person.role, NOW)
        key = (action.person.sub, msg["id"])
        assert key not in seen
        seen.add(key)
        if msg["type"] == "rating":
            tour = world.by_id[msg["tour_id"]]
            assert tour.start <= date.fromisoformat(msg["day"]) <= tour.today
            assert action.person in tour.travellers


def test_most_days_are_good_and_about_one_tour_in_ten_turns_bad(world: World, day: list[Action]) -> None:
    scores: dict[tuple[str, str], list[int]] = defaultdict(list)
    for a in day:
        if a.msg["type"] == "rating":
            scores[(a.msg["tour_id"], a.msg["day"])].append(a.msg["score"])
    all_scores = [s for values in scores.values() for s in values]
    assert sum(s >= 4 for s in all_scores) / len(all_scores) > 0.75
    bad = set()
    for tour in world.tours:
        means = [mean(scores[(tour.tour_id, d.isoformat())]) for d in tour.days_so_far]
        if means[-1] < 4 or means[-1] < means[-2] - 1:
            bad.add(tour.tour_id)
        if tour.mood == "good":
            assert min(means) >= 4 and means[-1] > means[-2] - 1
    assert bad == {t.tour_id for t in world.tours if t.mood != "good"}
    assert len(bad) == 4


def test_nps_follows_the_score(day: list[Action]) -> None:
    by_score: dict[int, list[int]] = defaultdict(list)
    for a in day:
        if "nps" in a.msg:
            by_score[a.msg["score"]].append(a.msg["nps"])
    assert mean(by_score[5]) > mean(by_score[3]) + 2 > mean(by_score[1]) + 4


def test_comments_in_both_languages_and_urgent_only_when_meant(day: list[Action]) -> None:
    comments = [a.msg["comment"] for a in day if "comment" in a.msg]
    chinese = [c for c in comments if CJK.search(c)]
    assert len(chinese) > len(comments) * 0.4 and len(comments) - len(chinese) > len(comments) * 0.2
    urgent_texts = {t for texts in phrases.URGENT.values() for t in texts}
    assert all(_urgent(t) for t in urgent_texts)
    assert not any(_urgent(c) for c in comments if c not in urgent_texts)
    assert 0 < sum(c in urgent_texts for c in comments) < len(comments) * 0.05
    kinds = Counter(c in phrases.PRAISE["zh"] + phrases.PRAISE["en"] for c in comments)
    assert kinds[True] > kinds[False] > 0  # mostly praise, some suggestions and complaints


def test_every_incident_kind_with_updates_in_order(world: World) -> None:
    plan = list(actions(world, rate=50, duration=600, run_id="x"))
    incidents = {a.msg["id"]: a for a in plan if a.msg["type"] == "incident"}
    assert set(Counter(a.msg["kind"] for a in incidents.values())) == set(phrases.INCIDENT_KINDS)
    updates: dict[str, list[Action]] = defaultdict(list)
    for a in plan:
        if a.msg["type"] == "incident_update":
            assert a.after in incidents and incidents[a.after].at < a.at
            assert incidents[a.after].person == a.person
            updates[a.after].append(a)
    for incident_id, chain in updates.items():
        statuses = [u.msg.get("status") for u in chain]
        assert "resolved" not in statuses[:-1], incident_id
    alternatives = [u.msg["alternatives"] for chain in updates.values() for u in chain
                    if "alternatives" in u.msg]
    assert any(len(a) == 3 for a in alternatives) and any(len(a) == 2 for a in alternatives)
    vehicle = [a.msg for a in incidents.values() if a.msg["kind"] == "vehicle_breakdown"]
    assert all(m["travellers_affected"] == len(world.by_id[m["tour_id"]].travellers) for m in vehicle)


def test_weather_comes_in_a_regional_burst(world: World) -> None:
    weather = [a for a in actions(world, rate=50, duration=60, run_id="w")
               if a.msg["type"] == "incident" and a.msg["kind"] == "weather"]
    regions = Counter(world.by_id[a.msg["tour_id"]].region for a in weather)
    region, count = regions.most_common(1)[0]
    burst = [a.at for a in weather if world.by_id[a.msg["tour_id"]].region == region]
    assert count >= 3 and max(burst) - min(burst) <= 20


def test_small_runs_and_new_run_ids(world: World) -> None:
    assert list(actions(world, rate=0, duration=60)) == []
    few = list(actions(world, rate=2, duration=3, run_id="a"))
    assert len(few) == 6
    assert {a.msg["id"].split("-")[0] for a in actions(world, rate=2, duration=3, run_id="b")} == {"b"}
    with pytest.raises(ValueError):
        build_world(1, tours=0, now=NOW)
