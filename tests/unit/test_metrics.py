"""The metrics facade over prometheus_client: the names, labels and text format /metrics shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.core.metrics import Registry


def samples(registry: Registry, family: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, labels) -> value for one family, read back with the library's own parser."""
    for found in text_string_to_metric_families(registry.render()):
        if found.name == family:
            return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in found.samples}
    raise AssertionError(f"{family} not rendered")


def test_counters_histograms_and_gauges_render_under_their_names_and_labels() -> None:
    registry = Registry()
    frames = registry.counter("tourpulse_frames_total", "Frames received from phones, by outcome", ("outcome",))
    frames.inc("ack")
    frames.inc("ack", by=2)
    frames.inc("invalid")
    registry.histogram("tourpulse_ack_seconds", "Frame in to ack out, seconds").observe(0.005)
    connections = registry.gauge("tourpulse_phone_connections", "Connected phones, by role", ("role",))
    connections.set(connections.values.get(("guide",), 0) + 1, "guide")
    connections.set(connections.values.get(("guide",), 0) + 1, "guide")
    text = registry.render()
    assert "# TYPE tourpulse_frames_total counter" in text
    assert samples(registry, "tourpulse_frames") == {
        ("tourpulse_frames_total", (("outcome", "ack"),)): 3.0,
        ("tourpulse_frames_total", (("outcome", "invalid"),)): 1.0}
    ack = samples(registry, "tourpulse_ack_seconds")
    assert ack[("tourpulse_ack_seconds_bucket", (("le", "0.002"),))] == 0.0
    assert ack[("tourpulse_ack_seconds_bucket", (("le", "0.005"),))] == 1.0  # a bound is inclusive (le)
    assert ack[("tourpulse_ack_seconds_count", ())] == 1.0
    assert samples(registry, "tourpulse_phone_connections") == {
        ("tourpulse_phone_connections", (("role", "guide"),)): 2.0}
    assert "process_cpu_seconds_total" in text and "_created" not in text


def test_a_name_asked_for_twice_is_one_family() -> None:
    registry = Registry()
    first = registry.counter("tourpulse_events_folded_total", "Events folded, by type", ("type",))
    again = registry.counter("tourpulse_events_folded_total", "Events folded, by type", ("type",))
    assert again is first
    again.inc("rating", by=3)
    types = [line for line in registry.render().splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types))
    with pytest.raises(ValueError, match="registered already as a counter"):
        registry.histogram("tourpulse_events_folded_total", "x")


def test_registries_are_independent() -> None:
    one, two = Registry(), Registry()
    one.counter("tourpulse_dead_letters_total", "Dead").inc()
    two.counter("tourpulse_dead_letters_total", "Dead")
    assert samples(one, "tourpulse_dead_letters")[("tourpulse_dead_letters_total", ())] == 1.0
    assert samples(two, "tourpulse_dead_letters")[("tourpulse_dead_letters_total", ())] == 0.0


_PROCESS = """
import sys
from server.core.metrics import Registry
registry = Registry()
registry.counter("tourpulse_frames_total", "Frames", ("outcome",)).inc("ack", by=float(sys.argv[1]))
registry.gauge("tourpulse_phone_connections", "Connected", ("role",)).set(1, "guide")
print(registry.render())
registry.close()
"""


def test_processes_sharing_a_multiprocess_dir_are_scraped_as_one(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    for by in ("2", "5"):
        out = subprocess.run([sys.executable, "-c", _PROCESS, by], env=env, cwd=root, capture_output=True,
                             text=True, check=True).stdout
    assert 'tourpulse_frames_total{outcome="ack"} 7.0' in out  # the second process sums both
    assert 'tourpulse_phone_connections{role="guide"} 1.0' in out  # the first one's connections ended with it
    assert "process_cpu_seconds_total" not in out
