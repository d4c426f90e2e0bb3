"""The desk's yardsticks (contract §10), pure: folded tour states in, figures out.

CSAT is the share of ratings of 4 or 5 (each traveller's kept rating of a day); NPS counts each traveller's latest
answer once per tour, in the period of the day it was given with; a complaint is handled when it was answered
within ``[targets] handling``. Figures are reported overall, per route and tour (v1), and per period (day, ISO week,
month) and group (route, region or guide: a tour counts for each of its guides), with the complaints' categories
per period; guides get scorecards and the best of them is the star. Alerts give MTTA and MTTR per kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgpack

from alerts.rules.classify import COMPLAINT, PRAISE, complaint_category, praised_staff
from alerts.rules.state import ComplaintTrack, TourState
from server.core.settings import TargetSettings
from server.storage.tours import Tour

PERIODS = ("day", "week", "month")
GROUPS = ("route", "region", "guide")
SATISFIED = 4  # a score of 4 or 5 counts as satisfied
PROMOTER, PASSIVE = 9, 7
MEMO_KEEP = 8  # report shapes (range, period) whose counts a tour keeps


# a rating as saved (``RatingRecord.pack``): a list, read by position here, because a 30-day report reads a
# hundred thousand of them and building a record for each would cost more than all the arithmetic
SCORE, AT, ASPECTS, NPS, COMMENT, CLASS = 0, 1, 3, 4, 5, 6
Row = tuple[Any, ...] | list[Any]


@dataclass(slots=True)
class TourData:
    """What a report reads of one tour: its kept ratings (as saved) and its complaint tracks."""

    tour: Tour
    ratings: list[tuple[str, Any, Row]] = field(default_factory=list)  # (day, traveller, the rating's row)
    complaints: list[ComplaintTrack] = field(default_factory=list)
    # this tour's figures per period of a report's range, by (from, to, period, handling): a web process that
    # keeps the parsed state (``server.web.api.reports.StateCache``) keeps these with it, so the next report over
    # the same range adds them up instead of counting the ratings again; never changed once made
    memo: dict[tuple[Any, ...], tuple[dict[int, Tally], dict[int, dict[str, int]]]] = field(default_factory=dict)

    @classmethod
    def from_state(cls, tour: Tour, state: TourState) -> TourData:
        return cls(tour, [(day, who, r.pack()) for day, ratings in state.days.items() for who, r in ratings.items()],
                   list(state.complaints.values()))

    @classmethod
    def from_fields(cls, tour: Tour, fields: Mapping[bytes, bytes]) -> TourData:
        """Straight from the state hash: only ratings and complaints, none of the fold's running sums."""
        data = cls(tour)
        ratings, unpack = data.ratings, msgpack.unpackb
        for name, blob in fields.items():
            prefix = name[:2]
            if prefix == b"r:":  # r:<YYYY-MM-DD>:<traveller>
                ratings.append((name[2:12].decode(), name[13:], unpack(blob, use_list=False)))
            elif prefix == b"c:":
                data.complaints.append(ComplaintTrack.unpack(unpack(blob, raw=False)))
        return data


