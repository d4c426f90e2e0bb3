"""The process's metrics: a thin facade over ``prometheus_client``, the library Prometheus users expect.

Call sites stay as simple as they were (``registry.counter(name, doc, labels).inc("ack")``, ``.observe(seconds)``,
``.set(value, "3")``); underneath, ``prometheus_client`` keeps the values, renders the standard text format and
adds its process collectors (CPU, memory, open files, GC, Python version).

- One :class:`Registry` per process part (the web app, a watcher) and no global default: tests build several in
  one process, and the library's default registry would refuse the second copy of a name.
- Asking a registry twice for one name returns the metric registered first (the consumers of sixteen shards share
  one ``tourpulse_events_folded_total``), so each family is declared once in the exposition.
- A labelled metric keeps its children by label values: the hot path (a phone frame's ``inc`` and ``observe``)
  is one dict lookup and the library's own update. docs/performance.md has what that costs.
- Several processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set (the library's own switch, read by the library when
  it is imported), values live in memory-mapped files there and :meth:`Registry.render` sums every process's
  (gauges: live processes only), so any one process can serve the whole host's figures.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, generate_latest, multiprocess

LabelValues = tuple[str, ...]
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# a `_created` timestamp series beside every counter and histogram doubles the exposition and says nothing here
prometheus_client.disable_created_metrics()


class _Labelled:
    """A library metric and its children by label values, made once each."""

    __slots__ = ("metric", "children")

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[LabelValues, Any] = {}

    def child(self, labels: LabelValues) -> Any:
        found = self.children.get(labels)
        if found is None:
            found = self.children[labels] = self.metric.labels(*labels) if labels else self.metric
        return found


class Counter(_Labelled):
    __slots__ = ()

    def inc(self, *labels: str, by: float = 1.0) -> None:
        child = self.children.get(labels)
        (child if child is not None else self.child(labels)).inc(by)


class Histogram(_Labelled):
    __slots__ = ()

    def observe(self, value: float, *labels: str) -> None:
        child = self.children.get(labels)
        (child if child is not None else self.child(labels)).observe(value)


class Gauge(_Labelled):
    """A value set now. ``values`` mirrors what was set in this process, by label values."""

    __slots__ = ("values",)

    def __init__(self, metric: Any) -> None:
        super().__init__(metric)
        self.values: dict[LabelValues, float] = {}

    def set(self, value: float, *labels: str) -> None:
        self.values[labels] = value
        self.child(labels).set(value)


class Registry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        self._metrics: dict[str, _Labelled] = {}
        if self.multiprocess_dir is None:  # with several processes, each one's figures are in its own files
            prometheus_client.ProcessCollector(registry=self.registry)
            prometheus_client.PlatformCollector(registry=self.registry)
            prometheus_client.GCCollector(registry=self.registry)

    def counter(self, name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
        return self._add(name, Counter, lambda: prometheus_client.Counter(
            name, doc, labels, registry=self.registry))

    def gauge(self, name: str, doc: str, labels: tuple[str, ...] = (), *,
              multiprocess_mode: str = "livesum") -> Gauge:
        """``multiprocess_mode``: how several processes' values add up (the library's modes): the sum over the
        live ones by default (connections), ``livemostrecent`` for a figure any one of them measures."""
        return self._add(name, Gauge, lambda: prometheus_client.Gauge(
            name, doc, labels, registry=self.registry, multiprocess_mode=multiprocess_mode))

    def histogram(self, name: str, doc: str, buckets: tuple[float, ...] = LATENCY_BUCKETS,
                  labels: tuple[str, ...] = ()) -> Histogram:
        return self._add(name, Histogram, lambda: prometheus_client.Histogram(
            name, doc, labels, registry=self.registry, buckets=buckets))

    def _add(self, name: str, kind: type[Any], make: Callable[[], Any]) -> Any:
        found = self._metrics.get(name)
        if found is None:
            found = self._metrics[name] = kind(make())
        elif not isinstance(found, kind):
            raise ValueError(f"{name} is registered already as a {type(found).__name__.lower()}")
        return found

    def close(self) -> None:
        """At a clean exit: with several processes, this one's live gauges stop counting (connections it no longer
        holds). Its counters stay in the directory, so the host's totals never go back."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)

    def render(self) -> str:
        """The standard text format (0.0.4): this registry's metrics, or every process's when several share a
        ``PROMETHEUS_MULTIPROC_DIR``."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry).decode()
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)
        return generate_latest(merged).decode()
