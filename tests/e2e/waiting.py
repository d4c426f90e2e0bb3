"""Waiting for the real parts to settle: one way for every end-to-end test (no timings asserted, only a bound)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
WAIT = 20.0  # seconds any one condition may take to come true on a loaded 2-core machine
POLL = 0.05


async def eventually(check: Callable[[], Awaitable[T]], what: str, wait: float = WAIT) -> T:
    """``check()`` once it returns something truthy; an AssertionError naming ``what`` after ``wait`` seconds."""
    try:
        async with asyncio.timeout(wait):
            while not (result := await check()):
                await asyncio.sleep(POLL)
            return result
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None