class Tally:
    __slots__ = ("ratings", "satisfied", "promoters", "passives", "detractors", "complaints", "solved",
                 "handled", "praise", "guide_sum", "guide_n", "praise_guide", "praise_driver", "praise_hotel")

    def __init__(self) -> None:
        self.ratings = self.satisfied = self.promoters = self.passives = self.detractors = 0
        self.complaints = self.solved = self.handled = self.praise = self.guide_sum = self.guide_n = 0
        self.praise_guide = self.praise_driver = self.praise_hotel = 0

    def staff_praise(self, staff: tuple[str, ...]) -> None:
        """Praise that names staff goes to each one's tally (contract §10)."""
        self.praise_guide += "guide" in staff
        self.praise_driver += "driver" in staff
        self.praise_hotel += "hotel" in staff

    def rating(self, row: Row) -> None:
        self.ratings += 1
        self.satisfied += row[SCORE] >= SATISFIED
        if row[CLASS] == PRAISE:
            self.praise += 1
        aspects = row[ASPECTS]
        if aspects and "guide" in aspects:
            self.guide_sum += aspects["guide"]
            self.guide_n += 1

    def nps(self, answer: int) -> None:
        if answer >= PROMOTER:
            self.promoters += 1
        elif answer >= PASSIVE:
            self.passives += 1
        else:
            self.detractors += 1

    def complaint(self, track: ComplaintTrack, handling: float) -> None:
        self.complaints += 1
        if track.solved_at is not None:
            self.solved += 1
            self.handled += track.solved_at - track.opened_at <= handling

    def merge(self, other: Tally) -> None:
        for name in Tally.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def figures(self, targets: TargetSettings) -> dict[str, Any]:
        answers = self.promoters + self.passives + self.detractors
        csat = self.satisfied / self.ratings if self.ratings else None
        nps = 100.0 * (self.promoters - self.detractors) / answers if answers else None
        handled = self.handled / self.complaints if self.complaints else None
        return {
            "ratings": self.ratings,
            "csat": None if csat is None else round(csat, 3),
            "csat_met": None if csat is None else csat >= targets.csat,
            "nps": None if nps is None else round(nps, 1),
            "nps_answers": answers,
            "nps_met": None if nps is None else nps >= targets.nps,
            "complaints": self.complaints,
            "complaints_open": self.complaints - self.solved,
            "complaints_solved": self.solved,
            "handled_within_24h": None if handled is None else round(handled, 3),  # v1's name: within the target
            "handling_met": None if handled is None else handled >= 1.0,
            "praise": self.praise,
            "praise_staff": {"guide": self.praise_guide, "driver": self.praise_driver, "hotel": self.praise_hotel},
        }


def period_start(day: date, period: str) -> date:
    if period == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if period == "month":
        return day.replace(day=1)
    return day


def _period_end(start: date, period: str) -> date:
    if period == "week":
        return start + timedelta(days=6)
    if period == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return start


def period_bounds(day_from: date, day_to: date, period: str) -> list[tuple[date, date]]:
    """Every period touching [day_from, day_to], each clipped to it, in order."""
    out = []
    start = period_start(day_from, period)
    while start <= day_to:
        end = _period_end(start, period)
        out.append((max(start, day_from), min(end, day_to)))
        start = end + timedelta(days=1)
    return out


def _latest_answers(ratings: list[tuple[str, Any, Row]]) -> dict[Any, tuple[str, int, float]]:
    """Each traveller's latest NPS answer of the tour (by when it was given): (day, answer, at)."""
    latest: dict[Any, tuple[str, int, float]] = {}
    for day, who, row in ratings:
        answer = row[NPS]
        if answer is not None:
            held = latest.get(who)
            if held is None or row[AT] > held[2]:
                latest[who] = (day, answer, row[AT])
    return latest


