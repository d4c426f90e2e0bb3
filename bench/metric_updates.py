"""``python -m bench.metric_updates [--rounds N] [--n N]``: what the metric updates of one message cost.

The phone path updates two metrics per frame: ``tourpulse_frames_total{outcome}`` and, for an ack, the
``tourpulse_ack_seconds`` histogram (``server/web/phones.py`` ``observe``). This times exactly that, per message,
for the ``prometheus_client`` facade of ``server/core/metrics.py`` and for the hand-written registry it replaced
(its two hot methods, kept here verbatim), taking turns round by round so the machine's drift falls on both alike.
It also times the watcher's per-event updates (a fold counter per batch and type, an alert-latency observation).
CPU time (``time.process_time``), nanoseconds per message; docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import time
from collections.abc import Callable

from server.core.metrics import LATENCY_BUCKETS, Registry


class _InHouseCounter:
    """``Counter.inc`` of the hand-written registry (server/core/metrics.py before issue 14)."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + by


class _InHouseHistogram:
    """``Histogram.observe`` of the hand-written registry."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts: dict[tuple[str, ...], list[int]] = {}
        self.sums: dict[tuple[str, ...], float] = {}

    def observe(self, value: float, *labels: str) -> None:
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[labels] = [0] * (len(self.buckets) + 1)
            self.sums[labels] = 0.0
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[labels] += value


def phone_path(frames: _InHouseCounter, latency: _InHouseHistogram, n: int) -> float:
    """n frames' updates as ``PhoneService.observe`` makes them (19 in 20 acks, 1 a refusal); CPU ns each."""
    perf = time.perf_counter
    outcomes = ["ack"] * 19 + ["invalid"]
    start = time.process_time()
    for i in range(n):
        outcome = outcomes[i % 20]
        started = perf()
        frames.inc(outcome)
        if outcome == "ack":
            latency.observe(perf() - started)
    return (time.process_time() - start) / n * 1e9


def bare_loop(n: int) -> float:
    """The same loop with no metric update: what ``phone_path`` costs besides the metrics."""
    perf = time.perf_counter
    outcomes = ["ack"] * 19 + ["invalid"]
    start = time.process_time()
    for i in range(n):
        outcome = outcomes[i % 20]
        started = perf()
        if outcome == "ack":
            perf() - started  # noqa: B018 - the subtraction the histogram's argument costs
    return (time.process_time() - start) / n * 1e9


def watcher_path(folded: _InHouseCounter, latency: _InHouseHistogram, n: int) -> float:
    """Per event, as the watcher makes them at a batch of 256 ratings, one alert change in ten events."""
    start = time.process_time()
    for i in range(n):
        if i % 256 == 0:
            folded.inc("rating", by=256)
        if i % 10 == 0:
            latency.observe(0.004)
    return (time.process_time() - start) / n * 1e9


def variants() -> dict[str, Callable[[], tuple[_InHouseCounter, _InHouseHistogram]]]:
    def in_house() -> tuple[_InHouseCounter, _InHouseHistogram]:
        return _InHouseCounter(), _InHouseHistogram(LATENCY_BUCKETS)

    def prometheus() -> tuple[_InHouseCounter, _InHouseHistogram]:
        registry = Registry()
        return (registry.counter("tourpulse_frames_total", "Frames", ("outcome",)),  # type: ignore[return-value]
                registry.histogram("tourpulse_ack_seconds", "Frame in to ack out"))

    return {"in_house": in_house, "prometheus_client": prometheus}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.metric_updates", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n", type=int, default=300_000, help="messages per round and variant")
    args = parser.parse_args(argv)
    made = variants()
    phone: dict[str, list[float]] = {name: [] for name in made}
    watcher: dict[str, list[float]] = {name: [] for name in made}
    bare: list[float] = []
    for _ in range(args.rounds):  # taking turns: in-house, prometheus, bare, ...
        for name, make in made.items():
            phone[name].append(phone_path(*make(), args.n))
            watcher[name].append(watcher_path(*make(), args.n))
        bare.append(bare_loop(args.n))
    loop = statistics.median(bare)
    print(f"loop without metrics: {loop:.0f} ns/msg (subtracted below)")
    for name in made:
        cost = [p - loop for p in phone[name]]
        print(f"{name:18} phone path {statistics.median(cost):6.0f} ns/msg (min {min(cost):.0f}, max {max(cost):.0f})"
              f"   watcher {statistics.median(watcher[name]):5.0f} ns/event")
    extra = statistics.median(phone["prometheus_client"]) - statistics.median(phone["in_house"])
    print(f"prometheus_client costs {extra:.0f} ns/msg more on the phone path")


if __name__ == "__main__":
    main()
