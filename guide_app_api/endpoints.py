"""The WebSocket frame loop every session shares, and the traveller and guide endpoints: a thin shell around the
pure protocol.

:func:`frame_loop` is the one loop of the phone and board sessions: receive -> size check (UTF-8 bytes for a text
frame, as for a binary one) -> decode -> rate limit -> the session's ``on_message`` (parse, handle, ack) -> an
``error`` frame in the frame's own encoding for any :class:`ProtocolError`. Errors never close the connection,
except: a frame over the size limit (1009) and more undecodable frames than ``bad_frames_per_minute`` (1008).

The phone session's ``on_message`` hands the parsed message to its backend (provided by ``server/``: scope, tour,
store); only the backend touches storage, and this module knows nothing of Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from starlette.exceptions import HTTPException
from starlette.websockets import WebSocket, WebSocketDisconnect

from guide_app_api.codec import decode, encode
from guide_app_api.errors import BadFrame, ProtocolError, RateLimited
from guide_app_api.messages import Message, parse_message
from guide_app_api.ratelimit import BadFrameWindow

CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009

# (the decoded map, whether it came binary, receipt time) -> None, once answered; or a ProtocolError, which the loop
# answers (with the map's id when the error has none)
OnMessage = Callable[[dict[str, Any], bool, float], Awaitable[None]]


class Peer(Protocol):
    """The sending half of a session, as the frame loop sees it."""

    binary: bool  # the encoding the peer last spoke: what it is sent unasked (pushes, changes) uses it

    async def send(self, obj: dict[str, Any], binary: bool | None = None) -> None: ...


def too_big(data: bytes | str, limit: int) -> bool:
    """Whether a frame is over ``limit`` bytes on the wire: a text frame counts in UTF-8, not in characters."""
    if isinstance(data, bytes) or len(data) > limit:
        return len(data) > limit
    if len(data) * 4 <= limit:
        return False  # even were every character 4 bytes long it would fit: most frames need no encoding
    return len(data.encode("utf-8", "surrogatepass")) > limit


def _unobserved(outcome: str, started: float) -> None:
    pass


async def frame_loop(websocket: WebSocket, peer: Peer, on_message: OnMessage, *, max_frame_bytes: int,
                     allow: Callable[[float], bool], bad_frames_per_minute: int,
                     observe: Callable[[str, float], None] = _unobserved) -> int:
    """Read and answer frames until the peer goes (0) or one must close the connection (its close code).

    ``allow(now)`` is the sender's rate limit; ``observe(outcome, started)`` counts each frame's outcome
    (``"ack"`` or the error code) with the ``time.perf_counter()`` it arrived at."""
    bad_frames = BadFrameWindow(bad_frames_per_minute)
    while True:
        # the last frame and its decoded map are let go before the wait for the next: an idle connection holds
        # nothing of them (a frame can be 64 KiB)
        message = data = obj = raw_id = msg_id = None
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return 0
        started = time.perf_counter()
        data = message.get("bytes")
        binary = data is not None
        if not binary:
            data = message.get("text") or ""
        if too_big(data, max_frame_bytes):
            return CLOSE_TOO_BIG
        peer.binary = binary
        now = time.time()
        msg_id: str | None = None
        try:
            obj = decode(data)
            raw_id = obj.get("id")
            msg_id = raw_id if isinstance(raw_id, str) else None
            if not allow(now):
                raise RateLimited("too many messages: slow down and retry", msg_id=msg_id)
            await on_message(obj, binary, now)
            observe("ack", started)
        except BadFrame as exc:
            observe(exc.code, started)
            await peer.send(exc.to_wire(), binary)
            if bad_frames.record(now):
                return CLOSE_POLICY
        except ProtocolError as exc:
            if exc.msg_id is None:
                exc.msg_id = msg_id
            observe(exc.code, started)
            await peer.send(exc.to_wire(), binary)


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


class SharedFrame(dict[str, Any]):
    """A frame sent unchanged to many phones (a push): it is encoded at most once per encoding, on first use, and
    the same bytes (or text) go to every phone that speaks that encoding. A push to a tour used to be encoded once
    per phone; the abuse benchmark's 20 attackers' tour got 100 pushes of 2 KB a second, each encoded for every
    attacker's connection. Never change one after it was first sent."""

    __slots__ = ("_wire",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._wire: list[bytes | str | None] = [None, None]  # [text, binary]

    def wire(self, binary: bool) -> bytes | str:
        data = self._wire[binary]
        if data is None:
            data = self._wire[binary] = encode(self, binary)
        return data


class PhoneConnection:
    """One connected phone, as the push channel sees it."""

    __slots__ = ("websocket", "who", "sender", "binary", "last_seq", "lock", "catch_up", "outbox", "pusher", "ticket")

    def __init__(self, websocket: WebSocket, who: Principal) -> None:
        self.websocket = websocket
        self.who = who
        self.sender = f"{who.role}:{who.sub}"
        self.binary = False  # pushes use the encoding the phone last spoke
        self.last_seq = (0, 0)  # the newest push delivered, so a catch-up and the live feed never repeat one
        self.lock = asyncio.Lock()
        self.catch_up: asyncio.Task[None] | None = None
        # pushes handed to this phone and not yet written (bounded by [limits] send_queue), and the one task that
        # writes them while there are any; the hub makes the deque when a push waits and drops it once written, so
        # an idle phone holds an empty tuple (a deque is 760 bytes, most phones have nothing waiting)
        self.outbox: deque[tuple[dict[str, Any], tuple[int, int]]] | tuple[()] = ()
        self.pusher: asyncio.Task[None] | None = None
        self.ticket: Any = None  # the backend's handle on this connection (cap, revocation, expiry)

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
        data = obj.wire(binary) if type(obj) is SharedFrame else encode(obj, binary)
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

    async def on_message(obj: dict[str, Any], binary: bool, now: float) -> None:
        msg = parse_message(obj, who.role, now)
        reply = await backend.handle(msg, who, now)
        reply["type"] = "ack"
        reply["id"] = msg.id
        await conn.send(reply, binary)

    try:
        close_code = await frame_loop(
            websocket, conn, on_message, max_frame_bytes=backend.max_frame_bytes,
            allow=lambda now: backend.allow(conn.sender, now),
            bad_frames_per_minute=backend.bad_frames_per_minute, observe=backend.observe)
        if close_code:
            await websocket.close(code=close_code)
    except WebSocketDisconnect:
        return
    finally:
        backend.detach(conn)
