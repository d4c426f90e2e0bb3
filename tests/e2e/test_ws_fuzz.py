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

