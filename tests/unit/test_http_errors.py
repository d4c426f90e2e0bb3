"""The HTTP API's one error path (``server.web.errors``): whatever a handler raises, one shape answers.

A tiny app with the real handlers, driven in process (httpx's ASGI transport): no server, no Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alerts.rules.pool_model import PoolConflict, PoolInvalid, PoolNotFound
from guide_app_api.errors import Conflict, Forbidden, Invalid, NotFound, RateLimited, Unavailable
from server.storage.tours import TourInvalid
from server.web.errors import EXCEPTION_HANDLERS
from server.web.http import json_body, str_list

RAISED: dict[str, Exception] = {
    "invalid": Invalid("kind must be one of a, b", field="kind"),
    "forbidden": Forbidden("outside your regions", field="region"),
    "not_found": NotFound("no such tour"),
    "conflict": Conflict("the incident is already resolved"),
    "rate_limited": RateLimited("slow down"),
    "unavailable": Unavailable("retry later"),
    "pool_invalid": PoolInvalid("capacity", "capacity must be an integer 1-100000"),
    "pool_not_found": PoolNotFound("no resource 'r1'"),
    "pool_conflict": PoolConflict("resource 'r1' is held, not free"),
    "tour_invalid": TourInvalid("end", "end must not be before start"),
    "http_401": HTTPException(401, "missing bearer token"),
    "http_403": HTTPException(403, "role 'guide' may not use this"),
    "redis": RedisConnectionError("connection refused"),
    "os": ConnectionRefusedError("refused"),
}


async def _raise(request: Request) -> Response:
    raise RAISED[request.path_params["name"]]


async def _echo(request: Request) -> Response:
    body = await json_body(request)
    return JSONResponse({"body": body, "tags": str_list(body, "tags")})


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/raise/{name}", _raise), Route("/echo", _echo, methods=["POST"])],
                    exception_handlers=EXCEPTION_HANDLERS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


@pytest.mark.parametrize(("name", "status", "answer"), [
    ("invalid", 400, {"error": "invalid", "message": "kind must be one of a, b", "field": "kind"}),
    ("forbidden", 403, {"error": "forbidden", "message": "outside your regions", "field": "region"}),
    ("not_found", 404, {"error": "not_found", "message": "no such tour", "field": None}),
    ("conflict", 409, {"error": "conflict", "message": "the incident is already resolved", "field": None}),
    ("rate_limited", 429, {"error": "rate_limited", "message": "slow down", "field": None}),
    ("unavailable", 503, {"error": "unavailable", "message": "retry later", "field": None}),
    ("pool_invalid", 400, {"error": "invalid", "message": "capacity must be an integer 1-100000",
                           "field": "capacity"}),
    ("pool_not_found", 404, {"error": "not_found", "message": "no resource 'r1'", "field": None}),
    ("pool_conflict", 409, {"error": "conflict", "message": "resource 'r1' is held, not free", "field": None}),
    ("tour_invalid", 400, {"error": "invalid", "message": "end must not be before start", "field": "end"}),
    ("http_401", 401, {"error": "unauthorized", "message": "missing bearer token", "field": None}),
    ("http_403", 403, {"error": "forbidden", "message": "role 'guide' may not use this", "field": None}),
    ("redis", 503, {"error": "unavailable", "message": "storage is unavailable: retry later", "field": None}),
    ("os", 503, {"error": "unavailable", "message": "storage is unavailable: retry later", "field": None}),
])
async def test_every_refusal_has_one_shape(client: httpx.AsyncClient, name: str, status: int,
                                           answer: dict[str, Any]) -> None:
    response = await client.get(f"/raise/{name}")
    assert (response.status_code, response.json()) == (status, answer)


async def test_routing_refusals_have_the_same_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    wrong_method = await client.get("/echo")
    assert (missing.status_code, missing.json()["error"], missing.json()["field"]) == (404, "not_found", None)
    assert (wrong_method.status_code, wrong_method.json()["error"]) == (405, "method_not_allowed")


@pytest.mark.parametrize(("body", "message"), [
    (b"{", "the body is not JSON"),
    (b"\xff\xfe", "the body is not JSON"),
    (b"[1, 2]", "the body must be a JSON object"),
    (b'"text"', "the body must be a JSON object"),
])
async def test_the_json_body_reader_refuses_what_is_not_an_object(client: httpx.AsyncClient, body: bytes,
                                                                  message: str) -> None:
    response = await client.post("/echo", content=body)
    assert (response.status_code, response.json()) == (400, {"error": "invalid", "message": message,
                                                              "field": "body"})


@pytest.mark.parametrize("body", [b"", b"  \n"])
async def test_an_empty_body_is_an_empty_object(client: httpx.AsyncClient, body: bytes) -> None:
    assert (await client.post("/echo", content=body)).json() == {"body": {}, "tags": []}


async def test_a_list_of_strings_field_names_itself(client: httpx.AsyncClient) -> None:
    assert (await client.post("/echo", json={"tags": ["a", "b"]})).json()["tags"] == ["a", "b"]
    refused = await client.post("/echo", json={"tags": ["a", ""]})
    assert (refused.status_code, refused.json()) == (400, {"error": "invalid", "field": "tags",
                                                           "message": "tags must be a list of strings"})
