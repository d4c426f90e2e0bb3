"""Load generator processes: closed loop (as fast as acks come back) and open loop (fixed rates).

Each load process is spawned (``multiprocessing``, spawn), opens its connections with the lean client of
``bench.wsclient``, says ``ready``, and waits for ``go`` with three instants on the machine's monotonic clock
(shared by all processes): ``t_go`` (start sending), ``t_start`` and ``t_end`` (the measurement window, after a
warm-up). Closed loop: each connection sends its next rating the moment the previous one is answered; acks are
counted in the window. Open loop: frames go out on a fixed schedule whatever the answers, round-robin over the
connections, and a frame's latency runs from its *scheduled* time (so a stalled server cannot hide its stall by
slowing the sender down). A connection's answers come in the order of its frames, so no id matching is needed.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

import msgpack

from bench import wsclient
from bench.common import ServerProc, token

ASPECTS = {"guide": 5, "transport": 4, "meals": 4, "lodging": 5, "itinerary": 4}
CONNECT_CONCURRENCY = 200


# --- the parent's side ---------------------------------------------------------------------------------------
class LoadProc:
    """One spawned load process and its pipe."""

    def __init__(self, target: Callable[[dict[str, Any], Any], None], spec: dict[str, Any]) -> None:
        ctx = mp.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=target, args=(spec, child), daemon=True)
        self.proc.start()
        child.close()

    async def recv(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.pipe.poll, 0.2):
            if not self.proc.is_alive():
                raise RuntimeError(f"load process exited with {self.proc.exitcode}")
            if time.monotonic() > deadline:
                raise TimeoutError("load process did not answer in time")
        reply = self.pipe.recv()
        if isinstance(reply, tuple) and reply and reply[0] == "error":
            raise RuntimeError(f"load process failed: {reply[1]}")
        return reply

    def send(self, obj: Any) -> None:
        self.pipe.send(obj)

    def cpu(self) -> float:
        import psutil

        try:
            times = psutil.Process(self.proc.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


async def sleep_until(instant: float) -> None:
    await asyncio.sleep(max(0.0, instant - time.monotonic()))


async def run_load(specs: list[dict[str, Any]], *, warmup: float, measure: float,
                   servers: list[ServerProc], connect_timeout: float = 90.0) -> dict[str, Any]:
    """Run the load processes together; returns their results and the CPU each server spent in the window."""
    procs = [LoadProc(worker, spec) for spec in specs]
    try:
        await asyncio.gather(*(p.recv(connect_timeout) for p in procs))
        t_go = time.monotonic() + 0.2
        t_start, t_end = t_go + warmup, t_go + warmup + measure
        for p in procs:
            p.send(("go", t_go, t_start, t_end))
        await sleep_until(t_start)
        cpu0, load0 = [s.cpu() for s in servers], [p.cpu() for p in procs]
        await sleep_until(t_end)
        cpu1, load1 = [s.cpu() for s in servers], [p.cpu() for p in procs]
        results = await asyncio.gather(*(p.recv(measure + 60) for p in procs))
    finally:
        for p in procs:
            p.stop()
    return {"results": [r[1] for r in results], "window": measure,
            "server_cpu_s": [b - a for a, b in zip(cpu0, cpu1, strict=True)],
            "load_cpu_s": [b - a for a, b in zip(load0, load1, strict=True)]}


def load_specs(*, mode: str, ports: list[int], path: str, connections: int, processes: int, run_id: str,
               tours: list[str], days: list[str], rate: float = 0.0, scores: tuple[int, ...] = (4, 5)
               ) -> list[dict[str, Any]]:
    """Split ``connections`` (and ``rate``) over ``processes``; connection i goes to ``ports[i % len(ports)]``."""
    specs = []
    for k in range(processes):
        ids = list(range(k, connections, processes))
        specs.append({"mode": mode, "ports": [ports[i % len(ports)] for i in ids], "path": path, "ids": ids,
                      "run_id": run_id, "tours": tours, "days": days, "rate": rate / processes,
                      "scores": list(scores)})
    return specs


# --- the child's side ----------------------------------------------------------------------------------------
def run_child(main: Callable[[dict[str, Any], Any], Coroutine[Any, Any, None]], spec: dict[str, Any],
              pipe: Any) -> None:
    """Entry of every load process: uvloop, the open-files limit lifted, errors reported through the pipe."""
    import traceback

    import uvloop

    from bench.serve import raise_nofile

    raise_nofile()
    try:
        uvloop.run(main(spec, pipe))
    except BaseException:
        pipe.send(("error", traceback.format_exc()[-3000:]))
        raise


async def ask(pipe: Any) -> Any:
    return await asyncio.to_thread(pipe.recv)


class Rater:
    """The ratings one traveller sends: distinct ids, the tour's days in turn."""

    __slots__ = ("prefix", "tour", "days", "scores", "n")

    def __init__(self, run_id: str, i: int, tours: list[str], days: list[str], scores: list[int]) -> None:
        self.prefix = f"{run_id}-{i}-"
        self.tour = tours[i % len(tours)]
        self.days, self.scores, self.n = days, scores, 0

    def frame(self) -> bytes:
        n = self.n = self.n + 1
        return msgpack.packb({"type": "rating", "id": f"{self.prefix}{n}", "tour_id": self.tour,
                              "day": self.days[n % len(self.days)], "score": self.scores[n % len(self.scores)],
                              "aspects": ASPECTS, "nps": 9})


