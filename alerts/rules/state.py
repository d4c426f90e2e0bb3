"""One tour's folded state: its registration, ratings per tour-day, incidents and tracked complaints.

The consumer keeps one ``TourState`` per tour while it holds the tour's shard and saves what changed
(``take_changes``) at each flush: one hash field per rating and per complaint track, so a save costs what the
batch changed, not the size of the trip. Ratings are kept one per traveller per tour-day; each day also keeps
running sums (``DayAgg``) so a rating costs O(1) however many travellers rated before it. The sums are derived
data: they are not saved but rebuilt from the ratings on load, so they can never drift from what they summarise.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from alerts.rules.clocks import iso
from alerts.rules.crisis import CrisisState, is_crisis_field
from alerts.rules.stats import below_probability, upper_bound
from guide_app_api.codec import packb, unpackb

VERSION = 2  # 1 kept a day's ratings, and all complaints, in one field each

NPS_PROMOTER = 9  # 9-10 promoters, 7-8 passives, 0-6 detractors: the usual Net Promoter buckets
NPS_PASSIVE = 7


def _iso_or_none(ts: float | None) -> str | None:
    return None if ts is None else iso(ts)


@dataclass(slots=True)
class RatingRecord:
    """A traveller's latest rating of one tour-day."""

    score: int
    at: float
    seq: str
    aspects: dict[str, int] | None = None
    nps: int | None = None
    comment: str | None = None
    comment_class: str | None = None  # complaint | suggestion | praise | None (no comment)
    urgent: tuple[str, ...] = ()  # the urgent keywords its comment matched

    def pack(self) -> list[Any]:
        return [self.score, self.at, self.seq, self.aspects, self.nps, self.comment, self.comment_class,
                list(self.urgent)]

    @classmethod
    def unpack(cls, row: list[Any]) -> RatingRecord:
        score, at, seq, aspects, nps, comment, comment_class, urgent = row
        return cls(score, at, seq, aspects, nps, comment, comment_class, tuple(urgent))


@dataclass(slots=True)
class IncidentState:
    kind: str
    severity: str
    opened_at: float
    guide: str | None = None
    summary: str = ""
    status: str = "open"  # open | in_progress | resolved
    needs: tuple[str, ...] | None = None
    travellers_affected: int | None = None
    location: dict[str, float] | None = None
    alternatives: list[str] = field(default_factory=list)  # distinct, in the order offered
    alternatives_proof_at: float | None = None  # `at` of the update that brought the distinct count to >= 3
    updates: int = 0
    resolved_at: float | None = None
    breached: bool = False  # its attraction_alternatives deadline fired with no proof by then

    def pack(self) -> list[Any]:
        return [self.kind, self.severity, self.opened_at, self.guide, self.summary, self.status,
                list(self.needs) if self.needs is not None else None, self.travellers_affected, self.location,
                self.alternatives, self.alternatives_proof_at, self.updates, self.resolved_at, self.breached]

    @classmethod
    def unpack(cls, row: list[Any]) -> IncidentState:
        (kind, severity, opened_at, guide, summary, status, needs, affected, location, alternatives,
         proof_at, updates, resolved_at, breached) = row
        return cls(kind, severity, opened_at, guide, summary, status,
                   tuple(needs) if needs is not None else None, affected, location, list(alternatives),
                   proof_at, updates, resolved_at, breached)

    def public(self, incident_id: str) -> dict[str, Any]:
        """The incident as the guides' phones see it (IncidentChanged): times in ISO 8601 UTC."""
        return {
            "incident_id": incident_id, "kind": self.kind, "severity": self.severity, "status": self.status,
            "summary": self.summary, "guide": self.guide, "opened_at": iso(self.opened_at),
            "needs": list(self.needs) if self.needs is not None else None,
            "travellers_affected": self.travellers_affected, "location": self.location,
            "alternatives": list(self.alternatives),
            "alternatives_proof_at": _iso_or_none(self.alternatives_proof_at),
            "updates": self.updates, "resolved_at": _iso_or_none(self.resolved_at),
        }


