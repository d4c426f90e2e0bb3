"""Property tests: whatever a phone sends, decode + parse_message answers a message or a ProtocolError.

Also: anything that parses can be fingerprinted and its event encoded both ways, so nothing accepted here can
fail later, when it is stored.
"""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guide_app_api.codec import decode, encode
from guide_app_api.errors import ProtocolError
from guide_app_api.messages import TYPES_BY_ROLE, Message, parse_message

NOW = 1_777_636_800.0
ROLES = sorted(TYPES_BY_ROLE) + ["admin"]
ALL_TYPES = sorted(set().union(*TYPES_BY_ROLE.values()))
FIELDS = ["type", "id", "at", "tour_id", "day", "score", "aspects", "comment", "nps", "kind", "severity",
          "summary", "location", "needs", "travellers_affected", "incident_id", "status", "alternatives",
          "note", "notice_id", "alert_id", "assignee", "since", "lat", "lon", "guide", "meals"]
WORDS = ALL_TYPES + FIELDS + ["vehicle", "medical", "high", "resolved", "2026-05-01", "2026-05-01T10:00:00Z",
                              "1700000000000-0", "T-1", "x" * 65, "", " ", "NaN"]

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# msgpack can carry only 64-bit integers; JSON-only cases also get huge ones
leaves = (st.none() | st.booleans() | st.integers(-(2 ** 63), 2 ** 64 - 1) | st.floats()
          | st.sampled_from(WORDS) | st.text(max_size=20))
# shallow on purpose: deep recursive strategies cost hypothesis far more time than the code under test
values = (leaves | st.lists(leaves, max_size=5)
          | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), leaves, max_size=4))
messages = st.builds(
    lambda kind, rest: {**rest, "type": kind},
    st.sampled_from(ALL_TYPES),
    st.dictionaries(st.sampled_from(FIELDS), values, max_size=8),
)


def check(data: bytes | str | dict[str, Any], role: str) -> None:
    try:
        obj = data if isinstance(data, dict) else decode(data)
        msg = parse_message(obj, role, NOW)
    except ProtocolError as exc:
        wire = exc.to_wire()
        assert wire["code"] == exc.code
        encode(wire, True)
        encode(wire, False)
        return
    assert_storable(msg)


def assert_storable(msg: Message) -> None:
    assert len(msg.fingerprint()) == 32
    assert NOW - 86400 <= msg.at <= NOW
    event_fields = getattr(msg, "event_fields", None)
    if event_fields is not None:
        event = event_fields()
        assert decode(encode(event, True)) == event
        encode(event, False)


@FUZZ
@given(data=st.binary(max_size=300), role=st.sampled_from(ROLES))
def test_arbitrary_bytes(data: bytes, role: str) -> None:
    check(data, role)


@FUZZ
@given(text=st.text(max_size=300), role=st.sampled_from(ROLES))
def test_arbitrary_text(text: str, role: str) -> None:
    check(text, role)


@FUZZ
@given(obj=st.dictionaries(st.text(max_size=6), values, max_size=6), role=st.sampled_from(ROLES))
def test_arbitrary_maps(obj: dict[str, Any], role: str) -> None:
    check(obj, role)


@FUZZ
@given(obj=messages, role=st.sampled_from(ROLES), binary=st.booleans())
def test_message_shaped_maps_through_the_codec(obj: dict[str, Any], role: str, binary: bool) -> None:
    check(encode(obj, binary), role)


@FUZZ
@given(obj=messages, role=st.sampled_from(ROLES), cut=st.integers(0, 400), flip=st.integers(0, 255))
def test_corrupted_frames(obj: dict[str, Any], role: str, cut: int, flip: int) -> None:
    data = bytearray(msgpack.packb(obj, use_bin_type=True))
    if data:
        data[cut % len(data)] ^= flip
    check(bytes(data[: max(1, cut)]), role)
    check(bytes(data), role)


@FUZZ
@given(obj=messages, big=st.integers(), role=st.sampled_from(ROLES), name=st.sampled_from(FIELDS))
def test_huge_integers_in_json(obj: dict[str, Any], big: int, role: str, name: str) -> None:
    obj[name] = big
    try:
        text = encode(obj, False)
    except ValueError:  # beyond Python's int-to-str limit: a phone could not send it either
        return
    assert isinstance(text, str)
    check(text, role)


VALID: list[tuple[str, dict[str, Any]]] = [
    ("traveller", {"type": "rating", "id": "r1", "tour_id": "T-1", "day": "2026-05-01", "score": 5,
                   "aspects": {"meals": 3}, "comment": "ok", "nps": 9}),
    ("guide", {"type": "incident", "id": "i1", "tour_id": "T-1", "kind": "delay", "severity": "low",
               "summary": "late", "location": {"lat": 1.5, "lon": 2}, "needs": ["guide"],
               "travellers_affected": 3}),
    ("guide", {"type": "incident_update", "id": "u1", "incident_id": "T-1~0123456789", "status": "resolved",
               "alternatives": ["a", "b"], "note": "n"}),
    ("traveller", {"type": "notice_read", "id": "n1", "notice_id": "N1"}),
    ("supervisor", {"type": "resolve_alert", "id": "a1", "alert_id": "A1", "note": "fixed"}),
    ("supervisor", {"type": "assign_alert", "id": "a2", "alert_id": "A1", "assignee": "s2"}),
    ("supervisor", {"type": "subscribe", "id": "s1", "since": "0-0"}),
]


@FUZZ
@given(which=st.sampled_from(VALID), changes=st.dictionaries(st.sampled_from(FIELDS), values, max_size=2),
       binary=st.booleans())
def test_valid_messages_with_fields_replaced(which: tuple[str, dict[str, Any]], changes: dict[str, Any],
                                             binary: bool) -> None:
    role, base = which
    obj = {**base, **changes}
    if not changes:
        assert_storable(parse_message(decode(encode(obj, binary)), role, NOW))
    check(encode(obj, binary), role)


@pytest.mark.parametrize(("role", "obj"), VALID)
def test_the_valid_seeds_are_valid(role: str, obj: dict[str, Any]) -> None:
    assert_storable(parse_message(obj, role, NOW))
