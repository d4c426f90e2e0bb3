"""The normal paths on a real Valkey Cluster (``tourpulse dev-cluster``, one session-wide process): the slot-routed
writer with its redirects and acks, and ingest -> watcher -> pool -> alerts through a real app."""

from __future__ import annotations

import httpx
import pytest
import redis

from server.app import create_app
from server.core import keys
from server.core.settings import ConfigError
from server.db.client import close_client, is_cluster, parse_cluster_url, redis_client
from server.db.cluster import ClusterWriter, make_writer, slot_of
from server.db.durability import server_facts
from server.db.writer import FSYNC, REPLICA
from tests.conftest import make_settings, register_tour, token
from tests.e2e.cluster_helpers import primaries
from tests.e2e.test_board_ws import board as board_ws
from tests.e2e.test_board_ws import recv, until
from tests.e2e.test_pool_e2e import ADMIN, DOC, alerts, guide_phone, incident, put, until_held


async def test_the_writer_routes_every_slot_follows_moved_and_acks_as_asked(cluster_url: str) -> None:
    where = parse_cluster_url(cluster_url)
    assert len(where.seeds) == 6 and where.password
    assert is_cluster(cluster_url)
    # a redis:// URL of one node is known for a cluster node by asking it
    assert is_cluster(where.node_url(*where.seeds[0]))
    writer = make_writer(cluster_url)
    assert isinstance(writer, ClusterWriter)
    await writer.start()
    try:
        assert len(writer.writers) == 3  # one per primary
        tags = [f"tp:{{s{n}}}:n" for n in range(32)]
        results = [await f for f in [writer.command("INCR", key) for key in tags for _ in range(3)]]
        assert results == [1, 2, 3] * 32
        # a stale map (as after a failover): the wrong node answers MOVED, the call lands where it belongs
        key = keys.events(5)
        slot = slot_of(key)
        wrong = next(node for node in writer.writers if node != writer.owners[slot])
        writer.owners[slot] = wrong
        assert await writer.command("XADD", key, "*", "e", "x")
        assert writer.redirects >= 1
        # scripts run on every primary; durable acks come back once the barrier says so
        for ack in (FSYNC, REPLICA, FSYNC | REPLICA):
            outcome, _seq = await writer.call("ingest", [keys.idem(1, "t", f"m{ack}"), keys.events(1),
                                                         keys.idem(1, "t", f"m{ack}")],
                                              ["fp", b"payload", 60, "plain", ""], ack)
            assert outcome == b"new"
    finally:
        await writer.stop()
    control = redis_client(cluster_url)
    try:
        assert await control.xlen(keys.events(5)) == 1
        assert await control.get(tags[31]) == b"3"
    finally:
        await control.aclose()
    facts = await server_facts(cluster_url)
    assert facts.fsync and facts.replicas


async def test_ingest_watcher_pool_and_alerts_work_on_the_cluster(app_factory, cluster_url: str) -> None:
    async with app_factory(DOC, run_watcher=True, url=cluster_url) as (base, _app), \
            httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1")
        for rid, seats in (("v20", 20), ("v40", 40)):
            await put(http, rid, seats)
        guide = await guide_phone(base, "T1")
        supervisor = token("supervisor", "s1", regions=("yunnan",))
        async with guide.ws, board_ws(base.replace("http://", "ws://"), supervisor) as watching:
            snapshot = await recv(watching)
            assert snapshot["type"] == "snapshot" and snapshot["alerts"] == []
            ack = await guide.send(incident("i1"))
            assert ack["type"] == "ack", ack
            incident_id = ack["incident_id"]
            change = await guide.dispatched(incident_id)
            await until_held(http, {"v40": incident_id}, "the covering vehicle held")
            found = await alerts(http, "incident")
            live = await until(watching, "alert")  # the board's live tail (XREAD on the {alerts} slot)
            board = await http.get("/api/alerts", headers=ADMIN)
    assert change["dispatched"]["resource_id"] == "v40"
    assert [a["details"]["incident_id"] for a in found] == [incident_id]
    assert live["alert"]["details"]["incident_id"] == incident_id and live["seq"] > snapshot["seq"]
    assert board.status_code == 200 and board.json()["alerts"]


def test_every_primary_has_a_replica(cluster_url: str) -> None:
    nodes = primaries(cluster_url)
    try:
        assert len(nodes) == 3
        assert all(n.info("replication")["connected_slaves"] >= 1 for n in nodes)
    finally:
        for n in nodes:
            n.close()


@pytest.mark.parametrize("mode", ["fsync", "replica"])
async def test_a_mode_the_server_cannot_honour_refuses_to_start(redis_url: str, mode: str) -> None:
    # the suite's single server runs without AOF and without replicas
    app = create_app(make_settings(redis_url, {"storage": {"ack_after_incident": mode}}))
    with pytest.raises(ConfigError, match=rf'\[storage\] ack_after_incident = "{mode}"'):
        async with app.router.lifespan_context(app):
            pass


async def test_a_watcher_refuses_replica_acks_without_replicas(redis_url: str) -> None:
    from alerts.watcher import Watcher

    with pytest.raises(ConfigError, match=r'\[storage\] ack_after = "replica"'):
        await Watcher(make_settings(redis_url, {"storage": {"ack_after": "replica"}})).start()


async def test_ask_during_a_slot_migration_goes_to_the_importing_node_once(cluster_url: str) -> None:
    writer = ClusterWriter(cluster_url)
    await writer.start()
    key = keys.events(7)
    slot = slot_of(key)
    source = writer.owners[slot]
    dest = next(node for node in writer.writers if node != source)
    where = parse_cluster_url(cluster_url)
    src, dst = (redis.Redis(host=h, port=p, password=where.password) for h, p in (source, dest))
    try:
        src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command("CLUSTER", "MYID")
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        # the key is not on the source: it answers ASK, and the write lands on the importing node
        assert await writer.command("XADD", key, "*", "e", "x")
        assert writer.redirects >= 1
        assert writer.owners[slot] == source  # ASK moves no slot
        pipe = dst.pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.xlen(key)
        assert pipe.execute()[1] == 1
    finally:
        for node in (src, dst):
            node.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
            node.close()
        await writer.stop()


async def test_single_slot_transactions_run_on_the_cluster(cluster_url: str) -> None:
    client = redis_client(cluster_url)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.ALERT_CHANGES, {"a": "{}"})
            pipe.xinfo_stream(keys.ALERT_CHANGES)
            pipe.xrange(keys.ALERT_CHANGES)
            _seq, info, entries = await pipe.execute()
        assert info["length"] == 1 and len(entries) == 1
    finally:
        await close_client(client)


def test_the_cli_imports_tours_into_the_cluster(cluster_url: str, tmp_path, monkeypatch, capsys) -> None:
    from server.cli import main
    from tests.e2e.test_cli import TOURS_CSV

    monkeypatch.setenv("REDIS_URL", cluster_url)
    monkeypatch.setenv("TOURPULSE_SECRET", "cli-test-secret-16+")
    monkeypatch.setenv("TOURPULSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("TOURPULSE_CONFIG", raising=False)
    path = tmp_path / "tours.csv"
    path.write_text(TOURS_CSV)
    assert main(["tours", "import", str(path)]) == 0
    assert "imported 2 tours (2 new or changed, 0 unchanged)" in capsys.readouterr().out
    assert main(["tours", "import", str(path)]) == 0
    assert "(0 new or changed, 2 unchanged)" in capsys.readouterr().out
