"""fuzz: 100,000 generated frames (quick: 30,000) against a real server; none may hurt it (contract §13).

Frames of every message type in both encodings: well-formed messages with one field made hostile (wrong types,
huge numbers, NaN, nesting 100 deep, 10 KB strings, lone surrogates), random maps, bytes flipped in valid frames,
truncated frames and random bytes. Each is sent by a traveller or a guide (closed loop over 20 connections) and
must be answered, in its own encoding, by ``ack`` or ``error``. A failure (``failures``, must be 0) is any other
answer, a closed connection (no 1011 or otherwise), a traceback in the server's log, or an event stored in a shard
stream that does not parse back as the message it came from.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import msgpack
import redis.asyncio as aioredis

from bench import wsclient
from bench.common import SHARDS, Ctx, ServerProc, rating_days, register_tours, settings_doc, token, tour_ids

KEYS = ("frames", "failures")
CONNECTIONS = 20
TOURS = 10
ANSWER_TIMEOUT = 30.0
PHONE_TYPES = ("rating", "notice_read", "incident", "incident_update")
OTHER_TYPES = ("ack_alert", "resolve_alert", "assign_alert", "subscribe", "snapshot", "", "RATING")
HOSTILE: tuple[Any, ...] = (
    None, True, 0, -1, 4.0, 2 ** 63 - 1, -(2 ** 63), float("nan"), float("inf"), "", " ", "x" * 10_000,
    "\u0000", "台风", [], {}, [[[[[]]]]], {"a": {"b": {"c": 1}}}, b"\x00bin", "2026-13-45", "1700000000000-0",
)


def deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = [value]
    return value


class Frames:
    """A reproducible stream of hostile frames for one sender role."""

    def __init__(self, seed: int, tours: list[str], days: list[str]) -> None:
        self.rng = random.Random(seed)
        self.tours, self.days = tours, days
        self.n = 0

    def valid(self, kind: str) -> dict[str, Any]:
        rng, self.n = self.rng, self.n + 1
        base: dict[str, Any] = {"type": kind, "id": f"fz-{self.rng.random():.12f}-{self.n}"}
        tour = rng.choice(self.tours)
        if kind == "rating":
            base.update(tour_id=tour, day=rng.choice(self.days), score=rng.randint(1, 5),
                        aspects={"guide": rng.randint(1, 5)}, comment="好 good", nps=rng.randint(0, 10))
        elif kind == "incident":
            base.update(tour_id=tour, kind="delay", severity=rng.choice(["low", "medium", "high"]),
                        summary="late coach", travellers_affected=rng.randint(0, 40))
        elif kind == "incident_update":
            base.update(incident_id=f"{tour}~guide:g~x", status="in_progress", note="on it")
        elif kind == "notice_read":
            base.update(notice_id="N1")
        return base

    def obj(self) -> dict[str, Any]:
        rng = self.rng
        kind = rng.choice(PHONE_TYPES + OTHER_TYPES)
        msg = self.valid(kind)
        roll = rng.random()
        if roll < 0.25:
            return msg  # well-formed (for the right role: stored; else refused)
        if roll < 0.8:  # one field made hostile, or one more of them
            for _ in range(rng.randint(1, 3)):
                name = rng.choice([*msg, "at", "aspects", "location", "needs", "alternatives"])
                msg[name] = rng.choice(HOSTILE) if rng.random() < 0.9 else deep(rng.randint(60, 120))
            return msg
        return {rng.choice(["type", "id", "x", ""]): rng.choice(HOSTILE) for _ in range(rng.randint(0, 5))}

    def frame(self) -> tuple[bytes, bool]:
        """(payload, binary)."""
        rng = self.rng
        binary = rng.random() < 0.5
        roll = rng.random()
        if roll < 0.05:
            return rng.randbytes(rng.randint(0, 200)), True
        obj = self.obj()
        try:
            data = msgpack.packb(obj) if binary else _json(obj, rng).encode("utf-8", "surrogatepass")
        except (ValueError, OverflowError, TypeError):
            data, binary = msgpack.packb({"type": "rating", "id": 1}), True
        if not binary and b"\xed" in data:  # a lone surrogate written raw is not UTF-8: escape it as JSON does
            data = _json(obj, rng, ascii_only=True).encode()
        if roll < 0.15 and data:
            cut = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                cut[rng.randrange(len(cut))] = rng.randrange(256)
            if binary:
                return bytes(cut), True
            return bytes(cut).decode("utf-8", "replace").encode(), False
        if roll < 0.2 and data:
            cut = data[: rng.randrange(len(data))]
            # a text frame must stay UTF-8 (one that is not is closed with 1007, by design: tested elsewhere)
            return (cut, True) if binary else (cut.decode("utf-8", "ignore").encode(), False)
        return data, binary


def _json(obj: Any, rng: random.Random, ascii_only: bool = False) -> str:
    text = json.dumps(obj, ensure_ascii=ascii_only, default=lambda v: v.hex() if isinstance(v, bytes) else str(v))
    if rng.random() < 0.05:  # a lone surrogate as a JSON escape: valid UTF-8, invalid Unicode
        text = text.replace('"id": "', '"id": "\\ud800', 1)
    return text


class Sender:
    """One connection in closed loop: the next frame goes when the previous one is answered."""

    def __init__(self, frames: Frames, count: int, failures: list[str]) -> None:
        self.frames, self.left, self.failures = frames, count, failures
        self.binary = True
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.conn: wsclient.WSConn | None = None
        self.sent = 0
        self.acked = 0
        self.last = b""

    def next(self) -> None:
        if self.left == 0:
            if not self.done.done():
                self.done.set_result(None)
            return
        assert self.conn is not None
        payload, self.binary = self.frames.frame()
        self.last = payload
        self.left -= 1
        self.sent += 1
        self.conn._write(0x82 if self.binary else 0x81, payload)

    def on_message(self, conn: wsclient.WSConn, payload: bytes) -> None:
        try:
            reply = msgpack.unpackb(payload) if self.binary else json.loads(payload)
            ok = reply.get("type") in ("ack", "error")
            self.acked += reply.get("type") == "ack"
        except ValueError:
            ok = False
        if not ok and len(self.failures) < 1000:
            self.failures.append(f"answer {payload[:200]!r}")
        self.next()


async def run_senders(port: int, tours: list[str], days: list[str], frames: int, seed: int
                      ) -> tuple[int, int, list[str]]:
    failures: list[str] = []
    senders = []
    for i in range(CONNECTIONS):
        role = "traveller" if i % 2 == 0 else "guide"
        sender = Sender(Frames(seed + i, tours, days), frames // CONNECTIONS, failures)
        tok = token(role, f"fuzz-{i}", tours=tuple(tours))
        sender.conn = await wsclient.connect_retrying("127.0.0.1", port, f"/ws/{role}", tok,
                                                      on_message=sender.on_message)
        senders.append(sender)
    for sender in senders:
        sender.next()

    async def finish(sender: Sender) -> None:
        assert sender.conn is not None
        closed = asyncio.ensure_future(asyncio.shield(sender.conn.closed))
        while not sender.done.done():
            before = sender.sent
            done, _ = await asyncio.wait({sender.done, closed}, timeout=ANSWER_TIMEOUT,
                                         return_when=asyncio.FIRST_COMPLETED)
            if closed in done and not sender.done.done():
                failures.append(f"connection closed by the server ({sender.conn.close_code}) after {sender.sent} "
                                f"frames, the last {sender.last[:300]!r}")
                return
            if not done and sender.sent == before:
                failures.append(f"no answer within {ANSWER_TIMEOUT}s after {sender.sent} frames")
                return
        closed.cancel()
        sender.conn.close()

    await asyncio.gather(*(finish(s) for s in senders))
    return sum(s.sent for s in senders), sum(s.acked for s in senders), failures


def stored_event_problem(event: dict[str, Any]) -> str | None:
    """Why a stored phone event does not parse back as the message it came from (None: it does)."""
    from guide_app_api.errors import ProtocolError
    from guide_app_api.messages import parse_message

    role = str(event.get("sender", "")).split(":", 1)[0]
    if role not in ("traveller", "guide") or event.get("type") == "tour":
        return None
    at = dt.datetime.fromtimestamp(float(event["at"]), dt.UTC).isoformat().replace("+00:00", "Z")
    try:
        parse_message({**event, "id": event["msg_id"], "at": at}, role, float(event["received_at"]))
    except (ProtocolError, KeyError, TypeError, ValueError) as exc:
        return f"{event.get('type')} {event.get('msg_id')!r}: {exc}"
    return None


async def check_stored(redis_url: str) -> list[str]:
    from alerts.consumer import decode_entry
    from server.core import keys

    problems = []
    client = aioredis.Redis.from_url(redis_url)
    try:
        for shard in range(SHARDS):
            for raw_id, fields in await client.xrange(keys.events(shard)):
                try:
                    problem = stored_event_problem(decode_entry(raw_id, fields))
                except Exception as exc:  # noqa: BLE001 - any undecodable entry is a failure
                    problem = f"{raw_id!r}: {exc!r}"
                if problem:
                    problems.append(problem)
    finally:
        await client.aclose()
    return problems


async def run(ctx: Ctx, results: dict[str, Any]) -> dict[str, Any]:
    await ctx.flush()
    tours = tour_ids(TOURS, prefix="F")
    await register_tours(ctx, tours)
    total = int(ctx.scale(30_000, 100_000) * (1 if ctx.time_scale == 1.0 else 0.1))
    doc = settings_doc()
    doc["limits"]["bad_frames_per_minute"] = 10 ** 9  # every bad frame answered, none closes: we count answers
    with tempfile.TemporaryDirectory(prefix="tourpulse-fuzz-") as tmp:
        log = Path(tmp) / "server.log"
        server = ServerProc(ctx, "tourpulse", doc=doc, log=log)
        await server.ready()
        try:
            frames, acked, failures = await run_senders(server.port, tours, rating_days(), total, 20261204)
        finally:
            server.stop()
        text = log.read_text(errors="replace")
    tracebacks = text.count("Traceback")
    failures += [f"{tracebacks} tracebacks in the server log"] if tracebacks else []
    stored = await check_stored(ctx.redis_url)
    failures += stored
    return {"frames": frames, "failures": len(failures), "failure_samples": failures[:10], "acked": acked,
            "stored_events_checked": True, "server_log_tracebacks": tracebacks}
