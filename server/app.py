"""App assembly and lifespan: one place that creates every long-lived part and owns its background tasks.

``create_app(settings)`` is what ``tourpulse serve`` and the tests use. ``server.app:app`` (the Procfile's web
process) is built on first access from the environment, so importing this module reads nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from alerts.pool import PoolStore
from alerts.store import AlertStore
from guide_app_api.endpoints import phone_endpoint
from server.core.access_log import install_redaction
from server.core.gctune import tune_gc
from server.core.metrics import Registry
from server.core.settings import Settings, check_secret, load_settings
from server.db.client import TAIL_BLOCK_S, close_client, redis_client
from server.db.cluster import make_writer
from server.db.durability import resolve_acks
from server.storage.incidents import IncidentLog
from server.storage.revocations import Revocations
from server.storage.tours import TourRegistry
from server.web import act, app_page, board
from server.web.api import alerts, feedback, guide, incidents, join, notices, pool, reports, safety, tokens, tours
from server.web.board import ChangeHub
from server.web.body_limit import BodyLimit
from server.web.crisis_phones import CrisisPhones
from server.web.errors import EXCEPTION_HANDLERS
from server.web.hub import NoticeHub
from server.web.phones import PhoneService
from server.web.protocols import configure as configure_handshake
from server.web.sessions import Sessions


async def traveller_ws(websocket: WebSocket) -> None:
    await phone_endpoint(websocket, "traveller")


async def guide_ws(websocket: WebSocket) -> None:
    await phone_endpoint(websocket, "guide")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await request.app.state.redis.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to reach Redis means not ready
        return JSONResponse({"status": "unavailable", "redis": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    return PlainTextResponse(request.app.state.metrics.render(), media_type="text/plain; version=0.0.4")


def create_app(settings: Settings, *, run_watcher: bool = False) -> Starlette:
    if not settings.redis_url:
        raise ValueError("settings.redis_url is required (tourpulse serve starts an embedded server)")
    check_secret(settings.secret, "the signing secret")  # an empty key would accept tokens anyone can sign
    configure_handshake(settings.limits.handshake_timeout)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        install_redaction()  # tokens ride in WebSocket query strings: keep them out of every log line
        state = app.state
        state.settings = settings
        state.metrics = Registry()
        # before anything starts: a durability the server cannot honour refuses to start (contract §14)
        acks = await resolve_acks(settings.storage, settings.redis_url or "")
        state.redis = redis_client(settings.redis_url)
        tail_client = redis_client(settings.redis_url, tail=True, max_connections=4)
        state.writer = make_writer(settings.redis_url)
        state.tours = TourRegistry(state.redis, settings)
        state.revocations = Revocations(state.redis)
        state.sessions = Sessions(state.revocations, settings.limits.connections_per_sender)
        state.notice_hub = NoticeHub(tail_client, block=TAIL_BLOCK_S, send_queue=settings.limits.send_queue)
        state.crisis_phones = CrisisPhones(state.redis, state.writer, settings.storage.shards)
        state.notice_hub.on_push = state.crisis_phones.seen
        state.phones = PhoneService(settings, state.writer, state.tours, state.notice_hub, state.metrics,
                                    state.sessions, acks, state.crisis_phones)
        state.alert_store = AlertStore(state.redis, settings)
        state.pool = PoolStore(state.redis, settings)
        state.incidents = IncidentLog(state.redis, settings, state.writer, acks.incidents)
        state.change_hub = ChangeHub(tail_client, settings)
        watcher: Any = None
        started: list[Any] = []
        try:
            for part in (state.writer, state.notice_hub, state.change_hub, state.sessions):
                await part.start()
                started.append(part)
            await state.crisis_phones.start()  # after the notice hub: what it has not loaded, the hub brings
            tune_gc()
            if run_watcher:
                from alerts.watcher import Watcher

                watcher = Watcher(settings, metrics=state.metrics)
                await watcher.start()
                started.append(watcher)
            yield
        finally:
            await state.crisis_phones.stop()
            for part in reversed(started):
                with contextlib.suppress(Exception):
                    await part.stop()
            for client in (state.redis, tail_client):
                await close_client(client)
            state.metrics.close()

    routes: list[Any] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        WebSocketRoute("/ws/traveller", traveller_ws),
        WebSocketRoute("/ws/guide", guide_ws),
        *board.routes,
        *alerts.routes,
        *pool.routes,
        *incidents.routes,
        *reports.routes,
        *feedback.routes,
        *tokens.routes,
        *tours.routes,
        *notices.routes,
        *join.routes,
        *guide.routes,
        *app_page.routes(),
        *safety.routes,
        *act.routes,  # /act/<signed>: acknowledge from a page (contract §12)
    ]
    # every HTTP body is bounded before any handler reads it (413 beyond [limits] max_body)
    middleware = [Middleware(BodyLimit, max_body=settings.limits.max_body)]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=EXCEPTION_HANDLERS, middleware=middleware)


def __getattr__(name: str) -> Any:
    # `uvicorn server.app:app` (the Procfile's web process): built from the environment on first access
    if name == "app":
        app = create_app(load_settings())
        globals()["app"] = app
        return app
    raise AttributeError(name)
