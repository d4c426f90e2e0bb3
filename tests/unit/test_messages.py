"""parse_message, table-driven: every rule, through both encodings (decode then parse), with its field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from guide_app_api.codec import decode, encode
from guide_app_api.errors import Invalid
from guide_app_api.messages import (
    TYPES_BY_ROLE,
    AckAlert,
    AssignAlert,
    BoardResolve,
    Incident,
    IncidentUpdate,
    Message,
    NoticeRead,
    Rating,
    Subscribe,
    parse_message,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC).timestamp()
DROP = object()  # marks a field to remove from the base message

BASE: dict[str, tuple[str, dict[str, Any]]] = {
    "rating": ("traveller", {"type": "rating", "id": "r1", "tour_id": "T-1", "day": "2026-05-01",
                             "score": 4}),
    "incident": ("guide", {"type": "incident", "id": "i1", "tour_id": "T-1", "kind": "medical",
                           "severity": "high", "summary": "traveller fainted"}),
    "incident_update": ("guide", {"type": "incident_update", "id": "u1", "incident_id": "T-1~0123456789",
                                  "status": "in_progress"}),
    "notice_read": ("traveller", {"type": "notice_read", "id": "n1", "notice_id": "N1"}),
    "ack_alert": ("supervisor", {"type": "ack_alert", "id": "a1", "alert_id": "A1"}),
    "resolve_alert": ("supervisor", {"type": "resolve_alert", "id": "a2", "alert_id": "A1", "note": "done"}),
    "assign_alert": ("supervisor", {"type": "assign_alert", "id": "a3", "alert_id": "A1",
                                    "assignee": "sup-2"}),
    "subscribe": ("supervisor", {"type": "subscribe", "id": "s1", "since": "1700000000000-0"}),
}


def build(msg_type: str, /, **changes: Any) -> tuple[str, dict[str, Any]]:
    role, base = BASE[msg_type]
    obj = dict(base)
    for key, value in changes.items():
        if value is DROP:
            obj.pop(key, None)
        else:
            obj[key] = value
    return role, obj


def parse(obj: dict[str, Any], role: str, binary: bool, now: float = NOW) -> Message:
    return parse_message(decode(encode(obj, binary)), role, now)


both = pytest.mark.parametrize("binary", [True, False], ids=["msgpack", "json"])


@both
@pytest.mark.parametrize("kind", sorted(BASE))
def test_minimal_messages_parse(kind: str, binary: bool) -> None:
    role, obj = build(kind)
    msg = parse(obj, role, binary)
    assert msg.id == obj["id"]
    assert msg.at == NOW


@both
def test_full_rating(binary: bool) -> None:
    comment = "导游很好 👍" + "字" * 1993  # 2000 characters, far more bytes
    role, obj = build("rating", aspects={"meals": 2, "guide": 5}, comment=comment, nps=10, extra="ignored")
    msg = parse(obj, role, binary)
    assert msg == Rating("r1", NOW, "T-1", "2026-05-01", 4, {"meals": 2, "guide": 5}, comment, 10)
    assert msg.event_fields() == {"type": "rating", "tour_id": "T-1", "at": NOW, "day": "2026-05-01",
                                  "score": 4, "aspects": {"meals": 2, "guide": 5}, "comment": comment,
                                  "nps": 10}


@both
def test_full_incident(binary: bool) -> None:
    role, obj = build("incident", summary="  bus broke down  ", location={"lat": 39, "lon": 116.39, "x": 1},
                      needs=["vehicle", "guide", "vehicle"], travellers_affected=32)
    msg = parse(obj, role, binary)
    assert isinstance(msg, Incident)
    assert msg.summary == "bus broke down"
    assert msg.location == {"lat": 39.0, "lon": 116.39}
    assert msg.needs == ("vehicle", "guide")
    assert msg.event_fields() == {"type": "incident", "tour_id": "T-1", "at": NOW, "kind": "medical",
                                  "severity": "high", "summary": "bus broke down",
                                  "location": {"lat": 39.0, "lon": 116.39}, "needs": ["vehicle", "guide"],
                                  "travellers_affected": 32}


@both
def test_full_incident_update(binary: bool) -> None:
    role, obj = build("incident_update", status=None, alternatives=[" museum ", "park"], note="ok")
    msg = parse(obj, role, binary)
    assert msg == IncidentUpdate("u1", NOW, "T-1~0123456789", None, ("museum", "park"), "ok")
    assert msg.event_fields() == {"type": "incident_update", "at": NOW, "incident_id": "T-1~0123456789",
                                  "status": None, "alternatives": ["museum", "park"], "note": "ok"}


SIMPLE: list[tuple[str, dict[str, Any], Message]] = [
    ("ack_alert", {}, AckAlert("a1", NOW, "A1")),
    ("resolve_alert", {}, BoardResolve("a2", NOW, "A1", "done")),
    ("resolve_alert", {"note": DROP}, BoardResolve("a2", NOW, "A1", None)),
    ("assign_alert", {}, AssignAlert("a3", NOW, "A1", "sup-2")),
    ("subscribe", {"since": "0"}, Subscribe("s1", NOW, "0")),
    ("subscribe", {}, Subscribe("s1", NOW, "1700000000000-0")),
    ("notice_read", {}, NoticeRead("n1", NOW, "N1")),
]


@both
@pytest.mark.parametrize(("msg_type", "changes", "expected"), SIMPLE)
def test_simple_messages(msg_type: str, changes: dict[str, Any], expected: Message, binary: bool) -> None:
    role, obj = build(msg_type, **changes)
    assert parse(obj, role, binary) == expected


@both
def test_null_optionals_are_absent(binary: bool) -> None:
    role, obj = build("rating", aspects=None, comment=None, nps=None, at=None)
    msg = parse(obj, role, binary)
    assert isinstance(msg, Rating)
    assert (msg.aspects, msg.comment, msg.nps, msg.at) == (None, None, None, NOW)


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # type and id
    ("rating", {"type": DROP}, "type"),
    ("rating", {"type": "bogus"}, "type"),
    ("rating", {"type": 3}, "type"),
    ("rating", {"type": "incident"}, "type"),  # a traveller may not send an incident
    ("incident", {"type": "rating"}, "type"),
    ("ack_alert", {"type": "rating"}, "type"),
    ("rating", {"id": DROP}, "id"),
    ("rating", {"id": ""}, "id"),
    ("rating", {"id": "x" * 65}, "id"),
    ("rating", {"id": 12}, "id"),
    # at
    ("rating", {"at": "yesterday"}, "at"),
    ("rating", {"at": 1700000000}, "at"),
    ("rating", {"at": "2026-13-01T00:00:00Z"}, "at"),
    ("rating", {"at": "2026-05-01T12:00:00Z" + "0" * 60}, "at"),
    # rating
    ("rating", {"tour_id": DROP}, "tour_id"),
    ("rating", {"tour_id": ""}, "tour_id"),
    ("rating", {"tour_id": "T 1"}, "tour_id"),
    ("rating", {"tour_id": "T~1"}, "tour_id"),
    ("rating", {"tour_id": "x" * 65}, "tour_id"),
    ("rating", {"tour_id": 5}, "tour_id"),
    ("rating", {"day": DROP}, "day"),
    ("rating", {"day": "2026-02-30"}, "day"),
    ("rating", {"day": "2026-5-1"}, "day"),
    ("rating", {"day": "20260501"}, "day"),
    ("rating", {"day": "２０２６-05-01"}, "day"),
    ("rating", {"score": DROP}, "score"),
    ("rating", {"score": 0}, "score"),
    ("rating", {"score": 6}, "score"),
    ("rating", {"score": 4.0}, "score"),
    ("rating", {"score": True}, "score"),
    ("rating", {"score": "4"}, "score"),
    ("rating", {"aspects": [1]}, "aspects"),
    ("rating", {"aspects": {"food": 3}}, "aspects.food"),
    ("rating", {"aspects": {"meals": 0}}, "aspects.meals"),
    ("rating", {"aspects": {"meals": 3.0}}, "aspects.meals"),
    ("rating", {"aspects": {"guide": False}}, "aspects.guide"),
    ("rating", {"comment": "x" * 2001}, "comment"),
    ("rating", {"comment": 5}, "comment"),
    ("rating", {"nps": -1}, "nps"),
    ("rating", {"nps": 11}, "nps"),
    ("rating", {"nps": 7.0}, "nps"),
    # incident
    ("incident", {"kind": DROP}, "kind"),
    ("incident", {"kind": "fire"}, "kind"),
    ("incident", {"severity": "urgent"}, "severity"),
    ("incident", {"severity": DROP}, "severity"),
    ("incident", {"summary": DROP}, "summary"),
    ("incident", {"summary": "   "}, "summary"),
    ("incident", {"summary": "x" * 501}, "summary"),
    ("incident", {"location": [1, 2]}, "location"),
    ("incident", {"location": {"lat": 91, "lon": 0}}, "location.lat"),
    ("incident", {"location": {"lon": 0}}, "location.lat"),
    ("incident", {"location": {"lat": 0, "lon": -180.5}}, "location.lon"),
    ("incident", {"location": {"lat": True, "lon": 0}}, "location.lat"),
    ("incident", {"location": {"lat": "1", "lon": 0}}, "location.lat"),
    ("incident", {"location": {"lat": 0, "lon": 10 ** 18}}, "location.lon"),
    ("incident", {"needs": "vehicle"}, "needs"),
    ("incident", {"needs": ["vehicle", "medical", "boat"]}, "needs[2]"),
    ("incident", {"needs": ["vehicle"] * 11}, "needs"),
    ("incident", {"travellers_affected": -1}, "travellers_affected"),
    ("incident", {"travellers_affected": 1001}, "travellers_affected"),
    ("incident", {"travellers_affected": 3.0}, "travellers_affected"),
    # incident_update
    ("incident_update", {"incident_id": DROP}, "incident_id"),
    ("incident_update", {"incident_id": "x" * 101}, "incident_id"),
    ("incident_update", {"status": "closed"}, "status"),
    ("incident_update", {"status": DROP}, "status"),
    ("incident_update", {"alternatives": []}, "alternatives"),
    ("incident_update", {"alternatives": ["a"] * 21}, "alternatives"),
    ("incident_update", {"alternatives": ["a", ""]}, "alternatives[1]"),
    ("incident_update", {"alternatives": ["x" * 301]}, "alternatives[0]"),
    ("incident_update", {"alternatives": [3]}, "alternatives[0]"),
    ("incident_update", {"alternatives": "museum"}, "alternatives"),
    ("incident_update", {"note": "x" * 2001}, "note"),
    # notice_read and board
    ("notice_read", {"notice_id": DROP}, "notice_id"),
    ("notice_read", {"notice_id": "x" * 101}, "notice_id"),
    ("ack_alert", {"alert_id": DROP}, "alert_id"),
    ("ack_alert", {"alert_id": ""}, "alert_id"),
    ("resolve_alert", {"note": "x" * 2001}, "note"),
    ("resolve_alert", {"alert_id": 7}, "alert_id"),
    ("assign_alert", {"assignee": DROP}, "assignee"),
    ("assign_alert", {"assignee": "x" * 65}, "assignee"),
    ("subscribe", {"since": DROP}, "since"),
    ("subscribe", {"since": "abc"}, "since"),
    ("subscribe", {"since": "1-2-3"}, "since"),
    ("subscribe", {"since": "$"}, "since"),
    ("subscribe", {"since": 17}, "since"),
]


@both
@pytest.mark.parametrize(("kind", "changes", "field"), INVALID)
def test_invalid(kind: str, changes: dict[str, Any], field: str, binary: bool) -> None:
    role, obj = build(kind, **changes)
    with pytest.raises(Invalid) as info:
        parse(obj, role, binary)
    exc = info.value
    assert exc.code == "invalid"
    assert exc.field == field
    assert exc.message
    readable = isinstance(obj.get("id"), str) and 1 <= len(obj["id"]) <= 64
    assert exc.msg_id == (obj["id"] if readable else None)
    assert exc.to_wire()["field"] == field


@pytest.mark.parametrize("value", [10 ** 30, -(10 ** 400), float("nan"), float("inf"), None])
def test_coordinates_beyond_msgpack_range_or_not_finite(value: Any) -> None:
    role, obj = build("incident", location={"lat": value, "lon": 0})
    with pytest.raises(Invalid) as info:
        parse_message(obj, role, NOW)
    assert info.value.field == "location.lat"


@pytest.mark.parametrize("role", sorted(TYPES_BY_ROLE))
def test_roles_allow_only_their_types(role: str) -> None:
    for kind in BASE:
        _, obj = build(kind)
        if kind in TYPES_BY_ROLE[role]:
            assert parse_message(obj, role, NOW).id == obj["id"]
        else:
            with pytest.raises(Invalid) as info:
                parse_message(obj, role, NOW)
            assert (info.value.field, info.value.msg_id) == ("type", obj["id"])
    assert "notice_read" in TYPES_BY_ROLE["traveller"] and "notice_read" in TYPES_BY_ROLE["guide"]


def test_unknown_role_allows_nothing() -> None:
    with pytest.raises(Invalid) as info:
        parse_message(build("rating")[1], "admin", NOW)
    assert info.value.field == "type"


def iso(seconds_before_now: float, suffix: str = "Z") -> str:
    moment = datetime.fromtimestamp(NOW - seconds_before_now, UTC).replace(tzinfo=None)
    return moment.isoformat() + suffix


AT_CASES: list[tuple[str, float]] = [
    (iso(60), NOW - 60),                                   # Z suffix
    (iso(60, "+00:00"), NOW - 60),                         # explicit UTC offset
    (iso(60, ""), NOW - 60),                               # naive: taken as UTC
    ("2026-05-01T19:59:00+08:00", NOW - 60),               # other offsets convert to UTC
    ("2026-05-01T06:59:00-05:00", NOW - 60),
    ("2026-05-01T11:59:00.250Z", NOW - 59.75),
    (iso(-3600), NOW),                                     # in the future: clamped to receipt
    (iso(86400 * 3), NOW - 86400),                         # older than a day: clamped to 24 h before
    (iso(86400), NOW - 86400),
    ("1970-01-01T00:00:00Z", NOW - 86400),
]


@both
@pytest.mark.parametrize(("at", "expected"), AT_CASES)
def test_at_is_parsed_and_clamped(at: str, expected: float, binary: bool) -> None:
    role, obj = build("rating", at=at)
    msg = parse(obj, role, binary)
    assert msg.at == pytest.approx(expected)
    assert msg.event_fields()["at"] == msg.at  # type: ignore[union-attr]


def test_fingerprint_is_stable_and_content_sensitive() -> None:
    role, obj = build("rating", aspects={"meals": 2, "guide": 5}, comment="ok", at=iso(60))
    first = parse(obj, role, True)
    fp = first.fingerprint()
    assert len(fp) == 32 and int(fp, 16) >= 0
    # the same message again, in the other encoding, with keys in another order, and arriving later
    again = dict(reversed(list(obj.items())))
    again["aspects"] = {"guide": 5, "meals": 2}
    assert parse(again, role, False, now=NOW + 3600).fingerprint() == fp
    for change in ({"score": 3}, {"comment": "ok!"}, {"aspects": {"meals": 2}}, {"day": "2026-04-30"},
                   {"at": iso(61)}, {"at": DROP}, {"tour_id": "T-2"}, {"nps": 5}):
        _, other = build("rating", **{**obj, **change})
        assert parse(other, role, True).fingerprint() != fp, change


def test_fingerprint_of_a_resent_message_without_at_matches() -> None:
    role, obj = build("incident")
    assert parse(obj, role, True).fingerprint() == parse(obj, role, False, now=NOW + 600).fingerprint()


def test_fingerprint_ignores_how_at_is_written_but_not_the_clamp_moment() -> None:
    role, obj = build("rating", at="2026-05-01T19:59:00+08:00")
    _, same = build("rating", at="2026-05-01T11:59:00Z")
    assert parse(obj, role, True).fingerprint() == parse(same, role, True).fingerprint()
    # a phone clock far ahead: clamped differently on each arrival, still one message
    _, ahead = build("rating", at=iso(-7200))
    assert parse(ahead, role, True).fingerprint() == parse(ahead, role, True, now=NOW + 5).fingerprint()


def test_fingerprint_differs_by_type() -> None:
    prints = {parse_message(build(k)[1], build(k)[0], NOW).fingerprint() for k in BASE}
    assert len(prints) == len(BASE)
