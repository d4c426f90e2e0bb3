"""The roll-up's two renderings agree: the JSON joined from rows rendered at the fold, and the maps (CSV, panel)."""

from __future__ import annotations

import json
from typing import Any

from alerts.rules.crisis import Person
from alerts.rules.fold import fold
from alerts.rules.state import TourState
from server.storage.crisis import rollup, rollup_csv, rollup_json
from server.storage.tours import validate_tour

T0 = 1_800_000_000.0
CHECK = {"check_id": "c1", "message": "台风: ok?", "deadline": T0 + 60, "created_at": T0, "tour_ids": ["T1", "T2"]}
_n = iter(range(1, 10_000))


def folded_tour(tour_id: str, events: list[dict[str, Any]]) -> TourState:
    state = TourState.new()
    for event in [{"type": "safety_check", "check_id": "c1", "message": "m", "deadline": T0 + 60, "repeat": 20},
                  *events]:
        fold(state, {"tour_id": tour_id, "at": T0 + 1, **event, "seq": f"{int(T0 * 1000)}-{next(_n)}"})
    return state


def tour(tour_id: str, guides: list[str], travellers: int) -> Any:
    return validate_tour(tour_id, {"route": "R", "region": "y", "guides": guides, "start": "2027-01-01",
                                   "end": "2027-01-09", "timezone": "UTC", "travellers": travellers})


def test_the_json_joined_from_folded_rows_is_the_roll_up() -> None:
    one = folded_tour("T1", [
        {"type": "person", "person": "t1", "name": "王芳"},
        {"type": "safety_reply", "check_id": "c1", "person": "t1", "person_role": "traveller", "status": "need_help",
         "note": 'says "hi"', "location": {"lat": 1.5, "lon": 2.0}},
        {"type": "safety_reply", "check_id": "c1", "person": "t2", "person_role": "traveller", "status": "safe",
         "by": "g1"},  # answered for by the guide, never connected
        {"type": "safety_reply", "check_id": "c1", "person": "g1", "person_role": "guide", "status": "safe"},
    ])
    two = folded_tour("T2", [{"type": "safety_reply", "check_id": "c1", "person": "t5", "person_role": "traveller",
                              "status": "safe"}])
    # what the API reads: the names known to the tour (t5 gave one after answering), and recorded travellers
    states = {"T1": (one.crisis, {"t1", "t3"}), "T2": (two.crisis, {"t5"})}
    two.crisis.people["t5"] = Person("t5", "traveller", "Li Lei", 0.0)
    tours = {"T1": tour("T1", ["g1"], 5), "T2": tour("T2", ["g2", "t5"], 1)}  # t5 is a guide of T2 by now
    as_maps = rollup(CHECK, tours, states)
    assert json.loads(rollup_json(CHECK, tours, states)) == as_maps
    assert as_maps["overall"] == {"safe": 3, "need_help": 1, "unanswered": 2, "unknown": 2 + 1}
    t5 = next(p for p in as_maps["tours"]["T2"]["people"] if p["sub"] == "t5")
    assert (t5["name"], t5["role"]) == ("Li Lei", "guide")
    assert len(rollup_csv(as_maps).splitlines()) == 1 + 6
