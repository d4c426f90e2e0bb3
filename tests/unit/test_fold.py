"""The fold: one rating per traveller per tour-day, incidents, complaint tracks, and the saved state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.rules.fold import Folded, fold
from alerts.rules.state import TourState, day_stats

T0 = datetime(2025, 5, 12, 10, tzinfo=UTC).timestamp()
DAY = "2025-05-12"
TOUR = {"type": "tour", "tour_id": "T1", "route": "yunnan-6d", "region": "yn", "guides": ["g1"],
        "start": "2025-05-12", "end": "2025-05-17", "timezone": "Asia/Shanghai", "travellers": 30}


class Feed:
    """Folds events into one tour's state, numbering their seqs in arrival order."""

    def __init__(self) -> None:
        self.state = TourState.new()
        self.n = 0
        self(dict(TOUR, at=T0))

    def __call__(self, event: dict[str, Any]) -> Folded:
        self.n += 1
        event = {"tour_id": "T1", "sender": "x", "at": T0 + self.n, **event, "seq": f"{1000 + self.n}-0"}
        return fold(self.state, event)

    def rate(self, traveller: str, score: int, day: str = DAY, **extra: Any) -> Folded:
        return self({"type": "rating", "traveller": traveller, "day": day, "score": score, **extra})


def test_tour_event_registers_and_sets_last_seq() -> None:
    feed = Feed()
    assert feed.state.tour == {k: TOUR[k] for k in ("route", "region", "guides", "start", "end", "timezone",
                                                    "travellers")}
    assert feed.state.last_seq == "1001-0"
    feed.rate("a", 4)
    assert feed.state.last_seq == "1002-0"


def test_a_later_rating_replaces_not_adds() -> None:
    feed = Feed()
    feed.rate("a", 2)
    feed.rate("b", 4)
    folded = feed.rate("a", 5, aspects={"meals": 5}, nps=10)
    assert folded.changed and folded.previous is not None and folded.previous.score == 2
    stats = day_stats(feed.state, DAY)
    assert (stats.count, stats.mean) == (2, 4.5)
    assert stats.aspect_means == {"meals": 5.0}
    assert stats.nps == (1, 0, 0)


def test_an_older_rating_arriving_late_does_not_replace_a_newer_one() -> None:
    feed = Feed()
    feed.rate("a", 5, at=T0 + 500)
    folded = feed.rate("a", 1, at=T0 + 100)  # the phone was offline: written earlier, arrived later
    assert folded.stale and not folded.changed
    assert feed.state.days[DAY]["a"].score == 5
    assert day_stats(feed.state, DAY).mean == 5.0


def test_equal_at_is_broken_by_arrival() -> None:
    feed = Feed()
    feed.rate("a", 2, at=T0 + 100)
    folded = feed.rate("a", 4, at=T0 + 100)
    assert folded.changed
    assert feed.state.days[DAY]["a"].score == 4


def test_ratings_of_different_days_are_separate() -> None:
    feed = Feed()
    feed.rate("a", 2, day="2025-05-12")
    feed.rate("a", 5, day="2025-05-13")
    assert day_stats(feed.state, "2025-05-12").mean == 2.0
    assert day_stats(feed.state, "2025-05-13").mean == 5.0
    assert day_stats(feed.state, "2025-05-14").count == 0


def test_day_stats_stdev_response_rate_and_nps_buckets() -> None:
    feed = Feed()
    for who, score, nps in (("a", 3, 9), ("b", 4, 7), ("c", 5, 3)):
        feed.rate(who, score, nps=nps)
    stats = day_stats(feed.state, DAY)
    assert stats.mean == 4.0
    assert stats.stdev == pytest.approx(1.0)
    assert stats.response_rate == pytest.approx(3 / 30)
    assert stats.nps == (1, 1, 1)


def test_comments_are_classified_and_kept() -> None:
    feed = Feed()
    folded = feed.rate("a", 2, comment="The food was cold and bad")
    assert folded.rating is not None and folded.rating.comment_class == "complaint"
    assert feed.state.days[DAY]["a"].comment == "The food was cold and bad"
    folded = feed.rate("b", 4, comment="I fell and got hurt")  # urgent words make it a complaint
    assert folded.rating is not None and folded.rating.urgent == ("hurt",)
    assert folded.rating.comment_class == "complaint"


