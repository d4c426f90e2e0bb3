"""Property: whatever a client sends as an HTTP body, the one JSON reader answers a JSON object that can be stored
(UTF-8, finite numbers, at most 64 deep) or ``Invalid`` on ``body``; never anything else (an HTTP 500)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guide_app_api.errors import Invalid
from server.web.http import MAX_DEPTH, json_body

FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))

texts = st.text(max_size=12) | st.sampled_from(["\ud800", "a\udfffb", "台风", ""])
leaves = st.none() | st.booleans() | st.integers() | st.floats() | texts
trees = st.recursive(leaves, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(texts, kids, max_size=3),
                     max_leaves=20)


class FakeRequest:
    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def body(self) -> bytes:
        return self.raw


def read(raw: bytes) -> dict[str, Any] | None:
    coro = json_body(FakeRequest(raw))  # type: ignore[arg-type]
    try:
        coro.send(None)  # it awaits nothing that suspends: driven by hand, no event loop per example
    except StopIteration as done:
        return done.value
    except Invalid as exc:
        assert exc.field == "body"
        return None
    raise AssertionError("json_body suspended")


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def storable(body: dict[str, Any]) -> None:
    json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")  # raises on NaN, surrogates
    assert depth(body) <= MAX_DEPTH


@settings(FUZZ, max_examples=150)  # recursive trees cost hypothesis more than the reader
@given(tree=st.dictionaries(texts, trees, max_size=4))
def test_generated_objects(tree: dict[str, Any]) -> None:
    body = read(json.dumps(tree).encode())  # json.dumps writes NaN, Infinity and \\ud800 escapes as they are
    if body is not None:
        storable(body)


@FUZZ
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes(raw: bytes) -> None:
    body = read(raw)
    if body is not None:
        storable(body)


@FUZZ
@given(n=st.integers(1, 5000))
def test_nesting(n: int) -> None:
    body = read(b'{"a": ' + b"[" * n + b"]" * n + b"}")
    assert (body is not None) == (n + 1 <= MAX_DEPTH)
