"""The alerts judged from shared figures (a region's pool queue, a route's complaint mix), table by table."""

from __future__ import annotations

import pytest

from alerts.rules.aggregates import pool_exhausted
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


# category_share is judged by alerts.rules.category since contract §10 (every category, a trailing window):
# tests/unit/test_category.py
