"""abuse: what attackers with valid tokens cost everyone else (contract §13).

- **Stalled phones.** 1,000 normal phones send ratings at 1,000 msgs/s (open loop, one load process) for the whole
  run (full: 60 s in twenty windows of 3 s; quick: 18 s in eight of 2.25 s; after a warm-up of one window), in
  windows that take turns: without attackers, then with 20 phones that never read while their tour gets pushes
  (each opens a connection at the window's start, and another every ``REDIAL_S``, never reading; the server
  closes each with 1013 about 1.8 s after it connects: its kernel buffer, then ``send_queue``, fill up).
  The attackers' tour gets its pushes (200 a second, ~2 KB each) in every window, warm-up included: the attacked
  and the quiet windows differ in the attackers and nothing else.
  ``ack_p99_ratio`` is the median of the attacked windows' p99 ack latencies of the normal phones over the median
  of the quiet ones' (< 2); ``ack_p99_ratio_paired`` (no target: a diagnostic) is the median over the attacked
  windows of each one's p99 over the geometric mean of its two quiet neighbours', which a drift in the machine's
  other load over the run does not move; ``rss_growth_mb`` is the server's peak RSS over its RSS once all normal
  phones were connected (< 50). Ten windows of each (3,000 acks each, full), not three of 10,000: on a shared
  machine a neighbour's burst of a second or two decides one window's p99 (quiet windows of one run ranged
  3-163 ms), and the median of ten is not moved by four such windows on either side.
- **One token, many sockets.** 2,000 connections opened with one token: ``open_per_sender`` is how many the server
  leaves open (``[limits] connections_per_sender``, 5).
- **Churn.** 10,000 connect/disconnect cycles (quick: 3,000), each with a token of its own, after a warm-up:
  ``churn_rss_mb`` is the server's RSS after them minus before (< 5).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import time
from collections import deque
from pathlib import Path
from typing import Any

import msgpack
import redis.asyncio as aioredis

from bench import wsclient
from bench.common import Ctx, ServerProc, ms, percentile, rating_days, register_tours, token, tour_ids
from bench.load import LoadProc, _open_loop, ask, open_connections, run_child, sleep_until

KEYS = ("ack_p99_ratio", "ack_p99_ratio_paired", "rss_growth_mb", "open_per_sender", "churn_rss_mb")
TOURS = 100
NORMAL = 1000
RATE = 1000
ATTACKERS = 20
ATTACK_TOUR = "ATTACK"
PUSH_RATE = 200  # pushes a second to the attackers' tour, each ~2 KB: a stalled phone is closed ~1.8 s in
WINDOWS = (8, 20)  # quick, full: quiet, attacked, quiet, attacked, ...
REDIAL_S = 5.0  # an attacker opens a fresh connection this often (the old one left to the server to close)
MIB = 1024 * 1024


# --- the normal phones: one load process ---------------------------------------------------------------------
async def _normal_main(spec: dict[str, Any], pipe: Any) -> None:
    samples: list[tuple[float, float]] = []  # (scheduled, latency)
    errors = [0]

    def on_message(conn: wsclient.WSConn, payload: bytes) -> None:
        now = time.monotonic()
        fifo = conn.tag[1]
        scheduled = fifo.popleft() if fifo else now
        if msgpack.unpackb(payload).get("type") == "ack":
            samples.append((scheduled, now - scheduled))
        else:
            errors[0] += 1

    conns = await open_connections(spec, on_message)
    pipe.send(("ready", len(conns)))
    _, t_go, _t_start, t_end = await ask(pipe)
    state: dict[str, Any] = {}
    await sleep_until(t_go)
    await _open_loop(conns, spec["rate"], t_go, t_end, state)
    deadline = time.monotonic() + 10.0
    while any(c.tag[1] for c in conns) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for conn in conns:
        conn.close()
    pipe.send(("result", {"samples": samples, "errors": errors[0], "sent": state.get("sent", 0),
                          "connected": len(conns)}))


def normal_worker(spec: dict[str, Any], pipe: Any) -> None:
    run_child(_normal_main, spec, pipe)


# --- the attackers: phones that never read -------------------------------------------------------------------
class Stalled(asyncio.Protocol):
    """Completes the handshake, then never reads again: the server's pushes pile up in TCP buffers."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.head = b""
        self.open = asyncio.get_running_loop().create_future()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.head += data
        if b"\r\n\r\n" in self.head and not self.open.done():
            self.open.set_result(self.head.startswith(b"HTTP/1.1 101"))
            assert self.transport is not None
            self.transport.pause_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.open, self.lost):
            if not fut.done():
                fut.set_result(False)


