"""The phone app's server side over plain HTTP (contract §9): join codes, joining, token refresh, the guide's
today view, ``tourpulse join``, and how the app's files are served (ETag, Cache-Control, gzip, CSP, the worker).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.cli import main
from server.core import keys
from server.core.tokens import verify
from server.storage.joins import allow_join, phone_expiry
from server.storage.tours import validate_tour
from tests.conftest import SECRET, far_from_midnight, register_tour, token, tour_doc
from tests.e2e.test_ingest_ws import ask, phone, rating, today

ADMIN = token("admin", "ops", regions=("*",))


def auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}


async def test_get_shows_one_code_post_replaces_it_and_the_old_one_stops(app_factory) -> None:
    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1", region="yunnan")
        guide = auth(token("guide", "g1", tours=("T1",)))
        first = (await http.get("/api/tours/T1/join", headers=guide)).json()
        assert (await http.get("/api/tours/T1/join", headers=guide)).json()["code"] == first["code"]
        assert first["url"] == f"{base}/join/{first['code']}"
        assert first["qr_svg"].startswith("<svg") and first["expires_at"].endswith("Z")

        joined = await http.post("/api/join", json={"code": first["code"], "name": "李娜"})
        assert joined.status_code == 200
        claims = verify(SECRET, joined.json()["token"], time.time())
        assert (claims.role, claims.tours) == ("traveller", frozenset({"T1"}))
        tour = (await http.get("/api/tours/T1", headers=guide)).json()
        assert joined.json()["tour"] == {"timezone": tour["timezone"], "start": tour["start"], "end": tour["end"]}
        # the code serves the whole group: a second traveller joins with it too, as someone else
        second = (await http.post("/api/join", json={"code": first["code"]})).json()
        assert verify(SECRET, second["token"], time.time()).sub != claims.sub

        fresh = (await http.post("/api/tours/T1/join", headers=guide, json={"ttl": "3d"})).json()
        assert fresh["code"] != first["code"]
        assert (await http.post("/api/join", json={"code": first["code"]})).status_code == 404
        assert (await http.post("/api/join", json={"code": fresh["code"]})).status_code == 200
        assert (await http.get("/api/tours/T1/join", headers=guide)).json()["code"] == fresh["code"]


async def test_who_may_issue_codes_and_what_a_bad_request_answers(app_factory) -> None:
    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1", region="yunnan")
        other_guide = auth(token("guide", "g9", tours=("T2",)))
        assert (await http.get("/api/tours/T1/join", headers=other_guide)).status_code == 404
        assert (await http.get("/api/tours/T1/join", headers=auth(token("traveller", "t1", tours=("T1",))))
                ).status_code == 403
        elsewhere = auth(token("supervisor", "s1", regions=("tibet",)))
        assert (await http.post("/api/tours/T1/join", headers=elsewhere)).status_code == 404
        mine = auth(token("supervisor", "s1", regions=("yunnan",)))
        assert (await http.post("/api/tours/T1/join", headers=mine, json={"ttl": "91d"})).status_code == 400
        assert (await http.post("/api/join", json={"code": "nope"})).status_code == 404
        assert (await http.post("/api/join", json={"code": 7})).json()["field"] == "code"


async def test_more_than_60_joins_a_minute_from_one_address_answer_429(app_factory, redis_client) -> None:
    now = 1_800_000_000.0
    allowed = [await allow_join(redis_client, "10.0.0.9", now + n * 0.1) for n in range(61)]
    assert allowed == [True] * 60 + [False]
    assert await allow_join(redis_client, "10.0.0.10", now)  # another address has its own count
    assert await allow_join(redis_client, "10.0.0.9", now + 60)  # the next minute starts afresh
    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base) as http:
        minute = int(time.time() // 60)
        for m in (minute, minute + 1):  # this minute and the next, so the test never straddles a boundary
            await redis_client.set(keys.join_rate("127.0.0.1", m), 60)
        refused = await http.post("/api/join", json={"code": "whatever"})
        assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"


def test_a_joined_travellers_token_lives_until_the_day_after_the_tour_capped_by_max_ttl() -> None:
    tour = validate_tour("T1", {**tour_doc(days_after=3), "timezone": "Asia/Shanghai"})
    now = time.time()
    expires = phone_expiry([tour], now, 90 * 86400)
    assert 3 * 86400 < expires - now <= 6 * 86400
    assert phone_expiry([tour], now, 3600) == now + 3600


async def test_refresh_keeps_the_claims_and_refuses_an_expired_token(app_factory) -> None:
    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1", region="yunnan")
        old = token("traveller", "t1", tours=("T1",), ttl=600)
        fresh = (await http.post("/api/tokens/refresh", headers=auth(old))).json()["token"]
        before, after = verify(SECRET, old, time.time()), verify(SECRET, fresh, time.time())
        assert (after.role, after.sub, after.tours) == (before.role, before.sub, before.tours)
        assert after.exp > before.exp
        staff = (await http.post("/api/tokens/refresh", headers=auth(ADMIN))).json()["token"]
        assert verify(SECRET, staff, time.time()).regions == frozenset({"*"})
        expired = token("traveller", "t1", tours=("T1",), ttl=60, issued_ago=120)
        assert (await http.post("/api/tokens/refresh", headers=auth(expired))).status_code == 401
        too_long = await http.post("/api/tokens", headers=auth(ADMIN),
                                   json={"role": "guide", "sub": "g1", "ttl": "100d"})
        assert too_long.status_code == 400 and too_long.json()["field"] == "ttl"


async def test_the_guides_today_view_shows_complaints_and_their_clocks_never_who(app_factory) -> None:
    settings = {"watcher": {"block": "200ms", "tick": "200ms", "lease_ttl": "2s"}}
    zone = far_from_midnight()  # today's rating is still today's when the view is read
    async with app_factory(settings, run_watcher=True) as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T1", region="yunnan", timezone=zone)
        async with await phone(base, "traveller", "secret-traveller-77", tours=("T1",)) as ws:
            reply = await ask(ws, rating("r1", 1, comment="the guide shouted at us", day=today(zone)), False)
            assert reply["type"] == "ack"
        guide = auth(token("guide", "g1", tours=("T1",)))
        body: dict[str, Any] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (body.get("complaints") and body["live"]["today_count"]):
            body = (await http.get("/api/tours/T1/today", headers=guide)).json()
        assert [c["kind"] for c in body["complaints"]] == ["urgent_complaint"]
        assert body["complaints"][0]["deadline"] > body["complaints"][0]["opened_at"]
        text = str(body)
        assert "secret-traveller-77" not in text and "shouted" not in text
        assert body["live"]["today_count"] == 1
        other = auth(token("guide", "g2", tours=("T2",)))
        assert (await http.get("/api/tours/T1/today", headers=other)).status_code == 404


async def test_the_app_files_carry_etag_cache_control_gzip_and_the_boards_csp(app_factory) -> None:
    async with app_factory() as (base, app), httpx.AsyncClient(base_url=base) as http:
        page = await http.get("/app", headers={"Accept-Encoding": "gzip"})
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert page.headers["content-encoding"] == "gzip"
        assert page.headers["cache-control"] == "no-cache"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        again = await http.get("/app", headers={"If-None-Match": page.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        worker = await http.get("/app/sw.js")
        assert worker.headers["service-worker-allowed"] == "/app"
        assert "__VERSION__" not in worker.text and '"/app/static/main.js"' in worker.text
        assert "icon-512.png" not in worker.text  # install-only files are not kept for offline
        for name in ("main.js", "app.css", "manifest.webmanifest", "icon-192.png"):
            assert (await http.get(f"/app/static/{name}")).status_code == 200
        assert (await http.get("/app/static/nope.js")).status_code == 404
        assert (await http.get("/app/static/../app.py")).status_code == 404
        join_page = await http.get("/join/abc")
        assert join_page.status_code == 200 and 'data-tp="join"' in join_page.text
        # the API is not compressed by the app's middleware
        health = await http.get("/healthz", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in health.headers


def test_tourpulse_join_prints_the_url_and_a_qr_code(tmp_path: Path, redis_url: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("TOURPULSE_SECRET", SECRET.decode())
    monkeypatch.setenv("TOURPULSE_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("TOURPULSE_CONFIG", raising=False)
    tours = tmp_path / "tours.json"
    tours.write_text(f'[{{"tour_id": "T1", {str(tour_doc())[1:-1]}}}]'.replace("'", '"'))
    assert main(["tours", "import", str(tours)]) == 0
    capsys.readouterr()
    assert main(["join", "--tour", "T1", "--base-url", "https://tp.example.com"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("https://tp.example.com/join/")
    assert any("█" in line or "▀" in line for line in out[1:])
    assert main(["join", "--tour", "T1", "--base-url", "https://tp.example.com"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == out[0]  # showing it again keeps the code
    assert main(["join", "--tour", "T1", "--new"]) == 0
    assert capsys.readouterr().out.splitlines()[0] != out[0]
    assert main(["join", "--tour", "NOPE"]) == 1
