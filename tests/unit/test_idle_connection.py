"""What an idle connection holds: no push queue, no bad-frame window, no frame of the body-limit middleware
(each was about 0.5-0.8 KiB a connection in ``python -m bench --only connections``)."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from guide_app_api.codec import decode
from guide_app_api.endpoints import PhoneConnection
from guide_app_api.ratelimit import BadFrameWindow
from server.core.tokens import Claims
from server.web.body_limit import BodyLimit
from server.web.hub import NoticeHub


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_text(self, data: str) -> None:
        await self.gate.wait()
        self.sent.append(decode(data))

    async def send_bytes(self, data: bytes) -> None:
        await self.gate.wait()
        self.sent.append(decode(data))


def phone() -> tuple[PhoneConnection, FakeSocket]:
    socket = FakeSocket()
    who = Claims(role="traveller", sub="p", tours=frozenset({"T1"}), regions=frozenset(), exp=10**10, iat=1000)
    return PhoneConnection(socket, who), socket  # type: ignore[arg-type]


def push(n: int) -> dict[str, Any]:
    return {"type": "notice", "tour_id": "T1", "text": f"n{n}"}


async def test_a_phone_has_a_push_queue_only_while_pushes_wait_for_it() -> None:
    hub = NoticeHub(redis=None)  # type: ignore[arg-type]  # _deliver reads nothing
    conn, socket = phone()
    hub.attach(conn, None)
    assert conn.outbox == () and conn.pusher is None  # idle: nothing allocated for pushes
    socket.gate.clear()  # the phone is slow: pushes wait
    for n in range(3):
        hub._deliver(push(n), f"1-{n}")
    assert isinstance(conn.outbox, deque) and len(conn.outbox) == 3 and conn.pusher is not None
    socket.gate.set()
    await conn.pusher
    assert [f["text"] for f in socket.sent] == ["n0", "n1", "n2"]  # in order, each once
    assert conn.outbox == () and conn.pusher is None  # written: the queue is dropped
    hub._deliver(push(3), "1-3")  # and made again for the next push
    await conn.pusher
    assert [f["text"] for f in socket.sent][-1] == "n3" and conn.outbox == ()


async def test_a_detached_phone_drops_what_waits_for_it() -> None:
    hub = NoticeHub(redis=None)  # type: ignore[arg-type]
    conn, socket = phone()
    hub.attach(conn, None)
    socket.gate.clear()
    hub._deliver(push(0), "1-0")
    hub._deliver(push(1), "1-1")
    pusher = conn.pusher
    await asyncio.sleep(0)  # the writer is waiting on the socket
    hub.detach(conn)
    assert conn.outbox == () and hub.by_tour == {}
    await asyncio.gather(pusher, return_exceptions=True)  # type: ignore[arg-type]
    assert socket.sent == []


def test_the_bad_frame_window_is_made_at_the_first_bad_frame() -> None:
    window = BadFrameWindow(2)
    assert window.times is None
    assert not window.record(1.0) and not window.record(2.0) and window.record(3.0)


async def test_the_body_limit_hands_a_websocket_to_the_app_without_a_frame_of_its_own() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    inner = app({"type": "websocket"}, None, None)
    passed = BodyLimit(app, max_body=10)({"type": "websocket"}, None, None)  # type: ignore[arg-type]
    assert type(passed) is type(inner) and passed.cr_code is inner.cr_code  # the app's own coroutine
    inner.close()
    await passed
    assert seen == ["websocket"]
