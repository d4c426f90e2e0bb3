"""Tonight's second prompt and response check: armed at their hours when those are not before the prompt's."""

from __future__ import annotations

from datetime import date

import pytest

from alerts.rules.clocks import prompt_due
from alerts.rules.deadlines import silent_clocks
from alerts.rules.effects import SetDeadline
from server.core.settings import settings_from_mapping

PARIS = {"timezone": "Europe/Paris", "start": "2027-03-26", "end": "2027-03-30"}
SPRING_FORWARD = "2027-03-28"  # 02:00 does not exist in Paris that night: the clocks go from 02:00 to 03:00


def armed(day: str, prompt_hour: int, reprompt_hour: int, check_hour: int) -> dict[str, float]:
    settings = settings_from_mapping({"sla": {"prompt_hour": prompt_hour, "reprompt_hour": reprompt_hour,
                                              "response_check_hour": check_hour}})
    prompt_at = prompt_due(date.fromisoformat(day), prompt_hour, "Europe/Paris")
    effects = silent_clocks(PARIS, "T1", day, prompt_at, settings)
    assert all(isinstance(e, SetDeadline) for e in effects)
    return {e.deadline_id: e.due - prompt_at for e in effects}


@pytest.mark.parametrize("day", ["2027-03-27", SPRING_FORWARD])
def test_an_hour_before_the_prompt_is_not_armed_even_where_that_hour_is_skipped(day: str) -> None:
    assert armed(day, prompt_hour=3, reprompt_hour=2, check_hour=2) == {}


def test_the_prompts_own_hour_and_later_hours_are_armed() -> None:
    assert armed("2027-03-27", prompt_hour=20, reprompt_hour=20, check_hour=22) == {
        "prompt:T1:2027-03-27:2": 0.0, "response_check:T1:2027-03-27": 7200.0}
    # the night the clocks spring forward, 04:00 is still an hour after a 03:00 prompt
    assert armed(SPRING_FORWARD, prompt_hour=3, reprompt_hour=4, check_hour=3) == {
        f"prompt:T1:{SPRING_FORWARD}:2": 3600.0, f"response_check:T1:{SPRING_FORWARD}": 0.0}
