"""The one frame loop's size rule through a real uvicorn: a text frame counts in UTF-8 bytes, on every socket.

The limit is set below uvicorn's own (``ws_max_size``), so what is measured is the loop's rule, not the server's.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import register_tour, token

LIMIT = 1000
WAIT = 10.0  # a safety net for a frame that never comes, never a measured time
# 400 characters, 1,200 bytes in UTF-8: under the limit in characters, over it in bytes
WIDE = "好" * 400
NARROW = "x" * 400


def _url(base: str, path: str, tok: str) -> str:
    return f"{base.replace('http://', 'ws://')}{path}?token={tok}"


async def _sockets(base: str) -> dict[str, ClientConnection]:
    board = await connect(_url(base, "/ws/board", token("supervisor", "sue", regions=("yunnan",))),
                          compression=None)
    async with asyncio.timeout(WAIT):
        assert json.loads(await board.recv())["type"] == "snapshot"
    return {
        "traveller": await connect(_url(base, "/ws/traveller", token("traveller", "t1", tours=("T1",))),
                                   compression=None),
        "guide": await connect(_url(base, "/ws/guide", token("guide", "g1", tours=("T1",))), compression=None),
        "board": board,
    }


async def _answer(ws: ClientConnection, text: str) -> dict[str, object]:
    await ws.send(text)
    async with asyncio.timeout(WAIT):
        return json.loads(await ws.recv())


@pytest.mark.parametrize("role", ["traveller", "guide", "board"])
async def test_a_text_frame_over_the_limit_in_bytes_closes_1009_on_every_socket(app_factory, role: str) -> None:
    async with app_factory({"limits": {"max_frame_bytes": LIMIT}}) as (base, _app):
        await register_tour(base, "T1")
        sockets = await _sockets(base)
        try:
            ws = sockets[role]
            # the same number of characters, one byte each, is under the limit: answered, not closed
            narrow = await _answer(ws, json.dumps({"type": "nonsense", "id": "n1", "note": NARROW}))
            assert (narrow["type"], narrow["code"], narrow["field"]) == ("error", "invalid", "type")
            frame = json.dumps({"type": "nonsense", "id": "w1", "note": WIDE}, ensure_ascii=False)
            assert len(frame) < LIMIT < len(frame.encode())
            await ws.send(frame)
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(WAIT):
                    await ws.recv()
            assert ws.close_code == 1009
        finally:
            for each in sockets.values():
                await each.close()
