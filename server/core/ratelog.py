"""Rate-limited logging: one line per message template per interval, then a count of what was held back.

While storage is down every background loop (the hubs, the writer, the watcher) warns on each retry: the issue-19
finding was about 24 lines a second for as long as it lasted. :class:`RateLimit` lets the first line of each
template through, holds back the repeats for ``interval`` seconds, and says how many it held back on the next.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLimit(logging.Filter):
    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # template -> (last let through, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        key = (record.name, str(record.msg))
        now = self.clock()
        last, held = self._seen.get(key, (float("-inf"), 0))
        if now - last < self.interval:
            self._seen[key] = (last, held + 1)
            return False
        if len(self._seen) > 10_000:  # templates are few; a flood of distinct ones must not grow this forever
            self._seen.clear()
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar lines held back in the last {self.interval:g}s)"
        return True


def install_rate_limit(interval: float = 10.0) -> RateLimit:
    """Log WARNING and above of every logger through one rate-limited stderr handler on the root logger (once),
    and rate-limit uvicorn's own handlers too."""
    root = logging.getLogger()
    existing = next((f for h in root.handlers for f in h.filters if isinstance(f, RateLimit)), None)
    if existing is not None:
        return existing
    limit = RateLimit(interval)
    if not root.handlers:  # else (the watcher's basicConfig) its handlers are filtered as they are
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        if root.level == logging.NOTSET or root.level > logging.WARNING:
            root.setLevel(logging.WARNING)
    handlers = [*root.handlers, *(h for name in ("uvicorn", "uvicorn.error") for h in logging.getLogger(name).handlers)]
    for h in handlers:
        h.addFilter(limit)
    return limit
