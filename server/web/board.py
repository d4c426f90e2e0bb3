"""The supervisor's board: the ``/ws/board`` WebSocket, the ``/board`` page, and the per-process ChangeHub.

Every alert change is one entry of the alert-changes stream, and its stream id is its seq. Each web process
runs one :class:`ChangeHub` that tails the stream and hands each change to the boards connected to it whose
regions match. A board first subscribes to the hub, then reads its snapshot (or its catch-up after ``since``)
with the seq that view is as of, and from then on drops every hub change whose seq is not newer than the last
it sent: so a change is never missed and never sent twice.

A board's connection moves ``handshake -> live -> closed``; refusals happen in ``handshake`` (the WebSocket is
never accepted), and only a ``live`` board sends frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from alerts.store import AlertStore
from guide_app_api import messages
from guide_app_api.codec import encode
from guide_app_api.endpoints import CLOSE_POLICY, frame_loop
from guide_app_api.errors import Invalid, Unavailable
from guide_app_api.ratelimit import TokenBucket
from server.core import keys
from server.core.keys import parse_seq
from server.core.settings import Settings
from server.core.tokens import Claims
from server.web.auth import authenticate
from server.web.closing import close_socket

log = logging.getLogger(__name__)

CLOSE_TRY_AGAIN = 1013  # too slow to keep up: reconnect and resume with `since`
CATCH_UP_BATCH = 500
STATIC_DIR = Path(__file__).parent / "board_static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; media-src 'self' data:; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Change = tuple[tuple[int, int], str, dict[str, Any]]  # (seq as a pair, seq, the alert after the change)


class Subscription:
    """One board's feed from the hub: bounded, so a board that cannot keep up is noticed, not buffered."""

    __slots__ = ("sees", "queue", "overflowed")

    def __init__(self, sees: Callable[[str], bool], size: int) -> None:
        self.sees = sees
        self.queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def offer(self, change: Change) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True


