"""§13 limits on a real server: one sender's connections, a phone that stops reading, a half-open handshake."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path

import msgpack
import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from server.core import keys
from server.web.protocols import UVICORN_LIMITS
from tests.conftest import register_tour, token
from tests.e2e.test_ingest_ws import ask, phone, rating, ws_url

WAIT = 20.0  # the longest any one condition may take to come true on a loaded machine; never a measured time


async def until(condition, what: str) -> None:  # noqa: ANN001
    async with asyncio.timeout(WAIT):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_senders_connection_beyond_the_cap_closes_its_oldest_with_1008(app_factory) -> None:
    async with app_factory({"limits": {"connections_per_sender": 2}}) as (base, app):
        await register_tour(base, "T1")
        first = await phone(base, "traveller", "t1")
        second = await phone(base, "traveller", "t1")
        other = await phone(base, "traveller", "t2")
        third = await phone(base, "traveller", "t1")
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(WAIT):
                await first.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        for ws in (second, third, other):  # the newer ones and other senders are untouched
            assert (await ask(ws, rating(f"r-{id(ws)}"), True))["type"] == "ack"
        assert app.state.sessions.open_for("traveller:t1") == 2
        for ws in (second, third, other):
            await ws.close()


def _push(tour_id: str, n: int) -> bytes:
    return json.dumps({"type": "notice", "tour_id": tour_id, "audience": "all", "notice_id": f"N{n}",
                       "kind": "info", "title": "x", "body": "y" * 1800}).encode()


async def test_a_phone_that_stops_reading_is_closed_with_1013_and_holds_no_more_than_its_queue(
        app_factory, redis_url) -> None:
    async with app_factory({"limits": {"send_queue": 8}}) as (base, app):
        await register_tour(base, "T1")
        await register_tour(base, "T2")
        # a tiny receive window: the server's buffers fill after a few MB instead of many
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        auth = {"Authorization": f"Bearer {token('traveller', 's', tours=('T1',))}"}
        stalled = await connect(ws_url(base, "/ws/traveller"), sock=sock, max_queue=1, compression=None,
                                additional_headers=auth)
        reader = await phone(base, "traveller", "r", tours=("T2",))  # another tour, at a pace it can read
        received = 0

        async def read_all() -> None:
            nonlocal received
            async for _frame in reader:
                received += 1

        reading = asyncio.create_task(read_all())
        stalled.transport.pause_reading()  # stops reading altogether, as a phone whose app hangs
        client = aioredis.Redis.from_url(redis_url)
        hub = app.state.notice_hub
        try:
            for batch in range(40):  # 40 x 100 pushes of ~2 KB: far more than the buffers hold
                async with client.pipeline(transaction=False) as pipe:
                    for n in range(100):
                        pipe.xadd(keys.NOTICES, {"n": _push("T1", batch * 100 + n)})
                    pipe.xadd(keys.NOTICES, {"n": _push("T2", batch)})
                    await pipe.execute()
                assert len(hub._inflight) <= 2  # one writer per phone with pushes waiting, never one per push
                assert all(len(c.outbox) <= 8 for cs in hub.by_tour.values() for c in cs)
                if app.state.phones.overflowed:
                    break
                await asyncio.sleep(0.05)
            await until(lambda: app.state.sessions.open_for("traveller:s") == 0, "the stalled phone is closed")
            assert app.state.phones.overflowed == 1
            # the phone that reads gets its pushes and stays connected
            await until(lambda: received == batch + 1, "the reading phone got its pushes")
            assert app.state.sessions.open_for("traveller:r") == 1
            # the stalled one, reading again, finds the close (1013) after what was already on its way
            stalled.transport.resume_reading()
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(WAIT):
                    while True:
                        await stalled.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        finally:
            await client.aclose()
            await reader.close()
            await reading


async def test_a_push_is_encoded_once_per_encoding_however_many_phones_get_it(
        app_factory, redis_url, monkeypatch) -> None:
    from guide_app_api import endpoints

    encoded: list[tuple[str, bool]] = []
    real_encode = endpoints.encode

    def counting(obj, binary):  # noqa: ANN001, ANN202
        if obj.get("type") == "notice":
            encoded.append((obj["notice_id"], binary))
        return real_encode(obj, binary)

    monkeypatch.setattr(endpoints, "encode", counting)
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        phones = [await phone(base, "traveller", f"p{i}") for i in range(6)]
        for i, ws in enumerate(phones):  # three speak msgpack, three JSON: pushes come in the encoding last spoken
            assert (await ask(ws, rating(f"r{i}"), i % 2 == 0))["type"] == "ack"
        client = aioredis.Redis.from_url(redis_url)
        try:
            for n in range(3):
                await client.xadd(keys.NOTICES, {"n": _push("T1", n)})
            for i, ws in enumerate(phones):
                for n in range(3):
                    async with asyncio.timeout(WAIT):
                        frame = await ws.recv()
                    if i % 2 == 0:
                        assert isinstance(frame, bytes)
                        got = msgpack.unpackb(frame)
                    else:
                        assert isinstance(frame, str)
                        got = json.loads(frame)
                    assert got["notice_id"] == f"N{n}" and got["body"] == "y" * 1800 and "audience" not in got
                    assert got["seq"]
        finally:
            await client.aclose()
            for ws in phones:
                await ws.close()
        # six phones, three pushes: each push encoded once as JSON and once as msgpack, not six times
        assert sorted(encoded) == sorted((f"N{n}", b) for n in range(3) for b in (False, True))


async def test_a_handshake_that_never_finishes_is_dropped(app_factory) -> None:
    async with app_factory({"limits": {"handshake_timeout": "0.2s"}}) as (base, _app):
        port = int(base.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /ws/traveller HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")  # never ends
        await writer.drain()
        async with asyncio.timeout(WAIT):
            assert await reader.read() == b""  # closed by the server
        writer.close()
        # a connection that says nothing at all is dropped too; a complete request is served as ever
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        async with asyncio.timeout(WAIT):
            assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(WAIT):
            assert (await reader.read()).startswith(b"HTTP/1.1 200")
        writer.close()


def test_procfile_and_serve_give_uvicorn_the_same_limits() -> None:
    procfile = (Path(__file__).parents[2] / "Procfile").read_text()
    web = next(line for line in procfile.splitlines() if line.startswith("web:"))
    assert int(re.search(r"--limit-concurrency (\d+)", web).group(1)) == UVICORN_LIMITS["limit_concurrency"] >= 20_000
    assert int(re.search(r"--timeout-keep-alive (\d+)", web).group(1)) == UVICORN_LIMITS["timeout_keep_alive"]
    assert f"--http {UVICORN_LIMITS['http']}" in web and f"--ws {UVICORN_LIMITS['ws']}" in web


async def test_a_phone_catch_up_reads_one_bounded_page_of_the_push_stream(app_factory, redis_url) -> None:
    from server.web.hub import CATCH_UP_LIMIT

    client = aioredis.Redis.from_url(redis_url)
    try:  # published before the server starts: what the phone gets is its catch-up alone, no live copy
        first = (await client.xadd(keys.NOTICES, {"n": _push("T1", 0)})).decode()
        async with client.pipeline(transaction=False) as pipe:
            for n in range(CATCH_UP_LIMIT):
                pipe.xadd(keys.NOTICES, {"n": _push("T2", n)})
            await pipe.execute()
        await client.xadd(keys.NOTICES, {"n": _push("T1", 1)})  # beyond the page: not caught up
    finally:
        await client.aclose()
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        auth = {"Authorization": f"Bearer {token('traveller', 't1', tours=('T1',))}"}
        async with connect(ws_url(base, "/ws/traveller?since=0"), additional_headers=auth) as ws:
            async with asyncio.timeout(WAIT):
                got = json.loads(await ws.recv())
            assert (got["notice_id"], got["seq"]) == ("N0", first)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await ws.recv()


@pytest.mark.parametrize("where", ["query", "header"])
async def test_a_10_kb_token_is_refused_at_once_with_403(app_factory, where) -> None:
    from websockets.exceptions import InvalidStatus

    huge = "v1." + "a" * 10_000 + ".sig"
    async with app_factory() as (base, _app):
        url = ws_url(base, f"/ws/traveller?token={huge}" if where == "query" else "/ws/traveller")
        headers = {"Authorization": f"Bearer {huge}"} if where == "header" else {}
        with pytest.raises(InvalidStatus) as refused:  # before: no answer at all until the client gave up
            await connect(url, additional_headers=headers, open_timeout=WAIT)
        assert refused.value.response.status_code == 403


async def test_a_text_frame_that_is_not_utf8_closes_with_1007_and_no_traceback(app_factory) -> None:
    import logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(level=logging.DEBUG)
    logging.getLogger("uvicorn.error").addHandler(keep)
    try:
        async with app_factory() as (base, _app):
            await register_tour(base, "T1")
            ws = await phone(base, "traveller", "t1")
            ws.protocol.send_text(b'{"type": "rating", "id": "\xff\xfe"}')  # the client library would never
            ws.transport.write(b"".join(ws.protocol.data_to_send()))
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(WAIT):
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
            other = await phone(base, "traveller", "t2")  # the server goes on
            assert (await ask(other, rating("ok"), False))["type"] == "ack"
            await other.close()
    finally:
        logging.getLogger("uvicorn.error").removeHandler(keep)
    assert not [r for r in records if r.exc_info], [r.getMessage() for r in records]
