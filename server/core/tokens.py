"""Signed bearer tokens: who is calling, in which role, on which tours and regions, until when.

Format: ``v1.<payload>.<signature>`` where ``payload`` is base64url (no padding) of a compact JSON object with
``role``, ``sub``, ``tours``, ``regions``, ``exp`` (integer epoch seconds) and ``iat`` (integer epoch
milliseconds: when it was issued, what a revocation compares; tokens made before it existed read as 0), and
``signature`` is base64url (no padding) of HMAC-SHA256 with the server's secret over ``"v1." + payload``.

Pure and stdlib only. :func:`verify` runs on every connection and request, so it checks the signature before
it decodes anything, and remembers the claims of recently seen tokens (expiry is still checked on every call).

Exceptions::

    ValueError
     └── TokenError            any token that must be refused (HTTP 401)
          ├── MalformedToken   not a v1 token, bad base64 or JSON, or claims of the wrong shape
          ├── ForgedToken      the signature does not match (wrong secret or a tampered payload)
          └── ExpiredToken     signed and well formed, but past its ``exp``

Messages never contain the token itself: they end up in logs and HTTP answers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ROLES: tuple[str, ...] = ("traveller", "guide", "supervisor", "admin")
VERSION = "v1"
MAX_SUB = 128
# far above any real token; refusing early keeps a hostile header from costing us a big HMAC and JSON parse
MAX_TOKEN_LENGTH = 16384


class TokenError(ValueError):
    """A token that must be refused."""


class MalformedToken(TokenError):
    """Not a well-formed v1 token."""


class ForgedToken(TokenError):
    """The signature does not match the payload."""


class ExpiredToken(TokenError):
    """A valid token past its expiry."""


@dataclass(frozen=True, slots=True)
class Claims:
    role: str
    sub: str
    tours: frozenset[str]
    regions: frozenset[str]
    exp: float
    iat: int = 0  # epoch milliseconds

    def has_tour(self, tour_id: str) -> bool:
        return tour_id in self.tours

    def sees_region(self, region: str) -> bool:
        return "*" in self.regions or region in self.regions


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed_part: str) -> str:
    return _b64encode(hmac.new(secret, signed_part.encode("ascii"), hashlib.sha256).digest())


def _ids(name: str, values: Iterable[str]) -> list[str]:
    if isinstance(values, str):
        raise ValueError(f"{name} must be a collection of ids, not a string")
    out = sorted(set(values))
    if not all(isinstance(v, str) and v for v in out):
        raise ValueError(f"{name} must hold non-empty strings")
    return out


def issue(secret: bytes, *, role: str, sub: str, tours: Iterable[str] = (), regions: Iterable[str] = (),
          ttl: float, now: float) -> str:
    """A signed token valid for ``ttl`` seconds from ``now``. Raises ValueError on bad arguments."""
    if not secret:
        raise ValueError("the signing secret is empty")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB:
        raise ValueError(f"sub must be a string of 1-{MAX_SUB} characters")
    if isinstance(ttl, bool) or not ttl > 0:
        raise ValueError("ttl must be positive")
    payload = {
        "role": role, "sub": sub, "tours": _ids("tours", tours), "regions": _ids("regions", regions),
        # rounded up so that a short ttl never yields a token that is already expired
        "exp": math.ceil(now + ttl),
        "iat": int(now * 1000),
    }
    body = _b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signed_part = f"{VERSION}.{body}"
    return f"{signed_part}.{_sign(secret, signed_part)}"


def _str_list(doc: dict[str, Any], name: str) -> frozenset[str]:
    value = doc.get(name)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MalformedToken(f"token claim {name!r} is not a list of strings")
    return frozenset(value)


@lru_cache(maxsize=4096)
def _claims(secret: bytes, token: str) -> Claims:
    """Signature check and decoding; cached because one token is presented again and again."""
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        raise MalformedToken("malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise MalformedToken("malformed token: expected version.payload.signature")
    version, body, signature = parts
    if not body or not signature:
        raise MalformedToken("malformed token: empty payload or signature")
    if version != VERSION:
        raise MalformedToken("unsupported token version")
    if not hmac.compare_digest(_sign(secret, f"{version}.{body}"), signature):
        raise ForgedToken("token signature does not match")
    try:
        doc = json.loads(_b64decode(body))
    except (binascii.Error, ValueError):
        raise MalformedToken("malformed token payload") from None
    if not isinstance(doc, dict):
        raise MalformedToken("malformed token payload")
    role, sub, exp = doc.get("role"), doc.get("sub"), doc.get("exp")
    if role not in ROLES:
        raise MalformedToken("token carries an unknown role")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_SUB:
        raise MalformedToken("token claim 'sub' is invalid")
    if isinstance(exp, bool) or not isinstance(exp, int):
        raise MalformedToken("token claim 'exp' is not an integer")
    iat = doc.get("iat", 0)
    if isinstance(iat, bool) or not isinstance(iat, int):
        raise MalformedToken("token claim 'iat' is not an integer")
    return Claims(role=role, sub=sub, tours=_str_list(doc, "tours"), regions=_str_list(doc, "regions"),
                  exp=float(exp), iat=iat)


def verify(secret: bytes, token: str, now: float) -> Claims:
    """The claims of a token signed with ``secret`` and not expired at ``now``; else a :class:`TokenError`."""
    if not isinstance(token, str):
        raise MalformedToken("malformed token")
    claims = _claims(secret, token)
    if now >= claims.exp:
        raise ExpiredToken("token expired")
    return claims
