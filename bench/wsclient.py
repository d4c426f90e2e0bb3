"""A lean WebSocket client for load generation: an asyncio Protocol with just enough of RFC 6455.

The benchmark's client shares a 2-core machine with the server it measures, so every microsecond it spends is one
the server does not get. ``websockets``' client costs tens of microseconds per frame; this one costs a few: frames
go out with a zero mask key (XOR with zero leaves the payload as it is: valid framing, nothing to compute), and
frames come in through ``on_message`` callbacks, not coroutines. Only binary frames are sent; pings are answered;
the server's frames are assumed unfragmented (tourpulse's answers are a few hundred bytes).

Not for production: it checks nothing the benchmark does not need (no Sec-WebSocket-Accept check, no extensions).
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from typing import Any

OnMessage = Callable[["WSConn", bytes], None]


class HandshakeFailed(ConnectionError):
    """The server answered the upgrade with something other than 101."""


class WSConn(asyncio.Protocol):
    __slots__ = ("transport", "buf", "handshake", "closed", "on_message", "is_open", "tag", "close_code")

    def __init__(self, on_message: OnMessage | None = None, tag: Any = None) -> None:
        loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.handshake: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.on_message = on_message
        self.is_open = False
        self.tag = tag  # whatever the caller keeps per connection
        self.close_code: int | None = None  # the code of the server's close frame, if it sent one

    # --- asyncio.Protocol -----------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's transports are not asyncio.Transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.is_open = False
        if not self.handshake.done():
            self.handshake.set_exception(ConnectionError(f"closed during the handshake: {exc!r}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.is_open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[: self.buf.find(b"\r\n")])
            del self.buf[: end + 4]
            if not status.startswith(b"HTTP/1.1 101"):
                if not self.handshake.done():
                    self.handshake.set_exception(HandshakeFailed(status.decode(errors="replace")))
                if self.transport is not None:
                    self.transport.close()
                return
            self.is_open = True
            self.handshake.set_result(None)
        self._frames()

    # --- frames ---------------------------------------------------------------------------------------------
    def _frames(self) -> None:
        buf = self.buf
        while len(buf) >= 2:
            b1 = buf[1]
            n = b1 & 0x7F
            pos = 2
            if n == 126:
                if len(buf) < 4:
                    return
                n = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif n == 127:
                if len(buf) < 10:
                    return
                n = int.from_bytes(buf[2:10], "big")
                pos = 10
            if b1 & 0x80:
                pos += 4  # a server never masks; skip a key if one came anyway
            if len(buf) < pos + n:
                return
            opcode = buf[0] & 0x0F
            payload = bytes(buf[pos: pos + n])
            del buf[: pos + n]
            if opcode in (1, 2):
                if self.on_message is not None:
                    self.on_message(self, payload)
            elif opcode == 9:
                self._write(0x8A, payload)  # pong
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._write(0x88, payload[:2])
                if self.transport is not None:
                    self.transport.close()
                return

    def _write(self, first: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        n = len(payload)
        if n < 126:
            header = bytes((first, 0x80 | n))
        elif n < 65536:
            header = bytes((first, 0xFE)) + n.to_bytes(2, "big")
        else:
            header = bytes((first, 0xFF)) + n.to_bytes(8, "big")
        self.transport.write(header + b"\0\0\0\0" + payload)

    def send(self, payload: bytes) -> None:
        """Write one binary frame (no waiting: the transport buffers)."""
        self._write(0x82, payload)

    def close(self) -> None:
        """Drop the TCP connection without a closing handshake, as a phone losing its network does."""
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int, path: str, token: str | None = None, *,
                  on_message: OnMessage | None = None, tag: Any = None, timeout: float = 10.0) -> WSConn:
    loop = asyncio.get_running_loop()
    proto = WSConn(on_message, tag)
    async with asyncio.timeout(timeout):
        transport, _ = await loop.create_connection(lambda: proto, host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        transport.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                         f"{auth}\r\n").encode())
        try:
            await proto.handshake
        except BaseException:
            transport.abort()
            raise
    return proto


async def connect_retrying(host: str, port: int, path: str, token: str | None = None, *,
                           on_message: OnMessage | None = None, tag: Any = None, attempts: int = 8,
                           timeout: float = 15.0, rng: Any = None) -> WSConn:
    """Connect with full-jitter backoff on refused, reset or timed-out attempts (a storm overflows backlogs)."""
    import random

    rng = rng or random.Random()
    delay = 0.05
    for attempt in range(attempts):
        try:
            return await connect(host, port, path, token, on_message=on_message, tag=tag, timeout=timeout)
        except HandshakeFailed:
            raise
        except (OSError, TimeoutError):
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(rng.uniform(0, delay))
            delay = min(2.0, delay * 2)
    raise AssertionError("unreachable")