def build_report(tours: Iterable[TourData | tuple[Tour, TourState]], day_from: str | None = None,
                 day_to: str | None = None, *, period: str = "day", group: str = "route",
                 targets: TargetSettings | None = None) -> dict[str, Any]:
    """v1's ``total``, ``routes`` and ``tours``, and §10's ``periods``; ``None`` bounds take every day there is."""
    targets = targets or TargetSettings()
    data = [t if isinstance(t, TourData) else TourData.from_state(*t) for t in tours]

    def within(day: str | None) -> bool:
        return day is not None and (day_from is None or day >= day_from) and (day_to is None or day <= day_to)

    days = [] if day_from and day_to else [d for t in data for d, _w, _r in t.ratings if within(d)]
    first = date.fromisoformat(day_from) if day_from else (date.fromisoformat(min(days)) if days else None)
    last = date.fromisoformat(day_to) if day_to else (date.fromisoformat(max(days)) if days else None)
    bounds = period_bounds(first, last, period) if first and last and first <= last else []
    index = {period_start(start, period).isoformat(): n for n, (start, _end) in enumerate(bounds)}  # unclipped
    slots: list[dict[str, Tally]] = [{} for _ in bounds]
    categories: list[dict[str, int]] = [{} for _ in bounds]
    slot_of: dict[str, int] = {}  # day -> its period's index (a day recurs across tours)

    def slot(day: str) -> int:
        n = slot_of.get(day)
        if n is None:
            n = slot_of[day] = index[period_start(date.fromisoformat(day), period).isoformat()]
        return n

    seen_categories: dict[tuple[Any, ...], str] = {}  # travellers repeat each other ("太累了"): read each once

    def category_of(comment: str | None, aspects: Mapping[str, int] | None) -> str:
        key = (comment, *sorted(aspects.items())) if aspects else (comment,)
        found = seen_categories.get(key)
        if found is None:
            found = seen_categories[key] = complaint_category(comment, aspects)
        return found

    seen_staff: dict[str | None, tuple[str, ...]] = {}

    def staff_of(comment: str | None) -> tuple[str, ...]:
        found = seen_staff.get(comment)
        if found is None:
            found = seen_staff[comment] = praised_staff(comment)
        return found

    def count(t: TourData) -> tuple[dict[int, Tally], dict[int, dict[str, int]]]:
        """The tour's figures per period (added to its groups once each) and its complaints' categories."""
        kept = [r for r in t.ratings if within(r[0])]
        by_slot: dict[int, Tally] = {}
        cats: dict[int, dict[str, int]] = {}
        for day, _who, row in kept:
            n = slot_of.get(day)
            if n is None:
                n = slot(day)
            tally = by_slot.get(n)
            if tally is None:
                tally = by_slot[n] = Tally()
            tally.rating(row)
            if row[CLASS] == COMPLAINT:
                category = category_of(row[COMMENT], row[ASPECTS])
                mine = cats.setdefault(n, {})
                mine[category] = mine.get(category, 0) + 1
            elif row[CLASS] == PRAISE:
                tally.staff_praise(staff_of(row[COMMENT]))
        for day, answer, _at in _latest_answers(kept).values():
            by_slot.setdefault(slot(day), Tally()).nps(answer)
        for track in t.complaints:
            if within(track.day):
                assert track.day is not None
                by_slot.setdefault(slot(track.day), Tally()).complaint(track, targets.handling)
        return by_slot, cats

    # the same range and periods give the same slots: a tour's counts can be kept for the next such report
    memo_key = (day_from, day_to, period, targets.handling) if day_from and day_to else None
    total, by_route, per_tour = Tally(), {}, []
    for t in data:
        tour = t.tour
        names = list(tour.guides) if group == "guide" else [tour.route if group == "route" else tour.region]
        counted = t.memo.get(memo_key) if memo_key is not None else None
        if counted is None:
            counted = count(t)
            if memo_key is not None:
                if len(t.memo) >= MEMO_KEEP:
                    t.memo.clear()
                t.memo[memo_key] = counted
        by_slot, cats = counted
        for n, mine_cats in cats.items():
            into = categories[n]
            for category, k in mine_cats.items():
                into[category] = into.get(category, 0) + k
        mine = Tally()
        for n, tally in by_slot.items():
            mine.merge(tally)
            for name in names:
                slots[n].setdefault(name, Tally()).merge(tally)
        total.merge(mine)
        by_route.setdefault(tour.route, Tally()).merge(mine)
        per_tour.append({"tour_id": tour.tour_id, "route": tour.route, "region": tour.region,
                         **mine.figures(targets)})
    return {
        "targets": {"csat": targets.csat, "nps": targets.nps, "handling_s": targets.handling,
                    "complaints_handled_within_h": round(targets.handling / 3600, 3)},
        "from": day_from, "to": day_to, "period": period, "group": group,
        "total": total.figures(targets),
        "routes": {route: tally.figures(targets) for route, tally in sorted(by_route.items())},
        "tours": per_tour,
        "periods": [{"start": start.isoformat(), "end": end.isoformat(),
                     "groups": {name: tally.figures(targets) for name, tally in sorted(slots[n].items())},
                     "categories": dict(sorted(categories[n].items()))}
                    for n, (start, end) in enumerate(bounds)],
    }


