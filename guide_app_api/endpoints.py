"""The traveller and guide WebSocket endpoints: a thin shell around the pure protocol.

Per frame: size check -> decode -> rate limit -> parse and validate -> ``backend.handle`` (scope, tour,
store) -> ack or error, in the frame's own encoding. Only the backend (provided by ``server/``) touches
storage; this module knows nothing of Redis. Errors never close the connection, except: a frame over the
size limit (1009) and more undecodable frames than ``bad_frames_per_minute`` (1008).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.websockets import WebSocket, WebSocketDisconnect

from guide_app_api.codec import decode, encode
from guide_app_api.errors import BadFrame, ProtocolError, RateLimited
from guide_app_api.messages import Message, parse_message
from guide_app_api.ratelimit import BadFrameWindow

CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008


class Principal(Protocol):
    role: str
    sub: str
    tours: frozenset[str]


class PhoneBackend(Protocol):
    max_frame_bytes: int
    bad_frames_per_minute: int

    def authenticate(self, websocket: WebSocket, role: str) -> Principal: ...
    def allow(self, sender: str, now: float) -> bool: ...
    async def handle(self, msg: Message, who: Principal, now: float) -> dict[str, Any]: ...
    def attach(self, conn: PhoneConnection, since: str | None) -> None: ...
    def detach(self, conn: PhoneConnection) -> None: ...
    def observe(self, outcome: str, started: float) -> None: ...


class PhoneConnection:
    """One connected phone, as the push channel sees it."""

    __slots__ = ("websocket", "who", "sender", "binary", "last_seq", "lock", "catch_up")

    def __init__(self, websocket: WebSocket, who: Principal) -> None:
        self.websocket = websocket
        self.who = who
        self.sender = f"{who.role}:{who.sub}"
        self.binary = False  # pushes use the encoding the phone last spoke
        self.last_seq = (0, 0)  # the newest push delivered, so a catch-up and the live feed never repeat one
        self.lock = asyncio.Lock()
        self.catch_up: asyncio.Task[None] | None = None

    async def send(self, obj: dict[str, Any], binary: bool | None = None) -> None:
        async with self.lock:  # acks (receive loop) and pushes (push tasks) never interleave a frame
            await self._send(obj, self.binary if binary is None else binary)

    async def push(self, frame: dict[str, Any], seq: tuple[int, int]) -> None:
        """Deliver one push unless this phone already got it (catch-up and live feed overlap)."""
        async with self.lock:
            await self.push_locked(frame, seq)

    async def push_locked(self, frame: dict[str, Any], seq: tuple[int, int]) -> None:
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        await self._send(frame, self.binary)

    async def _send(self, obj: dict[str, Any], binary: bool) -> None:
        data = encode(obj, binary)
        if isinstance(data, bytes):
            await self.websocket.send_bytes(data)
        else:
            await self.websocket.send_text(data)


async def phone_endpoint(websocket: WebSocket, role: str) -> None:
    backend: PhoneBackend = websocket.app.state.phones
    try:
        who = backend.authenticate(websocket, role)
    except HTTPException:
        await websocket.close(code=CLOSE_POLICY)  # before accept: the handshake is refused (HTTP 403)
        return
    await websocket.accept()
    conn = PhoneConnection(websocket, who)
    backend.attach(conn, websocket.query_params.get("since"))
    bad_frames = BadFrameWindow(backend.bad_frames_per_minute)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            close_code = await _one_frame(backend, conn, message, bad_frames)
            if close_code:
                await websocket.close(code=close_code)
                return
    except WebSocketDisconnect:
        return
    finally:
        backend.detach(conn)


async def _one_frame(backend: PhoneBackend, conn: PhoneConnection, message: dict[str, Any],
                     bad_frames: BadFrameWindow) -> int:
    """Handle one frame; returns a close code when the connection must close, else 0."""
    started = time.perf_counter()
    data = message.get("bytes")
    binary = data is not None
    if not binary:
        data = message.get("text") or ""
    if len(data) > backend.max_frame_bytes:
        return CLOSE_TOO_BIG
    conn.binary = binary
    now = time.time()
    msg_id: str | None = None
    try:
        obj = decode(data)
        raw_id = obj.get("id")
        msg_id = raw_id if isinstance(raw_id, str) else None
        if not backend.allow(conn.sender, now):
            raise RateLimited("too many messages: slow down and retry", msg_id=msg_id)
        msg = parse_message(obj, conn.who.role, now)
        reply = await backend.handle(msg, conn.who, now)
        reply["type"] = "ack"
        reply["id"] = msg.id
        await conn.send(reply, binary)
        backend.observe("ack", started)
    except BadFrame as exc:
        backend.observe(exc.code, started)
        await conn.send(exc.to_wire(), binary)
        if bad_frames.record(now):
            return CLOSE_POLICY
    except ProtocolError as exc:
        if exc.msg_id is None:
            exc.msg_id = msg_id
        backend.observe(exc.code, started)
        await conn.send(exc.to_wire(), binary)
    return 0
