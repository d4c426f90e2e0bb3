"""``server.db.scripts.to_json`` writes what ``json.dumps`` (compact, UTF-8) writes, fast path or not."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.db.scripts import to_json


@pytest.mark.parametrize("value", [0, -5, 10**30, 2.5, 0.1, 1e20, 3.0, -0.0, float("nan"), float("inf"),
                                   float("-inf"), None, True, False, "", 'say "hi" \\ é 好', [1, {"a": None}],
                                   {"k": [], "x": 1.5}, (1, 2)])
def test_to_json_writes_what_json_dumps_writes(value: Any) -> None:
    assert to_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
