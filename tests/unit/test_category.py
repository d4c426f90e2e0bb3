"""The category-share rule (contract §10), pure: what a rating counts, and which shares call for action."""

from __future__ import annotations

from typing import Any

import pytest

from alerts.rules.category import category_share_alerts, category_window_days, counted_categories, window_days
from alerts.rules.effects import CountComplaint
from alerts.rules.evaluate import evaluate
from alerts.rules.fold import fold
from alerts.rules.state import TourState
from server.core.settings import RuleSettings, settings_from_mapping

RULES = RuleSettings()


@pytest.mark.parametrize(("complaint", "aspects", "counted"), [
    ("meals", None, ("meals",)),
    ("meals", {"meals": 1}, ("meals",)),  # the low aspect made it a meals complaint: counted once
    ("transport", {"meals": 2, "lodging": 1, "guide": 5}, ("transport", "meals", "lodging")),
    (None, {"itinerary": 2, "guide": 3}, ("itinerary",)),
    (None, {"meals": 3}, ()),
    (None, None, ()),
])
def test_counted_categories(complaint: str | None, aspects: dict[str, int] | None, counted: tuple[str, ...]) -> None:
    assert counted_categories(complaint, aspects) == counted


@pytest.mark.parametrize(("counts", "alerting"), [
    ({"meals": 6, "transport": 3}, []),  # 9: not enough to judge
    ({"meals": 9, "transport": 1}, ["meals"]),  # a transport complaint was the latest: meals alerts all the same
    ({"meals": 5, "transport": 4, "lodging": 1}, ["meals", "transport"]),  # every category, each time
    ({"meals": 3, "transport": 3, "lodging": 3, "guide": 3, "itinerary": 3, "other": 3, "safety": 3}, []),
    ({"meals": 85, "transport": 15}, ["meals"]),  # 15 % is the line itself: not above it
])
def test_every_category_is_judged_once_there_are_enough(counts: dict[str, int], alerting: list[str]) -> None:
    found = category_share_alerts("R", "yn", counts, RULES, 30)
    assert [a.details["category"] for a in found] == alerting
    for alert in found:
        assert alert.dedup_key == f"category_share:R:{alert.details['category']}" and not alert.escalate
        assert alert.details["complaints"] == sum(counts.values()) and alert.details["window_days"] == 30


@pytest.mark.parametrize(("counts", "counted", "alerting"), [
    ({"meals": 9, "transport": 1}, ("transport",), ["meals"]),  # meals crossed now (9 before: too few to judge)
    ({"meals": 9, "transport": 2}, ("transport",), ["transport"]),  # meals was flagged at the complaint before
    ({"meals": 9, "transport": 2}, ("meals",), ["meals"]),  # transport was above 15 % before too
    ({"meals": 10, "transport": 2}, ("meals",), ["meals"]),
])
def test_a_category_flagged_before_is_left_alone_until_its_own_complaint(
        counts: dict[str, int], counted: tuple[str, ...], alerting: list[str]) -> None:
    found = category_share_alerts("R", "yn", counts, RULES, 30, counted)
    assert [a.details["category"] for a in found] == alerting


def test_the_window_in_days() -> None:
    assert category_window_days(RULES) == 30
    assert category_window_days(RuleSettings(category_window=36 * 3600)) == 2
    assert window_days(3, "2026-12-01") == ["2026-11-29", "2026-11-30", "2026-12-01"]


T0 = 1_780_000_000.0


def _rate(state: TourState, n: int, score: int, comment: str | None, aspects: dict[str, int] | None) -> list[Any]:
    settings = settings_from_mapping({})
    event = {"type": "rating", "tour_id": "T1", "traveller": f"p{n}", "day": "2026-05-30", "score": score,
             "comment": comment, "aspects": aspects, "nps": None, "at": T0 + n, "seq": f"{n}-0", "sender": "x"}
    return [e for e in evaluate(state, event, fold(state, event), settings, T0 + 100) if isinstance(e, CountComplaint)]


def test_a_rating_counts_its_complaint_and_low_aspects_and_only_a_complaint_judges() -> None:
    state = TourState.new()
    fold(state, {"type": "tour", "tour_id": "T1", "route": "R", "region": "yn", "guides": ["g1"], "seq": "0-1",
                 "start": "2026-05-28", "end": "2026-06-02", "timezone": "Asia/Shanghai", "travellers": 20})
    (count,) = _rate(state, 1, 2, "the bus was dirty and late", {"meals": 2, "lodging": 1})
    # its category is its lowest aspect's (lodging); meals, scored 2, counts too
    assert (count.category, count.categories, count.judge) == ("lodging", ("lodging", "meals"), True)
    assert (count.route, count.token) == ("R", "1-0")
    assert count.day == "2026-05-28" and count.window_end == "2026-05-28"
    (aspects_only,) = _rate(state, 2, 4, None, {"lodging": 1, "guide": 5})
    assert (aspects_only.categories, aspects_only.judge) == (("lodging",), False)
    assert _rate(state, 3, 5, "lovely day", {"meals": 4}) == []
