"""§13 pure parts: the [limits] settings, secrets, rate-limited logs, revocation checks, the session registry."""

from __future__ import annotations

import asyncio
import logging

import pytest

from server.core.ratelog import RateLimit
from server.core.settings import ConfigError, check_secret, load_settings, parse_size, settings_from_mapping
from server.core.tokens import Claims
from server.db.embedded import backoff
from server.storage.revocations import Revocations
from server.web.sessions import Sessions


def test_limits_defaults_and_sizes() -> None:
    limits = settings_from_mapping({}).limits
    assert (limits.connections_per_sender, limits.send_queue, limits.handshake_timeout, limits.max_body,
            limits.max_token_ttl) == (5, 256, 10.0, 1024 * 1024, 90 * 86400.0)
    doc = {"limits": {"max_body": "64KiB", "handshake_timeout": "2s", "max_token_ttl": "7d"}}
    limits = settings_from_mapping(doc).limits
    assert (limits.max_body, limits.handshake_timeout, limits.max_token_ttl) == (65536, 2.0, 7 * 86400.0)
    assert parse_size("1MiB") == parse_size(1048576) == 1048576 and parse_size("2MB") == 2_000_000


@pytest.mark.parametrize("doc", [{"max_body": "lots"}, {"max_body": 0}, {"connections_per_sender": 0},
                                 {"send_queue": -1}, {"handshake_timeout": "0s"}, {"max_token_ttl": True}])
def test_bad_limits_fail_loudly(doc: dict) -> None:
    with pytest.raises(ConfigError):
        settings_from_mapping({"limits": doc})


@pytest.mark.parametrize("secret", ["", "x", "fifteen-bytes!!"])
def test_short_secrets_are_refused(secret: str, tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigError, match="16 bytes"):
        load_settings(environ={"TOURPULSE_SECRET": secret, "TOURPULSE_DATA_DIR": str(tmp_path)})
    (tmp_path / "secret.key").write_text(secret + "\n")
    with pytest.raises(ConfigError, match="secret.key"):
        load_settings(environ={"TOURPULSE_DATA_DIR": str(tmp_path)})
    assert check_secret(b"s" * 16, "x") == b"s" * 16


def test_repeated_log_lines_are_held_back_then_counted() -> None:
    now = [0.0]
    limit = RateLimit(10.0, clock=lambda: now[0])

    def record(msg: str = "storage down: %s") -> logging.LogRecord:
        return logging.LogRecord("x", logging.WARNING, __file__, 1, msg, ("e",), None)

    assert limit.filter(record())
    assert not any(limit.filter(record()) for _ in range(50))
    assert limit.filter(record("another message"))
    now[0] = 10.0
    again = record()
    assert limit.filter(again) and "50 similar lines held back" in again.getMessage()


def test_restart_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n) for n in (1, 2, 3, 4, 10)] == [0.25, 0.5, 1.0, 2.0, 5.0]


def claims(sub: str, role: str = "traveller", iat: int = 1000, exp: float = 10**10) -> Claims:
    return Claims(role=role, sub=sub, tours=frozenset(), regions=frozenset(), exp=exp, iat=iat)


def test_a_revocation_refuses_tokens_issued_up_to_it_for_its_role_or_every_role() -> None:
    rev = Revocations(redis=None)  # type: ignore[arg-type]  # the check is pure
    rev.by_field = {"traveller:p": 2000, "*:q": 2000}
    assert rev.refuses("traveller", "p", 2000) and rev.refuses("traveller", "p", 1)
    assert not rev.refuses("traveller", "p", 2001)  # issued after it
    assert not rev.refuses("guide", "p", 1)  # another role of that sub
    assert rev.refuses("guide", "q", 5) and rev.refuses("admin", "q", 2000)
    assert not rev.refuses("traveller", "r", 1)


async def test_sessions_cap_senders_and_close_expired_and_revoked_connections() -> None:
    rev = Revocations(redis=None)  # type: ignore[arg-type]
    sessions = Sessions(rev, connections_per_sender=2)
    closed: list[tuple[str, int]] = []

    def closer(name: str):  # noqa: ANN202
        async def close(code: int) -> None:
            closed.append((name, code))
        return close

    sessions.open(claims("p"), closer("p1"), capped=True)
    sessions.open(claims("p"), closer("p2"), capped=True)
    sessions.open(claims("p"), closer("p3"), capped=True)  # over the cap: p1 goes
    board = sessions.open(claims("s", role="supervisor", exp=50.0), closer("board"), capped=False)
    sessions.open(claims("q"), closer("q1"), capped=True)
    await asyncio.sleep(0)
    assert closed == [("p1", 1008)] and sessions.open_for("traveller:p") == 2
    assert sessions.sweep(now=49.0, revocations_changed=False) == 0
    assert sessions.sweep(now=50.0, revocations_changed=False) == 1  # the board's token expired
    assert board.closed
    rev.by_field = {"*:q": 5000}
    assert sessions.sweep(now=60.0, revocations_changed=True) == 1
    await asyncio.sleep(0)
    assert sorted(closed) == [("board", 1008), ("p1", 1008), ("q1", 1008)]
    assert sessions.open_for("traveller:q") == 0 and sessions.open_for("traveller:p") == 2
