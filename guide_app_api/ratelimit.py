"""Per-sender limits, pure: the caller passes the time in, so tests move a clock instead of sleeping.

- :class:`TokenBucket` answers "may this sender send one more message now?" (``messages_per_second`` with
  bursts up to ``burst``; beyond it the answer is ``rate_limited``).
- :class:`BadFrameWindow` counts undecodable frames over the last minute; once there are more than
  ``bad_frames_per_minute`` the endpoint closes the connection with 1008.

Both hold a fixed, small amount of state per sender, whatever the sender does.
"""

from __future__ import annotations

from collections import deque

WINDOW = 60.0  # seconds a bad frame counts against its sender


class TokenBucket:
    """Starts full; refills ``rate`` tokens per second up to ``burst``; each message takes one token."""

    __slots__ = ("rate", "burst", "tokens", "last")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = now

    def take(self, now: float) -> bool:
        elapsed = now - self.last
        if elapsed > 0:  # a clock that steps back refills nothing and never drains the bucket
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class BadFrameWindow:
    """Sliding one-minute window over the most recent bad frames.

    Only the newest ``limit + 1`` times are kept: the limit is exceeded exactly when the oldest of them is
    still inside the window, so older ones can never matter.
    """

    __slots__ = ("limit", "times")

    def __init__(self, limit_per_minute: int) -> None:
        if limit_per_minute < 0:
            raise ValueError("limit_per_minute must not be negative")
        self.limit = limit_per_minute
        # made at the first bad frame: every connection has a window and almost none ever records in it (an empty
        # deque is 760 bytes)
        self.times: deque[float] | None = None

    def record(self, now: float) -> bool:
        """Count one bad frame at ``now``; True once more than ``limit`` fell within the last 60 s."""
        times = self.times
        if times is None:
            times = self.times = deque(maxlen=self.limit + 1)
        times.append(now)
        return len(times) > self.limit and now - times[0] < WINDOW
