"""Notices to phones (live and resumed), `tourpulse serve` across a restart, and a rating's alert reaching a board."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
from websockets.asyncio.client import connect

from server.db.embedded import free_port
from tests.conftest import SECRET, far_from_midnight, quiet_config, register_tour, token, tour_doc
from tests.e2e.test_ingest_ws import ask, phone, rating, today, ws_url

WAIT = 20.0


async def recv_json(ws: Any) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        data = await ws.recv()
    return msgpack.unpackb(data) if isinstance(data, bytes) else json.loads(data)


async def post_notice(base: str, body: dict[str, Any], who: str = "sup") -> httpx.Response:
    async with httpx.AsyncClient(base_url=base) as client:
        return await client.post("/api/notices", json=body, headers={
            "Authorization": f"Bearer {token('supervisor', who, regions=('yunnan',))}"})


async def test_notices_reach_the_tours_phones_once_and_resume_after_a_reconnect(app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        await register_tour(base, "T2")
        traveller = await phone(base, "traveller", "t1")
        guide = await phone(base, "guide", "g1")
        other_tour = await phone(base, "traveller", "t9", tours=("T2",))
        resp = await post_notice(base, {"tour_ids": ["T1"], "kind": "risk_warning", "title": "台风 Typhoon",
                                        "body": "Stay in the hotel until 14:00", "audience": "all"})
        assert resp.status_code == 200, resp.text
        first = await recv_json(traveller)
        assert (first["type"], first["kind"], first["title"], first["tour_id"]) == (
            "notice", "risk_warning", "台风 Typhoon", "T1")
        assert (await recv_json(guide))["notice_id"] == first["notice_id"]
        # the phone confirms it read it
        read = await ask(traveller, {"type": "notice_read", "id": "n1", "notice_id": first["notice_id"]}, False)
        assert read["type"] == "ack"
        await traveller.close()
        # while the traveller is away: one for guides only, one for travellers
        await post_notice(base, {"tour_ids": ["T1"], "kind": "progress", "title": "Coach", "body": "for guides",
                                 "audience": "guides"})
        await post_notice(base, {"tour_ids": ["T1"], "kind": "progress", "title": "Road open",
                                 "body": "We leave at 15:00", "audience": "travellers"})
        back = await connect(ws_url(base, f"/ws/traveller?since={first['seq']}"),
                             additional_headers={"Authorization": f"Bearer {token('traveller', 't1', tours=('T1',))}"})
        missed = await recv_json(back)
        assert (missed["title"], missed["body"]) == ("Road open", "We leave at 15:00")
        with pytest.raises(TimeoutError):  # nothing twice, nothing for guides only
            async with asyncio.timeout(0.5):
                await back.recv()
        with pytest.raises(TimeoutError):  # another tour's phone got nothing
            async with asyncio.timeout(0.2):
                await other_tour.recv()
        for ws in (back, guide, other_tour):
            await ws.close()


async def test_notices_are_refused_outside_the_supervisors_regions(app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1", region="sichuan")
        resp = await post_notice(base, {"tour_ids": ["T1"], "kind": "info", "title": "x", "body": "y"})
        assert resp.status_code == 404
        bad = await post_notice(base, {"tour_ids": ["T1"], "kind": "gossip", "title": "x", "body": "y"})
        assert (bad.status_code, bad.json()["field"]) == (400, "kind")


async def test_a_low_day_reaches_a_connected_board_and_the_tour_view(app_factory) -> None:
    doc = {"watcher": {"block": "100ms", "tick": "100ms", "lease_ttl": "2s"}}
    zone = far_from_midnight()
    day = today(zone)  # one day for the three ratings, still today when the view is read
    async with app_factory(doc, run_watcher=True) as (base, _app):
        await register_tour(base, "T1", timezone=zone)
        board = await connect(ws_url(base, "/ws/board"), additional_headers={
            "Authorization": f"Bearer {token('supervisor', 'sup', regions=('yunnan',))}"})
        snapshot = await recv_json(board)
        assert snapshot["type"] == "snapshot" and snapshot["alerts"] == []
        for n, score in enumerate((3, 2, 2)):
            async with await phone(base, "traveller", f"t{n}") as ws:
                assert (await ask(ws, rating(f"r{n}", score, day=day), True))["type"] == "ack"
        change = await recv_json(board)
        alert = change["alert"]
        assert (change["type"], alert["kind"], alert["tour_id"], alert["status"]) == (
            "alert", "score_below_threshold", "T1", "open")
        assert alert["details"]["count"] == 3 and alert["details"]["mean"] == pytest.approx(2.33, abs=0.01)
        assert alert["details"]["upper_bound"] > alert["details"]["mean"]
        # effects (the alert) are stored before the tour's state: poll the view until the state is saved too
        headers = {"Authorization": f"Bearer {token('supervisor', 'sup', regions=('yunnan',))}"}
        async with httpx.AsyncClient(base_url=base, headers=headers) as client, asyncio.timeout(WAIT):
            while True:
                view = (await client.get("/api/tours/T1")).json()
                if view["live"]["today_count"] == 3:
                    break
                await asyncio.sleep(0.05)
        assert view["live"]["today_count"] == 3 and view["live"]["open_alerts"] == 1
        assert view["live"]["response_rate"] == pytest.approx(0.1)
        await board.close()
        async with httpx.AsyncClient(base_url=base) as client:
            text = (await client.get("/metrics")).text
    types = [line for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(set(types)), "each metric family is declared once (Prometheus refuses repeats)"
    assert 'tourpulse_alerts_opened_total{kind="score_below_threshold"} 1' in text
    assert 'tourpulse_events_folded_total{type="rating"} 3' in text


def serve_process(data_dir: Path, port: int, *, stdout: int = subprocess.PIPE,
                  stderr: int = subprocess.DEVNULL) -> subprocess.Popen[str]:
    """``tourpulse serve`` on its embedded Valkey in ``data_dir`` (no REDIS_URL), with the quiet prompt hour."""
    env = {**os.environ, "TOURPULSE_DATA_DIR": str(data_dir), "TOURPULSE_SECRET": SECRET.decode(),
           "TOURPULSE_CONFIG": quiet_config(data_dir)}
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)], env=env,
                            stdout=stdout, stderr=stderr, text=True)


async def _until_up(base: str) -> None:
    async with asyncio.timeout(WAIT), httpx.AsyncClient(base_url=base) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=WAIT)
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    return out


async def test_serve_restart_on_the_same_data_dir_keeps_every_acked_event(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    first = serve_process(tmp_path, port)
    try:
        await _until_up(base)
        async with httpx.AsyncClient(base_url=base) as client:
            resp = await client.put("/api/tours/T1", json=tour_doc(),
                                    headers={"Authorization": f"Bearer {token('admin', 'ops')}"})
            assert resp.status_code == 200
        sent = [rating(f"r{i}", 4) for i in range(5)]
        async with await phone(base, "traveller", "t1") as ws:
            acks = [await ask(ws, msg, True) for msg in sent]
        redis_url = (tmp_path / "redis.url").read_text().strip()
    finally:
        printed = _stop(first)
    assert f"{base}/board#token=" in printed  # the board URL with a ready supervisor token
    assert not (tmp_path / "redis.url").exists()
    with pytest.raises(OSError):  # the embedded server did not outlive serve
        socket.create_connection(("127.0.0.1", int(redis_url.rsplit(":", 1)[1].split("/")[0])), timeout=1).close()
    second = serve_process(tmp_path, port)
    try:
        await _until_up(base)
        async with await phone(base, "traveller", "t1") as ws:
            again = [await ask(ws, msg, True) for msg in sent]
    finally:
        _stop(second)
    assert [a["seq"] for a in again] == [a["seq"] for a in acks]
    assert all(a["duplicate"] for a in again)
