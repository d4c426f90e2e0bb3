"""One raw Redis connection for the shared writer: a batch of commands out in one write, their replies parsed
by hiredis. No pool, retry or per-command timeout bookkeeping: measured here, redis-py's pipeline machinery was
a fifth of a web process's CPU at load, and the writer needs none of it (one connection, one caller).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis

CONNECT_TIMEOUT = 5.0
REPLY_TIMEOUT = 5.0


class RespError(Exception):
    """An error reply (``-ERR ...``) from the server; only this command failed."""


def pack(*args: bytes | str | int | float) -> bytes:
    """A command in RESP (``*N`` then each argument as a bulk string), packed by hiredis in C: 4x the Python loop."""
    return hiredis.pack_command(args)


class RespConnection:
    def __init__(self, url: str) -> None:
        self.url = url
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = hiredis.Reader(replyError=RespError)

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            open_it = asyncio.open_unix_connection(parts.path)
        else:
            tls = ssl.create_default_context() if parts.scheme == "rediss" else None
            open_it = asyncio.open_connection(parts.hostname or "127.0.0.1", parts.port or 6379, ssl=tls)
        async with asyncio.timeout(CONNECT_TIMEOUT):
            self._reader, self._writer = await open_it
        self._parser = hiredis.Reader(replyError=RespError)
        setup = []
        if parts.password:
            user = unquote(parts.username) if parts.username else "default"
            setup.append(pack("AUTH", user, unquote(parts.password)))
        db = parts.path.strip("/") if parts.scheme != "unix" else ""
        if db and db != "0":
            setup.append(pack("SELECT", db))
        if setup:
            for reply in await self.roundtrip(setup):
                if isinstance(reply, RespError):
                    await self.close()
                    raise reply

    async def roundtrip(self, commands: list[bytes], timeout: float = REPLY_TIMEOUT) -> list[Any]:
        """Send packed commands in one write; their replies, in order (an error reply is a RespError)."""
        if self._writer is None or self._reader is None:
            raise ConnectionError("not connected")
        self._writer.write(b"".join(commands))
        replies: list[Any] = []
        try:
            async with asyncio.timeout(timeout):
                while len(replies) < len(commands):
                    reply = self._parser.gets()
                    if reply is False:
                        data = await self._reader.read(65536)
                        if not data:
                            raise ConnectionError("connection closed by the server")
                        self._parser.feed(data)
                        continue
                    replies.append(reply)
        except BaseException:
            await self.close()  # a half-read reply stream cannot be trusted: start afresh next time
            raise
        return replies

    def send(self, commands: list[bytes]) -> None:
        """Write packed commands without waiting for their replies (a streaming caller reads them with
        :meth:`replies`, in order)."""
        if self._writer is None:
            raise ConnectionError("not connected")
        self._writer.write(b"".join(commands))

    async def drain(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark (Redis is not keeping up)."""
        if self._writer is not None:
            await self._writer.drain()

    async def replies(self) -> list[Any]:
        """The next replies to arrive (at least one), in order; raises ConnectionError once the server is gone."""
        reader, parser = self._reader, self._parser
        if reader is None:
            raise ConnectionError("not connected")
        while True:
            reply = parser.gets()
            if reply is not False:
                break
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("connection closed by the server")
            parser.feed(data)
        out = [reply]
        while (reply := parser.gets()) is not False:
            out.append(reply)
        return out

    def abort(self) -> None:
        """Drop the connection at once (a reader waiting on it sees it closed)."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.transport.abort()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ConnectionError):
                pass
