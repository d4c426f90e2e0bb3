"""``python -m bench [--quick] [--json out.json] [--only name,...]``: run the scenarios, write one JSON file.

One embedded Valkey (append-only on, as in production) serves every scenario, flushed between them. A scenario
that fails records its error and ``null`` for its keys, and the others still run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.common import Ctx, cpu_times, machine, steal_pct, versions
from server.db.embedded import EmbeddedRedis

SCENARIOS = ("baseline", "ingest", "alert", "watcher", "connections", "scaleout", "app", "cluster", "crisis", "paging",
             "abuse", "fuzz", "reports")
DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer connections, shorter runs (about 2 minutes)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write (default {DEFAULT_JSON})")
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # --quick, shorter: for tests
    parser.add_argument("--only", default="", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    args = parser.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.scenarios = [s for s in SCENARIOS if not only or s in only]
    return args


async def run_all(args: argparse.Namespace, redis_url: str) -> dict[str, Any]:
    ctx = Ctx(redis_url=redis_url, quick=args.quick or args.smoke, time_scale=0.3 if args.smoke else 1.0)
    doc: dict[str, Any] = {
        "quick": ctx.quick, "smoke": args.smoke,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]), "machine": machine(), "versions": versions(),
    }
    try:
        for name in args.scenarios:
            module = importlib.import_module(f"bench.{name}")
            started = time.monotonic()
            print(f"-- {name} ...", file=sys.stderr, flush=True)
            load_before, cpu_before = os.getloadavg(), cpu_times()
            try:
                doc[name] = await module.run(ctx, doc)
            except Exception as exc:  # noqa: BLE001 - recorded in the JSON; the other scenarios still run
                traceback.print_exc()
                doc[name] = {key: None for key in module.KEYS}
                doc[name]["error"] = f"{type(exc).__name__}: {exc}"
            finally:
                ctx.stop_all()
            doc[name]["seconds"] = round(time.monotonic() - started, 1)
            # other work on the machine skews every figure: say how busy it was
            doc[name]["loadavg_1m"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
            # and how much of the machine its hypervisor took meanwhile (a VM's stolen time stalls every process)
            doc[name]["steal_pct"] = steal_pct(cpu_before, cpu_times())
    finally:
        ctx.stop_all()
    doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return doc


def table(doc: dict[str, Any]) -> str:
    lines = []
    for name in SCENARIOS:
        if name not in doc:
            continue
        module = importlib.import_module(f"bench.{name}")
        for key in module.KEYS:
            value = doc[name].get(key)
            lines.append(f"{name + '.' + key:<40} {'-' if value is None else value}")
        for key in getattr(module, "DURABILITY_KEYS", ()):  # `cluster` also writes `durability`
            value = (doc.get("durability") or {}).get(key)
            lines.append(f"{'durability.' + key:<40} {'-' if value is None else value}")
        if doc[name].get("error"):
            lines.append(f"{name + '.error':<40} {doc[name]['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tourpulse-bench-") as data_dir:
        with EmbeddedRedis(Path(data_dir), appendonly=True) as server:
            doc = asyncio.run(run_all(args, server.url))
    doc["seconds"] = round(time.monotonic() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(table(doc))
    print(f"{'total seconds':<40} {doc['seconds']}\nwritten to {args.json}")
    return 1 if any(isinstance(doc.get(n), dict) and doc[n].get("error") for n in args.scenarios) else 0


if __name__ == "__main__":
    sys.exit(main())
