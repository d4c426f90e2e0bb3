"""The HTTP API's one error path: handlers raise, and the handlers registered here answer.

Every refusal of the HTTP API is ``{"error": code, "message", "field"}`` with the status of its code (contract
§2-8). A handler never builds that answer itself; it raises, and the app (``EXCEPTION_HANDLERS``) turns what it
raised into the answer::

    raised                              answered
    ProtocolError (Invalid, NotFound,   its code, with the status of the code (STATUS_BY_CODE): the contract's
      Forbidden, Conflict, ...)           error codes, the same family the WebSockets answer with
    PoolError                           400 invalid (PoolInvalid, naming its field), 404 not_found, 409 conflict
    TourInvalid                         400 invalid, naming its field
    HTTPException (auth, routing)       its status, the code of that status (401 unauthorized, 405 ...)
    RedisError, ConnectionError         503 unavailable: storage is down, retry later
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from alerts.rules.pool_model import PoolError, PoolInvalid, PoolNotFound
from guide_app_api.errors import ProtocolError
from server.storage.tours import TourInvalid

log = logging.getLogger(__name__)

STATUS_BY_CODE = {"invalid": 400, "bad_frame": 400, "forbidden": 403, "not_found": 404, "conflict": 409,
                  "rate_limited": 429, "unavailable": 503}
CODE_BY_STATUS = {400: "invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                  405: "method_not_allowed", 409: "conflict", 503: "unavailable"}


def error_response(status: int, code: str, message: str, field: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": code, "message", "field"}``: the shape of every refusal of the HTTP API."""
    return JSONResponse({"error": code, "message": message, "field": field}, status_code=status, headers=headers)


async def protocol_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProtocolError)
    return error_response(STATUS_BY_CODE.get(exc.code, 400), exc.code, exc.message, exc.field)


async def pool_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PoolError)
    if isinstance(exc, PoolInvalid):
        return error_response(400, "invalid", exc.message, exc.field)
    if isinstance(exc, PoolNotFound):
        return error_response(404, "not_found", str(exc))
    return error_response(409, "conflict", str(exc))


async def tour_invalid(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TourInvalid)
    return error_response(400, "invalid", exc.message, exc.field)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (and ``server.web.auth``'s 401/403) in the same shape."""
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, CODE_BY_STATUS.get(exc.status_code, "error"), exc.detail,
                          headers=exc.headers)


async def storage_error(request: Request, exc: Exception) -> Response:
    log.warning("storage unavailable during %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "unavailable", "storage is unavailable: retry later")


EXCEPTION_HANDLERS: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
    ProtocolError: protocol_error,
    PoolError: pool_error,
    TourInvalid: tour_invalid,
    HTTPException: http_error,
    RedisError: storage_error,
    ConnectionError: storage_error,
}
