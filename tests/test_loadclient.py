"""PhoneClient against a small real WebSocket server that keeps the contract's idempotency rule.

The server here is not tourpulse: it stores ids in a dict and answers like §5 (ack, ``duplicate: true`` for
a re-sent id), which is all the client's reconnect logic relies on. End-to-end tests cover the real one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgpack
import pytest
from websockets.asyncio.server import Request, Response, ServerConnection, serve

from server.loadclient import HandshakeRefused, PhoneClient, percentile, with_query

TOKEN = "good-token"


@dataclass
class FakePhoneServer:
    stored: dict[str, str] = field(default_factory=dict)
    sinces: list[str | None] = field(default_factory=list)
    frame_kinds: list[str] = field(default_factory=list)
    url: str = ""

    def refuse(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.sinces.append(parse_qs(urlsplit(ws.request.path).query).get("since", [None])[0])
        tasks = set()
        async for data in ws:
            self.frame_kinds.append("text" if isinstance(data, str) else "binary")
            msg = json.loads(data) if isinstance(data, str) else msgpack.unpackb(data)
            task = asyncio.create_task(self.answer(ws, msg, isinstance(data, str)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def answer(self, ws: ServerConnection, msg: dict[str, Any], text: bool) -> None:
        await asyncio.sleep(msg.get("delay", 0))
        if msg.get("push"):
            await self.send(ws, {"type": "notice", "notice_id": "n1", "seq": "1700000000000-0"}, text)
        msg_id = msg["id"]
        duplicate = msg_id in self.stored
        if not duplicate:
            self.stored[msg_id] = f"{len(self.stored) + 1}-0"
            if msg.get("drop"):  # stored, then the network fails before the ack leaves
                assert ws.transport is not None
                ws.transport.abort()
                return
        ack = {"type": "ack", "id": msg_id, "seq": self.stored[msg_id], "duplicate": duplicate}
        await self.send(ws, ack, text)

    @staticmethod
    async def send(ws: ServerConnection, obj: dict[str, Any], text: bool) -> None:
        await ws.send(json.dumps(obj) if text else msgpack.packb(obj))


@pytest.fixture
async def fake() -> AsyncIterator[FakePhoneServer]:
    server = FakePhoneServer()
    async with serve(server.handler, "127.0.0.1", 0, process_request=server.refuse,
                     compression=None) as ws_server:
        port = next(iter(ws_server.sockets)).getsockname()[1]
        server.url = f"ws://127.0.0.1:{port}/ws/traveller"
        yield server


async def test_answers_are_matched_by_id_with_several_in_flight(fake: FakePhoneServer) -> None:
    client = PhoneClient(fake.url, TOKEN)
    await client.connect()
    try:
        answers = await asyncio.gather(*(client.send({"type": "rating", "id": f"m{i}", "delay": d})
                                         for i, d in enumerate((0.2, 0.1, 0.0))))
    finally:
        await client.close()
    assert [a["id"] for a in answers] == ["m0", "m1", "m2"]
    assert all(a["type"] == "ack" and a["duplicate"] is False for a in answers)
    # recorded as the answers arrive: the quick one first, the slow one last
    assert len(client.latencies) == 3 and client.latencies[0] < 0.1 < 0.15 < client.latencies[2]
    assert set(fake.frame_kinds) == {"binary"}


async def test_a_drop_after_storing_resends_the_same_id_and_resumes_pushes(fake: FakePhoneServer) -> None:
    client = PhoneClient(fake.url, TOKEN, backoff=(0.01, 0.05))
    await client.connect()
    try:
        first = await client.send({"type": "rating", "id": "a", "push": True})
        push = await asyncio.wait_for(client.pushes.get(), 1)
        lost = await asyncio.wait_for(client.send({"type": "rating", "id": "b", "drop": True}), 5)
    finally:
        await client.close()
    assert first["duplicate"] is False and push["type"] == "notice"
    # stored before the drop, answered after the reconnect: once in storage, acked as a duplicate
    assert lost == {"type": "ack", "id": "b", "seq": "2-0", "duplicate": True}
    assert list(fake.stored) == ["a", "b"]
    assert fake.sinces == [None, "1700000000000-0"]
    assert client.stats.resent == 1 and client.stats.connects == 2


async def test_a_deliberate_drop_loses_nothing_in_flight(fake: FakePhoneServer) -> None:
    client = PhoneClient(fake.url, TOKEN, backoff=(0.01, 0.05))
    await client.connect()
    try:
        sends = [asyncio.create_task(client.send({"type": "rating", "id": f"x{i}", "delay": 0.05}))
                 for i in range(20)]
        await asyncio.sleep(0.01)
        assert client.drop()
        answers = await asyncio.wait_for(asyncio.gather(*sends), 5)
    finally:
        await client.close()
    assert sorted(a["id"] for a in answers) == sorted(f"x{i}" for i in range(20))
    assert len(fake.stored) == 20


async def test_json_mode_sends_text_frames(fake: FakePhoneServer) -> None:
    client = PhoneClient(fake.url, TOKEN, json=True)
    await client.connect()
    try:
        answer = await client.send({"type": "rating", "id": "j1", "comment": "导游很好"})
    finally:
        await client.close()
    assert answer["type"] == "ack" and fake.frame_kinds == ["text"]


async def test_a_refused_token_raises(fake: FakePhoneServer) -> None:
    with pytest.raises(HandshakeRefused) as info:
        await PhoneClient(fake.url, "forged").connect()
    assert info.value.status == 401


def test_percentile_and_query() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile([], 50) == 0.0
    assert with_query("ws://h/ws/traveller?token=x", since="5-0") == "ws://h/ws/traveller?token=x&since=5-0"
