"""A primary's failover under load, on a real cluster (contract §14): shared by tests/e2e/test_cluster_failover.py
and ``python -m bench --only cluster``.

Two web processes and two watchers on the cluster; travellers rate and guides report breakdowns steadily, each phone
waiting for its ack and resending the same message (same id) on ``unavailable`` or a lost connection, as the phone
app does. Then ``kill -9`` of the primary that owns the first tour's shard; ``dev-cluster`` promotes its replica and
brings the dead node back as a replica. Afterwards: which acked events are not in the streams, which incidents did
not get exactly one alert, and whether the pool ever lent one vehicle twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from typing import Any

import msgpack
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from bench.common import LOAD_LIMITS, SECRET, SHARDS, Ctx, ServerProc, start_servers, today, token
from server.core import keys
from server.db.client import close_client, redis_client, target
from server.db.cluster import read_slots, slot_of

REGION = "yunnan"
REPLY_TIMEOUT = 3.0
RETRY_PAUSE = 0.1


def doc(ack_after: str) -> dict[str, Any]:
    return {"limits": dict(LOAD_LIMITS), "storage": {"shards": SHARDS, "ack_after": ack_after},
            "watcher": {"lease_ttl": "3s", "block": "200ms", "tick": "500ms"}}


class Phone:
    """One phone: sends messages one at a time, resends each until it is acked; keeps what was acked and the
    longest it went without an ack while it had something to send."""

    def __init__(self, urls: list[str], role: str, sub: str, tours: tuple[str, ...]) -> None:
        self.urls, self.role, self.sub, self.tours = urls, role, sub, tours
        self.acked: dict[str, dict[str, Any]] = {}  # msg id -> ack
        self.unavailable = 0
        self.longest_wait = 0.0
        self._ws: ClientConnection | None = None
        self._turn = 0

    async def _connection(self) -> ClientConnection:
        if self._ws is None:
            self._turn += 1
            url = self.urls[self._turn % len(self.urls)]
            path = "/ws/traveller" if self.role == "traveller" else "/ws/guide"
            self._ws = await connect(url + path, compression=None, open_timeout=REPLY_TIMEOUT,
                                     additional_headers={"Authorization": "Bearer " + token(
                                         self.role, self.sub, tours=self.tours)})
        return self._ws

    async def send(self, msg: dict[str, Any], stop_at: float) -> None:
        started = time.monotonic()
        while time.monotonic() < stop_at:
            try:
                ws = await self._connection()
                await ws.send(json.dumps(msg))
                async with asyncio.timeout(REPLY_TIMEOUT):
                    while True:
                        reply = json.loads(await ws.recv())
                        if reply.get("id") == msg["id"] and reply["type"] in ("ack", "error"):
                            break
                if reply["type"] == "ack":
                    self.acked[msg["id"]] = reply
                    self.longest_wait = max(self.longest_wait, time.monotonic() - started)
                    return
                if reply.get("code") != "unavailable":
                    raise RuntimeError(f"{msg['id']}: {reply}")
                self.unavailable += 1
            except (OSError, TimeoutError, WebSocketException):
                await self.close()
            await asyncio.sleep(RETRY_PAUSE)
        self.longest_wait = max(self.longest_wait, time.monotonic() - started)

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()


async def _traveller(phone: Phone, tour: str, stop_at: float) -> None:
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        await phone.send({"type": "rating", "id": f"{phone.sub}-{n}", "tour_id": tour, "day": today().isoformat(),
                          "score": 1 + n % 5}, stop_at)


async def _guide(phone: Phone, tour: str, stop_at: float, every: float) -> None:
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        await phone.send({"type": "incident", "id": f"{phone.sub}-i{n}", "tour_id": tour,
                          "kind": "vehicle_breakdown", "severity": "high", "summary": "the coach broke down",
                          "travellers_affected": 10}, stop_at)
        await asyncio.sleep(every)


async def kill_primary_of(url: str, key: str) -> int:
    """SIGKILL the primary that owns ``key``'s slot; its port."""
    where = target(url)
    host, port = (await read_slots(where, []))[slot_of(key)]
    client = redis.Redis(host=host, port=port, password=where.password, username=where.username, socket_timeout=2.0)
    try:
        os.kill(int(client.info("server")["process_id"]), signal.SIGKILL)
    finally:
        client.close()
    return port


