"""Phone clients over real WebSockets, for ``tourpulse simulate`` and the benchmark.

A :class:`PhoneClient` behaves like the app on a guide's or traveller's phone: several frames in flight,
answers matched by ``id``, pushes queued, and a dropped connection repaired behind the caller's back. After a
reconnect it re-sends every unanswered message with the *same* id, so the server's idempotency turns a
message that was stored before the drop into ``duplicate: true``: nothing lost, nothing stored twice. It
resumes pushes with ``?since=<last push seq>``. The board speaks the same framing, so it works on
``/ws/board`` too (snapshot and alert frames land in ``pushes``).

Exceptions::

    ConnectionError
     └── ClientError
          ├── HandshakeRefused   the server refused the token (HTTP 401/403): retrying cannot help
          └── ClientClosed       close() was called while a message waited for its answer
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import math
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from guide_app_api.codec import packb, unpackb

ANSWERS = ("ack", "error")
MAX_FRAME = 1 << 20


class ClientError(ConnectionError):
    """A phone client cannot go on."""


class HandshakeRefused(ClientError):
    def __init__(self, status: int) -> None:
        super().__init__(f"the server refused the connection (HTTP {status})")
        self.status = status


class ClientClosed(ClientError):
    """The client was closed before the answer came."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted values; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(params)
    return urlunsplit(parts._replace(query=urlencode(query)))


@dataclass(slots=True)
class _Pending:
    frame: bytes | str
    future: asyncio.Future[dict[str, Any]]
    started: float
    generation: int = -1  # the connection it was last written to; -1: never written


@dataclass(slots=True)
class ClientStats:
    connects: int = 0
    drops: int = 0  # connections lost (including those dropped on purpose)
    resent: int = 0  # frames written again after a reconnect
    late_answers: int = 0  # answers for ids no longer waiting (already answered on an earlier connection)
    undecodable: int = 0
    stray_errors: list[dict[str, Any]] = field(default_factory=list)  # errors with no id we know (bad_frame)


class PhoneClient:
    def __init__(self, url: str, token: str, *, json: bool = False, rng: random.Random | None = None,
                 backoff: tuple[float, float] = (0.05, 2.0), open_timeout: float = 10.0) -> None:
        self.url = url
        self.token = token
        self.json = json
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.last_seq: str | None = None
        self.latencies: list[float] = []  # seconds from first send to ack, per acked message
        self.stats = ClientStats()
        self._rng = rng or random.Random()
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._pending: dict[str, _Pending] = {}
        self._ws: ClientConnection | None = None
        self._generation = 0
        self._runner: asyncio.Task[None] | None = None
        self._closing = False

    # --- public -------------------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    async def connect(self) -> None:
        """Open the first connection (raises if it fails) and start reading; later drops repair themselves."""
        if self._runner is not None:
            raise RuntimeError("Expected a new client, but connect() was already called")
        ws = await self._open()
        self._runner = asyncio.create_task(self._run(ws), name=f"phone-client {self.url}")

    async def send(self, msg: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one message and return the server's answer to its ``id`` (an ``ack`` or ``error`` dict)."""
        if self._closing:
            raise ClientClosed("the client is closed")
        msg_id = msg.get("id")
        if not isinstance(msg_id, str) or not msg_id:
            raise ValueError("a message needs a string id")
        if msg_id in self._pending:
            raise ValueError(f"id {msg_id!r} is already waiting for its answer")
        pending = _Pending(self._encode(msg), asyncio.get_running_loop().create_future(), time.perf_counter())
        self._pending[msg_id] = pending
        ws = self._ws
        if ws is not None:
            pending.generation = self._generation
            with contextlib.suppress(ConnectionClosed):
                await ws.send(pending.frame)  # if the connection died, the runner re-sends on the next one
        try:
            if timeout is None:
                return await pending.future  # no wrapper task: the benchmark sends thousands a second
            return await asyncio.wait_for(pending.future, timeout)
        finally:
            # timed out or cancelled: stop waiting for it (a re-send may still store it: ids make that safe)
            if pending.future.cancelled() and self._pending.get(msg_id) is pending:
                del self._pending[msg_id]

    def drop(self) -> bool:
        """Cut the connection without a closing handshake, as a lost mobile network does."""
        ws = self._ws
        if ws is None or ws.transport is None:
            return False
        ws.transport.abort()
        return True

    async def close(self) -> None:
        self._closing = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(ClientClosed("closed before the answer came"))
        self._pending.clear()

    # --- connection lifecycle -----------------------------------------------------------------------------
    async def _open(self) -> ClientConnection:
        url = with_query(self.url, since=self.last_seq) if self.last_seq else self.url
        try:
            ws = await connect(url, additional_headers={"Authorization": f"Bearer {self.token}"},
                               compression=None, proxy=None, open_timeout=self._open_timeout,
                               max_size=MAX_FRAME)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise HandshakeRefused(status) from None
            raise
        self.stats.connects += 1
        return ws

    async def _run(self, ws: ClientConnection) -> None:
        try:
            while True:
                with contextlib.suppress(ConnectionClosed):
                    await self._serve(ws)
                self._ws = None
                self.stats.drops += 1
                if self._closing:
                    return
                ws = await self._reconnect()
        except HandshakeRefused as exc:
            self._ws = None
            self._fail_all(exc)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller, not swallowed
            self._ws = None
            self._fail_all(ClientError(f"the connection loop failed: {exc!r}"))

    async def _reconnect(self) -> ClientConnection:
        delay, ceiling = self._backoff
        while True:
            # full jitter, so that thousands of phones coming back together do not knock in step
            await asyncio.sleep(self._rng.uniform(0, delay))
            try:
                return await self._open()
            except HandshakeRefused:
                raise
            except (OSError, InvalidHandshake, TimeoutError):
                delay = min(ceiling, delay * 2)

    async def _serve(self, ws: ClientConnection) -> None:
        self._generation += 1
        generation = self._generation
        self._ws = ws
        # answers on the lost connection are gone: write again whatever still waits, same id, same bytes
        for pending in list(self._pending.values()):
            if pending.generation != generation and not pending.future.done():
                if pending.generation >= 0:
                    self.stats.resent += 1
                pending.generation = generation
                await ws.send(pending.frame)
        async for data in ws:
            self._dispatch(data)

    def _fail_all(self, exc: Exception) -> None:
        self._closing = True
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_exception(exc)
        self._pending.clear()

    # --- frames -------------------------------------------------------------------------------------------
    def _encode(self, msg: dict[str, Any]) -> bytes | str:
        if self.json:
            return jsonlib.dumps(msg, ensure_ascii=False, separators=(",", ":"))
        return packb(msg)

    def _dispatch(self, data: bytes | str) -> None:
        try:
            obj = jsonlib.loads(data) if isinstance(data, str) else unpackb(data)
        except ValueError:  # msgpack's and json's decode errors are both ValueErrors
            self.stats.undecodable += 1
            return
        if not isinstance(obj, dict):
            self.stats.undecodable += 1
            return
        if obj.get("type") in ANSWERS:
            msg_id = obj.get("id")
            pending = self._pending.pop(msg_id, None) if isinstance(msg_id, str) else None
            if pending is None:
                if obj.get("type") == "error" and msg_id is None:
                    self.stats.stray_errors.append(obj)
                else:
                    self.stats.late_answers += 1
                return
            if obj["type"] == "ack":
                self.latencies.append(time.perf_counter() - pending.started)
            if not pending.future.done():
                pending.future.set_result(obj)
            return
        seq = obj.get("seq")
        if isinstance(seq, str):
            self.last_seq = seq
        self.pushes.put_nowait(obj)
