"""Tokens: pure, table-driven, no event loop."""

from __future__ import annotations

import base64
import json

import pytest

from server.core.tokens import (
    ROLES,
    Claims,
    ExpiredToken,
    ForgedToken,
    MalformedToken,
    TokenError,
    issue,
    verify,
)

SECRET = b"test-secret-of-16+"
NOW = 1_700_000_000.0


def _token(**overrides: object) -> str:
    args: dict[str, object] = {"role": "guide", "sub": "g1", "tours": ["t1", "t2"], "regions": [],
                               "ttl": 3600.0, "now": NOW}
    args.update(overrides)
    return issue(SECRET, **args)  # type: ignore[arg-type]


def test_roundtrip() -> None:
    claims = verify(SECRET, _token(), NOW + 10)
    assert claims == Claims(role="guide", sub="g1", tours=frozenset({"t1", "t2"}), regions=frozenset(),
                            exp=NOW + 3600, iat=int(NOW * 1000))
    assert claims.has_tour("t1") and not claims.has_tour("t3")
    assert not claims.sees_region("eu") and "*" not in claims.regions


def test_format_is_v1_payload_signature_without_padding() -> None:
    token = _token()
    version, payload, signature = token.split(".")
    assert version == "v1" and "=" not in token
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert set(doc) == {"role", "sub", "tours", "regions", "exp", "iat"}
    assert isinstance(doc["exp"], int)


@pytest.mark.parametrize(("regions", "region", "seen"), [
    (["*"], "anything", True), (["eu", "asia"], "eu", True), (["eu"], "asia", False),
])
def test_regions(regions: list[str], region: str, seen: bool) -> None:
    claims = verify(SECRET, _token(role="supervisor", regions=regions), NOW)
    assert claims.sees_region(region) is seen
    assert claims.sees_region("anywhere") is ("*" in regions)


def test_expiry() -> None:
    token = _token(ttl=60)
    assert verify(SECRET, token, NOW + 59).sub == "g1"
    with pytest.raises(ExpiredToken):
        verify(SECRET, token, NOW + 60)


def test_short_ttl_is_not_born_expired() -> None:
    token = _token(ttl=0.5, now=NOW + 0.7)
    assert verify(SECRET, token, NOW + 0.9).role == "guide"


def test_forged_signature() -> None:
    with pytest.raises(ForgedToken):
        verify(b"another-secret", _token(), NOW)


def test_tampered_payload() -> None:
    version, payload, signature = _token().split(".")
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    doc["role"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    with pytest.raises(ForgedToken):
        verify(SECRET, f"{version}.{forged}.{signature}", NOW)


@pytest.mark.parametrize("token", [
    "", "v1", "v1.abc", "v1.a.b.c", "not a token", "v1.é.x", "x" * 20000, "v1..",
])
def test_malformed(token: str) -> None:
    with pytest.raises(MalformedToken) as info:
        verify(SECRET, token, NOW)
    assert token not in str(info.value) or not token


def test_wrong_version() -> None:
    token = _token()
    with pytest.raises(MalformedToken, match="version"):
        verify(SECRET, "v2" + token[2:], NOW)


def test_signed_garbage_is_malformed() -> None:
    import hashlib
    import hmac

    body = base64.urlsafe_b64encode(b'{"role":"king"}').rstrip(b"=").decode()
    mac = hmac.new(SECRET, f"v1.{body}".encode(), hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(MalformedToken):
        verify(SECRET, f"v1.{body}.{sig}", NOW)


def test_errors_never_echo_the_token() -> None:
    token = _token()
    for secret, now in ((b"other", NOW), (SECRET, NOW + 10**6)):
        with pytest.raises(TokenError) as info:
            verify(secret, token, now)
        assert token not in str(info.value)
        assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("overrides", [
    {"role": "king"}, {"sub": ""}, {"sub": "x" * 129}, {"ttl": 0}, {"ttl": -5}, {"tours": "t1"},
    {"regions": [""]},
])
def test_issue_rejects_bad_arguments(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _token(**overrides)


def test_every_role_roundtrips() -> None:
    for role in ROLES:
        assert verify(SECRET, _token(role=role), NOW).role == role
