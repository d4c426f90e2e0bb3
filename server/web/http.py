"""What every HTTP handler shares: JSON error answers and reading a JSON object body."""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse


def error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    """``{"error": code, "message", "field"}``: the shape of every refusal of the HTTP API."""
    return JSONResponse({"error": code, "message": message, "field": field}, status_code=status)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); anything else is a 400 (JSON, by the app's handler)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body


def str_list(body: dict[str, Any], name: str) -> list[str]:
    """A body field that must be a list of non-empty strings (absent: empty); ValueError names the field."""
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(name)
    return value
