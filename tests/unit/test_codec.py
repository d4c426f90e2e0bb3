"""The codec: one map in per frame, strictly; anything else is bad_frame and nothing but bad_frame."""

from __future__ import annotations

import json
import threading
from typing import Any

import msgpack
import pytest

from guide_app_api.codec import decode, encode, packb, unpackb
from guide_app_api.errors import ERROR_CODES, BadFrame, Invalid, ProtocolError

SAMPLE: dict[str, Any] = {"type": "rating", "id": "m1", "score": 4, "comment": "很好 — great",
                          "aspects": None, "nested": {"list": [1, 2.5, True, None]}}


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip(binary: bool) -> None:
    data = encode(SAMPLE, binary)
    assert isinstance(data, bytes if binary else str)
    assert decode(data) == SAMPLE


def test_json_is_compact_and_keeps_unicode() -> None:
    text = encode({"a": 1, "b": "é中"}, binary=False)
    assert text == '{"a":1,"b":"é中"}'


def test_msgpack_uses_bin_type_for_bytes() -> None:
    data = encode({"a": b"\x00\xff"}, binary=True)
    assert msgpack.unpackb(data, raw=False) == {"a": b"\x00\xff"}


def test_packb_is_msgpack_packb_with_a_kept_packer() -> None:
    """Stored bytes (events, states, fingerprints) must not change with the packer kept per thread."""
    for obj in (SAMPLE, [1, "x", {"k": b"\x00"}], {"t": 1.5, "n": None}):
        assert packb(obj) == msgpack.packb(obj, use_bin_type=True)


def test_unpackb_reads_back_what_packb_stored() -> None:
    """Strings as str, bytes as bytes, and maps with non-string keys too (a state's rows keyed by int)."""
    for obj in (SAMPLE, {"k": b"\x00\xff", "s": "好"}, {1: "one", 2: [3, 4]}, [1.5, None, True]):
        assert unpackb(packb(obj)) == obj


def test_packb_after_an_unpackable_object_packs_cleanly() -> None:
    with pytest.raises(TypeError):
        packb({"a": [1, 2, object()]})
    assert packb({"b": 2}) == msgpack.packb({"b": 2}, use_bin_type=True)


def test_packb_from_several_threads_at_once_packs_each_object_as_msgpack_does() -> None:
    packed: list[bytes] = []
    workers = [threading.Thread(target=lambda n=n: packed.extend(packb({"n": n, "s": "x" * n}) for _ in range(200)))
               for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(set(packed)) == sorted(msgpack.packb({"n": n, "s": "x" * n}, use_bin_type=True) for n in range(4))
    assert len(packed) == 800


def _deep_msgpack(levels: int) -> bytes:
    return b"\x81\xa1k" * levels + b"\x80"


BAD_BINARY: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("truncated", msgpack.packb({"type": "rating"})[:-2]),
    ("array", msgpack.packb([1, 2])),
    ("string", msgpack.packb("hello")),
    ("nil", msgpack.packb(None)),
    ("int", msgpack.packb(7)),
    ("trailing", msgpack.packb({"a": 1}) + b"\x01"),
    ("two maps", msgpack.packb({"a": 1}) * 2),
    ("int key", msgpack.packb({1: "x"})),
    ("bytes key", msgpack.packb({b"k": 1}, use_bin_type=True)),
    ("map key", b"\x81\x81\xa1a\x01\x02"),
    ("ext type", msgpack.packb({"a": msgpack.ExtType(5, b"xx")})),
    ("timestamp ext", msgpack.packb({"a": msgpack.Timestamp(1, 0)})),
    ("invalid utf-8", b"\x81\xa1a\xa2\xff\xfe"),
    ("encoded surrogate", b"\x81\xa1a\xa3\xed\xa0\x80"),
    ("reserved byte", b"\xc1"),
    ("deep nesting", _deep_msgpack(5000)),
    ("huge str header", b"\x81\xa1a\xdb\xff\xff\xff\xff"),
    ("huge array header", b"\x81\xa1a\xdd\xff\xff\xff\xff"),
    ("huge map header", b"\xdf\xff\xff\xff\xff"),
]


@pytest.mark.parametrize(("label", "data"), BAD_BINARY, ids=[b[0] for b in BAD_BINARY])
def test_bad_binary_frames(label: str, data: bytes) -> None:
    with pytest.raises(BadFrame) as info:
        decode(data)
    assert info.value.code == "bad_frame"
    assert info.value.message


BAD_TEXT: list[tuple[str, str]] = [
    ("empty", ""),
    ("garbage", "{not json"),
    ("array", "[1, 2]"),
    ("string", '"hello"'),
    ("null", "null"),
    ("number", "3"),
    ("trailing", '{"a": 1} {"b": 2}'),
    ("NaN", '{"a": NaN}'),
    ("Infinity", '{"a": Infinity}'),
    ("-Infinity", '{"a": -Infinity}'),
    ("lone surrogate", '{"a": "\\ud800"}'),
    ("lone surrogate key", '{"\\uDC00": 1}'),
    ("deep nesting", '{"a": ' * 100_000 + "1" + "}" * 100_000),
    ("huge int", '{"a": ' + "9" * 5000 + "}"),
    ("single quotes", "{'a': 1}"),
]


@pytest.mark.parametrize(("label", "text"), BAD_TEXT, ids=[b[0] for b in BAD_TEXT])
def test_bad_text_frames(label: str, text: str) -> None:
    with pytest.raises(BadFrame) as info:
        decode(text)
    assert info.value.code == "bad_frame"


def test_surrogate_pair_escape_is_fine() -> None:
    assert decode('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_whitespace_around_an_object_is_fine() -> None:
    assert decode(' \n{"a": 1}\t') == {"a": 1}


@pytest.mark.parametrize("data", [None, 5, bytearray(b"\x80"), ["x"], memoryview(b"\x80")])
def test_not_a_frame(data: Any) -> None:
    with pytest.raises(BadFrame):
        decode(data)


def test_duplicate_json_keys_keep_the_last() -> None:
    assert decode('{"a": 1, "a": 2}') == {"a": 2}


def test_large_but_legal_frame() -> None:
    obj = {"comment": "x" * 60_000, "list": list(range(1000))}
    assert decode(encode(obj, True)) == obj
    assert decode(encode(obj, False)) == obj


def test_error_wire_shape_and_codes() -> None:
    exc = Invalid("score must be an integer", field="score", msg_id="m1")
    assert exc.to_wire() == {"type": "error", "id": "m1", "code": "invalid",
                             "message": "score must be an integer", "field": "score"}
    assert isinstance(exc, ProtocolError)
    assert ERROR_CODES == ("bad_frame", "invalid", "forbidden", "unknown_tour", "not_found", "conflict",
                           "rate_limited", "unavailable")
    assert BadFrame("x").to_wire()["id"] is None
    assert json.loads(encode(exc.to_wire(), False))["field"] == "score"
