"""The board WebSocket through a real uvicorn and a real ``websockets`` client, on real embedded Valkey."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest
import redis.asyncio as aioredis
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from alerts.rules.effects import UpsertAlert
from alerts.store import SNAPSHOT_PAGE, AlertStore
from server.core.settings import Settings
from server.core.tokens import issue
from server.web.board import ChangeHub
from tests.e2e.helpers_server import alerts_app, running_server

SECRET = b"test-secret-of-16+"
WAIT = 10.0  # a safety net for a frame that never comes, never a measured time
NOW = 1_800_000_000.0


def token(role: str = "supervisor", sub: str = "sue", regions: tuple[str, ...] = ("east",)) -> str:
    return issue(SECRET, role=role, sub=sub, regions=regions, ttl=3600, now=time.time())


def upsert(n: int, region: str = "east", tour: str | None = None) -> UpsertAlert:
    return UpsertAlert(kind="incident", dedup_key=f"incident:I{n}", severity="high", region=region,
                       summary=f"incident {n}", tour_id=tour, details={"incident_id": f"I{n}"})


@pytest.fixture
async def app(redis_url: str) -> Starlette:
    return alerts_app(redis_url, Settings(secret=SECRET))


@pytest.fixture
async def base(app: Starlette) -> AsyncIterator[str]:
    async with running_server(app) as base_url:
        yield base_url.replace("http://", "ws://")


@pytest.fixture
def store(redis_client: aioredis.Redis) -> AlertStore:
    return AlertStore(redis_client, Settings(secret=SECRET))


class Board:
    """A board client: frames a command's answer overtook wait in ``backlog`` for the next :func:`recv`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.backlog: deque[dict[str, Any]] = deque()

    async def send(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv(self) -> str | bytes:
        async with asyncio.timeout(WAIT):
            return await self.ws.recv()


@contextlib.asynccontextmanager
async def board(base: str, tok: str | None = None, query: str = "", **kwargs: Any) -> AsyncIterator[Board]:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    async with connect(f"{base}/ws/board{query}", additional_headers=headers, compression=None,
                       **kwargs) as ws:
        yield Board(ws)


async def recv(b: Board) -> dict[str, Any]:
    if b.backlog:
        return b.backlog.popleft()
    data = await b.recv()
    return msgpack.unpackb(data) if isinstance(data, bytes) else json.loads(data)


async def send(b: Board, obj: dict[str, Any], binary: bool = False) -> dict[str, Any]:
    """Send a command and return its answer; changes pushed before it stay queued for :func:`recv`."""
    await b.send(msgpack.packb(obj) if binary else json.dumps(obj))
    while True:
        data = await b.recv()
        frame = msgpack.unpackb(data) if isinstance(data, bytes) else json.loads(data)
        if frame["type"] in ("ack", "error") and frame.get("id") == obj.get("id"):
            return frame
        b.backlog.append(frame)


async def until(ws: Board, frame_type: str) -> dict[str, Any]:
    while (frame := await recv(ws))["type"] != frame_type:
        pass
    return frame


@pytest.mark.parametrize("case", ["no token", "forged", "traveller", "other origin"])
async def test_refused_handshakes(base: str, case: str) -> None:
    tok = {"no token": None, "forged": token() + "x", "traveller": token(role="traveller"),
           "other origin": token()}[case]
    origin = "http://evil.example" if case == "other origin" else None
    with pytest.raises(InvalidStatus) as refused:
        async with board(base, tok, origin=origin):
            pass
    assert refused.value.response.status_code == 403


async def test_same_origin_and_query_token_are_accepted(base: str) -> None:
    origin = base.replace("ws://", "http://")
    async with board(base, query=f"?token={token()}", origin=origin) as ws:
        assert (await recv(ws))["type"] == "snapshot"


async def test_snapshot_of_own_regions_then_live_changes(base: str, store: AlertStore) -> None:
    mine = (await store.upsert(upsert(1, "east"), "a", NOW)).alert
    await store.upsert(upsert(2, "west"), "b", NOW)
    async with board(base, token()) as ws:
        snapshot = await recv(ws)
        assert snapshot["type"] == "snapshot"
        assert [a["alert_id"] for a in snapshot["alerts"]] == [mine["alert_id"]]
        await store.upsert(upsert(3, "west"), "c", NOW)  # not this supervisor's: never sent
        live = (await store.upsert(upsert(4, "east"), "d", NOW)).alert
        frame = await recv(ws)
        assert frame["type"] == "alert" and frame["alert"] == live and frame["seq"] > snapshot["seq"]


async def test_an_admin_sees_every_region(base: str, store: AlertStore) -> None:
    await store.upsert(upsert(1, "east"), "a", NOW)
    await store.upsert(upsert(2, "west"), "b", NOW)
    async with board(base, token(role="admin", sub="root", regions=("*",))) as ws:
        assert len((await recv(ws))["alerts"]) == 2


async def test_commands_are_answered_and_broadcast(base: str, store: AlertStore) -> None:
    alert_id = (await store.upsert(upsert(1), "a", NOW)).alert["alert_id"]
    west_id = (await store.upsert(upsert(2, "west"), "b", NOW)).alert["alert_id"]
    async with board(base, token()) as sue, board(base, token(sub="bob")) as bob:
        await recv(sue)
        await recv(bob)
        ack = await send(sue, {"type": "ack_alert", "id": "m1", "alert_id": alert_id})
        assert ack["type"] == "ack" and ack["id"] == "m1" and ack["alert"]["status"] == "acknowledged"
        seen = await recv(bob)
        assert seen["type"] == "alert" and seen["seq"] == ack["seq"]
        assert seen["alert"]["status"] == "acknowledged"

        assign = await send(bob, {"type": "assign_alert", "id": "m2", "alert_id": alert_id,
                                  "assignee": "ann"})
        assert assign["type"] == "ack" and assign["alert"]["assignee"] == "ann"
        resolve = await send(sue, {"type": "resolve_alert", "id": "m3", "alert_id": alert_id, "note": "done"})
        assert resolve["alert"]["status"] == "resolved"
        changes = [await recv(bob), await recv(bob)]
        assert [c["seq"] for c in changes] == [assign["seq"], resolve["seq"]]
        assert changes[-1]["alert"]["status"] == "resolved"

        again = await send(sue, {"type": "resolve_alert", "id": "m4", "alert_id": alert_id})
        assert (again["type"], again["code"]) == ("error", "conflict")
        replay = await send(sue, {"type": "resolve_alert", "id": "m3", "alert_id": alert_id, "note": "done"})
        assert replay["type"] == "ack" and replay["duplicate"] and replay["seq"] == resolve["seq"]
        missing = await send(sue, {"type": "ack_alert", "id": "m5", "alert_id": "A999"})
        assert missing["code"] == "not_found"
        other = await send(sue, {"type": "ack_alert", "id": "m6", "alert_id": west_id})
        assert other["code"] == "forbidden"
        bad = await send(sue, {"type": "rating", "id": "m7"})
        assert (bad["code"], bad["field"]) == ("invalid", "type")
        await sue.send("not json")
        assert (await until(sue, "error"))["code"] == "bad_frame"
    assert (await store.get(west_id))["status"] == "open"


async def test_msgpack_and_json_each_answered_in_their_own_encoding(base: str, store: AlertStore) -> None:
    alert_id = (await store.upsert(upsert(1), "a", NOW)).alert["alert_id"]
    async with board(base, token(), query="?format=msgpack") as ws:
        assert isinstance(await ws.recv(), bytes)  # the snapshot, in the encoding asked for
        command = {"type": "assign_alert", "id": "b1", "alert_id": alert_id, "assignee": "x"}
        await ws.send(msgpack.packb(command))
        frames = [await ws.recv(), await ws.recv()]  # its ack and its change, in either order
        assert all(isinstance(f, bytes) for f in frames)
        assert {msgpack.unpackb(f)["type"] for f in frames} == {"ack", "alert"}
        await ws.send(json.dumps({"type": "ack_alert", "id": "j1", "alert_id": alert_id}))
        frames = [await ws.recv(), await ws.recv()]
        assert all(isinstance(f, str) for f in frames)  # pushes follow the encoding the board last spoke
        assert {json.loads(f)["type"] for f in frames} == {"ack", "alert"}


async def test_resume_misses_nothing_and_repeats_nothing(base: str, store: AlertStore) -> None:
    await store.upsert(upsert(1), "a", NOW)
    async with board(base, token()) as ws:
        seq = (await recv(ws))["seq"]
        first = (await store.upsert(upsert(2), "b", NOW)).alert
        frame = await recv(ws)
        assert frame["alert"] == first
        seq = frame["seq"]
    # while the board is away: two changes of its region, one of another
    missed = [(await store.upsert(upsert(3), "c", NOW)).alert,
              (await store.upsert(upsert(1), "d", NOW)).alert]
    await store.upsert(upsert(9, "west"), "e", NOW)
    async with board(base, token(), query=f"?since={seq}") as ws:
        got = [await recv(ws), await recv(ws)]
        assert [f["alert"] for f in got] == missed and all(f["type"] == "alert" for f in got)
        after = (await store.upsert(upsert(4), "f", NOW)).alert
        frame = await recv(ws)
        assert frame["alert"] == after  # the live feed, and nothing of the catch-up twice
        # a subscribe at any time resends everything after its `since`, then acks with the board's seq
        await ws.send(json.dumps({"type": "subscribe", "id": "s1", "since": seq}))
        resent = [await recv(ws) for _ in range(3)]
        assert [f["alert"] for f in resent] == [*missed, after]
        ack = await recv(ws)
        assert ack == {"type": "ack", "id": "s1", "seq": frame["seq"]}
        latest = (await store.upsert(upsert(5), "g", NOW)).alert
        assert (await recv(ws))["alert"] == latest


async def test_a_since_older_than_what_is_kept_gets_a_reset_snapshot(base: str, store: AlertStore,
                                                                     redis_client: aioredis.Redis) -> None:
    from server.core import keys

    old = (await store.upsert(upsert(1), "a", NOW)).alert
    _, seq = await store.snapshot(lambda r: True)
    await store.upsert(upsert(2), "b", NOW)
    await store.upsert(upsert(3), "c", NOW)
    await redis_client.xtrim(keys.ALERT_CHANGES, maxlen=1, approximate=False)
    async with board(base, token(), query="?since=0-1") as ws:
        frame = await recv(ws)
        assert frame["type"] == "snapshot" and frame["reset"] is True and len(frame["alerts"]) == 3
        await ws.send(json.dumps({"type": "subscribe", "id": "s1", "since": seq}))
        again = await recv(ws)
        assert again["type"] == "snapshot" and again["reset"] is True
        assert old["alert_id"] in {a["alert_id"] for a in again["alerts"]}
        assert (await recv(ws))["type"] == "ack"


async def test_a_frame_over_the_limit_closes_with_1009(base: str) -> None:
    async with board(base, token(), max_size=None) as ws:
        await recv(ws)
        await ws.send("x" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_the_hub_fans_out_by_region_and_flags_a_board_that_falls_behind(
        redis_client: aioredis.Redis) -> None:
    hub = ChangeHub(redis_client, Settings(secret=SECRET), queue_size=2)
    with hub.subscribe(lambda r: r == "east") as east, hub.subscribe(lambda r: r == "west") as west:
        for n in range(3):
            hub.publish(((n, 0), f"{n}-0", {"alert_id": f"A{n}", "region": "east"}))
        assert west.queue.empty() and not west.overflowed
        assert east.overflowed and east.queue.qsize() == 2
    assert hub.subscriptions == set()


async def test_a_big_snapshot_is_read_in_pages_that_never_block_valkey_long(base: str, store: AlertStore,
                                                                             redis_client: aioredis.Redis) -> None:
    many = 1500
    for start in range(0, many, 50):
        await asyncio.gather(*(store.upsert(upsert(n), f"tok-{n}", NOW) for n in range(start, start + 50)))
    resolved = (await store.upsert(upsert(many), "tok-r", NOW)).alert
    await store.act_result(resolved["alert_id"], "resolve", "s", NOW, "done", regions_check=lambda r: True,
                           token="resolve-r")
    # how the snapshot reached the server: Valkey's own count of its calls. How long each page holds Valkey (about
    # 0.7 ms, against ~40 ms for the whole-region script) is a figure of docs/performance.md, not asserted here: on a
    # crowded machine the server's measured time stretches whatever the page size
    await redis_client.config_resetstat()
    async with board(base, token()) as b:
        snap = await recv(b)
    commandstats = await redis_client.info("commandstats")
    # a script call is an EVALSHA, or an EVAL the first time a page's script is not yet loaded
    stats = {"calls": sum(commandstats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval")),
             "evalsha": commandstats.get("cmdstat_evalsha"), "eval": commandstats.get("cmdstat_eval")}
    assert snap["type"] == "snapshot" and len(snap["alerts"]) == many
    assert len({a["alert_id"] for a in snap["alerts"]}) == many
    # in pages, not one whole-region call: SSCAN's COUNT is a hint, so a page holds about SNAPSHOT_PAGE alerts and
    # sometimes more (1,500 alerts came in 29 pages of 50 once): the bound leaves room for that
    assert stats["calls"] >= many // (4 * SNAPSHOT_PAGE), stats
