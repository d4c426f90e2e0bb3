"""Keep bearer tokens out of the logs.

A WebSocket client may pass its token as the ``token`` query parameter (contract §3), and uvicorn logs
the full path with its query string: on ``uvicorn.access`` for HTTP requests and on ``uvicorn.error`` for
WebSocket handshakes ("WebSocket /ws/board?token=..." [accepted]). A token in a log file is a credential
anyone who reads the logs can use until it expires, so :class:`RedactTokens` rewrites it (and any
``Authorization`` value) to ``<redacted>`` before the record is formatted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"
_TOKEN_PARAM = re.compile(r"((?:^|[?&;\s\"'])token=)[^&;\s\"']*", re.IGNORECASE)
_AUTHORIZATION = re.compile(
    r"(authorization[\"']?\s*[:=,]\s*[\"']?)(?:(?:bearer|basic)\s+)?[^\s\"',;)\]]+", re.IGNORECASE
)
LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    """``text`` with every ``token=`` query value and ``Authorization`` value replaced by ``<redacted>``."""
    # cheap test first: almost every access-log line has neither
    lowered = text.lower()
    if "token=" in lowered:
        text = _TOKEN_PARAM.sub(rf"\1{REDACTED}", text)
    if "authorization" in lowered:
        text = _AUTHORIZATION.sub(rf"\1{REDACTED}", text)
    return text


def _redact_arg(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Rewrites a record's message and string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_redact_arg(a) for a in args)
        elif isinstance(args, Mapping):
            record.args = {k: _redact_arg(v) for k, v in args.items()}
        return True


def install_redaction(loggers: tuple[str, ...] = LOGGERS) -> RedactTokens:
    """Add one shared :class:`RedactTokens` to uvicorn's loggers (once, however often this is called)."""
    existing = next(
        (f for name in loggers for f in logging.getLogger(name).filters if isinstance(f, RedactTokens)), None
    )
    redaction = existing or RedactTokens()
    for name in loggers:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokens) for f in logger.filters):
            logger.addFilter(redaction)
    return redaction
