"""The benchmark harness runs end to end: its cheapest scenario, shortened, writes the keys it promises.

No timing is asserted: figures on a shared machine are not a test's business (docs/performance.md has them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_baseline_scenario_writes_its_keys(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--only", "baseline", "--json", str(out)],
                          capture_output=True, text=True, timeout=90, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["quick"] is True
    assert {"machine", "versions", "started_at", "finished_at"} <= doc.keys()
    from bench.baseline import KEYS

    for key in KEYS:
        assert isinstance(doc["baseline"][key], int | float) and doc["baseline"][key] > 0, key
    assert doc["baseline"]["closed_loop"]["errors"] == 0


@pytest.mark.slow
@pytest.mark.browser
def test_app_scenario_writes_its_keys_and_drains_the_outbox_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--only", "app", "--json", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)
    assert proc.returncode == 0, proc.stderr[-3000:]
    app = json.loads(out.read_text())["app"]
    for key in ("shell_bytes_gz", "first_render_slow3g_ms", "reopen_offline_ms", "outbox_drain_ms"):
        assert isinstance(app[key], int) and app[key] > 0, key
    assert (app["outbox_acked"], app["outbox_doubled"]) == (50, 0)


@pytest.mark.slow
def test_fuzz_scenario_sends_its_frames_and_none_fails(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--only", "fuzz", "--json", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    fuzz = json.loads(out.read_text())["fuzz"]
    assert fuzz["frames"] >= 3000 and fuzz["failures"] == 0, fuzz.get("failure_samples")
    assert fuzz["acked"] > 0  # well-formed frames among them were stored, and checked after
