"""Who is paged, when, and what happens to a page that failed: pure functions of (alert, notify settings, now).

- :func:`on_duty`: a person's duty hours, in their own time zone (a span may wrap past midnight).
- :func:`level_people`: the people of a region's rota (its own, else ``*``) at escalation level n; levels beyond the
  last repeat the last; a level whose people are all off duty passes to the next at once.
- :func:`pages_for`: the pages an alert as it is now calls for, each with its identity (alert, level, person,
  channel). The watcher writes one job per identity and never a second one, so asking again after every change of
  the alert is harmless: a page is decided by state, not by which change was seen.
- :func:`next_attempt`: after a failed attempt, when to try again, or to give up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from server.core.notify_config import SEVERITIES, NotifySettings, Person

# a receiver that answers 4xx (bad URL, revoked robot) is tried this many times in all, not for the whole hour;
# 408 and 429 say "later", and count as temporary
CLIENT_ERROR_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Page:
    alert_id: str
    level: int        # the alert's escalation level the page is for (its identity)
    person: str
    channel: str      # email | webhook
    reason: str       # rota | assign
    rota_level: int   # the rota level whose people were paged (after skipping levels off duty)

    @property
    def job_id(self) -> str:
        return f"{self.alert_id}:{self.level}:{self.person}:{self.channel}"


def on_duty(person: Person, now: float) -> bool:
    if person.hours is None:
        return True
    local = dt.datetime.fromtimestamp(now, ZoneInfo(person.timezone))
    minute = local.hour * 60 + local.minute
    start, end = person.hours
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end  # e.g. 22:00-06:00


def rota_of(notify: NotifySettings, region: str) -> tuple[tuple[str, ...], ...]:
    return notify.rotas.get(region) or notify.rotas.get("*") or ()


def level_people(notify: NotifySettings, region: str, level: int, now: float) -> tuple[int, tuple[Person, ...]]:
    """(the rota level paged, its people on duty) for escalation level ``level``; ``()`` when nobody from there
    up to the last level is on duty."""
    levels = rota_of(notify, region)
    if not levels:
        return level, ()
    first = min(max(level, 0), len(levels) - 1)
    for index in range(first, len(levels)):
        people = tuple(notify.people[pid] for pid in levels[index] if on_duty(notify.people[pid], now))
        if people:
            return index, people
    return first, ()


def severe_enough(severity: str, notify: NotifySettings) -> bool:
    return severity in SEVERITIES and SEVERITIES.index(severity) >= SEVERITIES.index(notify.min_severity)


def pages_for(alert: Mapping[str, Any], notify: NotifySettings, now: float) -> list[Page]:
    """The pages the alert calls for now: its level's people while it is open and severe enough, and its assignee
    (when that names a person) while it is not resolved."""
    if not notify.enabled:
        return []
    alert_id, status = str(alert["alert_id"]), alert.get("status")
    level = int(alert.get("escalation_level") or 0)
    pages: dict[str, Page] = {}
    if status == "open" and severe_enough(str(alert.get("severity")), notify):
        rota_level, people = level_people(notify, str(alert.get("region")), level, now)
        for person in people:
            for channel in person.channels:
                page = Page(alert_id, level, person.id, channel, "rota", rota_level)
                pages.setdefault(page.job_id, page)
    assignee = alert.get("assignee")
    if status in ("open", "acknowledged") and isinstance(assignee, str) and assignee in notify.people:
        person = notify.people[assignee]
        if on_duty(person, now):
            for channel in person.channels:
                page = Page(alert_id, level, person.id, channel, "assign", level)
                pages.setdefault(page.job_id, page)
    return list(pages.values())


def still_wanted(reason: str, status: str | None) -> bool:
    """Whether a queued page should still go out to an alert now in ``status``: a rota page stops once someone
    acknowledged; an assignment's page once the alert is resolved."""
    if reason == "rota":
        return status == "open"
    return status in ("open", "acknowledged")


def next_attempt(outcome: str, attempts: int, queued_at: float, now: float, notify: NotifySettings,
                 status: int | None = None) -> float | None:
    """When to try a page again after a failed attempt (``outcome`` ``temporary`` or ``permanent``), or None to
    give up: exponential backoff from ``notify.backoff`` up to ``backoff_max``, for ``retry_for`` after queueing."""
    if outcome == "permanent" and attempts >= CLIENT_ERROR_ATTEMPTS:
        return None
    delay = min(notify.backoff * 2 ** max(attempts - 1, 0), notify.backoff_max)
    due = now + delay
    if due > queued_at + notify.retry_for:
        return None
    return due


def classify_status(status: int) -> str:
    """An HTTP answer as ``sent``, ``temporary`` (5xx, 408, 429) or ``permanent`` (other 4xx)."""
    if 200 <= status < 300:
        return "sent"
    if status in (408, 425, 429) or status >= 500:
        return "temporary"
    return "permanent"