async def open_connections(spec: dict[str, Any], on_message: wsclient.OnMessage) -> list[wsclient.WSConn]:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(i: int, port: int) -> wsclient.WSConn:
        rater = Rater(spec["run_id"], i, spec["tours"], spec["days"], spec["scores"])
        tok = token("traveller", f"{spec['run_id']}-{i}", tours=(rater.tour,))
        async with gate:
            return await wsclient.connect_retrying("127.0.0.1", port, spec["path"], tok, on_message=on_message,
                                                  tag=[rater, deque()])

    return list(await asyncio.gather(*(one(i, port) for i, port in zip(spec["ids"], spec["ports"], strict=True))))


async def _main(spec: dict[str, Any], pipe: Any) -> None:
    state = {"acks": 0, "errors": 0, "sent": 0, "error_samples": [], "latencies": [], "running": True}
    window = [0.0, 0.0]
    closed_loop = spec["mode"] == "closed"

    def on_message(conn: wsclient.WSConn, payload: bytes) -> None:
        now = time.monotonic()
        rater, fifo = conn.tag
        scheduled = fifo.popleft() if fifo else now
        reply = msgpack.unpackb(payload)
        if reply.get("type") != "ack":
            state["errors"] += 1
            if len(state["error_samples"]) < 5:
                state["error_samples"].append(reply)
        elif closed_loop:
            if window[0] <= now < window[1]:
                state["acks"] += 1
        elif scheduled >= window[0]:  # open loop: every answer to a frame scheduled in the window, however late
            state["acks"] += 1
            state["latencies"].append(now - scheduled)
        if closed_loop and state["running"]:
            fifo.append(time.monotonic())
            conn.send(rater.frame())
            state["sent"] += 1

    conns = await open_connections(spec, on_message)
    pipe.send(("ready", len(conns)))
    _, t_go, t_start, t_end = await ask(pipe)
    window[:] = [t_start, t_end]
    await sleep_until(t_go)
    if closed_loop:
        for conn in conns:
            conn.tag[1].append(time.monotonic())
            conn.send(conn.tag[0].frame())
            state["sent"] += 1
        await sleep_until(t_end)
        state["running"] = False
    else:
        await _open_loop(conns, spec["rate"], t_go, t_end, state)
    # let the answers of frames still in flight come in (late ones still count as latencies)
    deadline = time.monotonic() + 10.0
    while any(c.tag[1] for c in conns) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    state["unanswered"] = sum(len(c.tag[1]) for c in conns)
    state["connected"] = len(conns)
    for conn in conns:
        conn.close()
    pipe.send(("result", state))


async def _open_loop(conns: list[wsclient.WSConn], rate: float, t_go: float, t_end: float,
                     state: dict[str, Any]) -> None:
    sent, n = 0, len(conns)
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        due = int((now - t_go) * rate) + 1  # frame i is due at t_go + i / rate: frames 0 .. due - 1 are due now
        while sent < due:
            conn = conns[sent % n]
            conn.tag[1].append(t_go + sent / rate)
            conn.send(conn.tag[0].frame())
            sent += 1
        # until the next frame is due, and never under uvloop's 1 ms timer resolution: a shorter sleep returns at
        # once, and the loop spun a whole core of the machine it shares with the servers it measures
        await asyncio.sleep(max(0.001, t_go + sent / rate - time.monotonic()))
    state["sent"] = sent


def closed_summary(run: dict[str, Any]) -> dict[str, Any]:
    """events/s and server CPU per message of one closed-loop run (CPU summed over the servers given)."""
    acks = sum(r["acks"] for r in run["results"])
    cpu = sum(run["server_cpu_s"])
    return {"events_per_s": round(acks / run["window"], 1),
            "cpu_us_per_msg": round(cpu / acks * 1e6, 1) if acks else None,
            "server_cpu_pct": round(cpu / run["window"] * 100, 1),
            "load_cpu_pct": round(sum(run["load_cpu_s"]) / run["window"] * 100, 1),
            "errors": sum(r["errors"] for r in run["results"]),
            "error_samples": [e for r in run["results"] for e in r["error_samples"]][:3],
            "connections": sum(r["connected"] for r in run["results"])}


def open_summary(run: dict[str, Any], rate: float) -> dict[str, Any]:
    """Ack latency percentiles of one open-loop run at ``rate`` frames/s."""
    from bench.common import ms, percentile

    lat = [x for r in run["results"] for x in r["latencies"]]
    acks = sum(r["acks"] for r in run["results"])
    cpu = sum(run["server_cpu_s"])
    return {"rate": rate, "acked": acks, "ack_p50_ms": ms(percentile(lat, 50)), "ack_p99_ms": ms(percentile(lat, 99)),
            "ack_p999_ms": ms(percentile(lat, 99.9)), "ack_max_ms": ms(max(lat) if lat else None),
            "cpu_us_per_msg": round(cpu / (rate * run["window"]) * 1e6, 1),
            "server_cpu_pct": round(cpu / run["window"] * 100, 1),
            "load_cpu_pct": round(sum(run["load_cpu_s"]) / run["window"] * 100, 1),
            "errors": sum(r["errors"] for r in run["results"]),
            "unanswered": sum(r["unanswered"] for r in run["results"])}


def worker(spec: dict[str, Any], pipe: Any) -> None:
    run_child(_main, spec, pipe)
