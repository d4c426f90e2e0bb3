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


def test_an_alert_is_dated_where_its_tour_is() -> None:
    """17:00 UTC is 01:00 the next day in Shanghai: the report of 5 December counts the alert opened at 01:00 on
    the 5th there and not the one opened at 01:00 on the 6th; an alert of no known tour keeps its UTC date."""
    alerts = [
        {"kind": "complaint", "tour_id": "T1", "opened_at": "2026-12-04T17:00:00.000Z", "acked_at": None,
         "resolved_at": None},
        {"kind": "complaint", "tour_id": "T1", "opened_at": "2026-12-05T17:00:00.000Z", "acked_at": None,
         "resolved_at": None},
        {"kind": "pool_exhausted", "opened_at": "2026-12-05T17:00:00.000Z", "acked_at": None, "resolved_at": None},
    ]
    times = alert_times(alerts, "2026-12-05", "2026-12-05", {"T1": "Asia/Shanghai"})
    assert {kind: row["count"] for kind, row in times.items()} == {"complaint": 1, "pool_exhausted": 1}
    assert alert_times(alerts[:2], "2026-12-06", "2026-12-06", {"T1": "Asia/Shanghai"})["complaint"]["count"] == 1


def test_a_kept_states_counts_give_every_report_what_a_fresh_count_gives() -> None:
    """A web process keeps each tour's counts per report shape (``TourData.memo``): whatever order reports of
    different ranges, periods and groups come in, each equals the same report over freshly parsed states."""
    import random

    from alerts.rules.state import ComplaintTrack, RatingRecord
    from guide_app_api.codec import packb
    from server.storage.tours import Tour
    from server.web.reporting import TourData, build_report

    rng = random.Random(7)
    comments = (None, "the dinner was cold", "导游很专业", "建议多休息", "The bus was dirty")
    tours, states = [], []
    for n in range(4):
        tour = Tour(f"T{n}", f"route{n % 2}", f"region{n % 3}", (f"g{n % 2}", "g9"), date(2026, 5, 1),
                    date(2026, 5, 30), "Asia/Shanghai", 5)
        fields: dict[bytes, bytes] = {}
        for d in range(1, 21):
            day = f"2026-05-{d:02d}"
            for who in ("a", "b", "c"):
                score = rng.randint(1, 5)
                record = RatingRecord(score, 1_000.0 * d + ord(who), f"{d}-{who}", {"guide": score}, rng.randrange(11),
                                      comments[rng.randrange(len(comments))], "complaint" if score <= 2 else None)
                fields[f"r:{day}:{who}".encode()] = packb(record.pack())
                if score <= 2:
                    solved = 1_000.0 * d + rng.randrange(90_000)
                    track = ComplaintTrack("normal", 1_000.0 * d, who, day, solved_at=solved)
                    fields[f"c:complaint:T{n}:{day}:{who}".encode()] = packb(track.pack())
        tours.append(tour)
        states.append(fields)
    kept = [TourData.from_fields(t, f) for t, f in zip(tours, states, strict=True)]
    shapes = [("2026-05-01", "2026-05-20", "week", "route"), ("2026-05-03", "2026-05-09", "day", "guide"),
              ("2026-05-01", "2026-05-20", "week", "region"), ("2026-05-01", "2026-05-31", "month", "route"),
              ("2026-05-01", "2026-05-20", "week", "route")]
    for day_from, day_to, period, group in shapes * 2:
        fresh = [TourData.from_fields(t, f) for t, f in zip(tours, states, strict=True)]
        assert build_report(kept, day_from, day_to, period=period, group=group) == \
            build_report(fresh, day_from, day_to, period=period, group=group)
    assert all(len(t.memo) == 3 for t in kept)  # week to the 20th, days to the 9th, the month
