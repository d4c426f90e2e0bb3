"""§13 tokens: scoped admins, the lifetime cap, revocation by sub (on connect and on open connections), expiry."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import register_tour, token, tour_doc
from tests.e2e.test_ingest_ws import ask, phone, rating, ws_url

WAIT = 20.0  # the longest any one condition may take to come true on a loaded machine; never a measured time


def bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


YUNNAN_ADMIN = bearer(token("admin", "ops-yn", regions=("yunnan",)))
ROOT = bearer(token("admin", "root", regions=("*",)))
RESOURCE = {"kind": "vehicle", "capacity": 20, "partner": "Coach Co", "contact": "+86 871 0000"}


async def test_a_scoped_admin_issues_and_writes_only_inside_its_regions(app_factory) -> None:
    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base) as http:
        await register_tour(base, "T-YN", region="yunnan")
        await register_tour(base, "T-SC", region="sichuan")

        async def mint(**body: object) -> httpx.Response:
            return await http.post("/api/tokens", json={"sub": "x", "ttl": "1h", **body}, headers=YUNNAN_ADMIN)

        for wider in ({"role": "admin", "regions": ["*"]}, {"role": "admin", "regions": []},
                      {"role": "admin", "regions": ["yunnan", "sichuan"]}, {"role": "supervisor", "regions": ["*"]},
                      {"role": "traveller", "tours": ["T-SC"]}, {"role": "guide", "tours": ["T-nowhere"]}):
            answer = await mint(**wider)
            assert answer.status_code == 403, wider
            assert answer.json()["error"] == "forbidden"
        for inside in ({"role": "admin", "regions": ["yunnan"]}, {"role": "supervisor", "regions": ["yunnan"]},
                       {"role": "traveller", "tours": ["T-YN"]}):
            assert (await mint(**inside)).status_code == 200, inside
        # tours: its own region only, and no taking another region's tour
        assert (await http.put("/api/tours/T-new", json=tour_doc(region="sichuan"),
                               headers=YUNNAN_ADMIN)).status_code == 403
        assert (await http.put("/api/tours/T-SC", json=tour_doc(region="yunnan"),
                               headers=YUNNAN_ADMIN)).status_code == 403
        assert (await http.get("/api/tours/T-SC", headers=ROOT)).json()["region"] == "sichuan"  # unchanged
        assert (await http.put("/api/tours/T-YN2", json=tour_doc(region="yunnan"),
                               headers=YUNNAN_ADMIN)).status_code == 200
        # pool resources likewise
        assert (await http.put("/api/pool/resources/sc-1", json={**RESOURCE, "region": "sichuan"},
                               headers=YUNNAN_ADMIN)).status_code == 403
        assert (await http.put("/api/pool/resources/sc-1", json={**RESOURCE, "region": "sichuan"},
                               headers=ROOT)).status_code == 200
        assert (await http.put("/api/pool/resources/sc-1", json={**RESOURCE, "region": "yunnan"},
                               headers=YUNNAN_ADMIN)).status_code == 403
        assert (await http.delete("/api/pool/resources/sc-1", headers=YUNNAN_ADMIN)).status_code == 403
        assert (await http.put("/api/pool/resources/yn-1", json={**RESOURCE, "region": "yunnan"},
                               headers=YUNNAN_ADMIN)).status_code == 200
        # nor may it cut people off everywhere
        assert (await http.post("/api/tokens/revoke", json={"sub": "x"}, headers=YUNNAN_ADMIN)).status_code == 403


@pytest.mark.parametrize("ttl", ['"91d"', '"3650d"', "Infinity", "-Infinity", "NaN", "1e999", '"0s"', "true"])
async def test_a_token_lifetime_beyond_the_cap_or_not_a_number_is_invalid_on_ttl(app_factory, ttl) -> None:
    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base) as http:
        body = '{"role": "traveller", "sub": "x", "ttl": ' + ttl + "}"
        answer = await http.post("/api/tokens", content=body, headers={**ROOT, "Content-Type": "application/json"})
        assert answer.status_code == 400, answer.text
        # NaN and Infinity are not JSON: the body reader refuses them before the ttl is looked at
        field = "body" if ttl.lstrip("-") in ("Infinity", "NaN") else "ttl"
        assert (answer.json()["error"], answer.json()["field"]) == ("invalid", field)


async def test_tokens_carry_iat_in_milliseconds(app_factory) -> None:
    async with app_factory() as (base, _app), httpx.AsyncClient(base_url=base) as http:
        answer = await http.post("/api/tokens", json={"role": "traveller", "sub": "x", "ttl": "90d"}, headers=ROOT)
        payload = answer.json()["token"].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        assert isinstance(claims["iat"], int) and claims["iat"] > 10**12


async def _closed_code(ws) -> int:  # noqa: ANN001
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd else -1


async def test_revoking_a_sub_refuses_its_tokens_and_closes_its_connections_on_every_process(app_factory) -> None:
    async with app_factory() as (base_a, _a), app_factory() as (base_b, _b), \
            httpx.AsyncClient(base_url=base_a) as http:
        await register_tour(base_a, "T1")
        old_traveller = token("traveller", "p", tours=("T1",))
        on_b = await connect(ws_url(base_b, "/ws/traveller"), additional_headers=bearer(old_traveller))
        guide_p = await phone(base_a, "guide", "p")  # same sub, other role
        bystander = await phone(base_b, "traveller", "q")
        await asyncio.sleep(0.01)  # iat is in ms: the revocation comes strictly after these tokens
        answer = await http.post("/api/tokens/revoke", json={"sub": "p", "role": "traveller"}, headers=ROOT)
        assert answer.status_code == 200, answer.text
        assert await _closed_code(on_b) == 1008
        # refused on connect, on either process, and on HTTP
        for base in (base_a, base_b):
            with pytest.raises(InvalidStatus):
                await connect(ws_url(base, "/ws/traveller"), additional_headers=bearer(old_traveller))
        assert (await http.get("/api/tours/T1", headers=bearer(old_traveller))).status_code == 401
        # the other role of that sub, and other subs, are untouched; a token issued afterwards works
        assert (await ask(guide_p, {"type": "incident", "id": "i1", "tour_id": "T1", "kind": "delay",
                                    "severity": "low", "summary": "late"}, False))["type"] == "ack"
        assert (await ask(bystander, rating("q1"), True))["type"] == "ack"
        fresh = await phone(base_b, "traveller", "p")
        assert (await ask(fresh, rating("p1"), True))["type"] == "ack"
        for ws in (guide_p, bystander, fresh):
            await ws.close()


async def test_a_connection_is_closed_when_its_token_expires(app_factory) -> None:
    async with app_factory() as (base, _app):
        await register_tour(base, "T1")
        short = token("traveller", "brief", tours=("T1",), ttl=1)
        ws = await connect(ws_url(base, "/ws/traveller"), additional_headers=bearer(short))
        assert await _closed_code(ws) == 1008
