"""Prompt times in the tour's own timezone, across a daylight-saving change; ISO timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from alerts.rules.clocks import iso, next_prompt, prompt_due


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize(("day", "tz", "expected"), [
    (date(2025, 5, 12), "Asia/Shanghai", utc(2025, 5, 12, 12)),  # UTC+8, no DST
    (date(2025, 3, 29), "Europe/Paris", utc(2025, 3, 29, 19)),  # CET, UTC+1
    (date(2025, 3, 30), "Europe/Paris", utc(2025, 3, 30, 18)),  # clocks went forward that night: CEST
    (date(2025, 10, 25), "Europe/Paris", utc(2025, 10, 25, 18)),  # CEST, UTC+2
    (date(2025, 10, 26), "Europe/Paris", utc(2025, 10, 26, 19)),  # back to CET
])
def test_prompt_due_keeps_the_local_hour(day: date, tz: str, expected: float) -> None:
    assert prompt_due(day, 20, tz) == expected


SHANGHAI = {"start": "2025-05-12", "end": "2025-05-14", "timezone": "Asia/Shanghai"}
PARIS = {"start": "2025-03-29", "end": "2025-03-31", "timezone": "Europe/Paris"}


@pytest.mark.parametrize(("tour", "after", "expected"), [
    # before the tour starts: its first day
    (SHANGHAI, utc(2025, 5, 1), ("2025-05-12", utc(2025, 5, 12, 12))),
    # the same day, before the prompt; exactly at it (inclusive); just after it: the next day
    (SHANGHAI, utc(2025, 5, 13, 3), ("2025-05-13", utc(2025, 5, 13, 12))),
    (SHANGHAI, utc(2025, 5, 13, 12), ("2025-05-13", utc(2025, 5, 13, 12))),
    (SHANGHAI, utc(2025, 5, 13, 12, 0, 1), ("2025-05-14", utc(2025, 5, 14, 12))),
    # after the last day's prompt: no more prompts
    (SHANGHAI, utc(2025, 5, 14, 12, 0, 1), None),
    # late evening UTC is already the next local day in Shanghai
    (SHANGHAI, utc(2025, 5, 12, 17), ("2025-05-13", utc(2025, 5, 13, 12))),
    # across the spring-forward night in Paris: 20:00 local each day, one hour earlier in UTC
    (PARIS, utc(2025, 3, 29, 19, 30), ("2025-03-30", utc(2025, 3, 30, 18))),
    (PARIS, utc(2025, 3, 30, 18, 30), ("2025-03-31", utc(2025, 3, 31, 18))),
])
def test_next_prompt(tour: dict[str, str], after: float, expected: tuple[str, float] | None) -> None:
    assert next_prompt(tour, after, 20) == expected


def test_iso_is_utc_with_milliseconds_and_z() -> None:
    assert iso(utc(2025, 5, 12, 12)) == "2025-05-12T12:00:00.000Z"
    assert iso(utc(2025, 5, 12, 12) + 0.25) == "2025-05-12T12:00:00.250Z"
