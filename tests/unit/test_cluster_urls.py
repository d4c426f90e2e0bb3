"""REDIS_URL for a cluster and the redirects of its nodes (contract §14): pure parsing, no server."""

from __future__ import annotations

import pytest

from server.db.client import parse_cluster_url
from server.db.cluster import parse_redirect, slot_of


def test_cluster_urls() -> None:
    where = parse_cluster_url("redis+cluster://:p%40ss@127.0.0.1:7000,127.0.0.1:7001")
    assert where.cluster and where.seeds == (("127.0.0.1", 7000), ("127.0.0.1", 7001))
    assert (where.username, where.password) == (None, "p@ss")
    assert where.node_url("10.0.0.5", 7002) == "redis://:p%40ss@10.0.0.5:7002/0"
    named = parse_cluster_url("redis+cluster://ops:secret@[::1]:7000/0")
    assert (named.username, named.password, named.seeds) == ("ops", "secret", (("::1", 7000),))
    assert parse_cluster_url("redis+cluster://h:1").password is None
    for bad in ("redis+cluster://:pw@127.0.0.1", "redis+cluster://:pw@:7000", "redis://h:1"):
        with pytest.raises(ValueError):
            parse_cluster_url(bad)


def test_redirects_and_slots() -> None:
    assert parse_redirect("MOVED 3999 127.0.0.1:6381") == ("MOVED", 3999, ("127.0.0.1", 6381))
    assert parse_redirect("ASK 1 10.0.0.1:7000") == ("ASK", 1, ("10.0.0.1", 7000))
    assert parse_redirect("ERR unknown command") is None
    assert parse_redirect("CLUSTERDOWN The cluster is down") is None
    # one hash tag, one slot: every key of a shard lands together
    assert slot_of("tp:{s3}:events") == slot_of("tp:{s3}:idem:a:b") == slot_of(b"tp:{s3}:lease")
    assert slot_of("tp:{alerts}:changes") == slot_of("tp:{alerts}:all")
    assert slot_of("123456789") == 12739  # the CRC16 of Redis Cluster's specification
