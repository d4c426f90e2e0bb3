"""Who is calling: bearer tokens on HTTP and WebSocket, checked before anything else is read.

HTTP: ``Authorization: Bearer <token>``; WebSocket: the same header, or the ``token`` query parameter.
Missing, malformed, forged or expired -> 401; a valid token of the wrong role -> 403.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from server.core.tokens import Claims, TokenError, verify


def bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    return conn.query_params.get("token") if conn.scope["type"] == "websocket" else None


def authenticate(conn: HTTPConnection, roles: Collection[str]) -> Claims:
    """The caller's claims, or HTTPException(401/403). WebSocket endpoints turn the exception into a refusal."""
    token = bearer(conn)
    if token is None:
        raise HTTPException(401, "missing bearer token")
    try:
        claims = verify(conn.app.state.settings.secret, token, time.time())
    except TokenError as exc:
        raise HTTPException(401, str(exc)) from None
    if claims.role not in roles:
        raise HTTPException(403, f"role {claims.role!r} may not use this")
    return claims
