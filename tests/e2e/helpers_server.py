"""Run an ASGI app under a real uvicorn on a loopback port, inside the test's own event loop.

    async with running_server(app) as base_url:   # "http://127.0.0.1:<port>"
        ...

The app's lifespan runs (startup before the block, shutdown after it). ``websockets-sansio`` is uvicorn's own
WebSocket implementation (``--ws websockets`` warns in uvicorn 0.54, and warnings fail the tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp

from alerts.store import AlertStore
from server.core.settings import Settings
from server.web import board
from server.web.api import alerts as alerts_api
from server.web.board import ChangeHub
from server.web.errors import EXCEPTION_HANDLERS
from server.web.protocols import SPEC as HTTP_PROTOCOL
from server.web.protocols import WS_SPEC as WS_PROTOCOL

STARTUP_TIMEOUT = 10.0


@contextlib.asynccontextmanager
async def running_server(app: ASGIApp) -> AsyncIterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="on", http=HTTP_PROTOCOL, ws=WS_PROTOCOL,
                            ws_per_message_deflate=False, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()  # startup failed: raise its error here
                    raise RuntimeError("uvicorn exited during startup")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()


def alerts_app(redis_url: str, settings: Settings | None = None) -> Starlette:
    """A tiny app of the board and alert routes, with the app.state they expect (what server.app sets)."""
    settings = settings or Settings(secret=b"test-secret-of-16+")
    settings = dataclasses.replace(settings, redis_url=redis_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.redis = aioredis.Redis.from_url(redis_url)
        tail = aioredis.Redis.from_url(redis_url, socket_timeout=10)
        app.state.alert_store = AlertStore(app.state.redis, settings)
        app.state.change_hub = ChangeHub(tail, settings, block=0.5)
        await app.state.change_hub.start()
        try:
            yield
        finally:
            await app.state.change_hub.stop()
            await tail.aclose()
            await app.state.redis.aclose()

    return Starlette(routes=[*board.routes, *alerts_api.routes], lifespan=lifespan,
                     exception_handlers=EXCEPTION_HANDLERS)
