"""The wire protocol's one exception family: each class is one error code of the contract (§5).

::

    Exception
     └── ProtocolError            any refusal answered with an ``error`` frame; nothing was stored
          ├── BadFrame            "bad_frame": not a map/object, or undecodable
          ├── Invalid             "invalid": a field is missing or out of range (``field`` names it)
          ├── Forbidden           "forbidden": outside the token's scope
          ├── UnknownTour         "unknown_tour"
          ├── NotFound            "not_found": no such incident or alert
          ├── Conflict            "conflict": an ``id`` re-used for other content, or an illegal transition
          ├── RateLimited         "rate_limited"
          └── Unavailable         "unavailable": storage down, retry later

Every error carries the client's message ``id`` when it was readable, so the phone can match the answer to
what it sent. The connection stays open after any of them; only the endpoint decides to close (1008/1009).
"""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    """Base of every error that becomes an ``error`` frame."""

    code: str = "invalid"

    def __init__(self, message: str, field: str | None = None, msg_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # mutable on purpose: the endpoint fills it in when the error was raised before the id was known
        self.msg_id = msg_id

    def to_wire(self) -> dict[str, Any]:
        return {"type": "error", "id": self.msg_id, "code": self.code, "message": self.message,
                "field": self.field}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, field={self.field!r}, msg_id={self.msg_id!r})"


class BadFrame(ProtocolError):
    code = "bad_frame"


class Invalid(ProtocolError):
    code = "invalid"


class Forbidden(ProtocolError):
    code = "forbidden"


class UnknownTour(ProtocolError):
    code = "unknown_tour"


class NotFound(ProtocolError):
    code = "not_found"


class Conflict(ProtocolError):
    code = "conflict"


class RateLimited(ProtocolError):
    code = "rate_limited"


class Unavailable(ProtocolError):
    code = "unavailable"


ERROR_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (BadFrame, Invalid, Forbidden, UnknownTour, NotFound, Conflict, RateLimited, Unavailable)
)
