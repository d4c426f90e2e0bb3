"""uvicorn's httptools protocol with a handshake timeout (contract §13 ``[limits] handshake_timeout``).

uvicorn times out idle keep-alive connections, but not a connection whose request headers never finish: a client
that opens TCP and sends half a request (or nothing) is held for as long as it likes. This protocol closes a
connection whose request line and headers are not complete ``timeout`` seconds after it opened (or after its
next request began). ``tourpulse serve`` passes it to uvicorn; the Procfile names it with ``--http``.

The timeout is a class attribute because uvicorn builds the protocol itself; :func:`configure` sets it from the
settings once, when the app is created.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

SPEC = "server.web.handshake:HandshakeTimeoutProtocol"
# what the Procfile and `tourpulse serve` give uvicorn: limit_concurrency must leave room for 10,000 phones (every
# open WebSocket counts), and an idle keep-alive HTTP connection is closed after a few seconds
UVICORN_LIMITS = {"http": SPEC, "limit_concurrency": 20_000, "timeout_keep_alive": 5}


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


def configure(timeout: float) -> None:
    HandshakeTimeoutProtocol.timeout = timeout
