"""Which ack each setting asks for on which server (contract §14): pure, no server."""

from __future__ import annotations

import pytest

from server.core.settings import ConfigError, StorageSettings, settings_from_mapping
from server.db.durability import Acks, ServerFacts, choose
from server.db.writer import FSYNC, REPLICA, WRITE

BARE = ServerFacts(fsync=False, replicas=False)
AOF = ServerFacts(fsync=True, replicas=False)
FULL = ServerFacts(fsync=True, replicas=True)


@pytest.mark.parametrize(("after", "incident", "facts", "expected"), [
    ("write", "auto", BARE, Acks(WRITE, WRITE)),  # auto falls back to write where there is no AOF
    ("write", "auto", AOF, Acks(WRITE, FSYNC)),
    ("fsync", "auto", AOF, Acks(FSYNC, FSYNC)),
    ("replica", "auto", FULL, Acks(REPLICA, REPLICA | FSYNC)),
    ("replica", "write", FULL, Acks(REPLICA, REPLICA)),  # an incident is never acked weaker than a rating
    ("write", "replica", FULL, Acks(WRITE, REPLICA)),
])
def test_modes(after: str, incident: str, facts: ServerFacts, expected: Acks) -> None:
    assert choose(StorageSettings(ack_after=after, ack_after_incident=incident), facts) == expected


@pytest.mark.parametrize(("name", "mode", "facts"), [
    ("ack_after", "fsync", BARE), ("ack_after", "replica", AOF), ("ack_after_incident", "fsync", BARE),
    ("ack_after_incident", "replica", AOF),
])
def test_a_mode_the_server_cannot_honour_names_the_setting(name: str, mode: str, facts: ServerFacts) -> None:
    with pytest.raises(ConfigError, match=rf'\[storage\] {name} = "{mode}"'):
        choose(StorageSettings(**{name: mode}), facts)


def test_unknown_modes_are_refused_when_read() -> None:
    with pytest.raises(ConfigError, match=r"\[storage\] ack_after: expected one of"):
        settings_from_mapping({"storage": {"ack_after": "disk"}})
    with pytest.raises(ConfigError, match=r"ack_after_incident"):
        settings_from_mapping({"storage": {"ack_after_incident": 1}})
