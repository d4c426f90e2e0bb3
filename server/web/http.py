"""What every HTTP handler shares: reading a JSON object body, and its common field checks.

Refusals are raised (``guide_app_api.errors``: :class:`Invalid`, :class:`NotFound`, ...) and answered by the app's
one error path, :mod:`server.web.errors`.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from guide_app_api.errors import Invalid

# deeper than any body of the API; Python's own parser would go on to its recursion limit (a 500)
MAX_DEPTH = 64


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is ``{}``); anything else is :class:`Invalid` on ``body``: not
    JSON or not UTF-8, ``NaN`` or ``Infinity``, a lone surrogate (``"\\ud800"``: no text can hold it, so it failed
    later, when stored), nesting deeper than :data:`MAX_DEPTH`. (Its size is bounded before, by
    :mod:`server.web.body_limit`.)"""
    raw = await request.body()
    try:
        body = json.loads(raw, parse_constant=_no_constant) if raw.strip() else {}
    except RecursionError:
        raise Invalid(f"the body is nested deeper than {MAX_DEPTH}", field="body") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError and _no_constant's are all ValueErrors
        raise Invalid("the body is not JSON", field="body") from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", field="body")
    _check_tree(body)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _check_tree(value: Any) -> None:
    """Depth and text of a parsed body, without recursion (so no body can exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Invalid(f"the body is nested deeper than {MAX_DEPTH}", field="body")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_text(item)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid("the body holds a lone surrogate (\\ud800-\\udfff), which is not text", field="body") from None


def str_list(body: dict[str, Any], name: str, what: str = "strings") -> list[str]:
    """A body field that must be a list of non-empty strings (absent: empty), else :class:`Invalid` on it."""
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"{name} must be a list of {what}", field=name)
    return value