async def setup(url: str, tours: list[str], vehicles: int) -> None:
    from alerts.pool import PoolStore
    from bench.serve import build_settings
    from server.storage.tours import TourRegistry, validate_tour

    settings = build_settings({"redis_url": url, "secret": SECRET, "doc": doc("write")})
    client = redis_client(url)
    try:
        registry, pool, now = TourRegistry(client, settings), PoolStore(client, settings), time.time()
        for tour_id in tours:
            await registry.put(validate_tour(tour_id, {
                "route": "Yunnan 6 days", "region": REGION, "guides": ["g1"], "timezone": "Asia/Shanghai",
                "start": today().isoformat(), "end": today().isoformat(), "travellers": 30}), now)
        for n in range(vehicles):
            await pool.put({"resource_id": f"v{n}", "kind": "vehicle", "region": REGION, "capacity": 40,
                            "partner": "Coaches", "contact": "+86 871 0000"}, now)
    finally:
        await close_client(client)


async def audit(url: str, phones: list[Phone], web_port: int, settle: float) -> dict[str, Any]:
    """Acked events missing from the streams; incidents without exactly one alert; vehicles lent twice."""
    import httpx

    client = redis_client(url)
    try:
        stored: set[str] = set()
        for shard in range(SHARDS):
            for _id, fields in await client.xrange(keys.events(shard)):
                if b"e" in fields:
                    stored.add(str(msgpack.unpackb(fields[b"e"]).get("msg_id")))
        acked = {mid for p in phones for mid in p.acked}
        incidents = {ack["incident_id"] for p in phones for ack in p.acked.values() if "incident_id" in ack}
        admin = {"Authorization": "Bearer " + token("admin", "ops", regions=("*",))}
        deadline = time.monotonic() + settle
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as http:
            while True:  # the watchers catch up on what was sent last
                found = (await http.get("/api/alerts", params={"kind": "incident", "status": "open,acknowledged"},
                                        headers=admin)).json()["alerts"]
                per: dict[str, int] = {}
                for alert in found:
                    per[alert["details"]["incident_id"]] = per.get(alert["details"]["incident_id"], 0) + 1
                if all(per.get(i) == 1 for i in incidents) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
        holders: dict[str, str] = {}
        double = 0
        for n in range(await client.scard(keys.pool_all(REGION))):
            fields = await client.hgetall(keys.pool_resource(REGION, f"v{n}"))
            if fields.get(b"state") == b"held":
                holders[f"v{n}"] = fields[b"held_by"].decode()
        for incident in set(holders.values()):
            held = await client.smembers(keys.pool_holds_of(REGION, incident))
            double += max(0, len(held) - 1)  # one request per breakdown: never two vehicles
    finally:
        await close_client(client)
    return {
        "acked": len(acked), "lost_acked": len(acked - stored),
        "incidents": len(incidents),
        "incidents_without_one_alert": sum(1 for i in incidents if per.get(i) != 1),
        "duplicate_alerts": sum(c - 1 for c in per.values() if c > 1),
        "double_bookings": double, "vehicles_held": len(holders),
    }


async def drill(ctx: Ctx, *, ack_after: str = "replica", before: float = 3.0, after: float = 12.0,
                travellers: int = 8, guides: int = 2, settle: float = 30.0) -> dict[str, Any]:
    """Run the drill on ``ctx.redis_url`` (a flushed dev-cluster); its figures."""
    tours = [f"F{n:03d}" for n in range(max(travellers, guides))]
    await setup(ctx.redis_url, tours, vehicles=200)
    spec_doc = doc(ack_after)
    webs = [ServerProc(ctx, "tourpulse", doc=spec_doc) for _ in range(2)]
    watchers = [ServerProc(ctx, "watcher", doc=spec_doc) for _ in range(2)]
    await start_servers(*webs, *watchers)
    urls = [f"ws://127.0.0.1:{w.port}" for w in webs]
    phones = [Phone(urls, "traveller", f"t{n}", (tours[n],)) for n in range(travellers)]
    guide_phones = [Phone(urls, "guide", f"g{n}", (tours[n],)) for n in range(guides)]
    stop_at = time.monotonic() + before + after
    work = [asyncio.create_task(_traveller(p, tours[n], stop_at)) for n, p in enumerate(phones)]
    work += [asyncio.create_task(_guide(p, tours[n], stop_at, every=0.5)) for n, p in enumerate(guide_phones)]
    await asyncio.sleep(before)
    acked_before = sum(len(p.acked) for p in phones + guide_phones)
    killed = await kill_primary_of(ctx.redis_url, keys.events(keys.shard_of(tours[0], SHARDS)))
    await asyncio.gather(*work)
    for phone in phones + guide_phones:
        await phone.close()
    figures = await audit(ctx.redis_url, phones + guide_phones, webs[0].port, settle)
    figures.update({
        "ack_after": ack_after, "killed_port": killed, "acked_before_kill": acked_before,
        "unavailable_answers": sum(p.unavailable for p in phones + guide_phones),
        # the longest any phone waited for one ack (resending meanwhile): the failover as phones see it
        "unavailable_s": round(max(p.longest_wait for p in phones + guide_phones), 2),
    })
    return figures
