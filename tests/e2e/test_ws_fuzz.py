"""No frame crashes the connection: random and mutated frames over a real WebSocket each get an answer, and the
connection still serves a valid message afterwards. (The pure decoder's property is in test_protocol_fuzz.py.)"""

from __future__ import annotations

import json
import random

import msgpack

from tests.conftest import register_tour
from tests.e2e.test_ingest_ws import ask, phone, rating


def mutations(rng: random.Random, count: int) -> list[bytes | str]:
    valid_bin = msgpack.packb(rating("seed", 4, comment="好 good", aspects={"meals": 3}))
    valid_txt = json.dumps(rating("seed", 4, comment="好 good"), ensure_ascii=False)
    frames: list[bytes | str] = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.3:
            frames.append(rng.randbytes(rng.randint(0, 300)))
        elif roll < 0.6:
            data = bytearray(valid_bin)
            for _ in range(rng.randint(1, 6)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            frames.append(bytes(data))
        elif roll < 0.8:
            cut = rng.randrange(len(valid_txt))
            frames.append(valid_txt[:cut] + "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 8))))
        else:
            frames.append("".join(chr(rng.randint(1, 0xD7FF)) for _ in range(rng.randint(0, 200))))
    return frames


async def test_random_and_mutated_frames_never_close_the_connection(app_factory) -> None:
    async with app_factory({"limits": {"bad_frames_per_minute": 100_000, "burst": 100_000,
                                       "messages_per_second": 100_000}}) as (base, _app):
        await register_tour(base, "T1")
        async with await phone(base, "traveller", "t1") as ws:
            for frame in mutations(random.Random(20261123), 400):
                await ws.send(frame)
                reply = await ws.recv()
                decoded = msgpack.unpackb(reply) if isinstance(reply, bytes) else json.loads(reply)
                assert decoded["type"] in ("ack", "error")
                assert isinstance(reply, bytes) == isinstance(frame, bytes)  # answered in the frame's encoding
            assert (await ask(ws, rating("after-the-storm", 5), True))["type"] == "ack"



# --- property-based: 5,000 generated frames a run, both encodings, every message type ---------------------------
FRAMES_PER_RUN = 5000
PER_EXAMPLE = 25  # messages an example draws; each is sent in both encodings


def _today_rating(n: int) -> dict:
    return rating(f"hyp-{n}", 1 + n % 5)


async def test_generated_frames_of_every_type_in_both_encodings_are_each_answered(app_factory, redis_url) -> None:
    import asyncio
    import contextlib
    import logging

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from websockets.sync.client import connect as sync_connect

    from bench.fuzz import check_stored
    from tests.conftest import token
    from tests.e2e.test_ingest_ws import ws_url
    from tests.unit.test_protocol_fuzz import ALL_TYPES, VALID, messages

    frames = (messages | st.sampled_from([obj for _role, obj in VALID])
              | st.integers(0, 10**6).map(_today_rating))
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info:
                records.append(record)

    keep = Keep()
    for name in ("", "uvicorn.error"):
        logging.getLogger(name).addHandler(keep)
    seen_types: set[str] = set()
    sent = [0]
    try:
        async with app_factory({"limits": {"bad_frames_per_minute": 10**9, "burst": 10**9,
                                           "messages_per_second": 10**9}}) as (base, _app):
            await register_tour(base, "T1")
            await register_tour(base, "T-1")

            def run() -> None:
                with contextlib.ExitStack() as stack:
                    sockets = {role: stack.enter_context(sync_connect(ws_url(base, f"/ws/{role}"), additional_headers={
                        "Authorization": f"Bearer {token(role, 'hyp', tours=('T1', 'T-1'))}"}))
                        for role in ("traveller", "guide")}
                    run_with(sockets)

            def run_with(sockets: dict) -> None:

                @settings(max_examples=FRAMES_PER_RUN // (2 * PER_EXAMPLE), deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                @given(batch=st.lists(frames, min_size=PER_EXAMPLE, max_size=PER_EXAMPLE),
                       role=st.sampled_from(["traveller", "guide"]))
                def prop(batch: list[dict], role: str) -> None:
                    ws = sockets[role]
                    for obj in batch:
                        seen_types.add(str(obj.get("type")))
                        for binary in (True, False):
                            try:
                                data = msgpack.packb(obj) if binary else json.dumps(obj, ensure_ascii=False)
                            except (ValueError, OverflowError, TypeError):  # no phone could send it either
                                data = msgpack.packb({"type": obj.get("type"), "id": 1})
                            if isinstance(data, str):
                                data = data.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
                            ws.send(data)
                            reply = ws.recv(timeout=30)
                            sent[0] += 1
                            assert isinstance(reply, bytes) == isinstance(data, bytes)
                            decoded = msgpack.unpackb(reply) if isinstance(reply, bytes) else json.loads(reply)
                            assert decoded["type"] in ("ack", "error"), decoded

                while sent[0] < FRAMES_PER_RUN:
                    prop()
                for ws in sockets.values():  # still open and serving
                    ws.send(msgpack.packb({"type": "notice_read", "id": "last", "notice_id": "N1"}))
                    assert msgpack.unpackb(ws.recv(timeout=30))["type"] == "ack"

            await asyncio.to_thread(run)
    finally:
        for name in ("", "uvicorn.error"):
            logging.getLogger(name).removeHandler(keep)
    assert sent[0] >= FRAMES_PER_RUN
    assert set(ALL_TYPES) <= seen_types
    assert not records, [r.getMessage() for r in records]
    assert await check_stored(redis_url) == []  # every stored event parses back as the message it came from
