"""A small Prometheus registry: counters, gauges and histograms with labels, rendered as text format 0.0.4.

Kept in-house (a few dozen lines) rather than adding a dependency: the hot path only increments a dict entry.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import TypeVar

LabelValues = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: tuple[str, ...], values: LabelValues, extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class Counter:
    def __init__(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> None:
        self.name, self.doc, self.label_names = name, doc, labels
        self.values: dict[LabelValues, float] = {}

    def inc(self, *labels: str, by: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + by

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.doc}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {value:g}"


class Gauge(Counter):
    """A value set now, or read at scrape time from a callback."""

    def __init__(self, name: str, doc: str, labels: tuple[str, ...] = (),
                 read: Callable[[], dict[LabelValues, float]] | None = None) -> None:
        super().__init__(name, doc, labels)
        self.read = read

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value

    def render(self) -> Iterable[str]:
        if self.read is not None:
            self.values = dict(self.read())
        yield f"# HELP {self.name} {self.doc}"
        yield f"# TYPE {self.name} gauge"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(self.label_names, labels)} {value:g}"


class Histogram:
    def __init__(self, name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()) -> None:
        self.name, self.doc, self.label_names, self.buckets = name, doc, labels, buckets
        self.counts: dict[LabelValues, list[int]] = {}
        self.sums: dict[LabelValues, float] = {}

    def observe(self, value: float, *labels: str) -> None:
        counts = self.counts.get(labels)
        if counts is None:
            counts = self.counts[labels] = [0] * (len(self.buckets) + 1)
            self.sums[labels] = 0.0
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sums[labels] += value

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.doc}"
        yield f"# TYPE {self.name} histogram"
        for labels, counts in sorted(self.counts.items()):
            running = 0
            for bound, count in zip(self.buckets, counts, strict=False):
                running += count
                le = f'le="{bound:g}"'
                yield f"{self.name}_bucket{_labels(self.label_names, labels, le)} {running}"
            running += counts[-1]
            inf = 'le="+Inf"'
            yield f"{self.name}_bucket{_labels(self.label_names, labels, inf)} {running}"
            yield f"{self.name}_sum{_labels(self.label_names, labels)} {self.sums[labels]:g}"
            yield f"{self.name}_count{_labels(self.label_names, labels)} {running}"


_M = TypeVar("_M", Counter, Gauge, Histogram)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Registry:
    def __init__(self) -> None:
        self.metrics: list[Counter | Histogram] = []

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return self._add(Counter(name, doc, labels))

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = (),
              read: Callable[[], dict[LabelValues, float]] | None = None) -> Gauge:
        return self._add(Gauge(name, doc, labels, read))

    def histogram(self, name: str, doc: str, buckets: tuple[float, ...] = LATENCY_BUCKETS,
                  labels: tuple[str, ...] = ()) -> Histogram:
        return self._add(Histogram(name, doc, buckets, labels))

    def _add(self, metric: _M) -> _M:
        self.metrics.append(metric)
        return metric

    def render(self) -> str:
        return "\n".join(line for metric in self.metrics for line in metric.render()) + "\n"
