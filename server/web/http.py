"""What every HTTP handler shares: reading a JSON object body, and its common field checks.

Refusals are raised (``guide_app_api.errors``: :class:`Invalid`, :class:`NotFound`, ...) and answered by the app's
one error path, :mod:`server.web.errors`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from guide_app_api.errors import Invalid


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); anything else is :class:`Invalid` on ``body``."""
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise Invalid("the body is not JSON", field="body") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", field="body")
    return body


def str_list(body: dict[str, Any], name: str, what: str = "strings") -> list[str]:
    """A body field that must be a list of non-empty strings (absent: empty), else :class:`Invalid` on it."""
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"{name} must be a list of {what}", field=name)
    return value
