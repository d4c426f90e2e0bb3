"""``python -m bench.report [results.json]``: the figures of a run as the Markdown table of docs/performance.md,
each target of issues 7 and 19 beside its figure, met or not.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.__main__ import DEFAULT_JSON, SCENARIOS

# key -> (target as written, test: True met, False not met, None not measured at the target's scale)
TARGETS: dict[str, tuple[str, Callable[[Any, dict[str, Any]], bool | None]]] = {
    "ingest.ratio_to_baseline": (">= 1.2", lambda v, d: v >= 1.2),
    "ingest.ack_p99_ms": ("< 10 ms at 2,000/s", lambda v, d: v < 10),
    "alert.loaded_latency_p99_ms": ("< 20 ms at 1,000/s", lambda v, d: v < 20),
    "watcher.events_per_s": (">= 10,000", lambda v, d: v >= 10_000),
    "reports.p95_ms": ("< 500 ms, 30 days, 200 tours, 100,000 ratings", lambda v, d: v < 500),
    "connections.idle_max": (">= 10,000", lambda v, d: _at_scale(d) and v >= 10_000),
    "connections.rss_per_conn_kib": ("< 40 at 10,000", lambda v, d: _at_scale(d) and v < 40),
    "connections.storm_lost": ("0 of 10,000 phones", lambda v, d: _at_scale(d) and v == 0),
    "connections.storm_doubled": ("0 of 10,000 phones", lambda v, d: _at_scale(d) and v == 0),
    # issue 17
    "crisis.check_fanout_p99_ms": ("< 2,000 ms at 10,000 phones",
                                   lambda v, d: v < 2000 if d["crisis"].get("phones", 0) >= 10_000 else None),
    "crisis.rollup_ms": ("< 200 ms with 10,000 answers",
                         lambda v, d: v < 200 if d["crisis"].get("answers_acked", 0) >= 10_000 else None),
    # issue 19
    "abuse.ack_p99_ratio": ("< 2", lambda v, d: v < 2),
    "abuse.rss_growth_mb": ("< 50", lambda v, d: v < 50),
    "abuse.open_per_sender": ("<= connections_per_sender (5)", lambda v, d: v <= 5),
    "abuse.churn_rss_mb": ("< 5", lambda v, d: v < 5),
    "fuzz.frames": ("100,000", lambda v, d: True if v >= 100_000 else None),
    "fuzz.failures": ("0", lambda v, d: v == 0),
}


def _at_scale(doc: dict[str, Any]) -> bool | None:
    """None when the run opened fewer than 10,000 connections (--quick): the target was not tried."""
    return True if doc["connections"].get("opened", 0) >= 10_000 else None


def lookup(doc: dict[str, Any], key: str) -> Any:
    section, _, name = key.partition(".")
    return (doc.get(section) or {}).get(name)


def markdown(doc: dict[str, Any]) -> str:
    import importlib

    rows = ["| figure | value | target | met |", "|---|---:|---|---|"]
    for name in SCENARIOS:
        if name not in doc:
            continue
        for key in importlib.import_module(f"bench.{name}").KEYS:
            full = f"{name}.{key}"
            value = lookup(doc, full)
            target, test = TARGETS.get(full, ("", None))
            verdict = None if test is None or value is None else test(value, doc)
            met = {True: "yes", False: "**no**", None: "" if test is None else "not tried (quick)"}[verdict]
            rows.append(f"| `{full}` | {'-' if value is None else value} | {target} | {met} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_JSON
    print(markdown(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
