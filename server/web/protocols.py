"""uvicorn's protocols, hardened (contract §13): what only the connection layer can refuse.

**HTTP** (:class:`HandshakeTimeoutProtocol`): uvicorn's httptools protocol with a handshake timeout
(``[limits] handshake_timeout``).

uvicorn times out idle keep-alive connections, but not a connection whose request headers never finish: a client
that opens TCP and sends half a request (or nothing) is held for as long as it likes. This protocol closes a
connection whose request line and headers are not complete ``timeout`` seconds after it opened (or after its
next request began). ``tourpulse serve`` passes it to uvicorn; the Procfile names it with ``--http``.

It also refuses, with a plain 403, a WebSocket upgrade the WebSocket layer could not parse: a line longer than
its limit (a 10 KB token in the query or the header) made uvicorn's handshake fail silently, and the client waited
for its own timeout.

The timeout is a class attribute because uvicorn builds the protocol itself; :func:`configure` sets it from the
settings once, when the app is created.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS

SPEC = "server.web.protocols:HandshakeTimeoutProtocol"
WS_SPEC = "server.web.protocols:WebSocketProtocol"
# what the Procfile and `tourpulse serve` give uvicorn: limit_concurrency must leave room for 10,000 phones (every
# open WebSocket counts), and an idle keep-alive HTTP connection is closed after a few seconds
SEND_BUFFER = 64 * 1024  # bytes asked of the kernel for each WebSocket's send buffer (Linux doubles it)
UVICORN_LIMITS = {"http": SPEC, "ws": WS_SPEC, "limit_concurrency": 20_000, "timeout_keep_alive": 5}


class HandshakeTimeoutProtocol(HttpToolsProtocol):
    timeout: ClassVar[float] = 10.0
    _handshake_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        url_line = len(self.scope["method"]) + len(self.url) + 11  # "GET <url> HTTP/1.1"
        headers = self.scope["headers"]
        if (url_line > MAX_LINE_LENGTH or len(headers) > MAX_NUM_HEADERS
                or any(len(name) + len(value) + 2 > MAX_LINE_LENGTH for name, value in headers)):
            self._refuse(b"request line or header too long (a token is at most 16 KiB in all, 8 KiB per line)")
            return
        super().handle_websocket_upgrade()

    def _refuse(self, message: bytes) -> None:
        self.transport.write(b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\n"
                             b"content-length: " + str(len(message)).encode() + b"\r\nconnection: close\r\n\r\n"
                             + message)
        self.transport.close()

    def _arm(self) -> None:
        if self._handshake_timer is None:
            self._handshake_timer = self.loop.call_later(self.timeout, self._expired)

    def _disarm(self) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None

    def _expired(self) -> None:
        self._handshake_timer = None
        if not self.transport.is_closing():
            self.transport.abort()  # it never finished its request: there is nothing to answer


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol, but a text frame that is not UTF-8 closes the connection with 1007
    and one log line, where uvicorn logged a traceback for each (anyone could fill the log with them); and the
    kernel's send buffer of a WebSocket is fixed at :data:`SEND_BUFFER`. Linux grows it up to 4 MB for a peer that
    does not read: 20 such phones held 80 MB of kernel memory before the server even noticed (its own queue,
    ``[limits] send_queue``, starts counting only once the kernel's is full). Phones' frames are small; a board's
    big snapshot just takes more writes."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)

    def send_receive_event_to_app(self) -> None:
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        if self.close_sent:
            return  # past `websocket.close`: discarded, as uvicorn does
        if self.curr_msg_data_type == "text":
            try:
                message: dict[str, Any] = {"type": "websocket.receive", "text": data.decode()}
            except UnicodeDecodeError:
                self.logger.info("%s:%s - WebSocket text frame not UTF-8: closed with 1007", *(self.client or ("?", 0)))
                self.conn.send_close(1007, "invalid UTF-8 in a text frame")
                self.handle_parser_exception()
                return
        else:
            message = {"type": "websocket.receive", "bytes": data}
        self.queue.put_nowait(message)  # type: ignore[arg-type]
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()


def configure(timeout: float) -> None:
    HandshakeTimeoutProtocol.timeout = timeout