@dataclass(slots=True)
class ComplaintTrack:
    """A complaint whose handling is on the clock, keyed by its alert's dedup key."""

    kind: str  # urgent | normal
    opened_at: float
    traveller: str | None = None  # None for a complaint a guide reported as an incident
    day: str | None = None
    solved_at: float | None = None
    followed_up_at: float | None = None
    resolved_note: str | None = None
    reopens: str | None = None  # the dedup key of the earlier, closed complaint this one reopens
    # contract §10: the follow-up question went out with the answer; the answer (the traveller's reply, or a
    # supervisor's telephone call) is `followed_up_at`, which meets the follow-up clock
    followup_sent_at: float | None = None
    satisfied: bool | None = None  # the latest follow-up answer
    answered_at: float | None = None  # `at` of that latest answer
    reopen_count: int = 0  # how many times this complaint was opened again before this track
    reopened_by: str | None = None  # the track an unsatisfied answer opened (once)
    incident_id: str | None = None  # a guide-reported conflict or complaint

    @property
    def closed(self) -> bool:
        """Solved, and for an urgent complaint followed up too: a new complaint is a new track."""
        if self.kind == "urgent":
            return self.solved_at is not None and self.followed_up_at is not None
        return self.solved_at is not None

    def pack(self) -> list[Any]:
        return [self.kind, self.opened_at, self.traveller, self.day, self.solved_at, self.followed_up_at,
                self.resolved_note, self.reopens, self.followup_sent_at, self.satisfied, self.answered_at,
                self.reopen_count, self.reopened_by, self.incident_id]

    @classmethod
    def unpack(cls, row: list[Any]) -> ComplaintTrack:
        return cls(*row)  # a track saved before §10 has the first eight fields; the rest keep their defaults


@dataclass(slots=True)
class DayAgg:
    """Running sums over the latest rating of each traveller of one tour-day."""

    n: int = 0
    total: int = 0
    squares: int = 0
    aspect_sums: dict[str, int] = field(default_factory=dict)
    aspect_counts: dict[str, int] = field(default_factory=dict)
    nps: list[int] = field(default_factory=lambda: [0, 0, 0])  # promoters, passives, detractors

    def add(self, r: RatingRecord, sign: int = 1) -> None:
        self.n += sign
        self.total += sign * r.score
        self.squares += sign * r.score * r.score
        if r.aspects:
            for name, value in r.aspects.items():
                self.aspect_sums[name] = self.aspect_sums.get(name, 0) + sign * value
                self.aspect_counts[name] = self.aspect_counts.get(name, 0) + sign
        if r.nps is not None:
            bucket = 0 if r.nps >= NPS_PROMOTER else 1 if r.nps >= NPS_PASSIVE else 2
            self.nps[bucket] += sign

    def remove(self, r: RatingRecord) -> None:
        self.add(r, -1)

    @property
    def mean(self) -> float | None:
        return self.total / self.n if self.n else None

    @property
    def stdev(self) -> float:
        """Sample standard deviation (n - 1); 0.0 below two ratings."""
        if self.n < 2:
            return 0.0
        mean = self.total / self.n
        return math.sqrt(max(0.0, (self.squares - self.n * mean * mean) / (self.n - 1)))


@dataclass(frozen=True, slots=True)
class DayStats:
    count: int
    mean: float | None
    stdev: float
    aspect_means: dict[str, float]
    response_rate: float | None
    nps: tuple[int, int, int]  # promoters, passives, detractors

    def upper_bound(self, confidence: float = 0.9) -> float:
        return upper_bound(self.mean or 0.0, self.stdev, self.count, confidence)

    def below_probability(self, threshold: float) -> float:
        return below_probability(self.mean or 0.0, self.stdev, self.count, threshold)