class ChangeHub:
    """Tails the alert-changes stream and fans each change out to the subscribed boards of this process.

    ``redis`` must be a client whose ``socket_timeout`` is longer than ``block`` (a blocking XREAD otherwise
    times out as an error)."""

    def __init__(self, redis: aioredis.Redis, settings: Settings, *, block: float = 1.0,
                 queue_size: int = 1000) -> None:
        self.redis = redis
        self.settings = settings
        self.block_ms = int(block * 1000)
        self.queue_size = queue_size
        self.subscriptions: set[Subscription] = set()
        self.delivered = 0
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def subscribe(self, sees: Callable[[str], bool]) -> Iterator[Subscription]:
        sub = Subscription(sees, self.queue_size)
        self.subscriptions.add(sub)
        try:
            yield sub
        finally:
            self.subscriptions.discard(sub)

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("Expected a stopped ChangeHub, but it is already running")
        last = await self.redis.xrevrange(keys.ALERT_CHANGES, count=1)
        start = last[0][0].decode() if last else "0-0"
        self._task = asyncio.create_task(self._tail(start), name="change-hub")
        self._task.add_done_callback(_log_crash)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _tail(self, last_id: str) -> None:
        backoff = 0.1
        while True:
            try:
                result = await self.redis.xread({keys.ALERT_CHANGES: last_id}, count=500, block=self.block_ms)
            except (RedisError, OSError) as exc:
                log.warning("change hub: %s; retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            for _stream, entries in result or ():
                for raw_seq, fields in entries:
                    last_id = raw_seq.decode()
                    try:
                        alert = json.loads(fields[b"a"])
                    except (KeyError, ValueError):
                        log.error("change hub: unreadable change %s skipped", last_id)
                        continue
                    self.publish((parse_seq(last_id), last_id, alert))

    def publish(self, change: Change) -> None:
        region = change[2].get("region", "")
        for sub in list(self.subscriptions):
            if sub.sees(region):
                self.delivered += 1
                sub.offer(change)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("change hub stopped", exc_info=task.exception())


def same_origin(websocket: WebSocket) -> bool:
    """A browser's ``Origin`` must name this host (another site's page may not drive a supervisor's board)."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: the token alone decides
    host = websocket.headers.get("host", "")
    try:
        parsed = urlsplit(origin)
        seen = urlsplit(f"//{host}")
        default = 443 if parsed.scheme == "https" else 80
        return (parsed.scheme in ("http", "https") and parsed.hostname is not None
                and (parsed.hostname, parsed.port or default) == (seen.hostname, seen.port or default))
    except ValueError:
        return False


class BoardSession:
    """One connected board: what it has been sent (``last``) and how it speaks (``binary``)."""

    def __init__(self, websocket: WebSocket, claims: Claims, store: AlertStore, binary: bool) -> None:
        self.websocket = websocket
        self.claims = claims
        self.sender = f"{claims.role}:{claims.sub}"
        self.store = store
        self.binary = binary
        self.last = (0, 0)
        self.state = "handshake"
        self.lock = asyncio.Lock()  # one frame at a time, and `last` moves with what was sent

    def _expect(self, state: str) -> None:
        if self.state != state:
            raise RuntimeError(f"Expected a board in state {state!r}, but got {self.state!r}")

    async def accept(self) -> None:
        self._expect("handshake")
        await self.websocket.accept()
        self.state = "live"

    async def close(self, code: int) -> None:
        if self.state == "live":
            self.state = "closed"
            with contextlib.suppress(Exception):
                await close_socket(self.websocket, code)  # never waits on a board that stopped reading

    async def _send(self, obj: dict[str, Any], binary: bool | None = None) -> None:
        self._expect("live")
        data = encode(obj, self.binary if binary is None else binary)
        if isinstance(data, bytes):
            await self.websocket.send_bytes(data)
        else:
            await self.websocket.send_text(data)

    async def send(self, obj: dict[str, Any], binary: bool | None = None) -> None:
        async with self.lock:
            await self._send(obj, binary)

    async def snapshot(self, reset: bool = False) -> None:
        async with self.lock:
            await self._snapshot(reset)

    async def _snapshot(self, reset: bool) -> None:
        alerts, seq = await self.store.snapshot(self.claims.sees_region)
        frame: dict[str, Any] = {"type": "snapshot", "alerts": alerts, "seq": seq}
        if reset:
            frame["reset"] = True
        await self._send(frame)
        self.last = max(self.last, parse_seq(seq))

    async def catch_up(self, since: str) -> None:
        """Every change after ``since`` in this board's regions, or a reset snapshot when some are gone."""
        async with self.lock:
            start = parse_seq(since)
            while True:
                changes = await self.store.changes_after(since, CATCH_UP_BATCH)
                if changes is None:
                    await self._snapshot(reset=True)
                    return
                for seq, alert in changes:
                    if self.claims.sees_region(alert.get("region", "")):
                        await self._send({"type": "alert", "alert": alert, "seq": seq})
                    since = seq
                self.last = max(self.last, start, parse_seq(since))
                if len(changes) < CATCH_UP_BATCH:
                    return

    async def live(self, sub: Subscription) -> None:
        """The send loop: hub changes newer than what this board was sent."""
        while True:
            change = await sub.queue.get()
            if sub.overflowed:
                log.info("board %s too slow: closed to resume by seq", self.sender)
                await self.close(CLOSE_TRY_AGAIN)
                return
            key, seq, alert = change
            async with self.lock:
                if self.state != "live":
                    return  # the receive loop saw the board go: nothing more to send
                if key <= self.last:
                    continue
                self.last = key
                await self._send({"type": "alert", "alert": alert, "seq": seq})

    async def receive(self, settings: Settings) -> None:
        """The receive loop (the phones' :func:`frame_loop`): commands in, each answered by ``ack`` or ``error``."""
        limits = settings.limits
        bucket = TokenBucket(limits.messages_per_second, limits.burst, time.time())
        close_code = await frame_loop(self.websocket, self, self.on_message, max_frame_bytes=limits.max_frame_bytes,
                                      allow=bucket.take, bad_frames_per_minute=limits.bad_frames_per_minute)
        if close_code:
            await self.close(close_code)
        else:
            self.state = "closed"

    async def on_message(self, obj: dict[str, Any], binary: bool, now: float) -> None:
        msg = messages.parse_message(obj, "supervisor", now)
        try:
            await self.handle(msg, now, binary)
        except RedisError:
            log.exception("board command failed on storage")
            raise Unavailable("storage unavailable: retry later", msg_id=msg.id) from None

    async def handle(self, msg: messages.Message, now: float, binary: bool) -> None:
        if isinstance(msg, messages.Subscribe):
            await self.catch_up(msg.since)
            await self.send({"type": "ack", "id": msg.id, "seq": "{}-{}".format(*self.last)}, binary)
            return
        if isinstance(msg, messages.AckAlert):
            action, note, assignee = "ack", None, None
        elif isinstance(msg, messages.BoardResolve):
            action, note, assignee = "resolve", msg.note, None
        elif isinstance(msg, messages.AssignAlert):
            action, note, assignee = "assign", None, msg.assignee
        else:
            raise Invalid("type must name a message a supervisor may send", field="type", msg_id=msg.id)
        result = await self.store.act_result(
            msg.alert_id, action, self.sender, now, note, assignee, regions_check=self.claims.sees_region,
            token=f"{self.sender}:{msg.id}:{action}:{msg.alert_id}")
        await self.send({"type": "ack", "id": msg.id, "seq": result.seq, "duplicate": result.duplicate,
                         "alert": result.alert}, binary)


async def board_endpoint(websocket: WebSocket) -> None:
    state = websocket.app.state
    try:
        claims = authenticate(websocket, {"supervisor", "admin"})
    except HTTPException:
        await websocket.close(code=CLOSE_POLICY)  # before accept: the handshake is refused (HTTP 403)
        return
    if not same_origin(websocket):
        await websocket.close(code=CLOSE_POLICY)
        return
    binary = websocket.query_params.get("format") == "msgpack"
    session = BoardSession(websocket, claims, state.alert_store, binary)
    hub: ChangeHub = state.change_hub
    sessions = getattr(state, "sessions", None)
    with hub.subscribe(claims.sees_region) as sub:  # before the first read, so nothing falls in between
        await session.accept()
        # revocation and expiry close it like a phone (§13); boards are not capped per sender
        ticket = sessions.open(claims, session.close, capped=False) if sessions is not None else None
        tasks: list[asyncio.Task[None]] = []
        try:
            await _open(session, websocket.query_params.get("since"))
            tasks = [asyncio.create_task(session.receive(state.settings), name="board-receive"),
                     asyncio.create_task(session.live(sub), name="board-send")]
            done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a failure of either loop surfaces here (and in the log)
            await session.close(1000)  # the send loop ended it (1013), or the receive loop saw it go
        except (WebSocketDisconnect, OSError):
            pass
        except Exception:
            log.exception("board connection failed")
            await session.close(1011)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            session.state = "closed"
            if ticket is not None:
                sessions.forget(ticket)


async def _open(session: BoardSession, since: str | None) -> None:
    """The first frames: the snapshot, or the changes after ``since``."""
    if since is None:
        await session.snapshot()
        return
    try:
        parse_seq(since)
    except ValueError:
        await session.send(Invalid("since must be a stream id like 1700000000000-0", field="since").to_wire())
        await session.snapshot(reset=True)
        return
    await session.catch_up(since)


async def board_page(request: Request) -> Response:
    index = STATIC_DIR / "index.html"
    if not index.is_file():
        return PlainTextResponse("the board page is not installed", status_code=503, headers=SECURITY_HEADERS)
    return FileResponse(index, media_type="text/html", headers=SECURITY_HEADERS)


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response of the wrapped app (the static files of the page)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


routes: list[Any] = [
    Route("/board", board_page),
    Mount("/board/static", app=SecurityHeaders(StaticFiles(directory=STATIC_DIR, check_dir=False)),
          name="board_static"),
    WebSocketRoute("/ws/board", board_endpoint),
]
