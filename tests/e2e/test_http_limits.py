"""§13 on HTTP: bodies over [limits] max_body answer 413; malformed JSON answers 400, never 500."""

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
MALFORMED = {
    "surrogate": b'{"role": "traveller", "sub": "\\ud800"}',
    "surrogate-2": b'{"role": "traveller", "sub": "x\\udfff y"}',
    "surrogate-key": b'{"\\ud83d": 1}',
    "nan": b'{"role": "traveller", "sub": "x", "ttl": NaN}',
    "inf": b'{"role": "traveller", "sub": "x", "ttl": Infinity}',
    "-inf": b'{"role": "traveller", "sub": "x", "ttl": -Infinity}',
    "deep": b'{"role": "traveller", "sub": "x", "n": ' + b"[" * 65 + b"]" * 65 + b"}",  # nesting 66 deep
    "very-deep": b'{"a": ' * 100_000,  # far deeper than Python's recursion
    "not-utf8": b"\xff\xfe{}",
    "truncated": b'{"role": "traveller", "sub": "x"',
}
WRITES = [("POST", "/api/tokens"), ("PUT", "/api/tours/T1"), ("PUT", "/api/pool/resources/R1"),
          ("POST", "/api/notices"), ("POST", "/api/alerts/A1/resolve"), ("POST", "/api/tokens/revoke")]


async def test_a_malformed_body_is_400_in_the_error_shape_on_every_route(app_factory) -> None:
    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base, timeout=WAIT) as http:
        for name, body in MALFORMED.items():
            for method, path in WRITES:
                resp = await http.request(method, path, content=body, headers=ADMIN)
                assert resp.status_code == 400, (name, path, resp.text)
                assert resp.json()["error"] == "invalid", (name, path)
        # 64 deep is still a body (refused for what it says, not for its shape)
        ok = b'{"role": "traveller", "sub": "x", "n": ' + b"[" * 62 + b"]" * 62 + b"}"
        assert (await http.post("/api/tokens", content=ok, headers=ADMIN)).status_code == 200
