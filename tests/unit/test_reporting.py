"""Report periods and MTTA/MTTR, pure."""

from __future__ import annotations

from datetime import date

import pytest

from server.web.reporting import alert_times, period_bounds, period_start


@pytest.mark.parametrize(("period", "bounds"), [
    ("day", [("2026-11-29", "2026-11-29"), ("2026-11-30", "2026-11-30"), ("2026-12-01", "2026-12-01"),
             ("2026-12-02", "2026-12-02")]),
    # 2026-11-29 is a Sunday: its ISO week began on Monday the 23rd, clipped to the range
    ("week", [("2026-11-29", "2026-11-29"), ("2026-11-30", "2026-12-02")]),
    ("month", [("2026-11-29", "2026-11-30"), ("2026-12-01", "2026-12-02")]),
])
def test_periods_touch_the_range_and_are_clipped_to_it(period: str, bounds: list[tuple[str, str]]) -> None:
    got = period_bounds(date(2026, 11, 29), date(2026, 12, 2), period)
    assert [(a.isoformat(), b.isoformat()) for a, b in got] == bounds


def test_period_start() -> None:
    assert period_start(date(2026, 12, 31), "month") == date(2026, 12, 1)
    assert period_start(date(2026, 12, 6), "week") == date(2026, 11, 30)
    assert period_start(date(2026, 12, 6), "day") == date(2026, 12, 6)


def test_mtta_and_mttr_per_kind() -> None:
    alerts = [
        {"kind": "complaint", "opened_at": "2026-12-01T10:00:00.000Z", "acked_at": "2026-12-01T10:10:00.000Z",
         "resolved_at": "2026-12-01T12:00:00.000Z"},
        {"kind": "complaint", "opened_at": "2026-12-01T10:00:00.000Z", "acked_at": None,
         "resolved_at": "2026-12-01T10:30:00.000Z"},  # resolved unacknowledged: acknowledged by resolving
        {"kind": "complaint", "opened_at": "2026-12-02T10:00:00.000Z", "acked_at": None, "resolved_at": None},
        {"kind": "incident", "opened_at": "2026-11-01T10:00:00.000Z", "acked_at": None, "resolved_at": None},
    ]
    times = alert_times(alerts, "2026-12-01", "2026-12-31")
    assert times == {"complaint": {"count": 3, "acknowledged": 2, "resolved": 2, "mtta_s": 1200.0,
                                   "mttr_s": 4500.0}}
