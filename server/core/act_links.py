"""Signed acknowledge links (contract §12): ``<base_url>/act/<signed>`` lets one person act on one alert for 24 h.

``signed`` is ``<payload>.<signature>``: ``payload`` base64url (no padding) of compact JSON ``{"a": alert_id,
"p": person, "exp": epoch seconds}``, ``signature`` base64url of HMAC-SHA256 with the server's secret over
``"act1." + payload``. The ``act1.`` prefix keeps a bearer token's signature from ever passing for a link's, and
the other way round. Pure and stdlib only.

Exceptions::

    ValueError
     └── LinkError          a link that must not act (the page answers 403)
          ├── ForgedLink    malformed, or the signature does not match
          └── ExpiredLink   signed and well formed, but past its ``exp`` (the page answers 410)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

LINK_TTL = 24 * 3600.0
MAX_LINK = 2048
_DOMAIN = b"act1."


class LinkError(ValueError):
    """A link that must not act."""


class ForgedLink(LinkError):
    """Malformed, or its signature does not match."""


class ExpiredLink(LinkError):
    """A genuine link past its expiry."""


@dataclass(frozen=True, slots=True)
class ActLink:
    alert_id: str
    person: str
    exp: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, _DOMAIN + payload.encode("ascii"), hashlib.sha256).digest())


def sign_link(secret: bytes, alert_id: str, person: str, now: float, ttl: float = LINK_TTL) -> str:
    payload = _b64(json.dumps({"a": alert_id, "p": person, "exp": int(now + ttl)},
                              separators=(",", ":"), ensure_ascii=False).encode())
    return f"{payload}.{_sign(secret, payload)}"


def verify_link(secret: bytes, signed: str, now: float) -> ActLink:
    """The link's alert and person; :class:`ForgedLink` or :class:`ExpiredLink` otherwise."""
    if not isinstance(signed, str) or len(signed) > MAX_LINK or signed.count(".") != 1:
        raise ForgedLink("not an acknowledge link")
    payload, signature = signed.split(".")
    try:
        expected = _sign(secret, payload)
    except UnicodeEncodeError:
        raise ForgedLink("not an acknowledge link") from None
    if not hmac.compare_digest(expected, signature):
        raise ForgedLink("this link's signature does not match")
    try:
        claims = json.loads(_unb64(payload))
        link = ActLink(alert_id=str(claims["a"]), person=str(claims["p"]), exp=float(claims["exp"]))
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ForgedLink("not an acknowledge link") from None
    if now >= link.exp:
        raise ExpiredLink("this link has expired")
    return link


def act_url(base_url: str, secret: bytes, alert_id: str, person: str, now: float) -> str:
    return f"{base_url.rstrip('/')}/act/{sign_link(secret, alert_id, person, now)}"
