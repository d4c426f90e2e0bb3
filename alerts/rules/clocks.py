"""Pure time maths for deadlines: the daily prompt in each tour's own timezone, and ISO timestamps.

Like arq's cron maths, every function takes the time as an argument; the scheduler only triggers.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo


@lru_cache(maxsize=256)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def prompt_due(day: date, hour: int, tz: str) -> float:
    """Epoch seconds of ``hour``:00 local time on ``day`` in ``tz`` (DST included: wall-clock hour kept)."""
    return datetime.combine(day, time(hour), tzinfo=_zone(tz)).timestamp()


def local_date(ts: float, tz: str) -> date:
    return datetime.fromtimestamp(ts, _zone(tz)).date()


def next_prompt(tour: dict[str, Any], after: float, hour: int) -> tuple[str, float] | None:
    """The first tour day (``YYYY-MM-DD``) whose prompt is due at or after ``after``, with its due time.

    None once the last day's prompt is past. ``tour`` is the registration: ``start``, ``end`` (inclusive),
    ``timezone``.
    """
    tz = str(tour["timezone"])
    start = date.fromisoformat(str(tour["start"]))
    end = date.fromisoformat(str(tour["end"]))
    # start one day before the local date of `after`: its prompt may still be ahead for hours near midnight
    day = max(start, local_date(after, tz) - timedelta(days=1))
    while day <= end:
        due = prompt_due(day, hour, tz)
        if due >= after:
            return day.isoformat(), due
        day += timedelta(days=1)
    return None


@lru_cache(maxsize=1024)  # a watcher batch stamps every change with the same `now`: formatted once
def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``, like every timestamp of the contract."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