@dataclass(slots=True)
class TourState:
    tour: dict[str, Any] | None = None
    last_seq: str = "0-0"
    days: dict[str, dict[str, RatingRecord]] = field(default_factory=dict)
    incidents: dict[str, IncidentState] = field(default_factory=dict)
    complaints: dict[str, ComplaintTrack] = field(default_factory=dict)
    # traveller -> dedup key of their latest urgent complaint (to tell a re-opened complaint from a first one)
    urgent_latest: dict[str, str] = field(default_factory=dict)
    # derived from `days` and not saved: running sums per day, and the days in order
    aggs: dict[str, DayAgg] = field(default_factory=dict)
    day_order: list[str] = field(default_factory=list)
    # §11: people, safety checks and their answers, choices on notices (alerts/rules/crisis.py)
    crisis: CrisisState = field(default_factory=CrisisState)
    # the rating and complaint fields changed since the last save (`take_changes`), and fields of an older layout
    # for that save to delete; neither is part of the state
    touched: set[str] = field(default_factory=set, compare=False)
    stale_fields: list[str] = field(default_factory=list, compare=False)

    @classmethod
    def new(cls) -> TourState:
        return cls()

    # --- the fold's writes: each marks its field for the next save ------------------------------------------
    def put_rating(self, day: str, traveller: str, record: RatingRecord) -> None:
        """``record`` becomes the traveller's rating of ``day``, and the day's sums follow."""
        ratings = self.days.get(day)
        if ratings is None:
            ratings = self.days[day] = {}
            self.aggs[day] = DayAgg()
            insort(self.day_order, day)
        agg = self.aggs[day]
        previous = ratings.get(traveller)
        if previous is not None:
            agg.remove(previous)
        ratings[traveller] = record
        agg.add(record)
        self.touched.add(f"r:{day}:{traveller}")

    def put_complaint(self, key: str, track: ComplaintTrack) -> None:
        self.complaints[key] = track
        self.touched.add(f"c:{key}")

    def complaint_changed(self, key: str) -> None:
        self.touched.add(f"c:{key}")

    def previous_day(self, day: str, min_ratings: int) -> str | None:
        """The most recent day before ``day`` with at least ``min_ratings`` ratings (ISO dates sort as text)."""
        for index in range(bisect_left(self.day_order, day) - 1, -1, -1):
            earlier = self.day_order[index]
            if self.aggs[earlier].n >= min_ratings:
                return earlier
        return None

    # --- storage: one hash per tour -------------------------------------------------------------------------
    def to_fields(self, names: Iterable[str] | None = None) -> dict[str, bytes]:
        """The state as hash fields: ``m`` (registration, last seq, incidents), ``r:<day>:<traveller>`` per rating
        and ``c:<dedup key>`` per complaint track; ``names`` limits the records to those (all when None), so a
        save writes what changed, not the whole trip."""
        meta = {"v": VERSION, "tour": self.tour, "last": self.last_seq,
                "inc": {iid: inc.pack() for iid, inc in self.incidents.items()}, "ul": self.urgent_latest}
        fields = {"m": packb(meta)}
        if names is None:
            names = [f"r:{day}:{who}" for day, ratings in self.days.items() for who in ratings]
            names += [f"c:{key}" for key in self.complaints]
            names += self.crisis.names()
        for name in names:
            if is_crisis_field(name):
                fields[name] = self.crisis.field_value(name)
            elif name[0] == "r":
                _, day, who = name.split(":", 2)
                fields[name] = packb(self.days[day][who].pack())
            else:
                fields[name] = packb(self.complaints[name[2:]].pack())
        return fields

    def take_changes(self) -> dict[str, bytes]:
        """The fields to save now: ``m`` and every record changed since the last call."""
        fields = self.to_fields(self.touched)
        self.touched.clear()
        return fields

    def take_stale_fields(self) -> list[str]:
        """The fields of an older layout the next save deletes (it writes their content anew)."""
        stale, self.stale_fields = self.stale_fields, []
        return stale

    @classmethod
    def from_fields(cls, fields: Mapping[bytes | str, bytes]) -> TourState:
        """The inverse of :meth:`to_fields`; an empty mapping is a new state."""
        text = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
        if "m" not in text:
            return cls.new()
        meta = unpackb(text["m"])
        version = meta.get("v") if isinstance(meta, dict) else None
        if version not in (1, VERSION):
            raise ValueError(f"unsupported tour state version: {version!r}")
        state = cls(tour=meta["tour"], last_seq=meta["last"], urgent_latest=dict(meta["ul"]))
        state.incidents = {iid: IncidentState.unpack(row) for iid, row in meta["inc"].items()}
        if version == 1:  # a day per field, complaints in the meta: read, and written anew at the next save
            for name, blob in text.items():
                if name.startswith("d:"):
                    rows = unpackb(blob)
                    state.days[name[2:]] = {who: RatingRecord.unpack(row) for who, row in rows.items()}
                    state.stale_fields.append(name)
            state.complaints = {key: ComplaintTrack.unpack(row) for key, row in meta["cmp"].items()}
            state.touched = {f"r:{day}:{who}" for day, ratings in state.days.items() for who in ratings}
            state.touched |= {f"c:{key}" for key in state.complaints}
        for name, blob in text.items():
            if name.startswith("r:"):
                _, day, who = name.split(":", 2)
                state.days.setdefault(day, {})[who] = RatingRecord.unpack(unpackb(blob))
            elif name.startswith("c:"):
                state.complaints[name[2:]] = ComplaintTrack.unpack(unpackb(blob))
            elif is_crisis_field(name):
                state.crisis.load(name, blob)
        state.day_order = sorted(state.days)
        for day in state.day_order:
            agg = state.aggs[day] = DayAgg()
            for record in state.days[day].values():
                agg.add(record)
        return state


def day_stats(state: TourState, day: str) -> DayStats:
    """The tour-day's scores over each traveller's latest rating, from the running sums."""
    agg = state.aggs.get(day) or DayAgg()
    travellers = (state.tour or {}).get("travellers")
    return DayStats(
        count=agg.n,
        mean=agg.mean,
        stdev=agg.stdev,
        aspect_means={name: agg.aspect_sums[name] / count
                      for name, count in sorted(agg.aspect_counts.items()) if count > 0},
        response_rate=agg.n / travellers if isinstance(travellers, int) and travellers > 0 else None,
        nps=(agg.nps[0], agg.nps[1], agg.nps[2]),
    )


def region_of(state: TourState, event: dict[str, Any]) -> str:
    """The desk that watches the tour: from its registration (an event may carry it before that arrives)."""
    return str((state.tour or {}).get("region") or event.get("region") or "")
