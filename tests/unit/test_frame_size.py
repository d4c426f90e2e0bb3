"""The frame loop's size rule (``guide_app_api.endpoints.too_big``): bytes on the wire, text counted in UTF-8."""

from __future__ import annotations

import pytest

from guide_app_api.endpoints import too_big


@pytest.mark.parametrize(("data", "limit", "expected"), [
    (b"x" * 10, 10, False),
    (b"x" * 11, 10, True),
    ("x" * 10, 10, False),
    ("x" * 11, 10, True),
    ("é" * 5, 10, False),  # 5 characters, 10 bytes
    ("é" * 6, 10, True),  # 6 characters, 12 bytes: under in characters, over in bytes
    ("好" * 400, 1000, True),  # 400 characters, 1,200 bytes
    ("好" * 333, 1000, False),  # 999 bytes
    ("😀" * 250, 1000, False),  # 4 bytes each: exactly the limit
    ("😀" * 250 + "x", 1000, True),
    ("好" * 4096, 65536, False),  # the short-frame shortcut: 4 x 4096 <= 65536
    ("", 0, False),
])
def test_a_frame_is_measured_in_bytes(data: bytes | str, limit: int, expected: bool) -> None:
    assert too_big(data, limit) is expected
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8"))
    assert too_big(data, limit) is (size > limit)
