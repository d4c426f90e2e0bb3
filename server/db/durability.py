"""What an ack waits for (contract §14): ``[storage] ack_after`` and ``ack_after_incident``, checked against what
the server can honour, once at start-up.

- ``write``: the event is in the primary's memory (and, with ``appendfsync everysec``, on its disk within a second);
- ``fsync``: the primary's AOF holds it on disk (``WAITAOF 1 0``) - needs AOF on and WAITAOF (Redis/Valkey 7.2+);
- ``replica``: a replica has it too (``WAIT 1``) - needs every primary to have a replica.

``ack_after_incident = "auto"`` is ``fsync`` where every primary can, else ``write``, said once in the log. An
incident's ack is never weaker than a rating's. A mode the server cannot honour raises ConfigError naming the
setting, so the process refuses to start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from server.core.settings import ConfigError, StorageSettings
from server.db.client import target
from server.db.cluster import read_slots
from server.db.resp import RespConnection, RespError, pack
from server.db.writer import ACKS, FSYNC, WRITE

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Acks:
    """The writer's ack bits (:data:`server.db.writer.ACKS`) for each kind of message."""

    events: int = WRITE  # ratings, notice reads
    incidents: int = WRITE  # incidents and their updates, safety and follow-up replies


@dataclass(frozen=True, slots=True)
class ServerFacts:
    fsync: bool  # every primary has AOF on and knows WAITAOF
    replicas: bool  # every primary has a replica connected


async def _node_facts(url: str) -> tuple[bool, bool]:
    conn = RespConnection(url)
    await conn.connect()
    try:
        persistence, replication, waitaof = await conn.roundtrip(
            [pack("INFO", "persistence"), pack("INFO", "replication"), pack("COMMAND", "INFO", "WAITAOF")])
    finally:
        await conn.close()
    for reply in (persistence, replication, waitaof):
        if isinstance(reply, RespError):
            raise reply
    fields = dict(line.split(":", 1) for line in (persistence + replication).decode().splitlines() if ":" in line)
    aof = fields.get("aof_enabled") == "1"
    has_waitaof = bool(waitaof) and waitaof[0] is not None
    return aof and has_waitaof, int(fields.get("connected_slaves", "0")) >= 1


async def server_facts(url: str) -> ServerFacts:
    where = target(url)
    nodes = [where.node_url(*node) for node in dict.fromkeys(await read_slots(where, []))] if where.cluster \
        else [url]
    facts = [await _node_facts(node) for node in nodes]
    return ServerFacts(fsync=all(f[0] for f in facts), replicas=all(f[1] for f in facts))


def choose(storage: StorageSettings, facts: ServerFacts) -> Acks:
    """The ack bits for the settings on this server (pure); ConfigError for a mode it cannot honour."""
    for name in ("ack_after", "ack_after_incident"):
        mode = getattr(storage, name)
        if mode == "fsync" and not facts.fsync:
            raise ConfigError(f'[storage] {name} = "fsync": the server cannot honour it (it needs appendonly yes '
                              "and WAITAOF, Redis/Valkey 7.2 or later, on every primary)")
        if mode == "replica" and not facts.replicas:
            raise ConfigError(f'[storage] {name} = "replica": the server cannot honour it (a primary has no '
                              "replica connected)")
    events = ACKS[storage.ack_after]
    incident_mode = storage.ack_after_incident
    if incident_mode == "auto":
        incident = FSYNC if facts.fsync else WRITE
    else:
        incident = ACKS[incident_mode]
    return Acks(events=events, incidents=incident | events)


async def resolve_acks(storage: StorageSettings, url: str) -> Acks:
    acks = choose(storage, await server_facts(url))
    if storage.ack_after_incident == "auto":
        if acks.incidents & FSYNC:
            log.info('[storage] ack_after_incident = "auto": incidents are acked once fsynced (WAITAOF)')
        else:
            log.warning('[storage] ack_after_incident = "auto": the server has no AOF or no WAITAOF; incidents '
                        "are acked once in memory (write)")
    return acks