async def stalled_phone(port: int, sub: str, until: float, closed: list[int]) -> None:
    """One attacker: connect and never read; open another connection every ``REDIAL_S`` (it never reads, so it
    never sees the server close the last one either), all left open until ``until``, then dropped. The server's
    own count of what it closed is ``send_queue_closed`` in the results."""
    loop = asyncio.get_running_loop()
    tok = token("traveller", sub, tours=(ATTACK_TOUR,))
    opened: list[asyncio.Transport] = []
    try:
        while time.monotonic() < until:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, ("127.0.0.1", port))
                transport, proto = await loop.create_connection(Stalled, sock=sock)
            except OSError:
                sock.close()
                await asyncio.sleep(0.1)
                continue
            opened.append(transport)
            transport.write((f"GET /ws/traveller HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                             f"Connection: Upgrade\r\nSec-WebSocket-Key: c3RhbGxlZC1waG9uZS0xNg==\r\n"
                             f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {tok}\r\n\r\n").encode())
            try:
                accepted = await asyncio.wait_for(asyncio.shield(proto.open), 10.0)
            except TimeoutError:
                accepted = False
            closed[0 if accepted else 1] += 1
            await asyncio.sleep(min(REDIAL_S if accepted else 0.1, max(0.0, until - time.monotonic())))
    finally:
        for transport in opened:
            transport.abort()


async def pusher(redis_url: str, until: float) -> int:
    """Pushes for the attackers' tour at PUSH_RATE a second, as notices are published."""
    client = aioredis.Redis.from_url(redis_url)
    body = json.dumps({"type": "notice", "tour_id": ATTACK_TOUR, "audience": "all", "kind": "info",
                       "title": "x", "body": "y" * 1800})
    sent = 0
    try:
        started = time.monotonic()
        while time.monotonic() < until:
            due = int((time.monotonic() - started) * PUSH_RATE) + 1
            if due > sent:
                async with client.pipeline(transaction=False) as pipe:
                    for _ in range(due - sent):
                        pipe.xadd("tp:{notices}:stream", {"n": body}, maxlen=200_000, approximate=True)
                    await pipe.execute()
                sent = due
            await asyncio.sleep(0.01)
    finally:
        await client.aclose()
    return sent


async def rss_sampler(server: ServerProc, until: float, peak: list[int]) -> None:
    while time.monotonic() < until:
        peak[0] = max(peak[0], server.rss())
        await asyncio.sleep(0.25)


async def stalled_phones(ctx: Ctx, server: ServerProc, tours: list[str]) -> dict[str, Any]:
    window = ctx.seconds(2.25, 3.0)
    windows = int(ctx.scale(*WINDOWS))
    spec = {"mode": "open", "ports": [server.port] * NORMAL, "path": "/ws/traveller", "ids": list(range(NORMAL)),
            "run_id": "normal", "tours": tours, "days": rating_days(), "rate": RATE, "scores": [4, 5]}
    load = LoadProc(normal_worker, spec)
    try:
        await load.recv(120.0)
        rss0 = server.rss()
        t_load = time.monotonic() + 0.2
        t_go = t_load + window  # one window of warm-up, not counted
        t_end = t_go + windows * window
        load.send(("go", t_load, t_go, t_end))
        peak = [rss0]
        sampling = asyncio.create_task(rss_sampler(server, t_end, peak))
        # the attackers' tour gets its pushes all along: only the attackers differ between the windows
        pushing = asyncio.create_task(pusher(ctx.redis_url, t_end))
        closed = [0, 0]  # connections opened, refused
        closed_before = _send_queue_closed(server.port)
        cpu: list[float] = []  # the server's CPU seconds at each window's start (and the last one's end)
        for w in range(windows):
            start = t_go + w * window
            await sleep_until(start)
            cpu.append(server.cpu())
            if w % 2 == 1:  # an attacked window
                end = start + window
                await asyncio.gather(*(stalled_phone(server.port, f"stall-{w}-{i}", end, closed)
                                       for i in range(ATTACKERS)))
        await sleep_until(t_end)
        cpu.append(server.cpu())
        await sampling
        pushed = await pushing
        result = (await load.recv(windows * window + 60))[1]
        send_queue_closed = _send_queue_closed(server.port) - closed_before
    finally:
        load.stop()
    if os.environ.get("ABUSE_DUMP"):  # diagnostics: every ack's (scheduled, latency), to see where a tail lies
        dump = {"t_go": t_go, "window": window, "samples": result["samples"]}
        Path(os.environ["ABUSE_DUMP"]).write_text(json.dumps(dump))
    by_window: list[list[float]] = [[] for _ in range(windows)]
    for scheduled, latency in result["samples"]:
        w = int((scheduled - t_go) // window)
        if 0 <= w < windows:
            by_window[w].append(latency)
    p99 = [percentile(lat, 99) for lat in by_window]
    p50 = [percentile(lat, 50) for lat in by_window]
    quiet = [p for p in p99[0::2] if p is not None]
    attacked = [p for p in p99[1::2] if p is not None]
    ratio = (statistics.median(attacked) / statistics.median(quiet)) if quiet and attacked else None
    # each attacked window against the quiet windows either side of it (the geometric mean of the two): the
    # neighbours' load drifts over tens of seconds on a shared machine, and a pair sees the same drift
    pairs = []
    for w in range(1, windows, 2):
        sides = [p99[v] for v in (w - 1, w + 1) if v < windows and p99[v]]
        if p99[w] is not None and sides:
            pairs.append(p99[w] / statistics.geometric_mean(sides))
    quiet50 = [p for p in p50[0::2] if p is not None]
    attacked50 = [p for p in p50[1::2] if p is not None]
    ratio50 = (statistics.median(attacked50) / statistics.median(quiet50)) if quiet50 and attacked50 else None
    return {"ack_p99_ratio": round(ratio, 2) if ratio is not None else None,
            "ack_p50_ratio": round(ratio50, 2) if ratio50 is not None else None,
            "ack_p99_pair_ratios": [round(r, 2) for r in pairs],
            "ack_p99_ratio_paired": round(statistics.median(pairs), 2) if pairs else None,
            "rss_growth_mb": round((peak[0] - rss0) / MIB, 1),
            "window_p99_ms": [ms(p) for p in p99], "window_p50_ms": [ms(p) for p in p50],
            "window_acks": [len(lat) for lat in by_window], "window_s": window,
            # the server's CPU in each window, as a share of one core: what the attackers cost it
            "window_server_cpu_pct": [round(100 * (b - a) / window, 1) for a, b in zip(cpu, cpu[1:], strict=False)],
            "quiet_p99_median_ms": ms(statistics.median(quiet)) if quiet else None,
            "attacked_p99_median_ms": ms(statistics.median(attacked)) if attacked else None,
            "normal_errors": result["errors"], "normal_acked": len(result["samples"]), "normal_sent": result["sent"],
            "attacker_connections": closed[0], "attacker_refused": closed[1], "send_queue_closed": send_queue_closed,
            "pushes": pushed}


def _send_queue_closed(port: int) -> int:
    """The server's count of phones it closed (1013) for not reading their pushes."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:  # noqa: S310 - loopback
        for line in resp.read().decode().splitlines():
            if line.startswith("tourpulse_phone_send_queue_closed_total"):
                return int(float(line.split()[-1]))
    return 0


# --- one token, many sockets ---------------------------------------------------------------------------------
async def one_sender(server: ServerProc, count: int = 2000) -> int:
    tok = token("traveller", "many-sockets", tours=(ATTACK_TOUR,))
    gate = asyncio.Semaphore(100)

    async def one() -> wsclient.WSConn | None:
        async with gate:
            try:
                return await wsclient.connect_retrying("127.0.0.1", server.port, "/ws/traveller", tok)
            except (OSError, TimeoutError):
                return None

    conns = [c for c in await asyncio.gather(*(one() for _ in range(count))) if c is not None]
    await asyncio.sleep(1.0)  # the server closes what is over the cap as it goes; let the last closes land
    still_open = sum(1 for c in conns if c.is_open)
    for conn in conns:
        conn.close()
    return still_open


# --- churn ---------------------------------------------------------------------------------------------------
async def churn(server: ServerProc, cycles: int, prefix: str) -> None:
    gate = asyncio.Semaphore(50)
    tokens = deque(token("traveller", f"{prefix}-{i}", tours=(ATTACK_TOUR,)) for i in range(cycles))

    async def one(tok: str) -> None:
        async with gate:
            try:
                conn = await wsclient.connect_retrying("127.0.0.1", server.port, "/ws/traveller", tok)
            except (OSError, TimeoutError):
                return
            conn.close()
            await conn.closed

    await asyncio.gather(*(one(t) for t in tokens))


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    await ctx.flush()
    tours = tour_ids(TOURS)
    await register_tours(ctx, [*tours, ATTACK_TOUR])
    server = ServerProc(ctx, "tourpulse")
    await server.ready()
    try:
        stalled = await stalled_phones(ctx, server, tours)
        open_per_sender = await one_sender(server)
        cycles = int(ctx.scale(3000, 10_000) * (1 if ctx.time_scale == 1.0 else 0.3))
        await churn(server, max(200, cycles // 10), "warm")
        await asyncio.sleep(1.0)
        before = server.rss()
        started = time.monotonic()
        await churn(server, cycles, "churn")
        await asyncio.sleep(1.0)
        after = server.rss()
        churn_s = time.monotonic() - started
    finally:
        server.stop()
    return {"ack_p99_ratio": stalled["ack_p99_ratio"], "ack_p99_ratio_paired": stalled["ack_p99_ratio_paired"],
            "rss_growth_mb": stalled["rss_growth_mb"],
            "open_per_sender": open_per_sender, "churn_rss_mb": round((after - before) / MIB, 1),
            "churn_cycles": cycles, "churn_per_s": round(cycles / churn_s, 1), "stalled_phones": stalled}
