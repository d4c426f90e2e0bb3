"""A believable day on the road, made from a seed: tours, people, pool resources, and who sends what when.

Pure: no I/O, no clock (``now`` is an argument), one ``random.Random`` per concern so that the world and the
actions are each a function of the seed alone. ``server.tools.simulate`` turns the actions into real WebSocket
frames; the benchmark reuses them for realistic message content.

The shape follows the operators' description of a day: tours started two days ago (in their own timezone)
and end in three; most tours are good (scores 4-5), about one in ten turns bad (today below 4, or a drop of
more than a point); comments in Chinese and English; incidents of every kind, weather ones in bursts per
region.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from guide_app_api.messages import POOL_KINDS as RESOURCE_KINDS
from server.tools import phrases

REGIONS: tuple[str, ...] = (
    "yunnan", "sichuan", "guangxi", "xinjiang", "tibet", "gansu", "hainan", "zhejiang", "fujian", "shaanxi",
)
ROUTES: dict[str, tuple[str, ...]] = {
    "yunnan": ("Yunnan 6 days", "Lijiang & Shangri-La 6 days"),
    "sichuan": ("Chengdu & Jiuzhaigou 6 days", "Sichuan pandas 6 days"),
    "guangxi": ("Guilin & Yangshuo 6 days",),
    "xinjiang": ("Silk Road Xinjiang 6 days", "Kanas & Altai 6 days"),
    "Europe/Paris": ("France & Switzerland 6 days",),
    "Asia/Tokyo": ("Tokyo & Kyoto 6 days",),
}
TIMEZONES: tuple[tuple[str, float], ...] = (
    ("Asia/Shanghai", 0.8), ("Europe/Paris", 0.1), ("Asia/Tokyo", 0.1),
)
DAYS_BEFORE, DAYS_AFTER = 2, 3  # started two days ago, ends in three: a 6-day tour on its third day
# per resource kind: how many per region, capacity range (seats, rooms, beds, people)
_POOL_MIX: dict[str, tuple[int, tuple[int, int]]] = {
    "vehicle": (3, (20, 50)), "lodging": (2, (10, 40)), "medical": (2, (2, 10)), "guide": (1, (1, 1)),
    "interpreter": (1, (1, 1)),
}
# the world's pool, one entry per kind of the one list (a kind added there without a mix here fails at import)
POOL_KINDS: tuple[tuple[str, int, tuple[int, int]], ...] = tuple((kind, *_POOL_MIX[kind]) for kind in RESOURCE_KINDS)
ZH_SHARE = 0.6  # share of travellers (and guides, more) who write in Chinese


@dataclass(frozen=True, slots=True)
class Person:
    role: str  # "traveller" | "guide"
    sub: str
    tour_id: str
    lang: str  # "zh" | "en"


@dataclass(frozen=True, slots=True)
class TourPlan:
    tour_id: str
    route: str
    region: str
    timezone: str
    start: date
    end: date
    today: date  # the tour's local date at the world's ``now``
    guides: tuple[Person, ...]
    travellers: tuple[Person, ...]
    mood: str  # "good" | "turning" (today drops below 4) | "poor" (every day below 4)
    day_means: tuple[float, ...]  # the intended mean score of each day from start to today
    weak_aspect: str  # what travellers complain about most on this tour

    @property
    def days_so_far(self) -> tuple[date, ...]:
        return tuple(self.start + timedelta(days=i) for i in range((self.today - self.start).days + 1))

    def doc(self) -> dict[str, Any]:
        """The body of ``PUT /api/tours/{tour_id}`` (contract §4)."""
        return {"route": self.route, "region": self.region, "guides": [g.sub for g in self.guides],
                "start": self.start.isoformat(), "end": self.end.isoformat(), "timezone": self.timezone,
                "travellers": len(self.travellers)}


@dataclass(frozen=True, slots=True)
class Resource:
    resource_id: str
    kind: str
    region: str
    capacity: int
    partner: str
    contact: str

    def doc(self) -> dict[str, Any]:
        """The body of ``PUT /api/pool/resources/{resource_id}`` (contract §7)."""
        return {"kind": self.kind, "region": self.region, "capacity": self.capacity, "partner": self.partner,
                "contact": self.contact}


@dataclass(frozen=True, slots=True)
class World:
    seed: int
    now: float
    regions: tuple[str, ...]
    tours: tuple[TourPlan, ...]
    resources: tuple[Resource, ...]
    by_id: dict[str, TourPlan] = field(repr=False, compare=False, default_factory=dict)

    def people(self) -> list[Person]:
        return [p for t in self.tours for p in (*t.guides, *t.travellers)]


@dataclass(frozen=True, slots=True)
class Action:
    """One message a person sends ``at`` seconds into the run.

    ``msg`` has no ``at`` when the thing happens at send time (the sender stamps it); an ``incident_update``
    names in ``after`` the id of the incident message whose ack carries its ``incident_id``.
    """

    at: float
    person: Person
    msg: dict[str, Any]
    after: str | None = None


def region_names(count: int) -> tuple[str, ...]:
    return tuple(REGIONS[i] if i < len(REGIONS) else f"region{i + 1:02d}" for i in range(count))


def _tour(rng: random.Random, n: int, region: str, travellers: int, now: float, mood: str) -> TourPlan:
    tour_id = f"T{n:04d}"
    timezone = rng.choices([z for z, _ in TIMEZONES], [w for _, w in TIMEZONES])[0]
    routes = ROUTES.get(timezone) or ROUTES.get(region) or (f"{region.capitalize()} 6 days",)
    today = datetime.fromtimestamp(now, ZoneInfo(timezone)).date()
    guides = tuple(Person("guide", f"g-{tour_id}-{i + 1}", tour_id, "zh" if rng.random() < 0.8 else "en")
                   for i in range(1 if rng.random() < 0.7 else 2))
    size = max(1, round(rng.triangular(travellers * 0.6, travellers * 1.8, travellers)))
    people = tuple(Person("traveller", f"t-{tour_id}-{i + 1:02d}", tour_id,
                          "zh" if rng.random() < ZH_SHARE else "en") for i in range(size))
    days = DAYS_BEFORE + 1
    if mood == "good":
        means = tuple(rng.uniform(4.35, 4.8) for _ in range(days))
    elif mood == "turning":
        means = (*(rng.uniform(4.4, 4.8) for _ in range(days - 1)), rng.uniform(2.6, 3.2))
    else:
        means = tuple(rng.uniform(3.0, 3.6) for _ in range(days))
    weak = "meals" if rng.random() < 0.4 else rng.choice(phrases.ASPECTS)
    return TourPlan(tour_id=tour_id, route=rng.choice(routes), region=region, timezone=timezone,
                    start=today - timedelta(days=DAYS_BEFORE), end=today + timedelta(days=DAYS_AFTER),
                    today=today, guides=guides, travellers=people, mood=mood, day_means=means,
                    weak_aspect=weak)


def _resources(rng: random.Random, regions: tuple[str, ...]) -> tuple[Resource, ...]:
    out = []
    for region in regions:
        for kind, count, (low, high) in POOL_KINDS:
            for i in range(count):
                out.append(Resource(
                    resource_id=f"R-{region}-{kind}-{i + 1}", kind=kind, region=region,
                    capacity=rng.randint(low, high), partner=f"{region.capitalize()} {kind} partner {i + 1}",
                    contact=f"+86 {rng.randint(130, 189)} {rng.randint(1000, 9999)} "
                            f"{rng.randint(1000, 9999)}"))
    return tuple(out)


def build_world(seed: int, tours: int = 40, travellers: int = 25, regions: int = 4, *,
                now: float) -> World:
    """``tours`` tours over ``regions`` regions, about ``travellers`` travellers each (15-45 by default)."""
    if tours < 1 or travellers < 1 or regions < 1:
        raise ValueError("tours, travellers and regions must be positive")
    rng = random.Random(f"{seed}/world")
    names = region_names(regions)
    # about one tour in ten turns bad, at least one as soon as there are a few tours to compare
    bad = set(rng.sample(range(tours), max(1, round(tours * 0.1)) if tours >= 3 else 0))
    plans = tuple(_tour(rng, n + 1, names[n % regions], travellers, now,
                        "good" if n not in bad else ("turning" if n % 2 == 0 else "poor"))
                  for n in range(tours))
    return World(seed=seed, now=now, regions=names, tours=plans, resources=_resources(rng, names),
                 by_id={t.tour_id: t for t in plans})


# --- ratings ------------------------------------------------------------------------------------------------

def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def comment_for(rng: random.Random, score: int, lang: str, weak: str, urgent: bool) -> str | None:
    if urgent:
        return rng.choice(phrases.URGENT[lang])
    if rng.random() > (0.35 if score >= 4 else 0.75):
        return None
    if score == 5 or (score == 4 and rng.random() < 0.6):
        return rng.choice(phrases.PRAISE[lang])
    if score == 4:
        return rng.choice(phrases.SUGGESTION[lang])
    aspect = weak if rng.random() < 0.6 else rng.choice(phrases.ASPECTS)
    return rng.choice(phrases.COMPLAINT[aspect][lang])


def rating_message(rng: random.Random, world: World, tour: TourPlan, who: Person, day: date,
                   msg_id: str) -> dict[str, Any]:
    mean = tour.day_means[(day - tour.start).days]
    urgent = rng.random() < 0.004
    score = rng.choice((1, 2)) if urgent else _clamp(rng.gauss(mean, 0.6), 1, 5)
    msg: dict[str, Any] = {"type": "rating", "id": msg_id, "tour_id": tour.tour_id, "day": day.isoformat(),
                           "score": score}
    if rng.random() < 0.7:
        # the tour's weak aspect is what drags a low score down
        drag = {tour.weak_aspect: 1} if score <= 3 else {}
        msg["aspects"] = {a: _clamp(rng.gauss(score - drag.get(a, 0), 0.6), 1, 5) for a in phrases.ASPECTS}
    comment = comment_for(rng, score, who.lang, tour.weak_aspect, urgent)
    if comment is not None:
        msg["comment"] = comment
    if rng.random() < 0.6:
        msg["nps"] = _clamp(2.5 * score - 2.5 + rng.gauss(0, 1.0), 0, 10)
    if day < tour.today:
        # rated on the evening of that day, when the prompt came (the server clamps it to 24 h back)
        zone = ZoneInfo(tour.timezone)
        evening = datetime(day.year, day.month, day.day, 19, tzinfo=zone)
        evening += timedelta(seconds=rng.uniform(0, 3 * 3600))
        msg["at"] = iso_utc(min(evening.timestamp(), world.now - 60))
    return msg


def _rating_pairs(rng: random.Random, world: World) -> Iterator[tuple[TourPlan, Person, date]]:
    """Every traveller rates every day so far, in random order; later passes are changed minds."""
    pairs = [(t, p, d) for t in world.tours for p in t.travellers for d in t.days_so_far]
    while True:
        order = pairs[:]
        rng.shuffle(order)
        yield from order


def _ratings(world: World, count: int, duration: float, run_id: str) -> Iterator[Action]:
    rng = random.Random(f"{world.seed}/ratings")
    pairs = _rating_pairs(rng, world)
    per_s = count / duration if duration > 0 else 0.0
    made = 0
    for second in range(math.ceil(duration)):
        # whole numbers per second that add up exactly to `count`
        upto = min(count, math.floor((second + 1) * per_s + 1e-9))
        width = min(1.0, duration - second)
        times = sorted(second + rng.random() * width for _ in range(upto - made))
        for at in times:
            tour, who, day = next(pairs)
            made += 1
            yield Action(at, who, rating_message(rng, world, tour, who, day, f"{run_id}-r{made}"))
    for _ in range(count - made):  # rounding leftovers, at the very end
        tour, who, day = next(pairs)
        made += 1
        yield Action(duration, who, rating_message(rng, world, tour, who, day, f"{run_id}-r{made}"))


# --- incidents ----------------------------------------------------------------------------------------------

KIND_WEIGHTS: dict[str, float] = {
    "attraction_closed": 3, "vehicle_breakdown": 2, "medical": 2, "lost_document": 2, "accident": 1,
    "delay": 4, "weather": 0.5, "lodging_problem": 1, "conflict": 1, "complaint": 2, "other": 1,
}
KIND_NEEDS: dict[str, list[str]] = {
    "vehicle_breakdown": ["vehicle"], "lodging_problem": ["lodging"], "medical": ["medical"],
}
CENTRES: dict[str, tuple[float, float]] = {
    "yunnan": (25.0, 102.7), "sichuan": (30.6, 104.1), "guangxi": (25.3, 110.3), "xinjiang": (43.8, 87.6),
    "tibet": (29.6, 91.1), "gansu": (36.1, 103.8), "hainan": (20.0, 110.3), "zhejiang": (30.3, 120.2),
    "fujian": (26.1, 119.3), "shaanxi": (34.3, 108.9),
    "Europe/Paris": (48.86, 2.35), "Asia/Tokyo": (35.68, 139.69),
}


def _incident_fields(rng: random.Random, tour: TourPlan, kind: str) -> dict[str, Any]:
    size = len(tour.travellers)
    extra: dict[str, Any] = {}
    if kind in ("vehicle_breakdown", "weather", "attraction_closed", "delay"):
        extra["travellers_affected"] = size
    elif kind == "lodging_problem":
        extra["travellers_affected"] = rng.randint(min(2, size), max(2, size // 2))
    elif kind in ("medical", "accident", "lost_document"):
        extra["travellers_affected"] = rng.randint(1, 3) if kind == "accident" else 1
    needs = KIND_NEEDS.get(kind)
    if needs and rng.random() < 0.8:  # the rest rely on the server's default needs for the kind
        extra["needs"] = needs
    if rng.random() < 0.7:
        lat, lon = CENTRES.get(tour.timezone) or CENTRES.get(tour.region) or (30.0, 110.0)
        extra["location"] = {"lat": round(lat + rng.uniform(-0.5, 0.5), 5),
                             "lon": round(lon + rng.uniform(-0.5, 0.5), 5)}
    return extra


def _update_plan(rng: random.Random, kind: str, lang: str) -> list[tuple[float, dict[str, Any]]]:
    """(delay after the incident, update fields), in time order."""
    plan: list[tuple[float, dict[str, Any]]] = []
    if kind == "attraction_closed":
        alts = rng.sample(phrases.ALTERNATIVES[lang], 3)
        roll = rng.random()
        if roll < 0.5:  # three alternatives well within the 10-minute standard
            plan.append((rng.uniform(20, 240), {"alternatives": alts}))
        elif roll < 0.7:  # three, in two steps, still in time
            plan += [(rng.uniform(20, 120), {"alternatives": alts[:2]}),
                     (rng.uniform(130, 400), {"alternatives": alts})]
        elif roll < 0.85:  # late: after the deadline
            plan.append((rng.uniform(660, 900), {"alternatives": alts}))
        else:  # never three
            plan.append((rng.uniform(30, 200), {"alternatives": alts[:2]}))
        if rng.random() < 0.4:
            plan.append((plan[-1][0] + rng.uniform(60, 600),
                         {"status": "resolved", "note": rng.choice(phrases.RESOLVED_NOTES[lang])}))
        return plan
    delay = 0.0
    if rng.random() < 0.8:
        delay += rng.uniform(5, 45)
        plan.append((delay, {"status": "in_progress", "note": rng.choice(phrases.PROGRESS_NOTES[lang])}))
    if rng.random() < 0.6:
        delay += rng.uniform(20, 300)
        plan.append((delay, {"status": "resolved", "note": rng.choice(phrases.RESOLVED_NOTES[lang])}))
    return plan


def _incident(rng: random.Random, tour: TourPlan, kind: str, at: float, duration: float, run_id: str,
              ids: Iterator[int]) -> list[Action]:
    guide = rng.choice(tour.guides)
    severities, summaries = phrases.INCIDENT[kind]
    msg_id = f"{run_id}-i{next(ids)}"
    msg: dict[str, Any] = {"type": "incident", "id": msg_id, "tour_id": tour.tour_id, "kind": kind,
                           "severity": rng.choice(severities), "summary": rng.choice(summaries[guide.lang])}
    msg.update(_incident_fields(rng, tour, kind))
    out = [Action(at, guide, msg)]
    for delay, fields in _update_plan(rng, kind, guide.lang):
        if at + delay > duration:
            break  # past the end of the run: in a short run, a late answer is no answer
        update = {"type": "incident_update", "id": f"{run_id}-u{next(ids)}", **fields}
        out.append(Action(at + delay, guide, update, after=msg_id))
    return out


def plan_incidents(world: World, rng: random.Random, *, budget: int, duration: float,
                   run_id: str) -> list[Action]:
    """About ``budget`` guide messages: every kind once when the budget allows, then by weight; weather comes
    in a burst per region (every guide there reports within seconds)."""
    out: list[Action] = []
    ids = itertools.count(1)
    kinds = list(phrases.INCIDENT_KINDS)
    if budget >= 2 * len(kinds):
        for _ in range(max(1, round(duration / 300))):
            region = rng.choice(world.regions)
            start = rng.uniform(0, duration * 0.7)
            tours = [t for t in world.tours if t.region == region]
            rng.shuffle(tours)
            for tour in tours[: max(1, budget // 8)]:
                out += _incident(rng, tour, "weather", start + rng.uniform(0, min(20.0, duration * 0.2)),
                                 duration, run_id, ids)
        kinds.remove("weather")
    rng.shuffle(kinds)
    while len(out) < budget:
        kind = kinds.pop() if kinds else rng.choices(list(KIND_WEIGHTS), list(KIND_WEIGHTS.values()))[0]
        at = rng.uniform(0, duration * 0.9)
        out += _incident(rng, rng.choice(world.tours), kind, at, duration, run_id, ids)
    out.sort(key=lambda a: a.at)
    return out


def actions(world: World, *, rate: float, duration: float, run_id: str = "run",
            guide_share: float = 0.05) -> Iterator[Action]:
    """About ``rate * duration`` actions in time order, ``guide_share`` of them from guides (incidents and
    their updates).

    Ids are ``<run_id>-r<n>`` (ratings), ``-i<n>`` (incidents), ``-u<n>`` (updates): unique per sender within
    a run; a new ``run_id`` lets a second run against the same server store everything again.
    """
    if rate <= 0 or duration <= 0:
        return iter(())
    total = round(rate * duration)
    guide_actions = plan_incidents(world, random.Random(f"{world.seed}/incidents"),
                                   budget=round(total * guide_share), duration=duration, run_id=run_id)
    ratings = _ratings(world, max(0, total - len(guide_actions)), duration, run_id)
    return heapq.merge(ratings, guide_actions, key=lambda a: a.at)
