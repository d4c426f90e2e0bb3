"""The category-share rule (contract §10), pure: which categories a rating counts toward its route's complaints,
and which categories' shares of the trailing window call for action.

A complaint counts toward its category; every aspect rated 1 or 2 counts once toward its own category too (the
meal a traveller scored 2 is a complaint about meals, words or not), but a low aspect on a rating that is not a
complaint opens nothing by itself: only a counted complaint asks for a judgement. Each judgement looks at every
category of the route's trailing ``[rules] category_window``, once the route has ``category_min_complaints``
counted in it; each category above ``category_share`` of them opens (or updates) its own alert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, timedelta
from functools import lru_cache

from alerts.rules.classify import ASPECT_CATEGORY
from alerts.rules.effects import UpsertAlert
from server.core.settings import RuleSettings

LOW_ASPECT = 2  # an aspect scored this or less counts as a complaint about it


def counted_categories(complaint: str | None, aspects: Mapping[str, int] | None) -> tuple[str, ...]:
    """The categories one rating counts, each once: its complaint's category (None: not a complaint), then the
    categories of its aspects rated 1 or 2, in the aspects' order."""
    out = [] if complaint is None else [complaint]
    for name, category in ASPECT_CATEGORY.items():
        if aspects and aspects.get(name, LOW_ASPECT + 1) <= LOW_ASPECT and category not in out:
            out.append(category)
    return tuple(out)


def category_window_days(rules: RuleSettings) -> int:
    """The window in whole days (a route's complaints are counted in UTC-day buckets)."""
    return max(1, math.ceil(rules.category_window / 86400 - 1e-9))


def window_days(days: int, end: str) -> list[str]:
    """The ``days`` UTC dates ending on ``end`` (``YYYY-MM-DD``), oldest first."""
    last = date.fromisoformat(end)
    return [(last - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


@lru_cache(maxsize=64)  # one end day (today) per watcher most of the time
def window_start(days: int, end: str) -> str:
    """The first UTC date of the ``days`` ending on ``end``."""
    return (date.fromisoformat(end) - timedelta(days=days - 1)).isoformat()


def category_share_alerts(route: str, region: str, counts: Mapping[str, int], rules: RuleSettings,
                          window_days: int, counted: tuple[str, ...] | None = None) -> list[UpsertAlert]:
    """Every category above its share of the route's complaints in the window, once there are enough of them.

    ``counts`` include this complaint's ``counted`` categories (None: judge every category afresh). A category
    above the line that this complaint did not count, and that was above it before this complaint too, already
    fired then (its alert is open, or a person closed it): it is left alone, so a busy route's judgement upserts
    what changed, not every flagged category at every complaint (docs/performance.md). It fires again at its own
    next complaint."""
    total = sum(counts.values())
    if total < rules.category_min_complaints:
        return []
    before = total - len(counted or ())
    out = []
    for category, count in sorted(counts.items()):
        share = count / total
        if share <= rules.category_share:
            continue
        if counted is not None and category not in counted and before >= rules.category_min_complaints \
                and count / before > rules.category_share:
            continue  # flagged before this complaint already
        out.append(UpsertAlert(
            kind="category_share", dedup_key=f"category_share:{route}:{category}", severity="medium",
            region=region, tour_id=None, escalate=False,
            summary=f"{category} is {share:.0%} of route {route}'s complaints over {window_days} days",
            details={"route": route, "category": category, "share": round(share, 3), "complaints": total,
                     "counts": dict(sorted(counts.items())), "window_days": window_days,
                     "threshold": rules.category_share}))
    return out
