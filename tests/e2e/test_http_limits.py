"""§13 on HTTP: bodies over [limits] max_body answer 413."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import token

WAIT = 20.0  # the longest any one condition may take to come true on a loaded machine; never a measured time
ADMIN = {"Authorization": f"Bearer {token('admin', 'ops')}", "Content-Type": "application/json"}
LIMITS = {"limits": {"max_body": "64KiB"}}


def _too_large(resp: httpx.Response) -> None:
    assert resp.status_code == 413, resp.text
    assert resp.json()["error"] == "too_large"


async def test_a_declared_body_over_max_body_is_413_and_the_connection_closes(app_factory) -> None:
    async with app_factory(LIMITS) as (base, _app), httpx.AsyncClient(base_url=base, timeout=WAIT) as http:
        body = b'{"role": "traveller", "sub": "' + b"a" * (4 * 1024 * 1024) + b'"}'  # read and dropped: answered
        resp = await http.post("/api/tokens", content=body, headers=ADMIN)
        _too_large(resp)
        assert resp.headers["connection"] == "close"
        huge = b'{"role": "traveller", "sub": "' + b"a" * (20 * 1024 * 1024) + b'"}'  # past the 16 MiB read too
        try:
            _too_large(await http.post("/api/tokens", content=huge, headers=ADMIN))
        except httpx.TransportError:
            pass  # closed while the client was still writing: it may not see the answer, and that is the point
        small = await http.post("/api/tokens", json={"role": "traveller", "sub": "x"}, headers=ADMIN)
        assert small.status_code == 200  # a new connection, served as ever


async def test_a_streamed_body_over_max_body_is_413(app_factory) -> None:
    async def chunks():  # noqa: ANN202 - no Content-Length: counted as it comes
        yield b'{"role": "traveller", "sub": "'
        for _ in range(40):
            yield b"a" * 4096
            await asyncio.sleep(0)
        yield b'"}'

    async with app_factory(LIMITS) as (base, _app), httpx.AsyncClient(base_url=base, timeout=WAIT) as http:
        _too_large(await http.post("/api/tokens", content=chunks(), headers=ADMIN))


async def test_a_body_at_max_body_is_read_as_ever(app_factory) -> None:
    async with app_factory(LIMITS) as (base, _app), httpx.AsyncClient(base_url=base, timeout=WAIT) as http:
        head, tail = b'{"role": "traveller", "sub": "x", "pad": "', b'"}'
        body = head + b"p" * (64 * 1024 - len(head) - len(tail)) + tail
        assert len(body) == 64 * 1024
        assert (await http.post("/api/tokens", content=body, headers=ADMIN)).status_code == 200