def test_urgent_complaint_track_refires_then_reopens_after_follow_up() -> None:
    feed = Feed()
    key = f"urgent_complaint:T1:{DAY}:a"
    first = feed.rate("a", 1)
    assert (first.complaint_key, first.complaint_new) == (key, True)
    again = feed.rate("a", 1)
    assert (again.complaint_key, again.complaint_new) == (key, False)  # still open: re-fired
    solved = feed({"type": "alert_action", "dedup_key": key, "action": "resolve", "note": "new room"})
    assert solved.solved_key == key
    track = feed.state.complaints[key]
    # §10: the follow-up question went out with the answer; only an answer to it follows up
    assert track.solved_at is not None and track.followup_sent_at is not None
    assert track.followed_up_at is None and not track.closed
    unhappy = feed.rate("a", 3)  # rated again, below 4: that is "not satisfied"
    assert (unhappy.complaint_key, unhappy.complaint_new) == (key + "#2", True)
    assert (track.followed_up_at, track.satisfied, track.closed) == (T0 + feed.n, False, True)
    assert feed.state.complaints[key + "#2"].reopens == key
    assert feed.state.complaints[key + "#2"].reopen_count == 1
    assert feed.state.urgent_latest["a"] == key + "#2"


def _solved_urgent(feed: Feed) -> str:
    key = f"urgent_complaint:T1:{DAY}:a"
    feed.rate("a", 1)
    feed({"type": "alert_action", "dedup_key": key, "action": "resolve", "note": "new room"})
    return key


@pytest.mark.parametrize(("answers", "satisfied", "reopened"), [
    ([True], True, False),
    ([False], False, True),
    ([False, True], True, True),  # the later answer is kept; the reopening it caused stays
    ([False, False], False, True),  # reopened once however often it is said
    ([True, False], False, True),
])
def test_followup_replies(answers: list[bool], satisfied: bool, reopened: bool) -> None:
    feed = Feed()
    key = _solved_urgent(feed)
    results = [feed({"type": "followup_reply", "dedup_key": key, "satisfied": ok}) for ok in answers]
    track = feed.state.complaints[key]
    first_at = T0 + feed.n - len(answers) + 1
    assert (track.followed_up_at, track.satisfied) == (first_at, satisfied)
    new = [r.complaint_key for r in results if r.complaint_new]
    assert new == ([key + "#2"] if reopened else [])
    if reopened:
        again = feed.state.complaints[key + "#2"]
        assert (again.kind, again.reopens, again.reopen_count, again.solved_at) == ("urgent", key, 1, None)
        assert feed.state.urgent_latest["a"] == key + "#2"


def test_a_reply_to_no_complaint_changes_nothing() -> None:
    feed = Feed()
    folded = feed({"type": "followup_reply", "dedup_key": "urgent_complaint:T1:x", "satisfied": False})
    assert folded.answered_key is None and not feed.state.complaints


def test_a_guide_conflict_is_an_urgent_track_whatever_its_severity() -> None:
    feed = Feed()
    folded = feed({"type": "incident", "incident_id": "T1~abc", "kind": "conflict", "severity": "low",
                   "summary": "two travellers quarrel", "guide": "g1"})
    key = "urgent_complaint:T1~abc"
    assert (folded.complaint_key, folded.complaint_new) == (key, True)
    track = feed.state.complaints[key]
    assert (track.kind, track.incident_id, track.traveller, track.day) == ("urgent", "T1~abc", None, DAY)
    feed({"type": "incident_update", "incident_id": "T1~abc", "status": "resolved"})
    assert track.solved_at is None  # resolving the incident is not the answer


def test_resolve_without_a_note_does_not_solve() -> None:
    feed = Feed()
    feed.rate("a", 1)
    key = f"urgent_complaint:T1:{DAY}:a"
    folded = feed({"type": "alert_action", "dedup_key": key, "action": "resolve", "note": "  "})
    assert folded.solved_key is None
    assert feed.state.complaints[key].solved_at is None


def test_incident_alternatives_are_distinct_and_the_proof_is_the_third() -> None:
    feed = Feed()
    created = feed({"type": "incident", "incident_id": "i1", "kind": "attraction_closed",
                    "severity": "medium",
                    "summary": "museum closed", "guide": "g1"})
    assert created.incident_new
    assert not feed({"type": "incident", "incident_id": "i1", "kind": "attraction_closed",
                     "severity": "medium", "summary": "again"}).changed  # a replay creates nothing
    first = feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["park", "temple"]})
    assert first.alternatives_added == 2 and not first.proof_reached
    dup = feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["park"]})
    assert dup.alternatives_added == 0 and not dup.proof_reached
    third = feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["market"], "at": T0 + 300})
    assert third.proof_reached
    incident = feed.state.incidents["i1"]
    assert incident.alternatives == ["park", "temple", "market"]
    assert incident.alternatives_proof_at == T0 + 300
    assert incident.updates == 3
    more = feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["zoo"]})
    assert not more.proof_reached  # the proof is reached once


