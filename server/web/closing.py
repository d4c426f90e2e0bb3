"""Closing a WebSocket from the server's side, even one whose peer has stopped reading.

An ASGI ``websocket.close`` is a send like any other: uvicorn makes it wait until the transport's write buffer
drains, which for a peer that never reads is forever (the issue-19 finding: 20 stalled phones held 33 MB and
growing). So when the buffer is full, the close frame is queued behind what is already buffered, the transport is
closed (it flushes what it can), and it is aborted after ``grace`` seconds if the peer still has not read it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

GRACE_S = 10.0


def _protocol(websocket: WebSocket) -> Any:
    # the ASGI receive callable reaches the app unwrapped: for uvicorn it is a method of the connection's protocol
    return getattr(getattr(websocket, "_receive", None), "__self__", None)


def write_blocked(websocket: WebSocket) -> bool:
    """True when the transport's buffer is over its high-water mark: the peer is not reading."""
    writable = getattr(_protocol(websocket), "writable", None)
    return isinstance(writable, asyncio.Event) and not writable.is_set()


async def close_socket(websocket: WebSocket, code: int, grace: float = GRACE_S) -> None:
    """Close with ``code`` now; never waits on a peer that does not read longer than ``grace``."""
    if websocket.application_state != WebSocketState.CONNECTED:
        return
    proto = _protocol(websocket)
    if write_blocked(websocket) and _close_behind_buffer(proto, code, grace):
        return
    try:
        async with asyncio.timeout(grace):
            await websocket.close(code=code)
    except TimeoutError:
        _abort(proto)
    except Exception:  # noqa: BLE001 - already closed or gone: nothing left to close
        pass


def _close_behind_buffer(proto: Any, code: int, grace: float) -> bool:
    conn, transport = getattr(proto, "conn", None), getattr(proto, "transport", None)
    if conn is None or transport is None or getattr(proto, "close_sent", True):
        return False
    with contextlib.suppress(Exception):
        conn.send_close(code)
        transport.write(b"".join(conn.data_to_send()))
    proto.close_sent = True
    # the app's receive loop ends now; its sends blocked on the buffer end when the transport goes
    proto.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": ""})
    transport.close()
    asyncio.get_running_loop().call_later(grace, transport.abort)
    return True


def _abort(proto: Any) -> None:
    transport = getattr(proto, "transport", None)
    if transport is not None:
        transport.abort()
