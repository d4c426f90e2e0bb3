"""An ASGI middleware that bounds HTTP request bodies (contract §13 ``[limits] max_body``).

Without it a handler's ``await request.body()`` held whatever the client sent (a 150 MB body raised RSS by 460 MB).
A body over ``max_body`` (by its ``Content-Length``, or counted as it streams in) is answered **413** in the HTTP
error shape before the handler sees more of it. The rest of the body is then read and thrown away, up to
``DISCARD_LIMIT`` in all, so that a client that writes its whole body before reading gets the answer instead of a
reset; beyond that the connection is closed (``connection: close``, and uvicorn stops reading).
WebSockets and lifespan pass through untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.web.errors import error_response

DISCARD_LIMIT = 16 * 1024 * 1024


class BodyTooLarge(Exception):
    """Raised into the handler's ``receive`` once the body passed the limit (the middleware answers 413)."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int, discard_limit: int = DISCARD_LIMIT) -> None:
        self.app = app
        self.max_body = max_body
        self.discard_limit = discard_limit

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http":
            # the inner app's own awaitable, awaited by the caller: no frame of this middleware (and its closures'
            # cells) held for the whole life of every WebSocket, about 0.5 KiB a connection
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body:
            await self._refuse(scope, receive, send, 0)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if started:  # the handler answered and then read on: nothing more to say
                return
            await self._refuse(scope, receive, send, seen)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, already: int) -> None:
        # read and drop what the client is still sending (up to the discard limit) so that it reads our answer
        total, more = already, True
        while more and total <= self.discard_limit:
            message = await receive()
            if message["type"] != "http.request":
                break
            total += len(message.get("body", b""))
            more = message.get("more_body", False)
        answer = error_response(413, "too_large", f"the body is larger than {self.max_body} bytes ([limits] max_body)",
                                headers={"connection": "close"})
        await answer(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
