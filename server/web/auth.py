"""Who is calling: bearer tokens on HTTP and WebSocket, checked before anything else is read.

HTTP: ``Authorization: Bearer <token>``; WebSocket: the same header, or the ``token`` query parameter.
Missing, malformed, forged, expired or revoked (§13) -> 401; a valid token of the wrong role -> 403.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection

from guide_app_api.errors import Forbidden
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
    revocations = getattr(conn.app.state, "revocations", None)
    if revocations is not None and revocations.refuses(claims.role, claims.sub, claims.iat):
        raise HTTPException(401, "token revoked")
    if claims.role not in roles:
        raise HTTPException(403, f"role {claims.role!r} may not use this")
    return claims


def admin_scope(claims: Claims) -> frozenset[str] | None:
    """The regions an admin may act in, or None for every region (``*``, or a token naming none: the form every
    admin token had before §13). An admin whose token names regions issues and writes only inside them."""
    if claims.role != "admin" or "*" in claims.regions or not claims.regions:
        return None
    return claims.regions


def require_region(claims: Claims, region: object, field: str = "region") -> None:
    """:class:`Forbidden` (403) unless ``claims`` may write in ``region`` (only admins are ever scoped here)."""
    scope = admin_scope(claims)
    if scope is not None and region not in scope:
        raise Forbidden(f"{field} {region!r} is outside your regions", field=field)
