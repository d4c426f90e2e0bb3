"""The ceiling of the stack: a bare Starlette WebSocket endpoint that decodes a msgpack frame, XADDs it and acks.

No auth, validation, tour lookup, idempotency or shared writer: one redis-py XADD round trip per frame, awaited
by the connection itself, as the simplest correct server on this stack would do it. ``bench.serve`` runs it under
the same uvicorn settings as tourpulse.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgpack
import redis.asyncio as aioredis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

STREAM = "bench:bare"


def create_bare_app(redis_url: str) -> Starlette:
    async def endpoint(websocket: WebSocket) -> None:
        redis: aioredis.Redis = websocket.app.state.redis
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_bytes()
                msg = msgpack.unpackb(data, raw=False)
                seq = await redis.xadd(STREAM, {"e": data})
                await websocket.send_bytes(msgpack.packb({"type": "ack", "id": msg.get("id"), "seq": seq.decode(),
                                                          "duplicate": False}))
        except WebSocketDisconnect:
            return

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # waits instead of raising when all connections are busy (redis-py's default pool raises at 100)
        pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=128, timeout=10)
        app.state.redis = aioredis.Redis(connection_pool=pool)
        try:
            yield
        finally:
            await app.state.redis.aclose(close_connection_pool=True)

    return Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)