def guide_scorecards(tours: Iterable[TourData], day_from: str, day_to: str, targets: TargetSettings,
                     min_ratings: int) -> dict[str, Any]:
    """Per guide: ratings, CSAT, NPS, complaints, praise (naming the guide), response rate (ratings per traveller
    and tour-day in the range) and the mean of the guide aspect; the star has the best CSAT of those with at least
    ``min_ratings`` ratings (ties: the guide aspect, then more ratings, then the id)."""
    first, last = date.fromisoformat(day_from), date.fromisoformat(day_to)
    tallies: dict[str, Tally] = {}
    expected: dict[str, int] = {}
    for t in tours:
        tour = t.tour
        span = (min(tour.end, last) - max(tour.start, first)).days + 1
        for guide in tour.guides:
            tally = tallies.setdefault(guide, Tally())
            expected[guide] = expected.get(guide, 0) + max(0, span) * tour.travellers
            for day, _who, row in t.ratings:
                if day_from <= day <= day_to:
                    tally.rating(row)
                    if row[CLASS] == PRAISE and "guide" not in praised_staff(row[COMMENT]):
                        tally.praise -= 1  # praise of the hotel or the coach is not this guide's
            for _day, answer, _at in _latest_answers([r for r in t.ratings if day_from <= r[0] <= day_to]).values():
                tally.nps(answer)
            for track in t.complaints:
                if track.day is not None and day_from <= track.day <= day_to:
                    tally.complaint(track, targets.handling)
    guides = []
    for guide, tally in sorted(tallies.items()):
        figures = tally.figures(targets)
        guides.append({
            "guide": guide, "ratings": tally.ratings, "csat": figures["csat"], "nps": figures["nps"],
            "complaints": tally.complaints, "praise": tally.praise,
            "response_rate": round(tally.ratings / expected[guide], 3) if expected.get(guide) else None,
            "guide_aspect_mean": round(tally.guide_sum / tally.guide_n, 2) if tally.guide_n else None,
        })
    ranked = sorted((g for g in guides if g["ratings"] >= min_ratings and g["csat"] is not None),
                    key=lambda g: (-g["csat"], -(g["guide_aspect_mean"] or 0.0), -g["ratings"], g["guide"]))
    return {"guides": guides, "star": ranked[0]["guide"] if ranked else None, "from": day_from, "to": day_to}


def _epoch(text: str | None) -> float | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _opened_day(opened: float | None, zone: str | None) -> str:
    if opened is None:
        return ""
    return datetime.fromtimestamp(opened, ZoneInfo(zone) if zone else UTC).date().isoformat()


def alert_times(alerts: Iterable[Mapping[str, Any]], day_from: str | None, day_to: str | None,
                zones: Mapping[str, str] | None = None) -> dict[str, Any]:
    """MTTA and MTTR per alert kind, in seconds, over the alerts opened in the range (a resolve without an ack
    acknowledged it then). An alert's day is its tour's date where the tour is (``zones``: tour id -> timezone),
    like every other day of a report; an alert of no known tour is dated in UTC."""
    out: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        opened = _epoch(alert.get("opened_at"))
        day = _opened_day(opened, (zones or {}).get(str(alert.get("tour_id"))))
        if (day_from and day < day_from) or (day_to and day > day_to):
            continue
        acked, resolved = _epoch(alert.get("acked_at")), _epoch(alert.get("resolved_at"))
        row = out.setdefault(str(alert.get("kind")), {"count": 0, "acked": [], "resolved": []})
        row["count"] += 1
        if opened is not None and (acked or resolved) is not None:
            row["acked"].append(min(x for x in (acked, resolved) if x is not None) - opened)
        if opened is not None and resolved is not None:
            row["resolved"].append(resolved - opened)
    return {kind: {"count": row["count"], "acknowledged": len(row["acked"]), "resolved": len(row["resolved"]),
                   "mtta_s": round(sum(row["acked"]) / len(row["acked"]), 1) if row["acked"] else None,
                   "mttr_s": round(sum(row["resolved"]) / len(row["resolved"]), 1) if row["resolved"] else None}
            for kind, row in sorted(out.items())}