def test_incident_status_changes_once_and_resolved_is_final() -> None:
    feed = Feed()
    feed({"type": "incident", "incident_id": "i1", "kind": "delay", "severity": "low",
          "summary": "traffic"})
    assert feed({"type": "incident_update", "incident_id": "i1", "status": "in_progress"}).status_changed
    done = feed({"type": "incident_update", "incident_id": "i1", "status": "resolved", "at": T0 + 900})
    assert done.status_changed and done.solved_key is None
    assert feed.state.incidents["i1"].resolved_at == T0 + 900
    assert not feed({"type": "incident_update", "incident_id": "i1", "status": "in_progress"}).status_changed
    assert not feed({"type": "incident_update", "incident_id": "nope", "status": "resolved"}).changed


def test_state_roundtrips_through_bytes() -> None:
    feed = Feed()
    for who, score in (("a", 3), ("b", 5), ("c", 1)):
        feed.rate(who, score, aspects={"meals": score, "guide": 5}, nps=score * 2,
                  comment="bad food" * (score < 3))
    feed.rate("a", 4, day="2025-05-13")
    feed({"type": "incident", "incident_id": "i1", "kind": "attraction_closed", "severity": "high",
          "summary": "closed", "needs": ["guide"], "travellers_affected": 12,
          "location": {"lat": 1.5, "lon": 2.5}})
    feed({"type": "incident_update", "incident_id": "i1", "alternatives": ["x", "y", "z"]})
    fields = feed.state.to_fields()
    back = TourState.from_fields(fields)
    assert back == feed.state  # the running sums are rebuilt, equal to the ones folded incrementally
    assert back.to_fields() == fields
    assert day_stats(back, DAY) == day_stats(feed.state, DAY)


def test_new_state_roundtrips_and_a_foreign_version_fails() -> None:
    assert TourState.from_fields(TourState.new().to_fields()) == TourState.new()
    assert TourState.from_fields({}) == TourState.new()
    import msgpack

    with pytest.raises(ValueError, match="version"):
        TourState.from_fields({b"m": msgpack.packb({"v": 99})})


def test_a_save_writes_only_the_records_that_changed() -> None:
    feed = Feed()
    for who in ("a", "b", "c"):
        feed.rate(who, 5)
    feed.state.take_changes()
    feed.rate("b", 2, comment="the bus was dirty and late", day="2025-05-13")
    changed = feed.state.take_changes()
    assert set(changed) == {"m", "r:2025-05-13:b", "c:complaint:T1:2025-05-13:b"}
    assert set(feed.state.take_changes()) == {"m"}  # nothing since: only the meta (last seq) is written
    # what the saves wrote, merged as the hash merges them, is the whole state
    merged = {**feed.state.to_fields(["r:2025-05-12:a", "r:2025-05-12:b", "r:2025-05-12:c"]),
              **changed}
    assert TourState.from_fields(merged) == feed.state


def test_a_version_1_state_is_read_and_written_anew_at_the_next_save() -> None:
    import msgpack

    feed = Feed()
    feed.rate("a", 1, comment="I was injured on the bus")
    feed.rate("b", 4, day="2025-05-13")
    state = feed.state
    meta = {"v": 1, "tour": state.tour, "last": state.last_seq, "inc": {}, "ul": state.urgent_latest,
            "cmp": {key: track.pack() for key, track in state.complaints.items()}}
    v1 = {b"m": msgpack.packb(meta), **{f"d:{day}".encode(): msgpack.packb({w: r.pack() for w, r in rs.items()})
                                        for day, rs in state.days.items()}}
    back = TourState.from_fields(v1)
    assert back == state
    rewritten = back.take_changes()
    assert set(rewritten) == set(state.to_fields())  # every record, in the new layout
    assert sorted(back.stale_fields) == ["d:2025-05-12", "d:2025-05-13"]  # for that save to delete
    assert TourState.from_fields(rewritten) == state


def test_solving_a_complaint_marks_its_track_for_the_next_save() -> None:
    feed = Feed()
    feed({"type": "incident", "incident_id": "i1", "kind": "complaint", "severity": "medium", "summary": "rude"})
    feed.rate("a", 1, comment="the driver was rude")
    feed.state.take_changes()
    feed({"type": "alert_action", "action": "resolve", "dedup_key": "urgent_complaint:i1", "note": "apologised"})
    assert "c:urgent_complaint:i1" in feed.state.take_changes()
    key = f"urgent_complaint:T1:{DAY}:a"
    feed({"type": "alert_action", "action": "resolve", "dedup_key": key, "note": "refunded lunch"})
    assert set(feed.state.take_changes()) == {"m", f"c:{key}"}
