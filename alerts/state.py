"""One tour's folded state: its registration, ratings per tour-day, incidents and tracked complaints.

The consumer keeps one ``TourState`` per tour while it holds the tour's shard and saves it (``to_fields``)
after each batch. Ratings are kept one per traveller per tour-day; each day also keeps running sums
(``DayAgg``) so a rating costs O(1) however many travellers rated before it. The sums are derived data:
they are not saved but rebuilt from the ratings on load, so they can never drift from what they summarise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from alerts.clocks import iso
from alerts.stats import below_probability, upper_bound

VERSION = 1

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

    @property
    def closed(self) -> bool:
        """Solved, and for an urgent complaint followed up too: a new complaint is a new track."""
        if self.kind == "urgent":
            return self.solved_at is not None and self.followed_up_at is not None
        return self.solved_at is not None

    def pack(self) -> list[Any]:
        return [self.kind, self.opened_at, self.traveller, self.day, self.solved_at, self.followed_up_at,
                self.resolved_note, self.reopens]

    @classmethod
    def unpack(cls, row: list[Any]) -> ComplaintTrack:
        return cls(*row)


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
    aggs: dict[str, DayAgg] = field(default_factory=dict)  # derived from `days`; not saved

    @classmethod
    def new(cls) -> TourState:
        return cls()

    def to_bytes(self) -> bytes:
        doc = {
            "v": VERSION, "tour": self.tour, "last": self.last_seq,
            "days": {day: {who: r.pack() for who, r in ratings.items()}
                     for day, ratings in self.days.items()},
            "inc": {iid: inc.pack() for iid, inc in self.incidents.items()},
            "cmp": {key: track.pack() for key, track in self.complaints.items()},
            "ul": self.urgent_latest,
        }
        return msgpack.packb(doc, use_bin_type=True)

    def to_fields(self, days: Iterable[str] | None = None) -> dict[str, bytes]:
        """The state as hash fields: ``m`` (everything but the ratings) and one ``d:<day>`` per day, so a save
        writes only the days that changed (``days``; every day when None) instead of the whole trip."""
        meta = {"v": VERSION, "tour": self.tour, "last": self.last_seq,
                "inc": {iid: inc.pack() for iid, inc in self.incidents.items()},
                "cmp": {key: track.pack() for key, track in self.complaints.items()}, "ul": self.urgent_latest}
        fields = {"m": msgpack.packb(meta, use_bin_type=True)}
        for day in self.days if days is None else days:
            ratings = self.days.get(day)
            if ratings is not None:
                fields[f"d:{day}"] = msgpack.packb({who: r.pack() for who, r in ratings.items()}, use_bin_type=True)
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[bytes | str, bytes]) -> TourState:
        """The inverse of :meth:`to_fields`; an empty mapping is a new state."""
        text = {k.decode() if isinstance(k, bytes) else k: v for k, v in fields.items()}
        if "m" not in text:
            return cls.new()
        meta = msgpack.unpackb(text["m"], raw=False, strict_map_key=False)
        days = {name[2:]: msgpack.unpackb(blob, raw=False, strict_map_key=False)
                for name, blob in text.items() if name.startswith("d:")}
        return cls.from_bytes(msgpack.packb({**meta, "days": days}, use_bin_type=True))

    @classmethod
    def from_bytes(cls, blob: bytes) -> TourState:
        doc = msgpack.unpackb(blob, raw=False, strict_map_key=False)
        version = doc.get("v") if isinstance(doc, dict) else None
        if version != VERSION:
            raise ValueError(f"unsupported tour state version: {version!r}")
        state = cls(tour=doc["tour"], last_seq=doc["last"], urgent_latest=dict(doc["ul"]))
        for day, ratings in doc["days"].items():
            records = {who: RatingRecord.unpack(row) for who, row in ratings.items()}
            state.days[day] = records
            agg = state.aggs[day] = DayAgg()
            for record in records.values():
                agg.add(record)
        state.incidents = {iid: IncidentState.unpack(row) for iid, row in doc["inc"].items()}
        state.complaints = {key: ComplaintTrack.unpack(row) for key, row in doc["cmp"].items()}
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
