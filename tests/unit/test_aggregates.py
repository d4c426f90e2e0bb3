"""The alerts judged from shared figures (a region's pool queue, a route's complaint mix), table by table."""

from __future__ import annotations

import pytest

from alerts.rules.aggregates import category_share, pool_exhausted
from alerts.rules.effects import UpsertAlert
from server.core.settings import RuleSettings

RULES = RuleSettings()  # share above 0.15 of at least 10 complaints


@pytest.mark.parametrize(("waiting", "summary"), [
    (["I1"], "No vehicle free in yn: 1 incident(s) waiting"),
    (["I1", "I2", "I3"], "No vehicle free in yn: 3 incident(s) waiting"),
])
def test_pool_exhausted_names_the_queue(waiting: list[str], summary: str) -> None:
    alert = pool_exhausted("yn", "vehicle", waiting, "I3")
    assert alert == UpsertAlert(
        kind="pool_exhausted", dedup_key="pool_exhausted:yn:vehicle", severity="critical", region="yn",
        tour_id=None, summary=summary,
        details={"kind": "vehicle", "region": "yn", "incidents": waiting, "incident_id": "I3"})
    assert alert.escalate  # an exhausted pool is someone's to answer, on the ack clocks


def test_pool_exhausted_is_one_alert_per_region_and_kind() -> None:
    keys = {pool_exhausted(r, k, ["I1"], "I1").dedup_key for r in ("yn", "sc") for k in ("vehicle", "medical")}
    assert keys == {"pool_exhausted:yn:vehicle", "pool_exhausted:yn:medical", "pool_exhausted:sc:vehicle",
                    "pool_exhausted:sc:medical"}
    assert pool_exhausted("yn", "vehicle", ("I1",), "I1").details["incidents"] == ["I1"]  # plain data


@pytest.mark.parametrize(("counts", "category", "share"), [
    ({}, "meals", None),  # nothing counted
    ({"meals": 9}, "meals", None),  # all of too few
    ({"meals": 10}, "meals", 1.0),  # all of just enough
    ({"meals": 3, "hotel": 17}, "meals", None),  # exactly 0.15 is not above it
    ({"meals": 4, "hotel": 16}, "meals", 0.2),
    ({"meals": 4, "hotel": 16}, "hotel", 0.8),
    ({"meals": 4, "hotel": 16}, "safety", None),  # a category never counted
    ({"meals": 1, "hotel": 1, "guide": 1, "bus": 1, "safety": 1, "other": 5}, "other", 0.5),
])
def test_category_share_judges_the_category_just_counted(counts: dict[str, int], category: str,
                                                         share: float | None) -> None:
    alert = category_share(counts, "yunnan-6d", "yn", category, RULES)
    if share is None:
        assert alert is None
        return
    assert alert is not None
    assert (alert.kind, alert.dedup_key, alert.severity, alert.region, alert.tour_id, alert.escalate) == (
        "category_share", f"category_share:yunnan-6d:{category}", "medium", "yn", None, False)
    assert alert.details == {"route": "yunnan-6d", "category": category, "share": share,
                             "complaints": sum(counts.values()), "counts": counts}
    assert alert.summary == f"{category} is {share:.0%} of route yunnan-6d's complaints"


@pytest.mark.parametrize(("rules", "alerts"), [
    (RuleSettings(category_share=0.5, category_min_complaints=4), False),  # 0.5 is not above 0.5
    (RuleSettings(category_share=0.49, category_min_complaints=4), True),
    (RuleSettings(category_share=0.1, category_min_complaints=5), False),  # 4 complaints are too few
])
def test_category_share_follows_the_configured_rule(rules: RuleSettings, alerts: bool) -> None:
    assert (category_share({"meals": 2, "hotel": 2}, "r", "yn", "meals", rules) is not None) is alerts


def test_category_share_rounds_the_share_and_copies_the_counts() -> None:
    counts = {"meals": 1, "hotel": 2}
    alert = category_share(counts, "r", "yn", "hotel", RuleSettings(category_min_complaints=3))
    assert alert is not None and alert.details["share"] == 0.667
    counts["meals"] = 99
    assert alert.details["counts"] == {"meals": 1, "hotel": 2}
