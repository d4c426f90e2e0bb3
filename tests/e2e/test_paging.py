"""Paging people (contract §12) through real parts: a guide's phone, the web app, the watcher, Valkey, a real SMTP
server (aiosmtpd) and a real webhook receiver (uvicorn), all on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from alerts.store import AlertStore
from server.core import keys
from server.core.act_links import sign_link
from tests.conftest import SECRET, make_settings, register_tour
from tests.e2e.paging_helpers import Receiver, body_text, self_signed, smtp_server, webhook_receiver
from tests.e2e.test_ingest_ws import ask, phone
from tests.e2e.waiting import eventually

WAIT = 20.0  # seconds any one condition may take to come true on a loaded 2-core machine
ROOT = Path(__file__).resolve().parents[2]
WATCH = {"tick": "100ms", "block": "100ms", "lease_ttl": "1s"}


@pytest.fixture(autouse=True)
def no_paging_thread_outlives_its_test() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("paging-")]
    assert not left, f"paging threads left running: {left}"


def people(receiver: Receiver, *, wang_hours: str | None = None) -> list[dict[str, Any]]:
    wang: dict[str, Any] = {"id": "wang.fang", "name": "王芳", "email": "wang.fang@example.com",
                            "webhook": receiver.url("wang"), "format": "json", "timezone": "Asia/Shanghai"}
    if wang_hours:
        wang["hours"] = wang_hours
    return [wang, {"id": "li.lei", "name": "Li Lei", "webhook": receiver.url("li"), "format": "slack",
                   "language": "en"}]


def conf(receiver: Receiver, smtp_port: int, base_url: str = "http://127.0.0.1:9", *,
         escalation: list[str] | None = None, wang_hours: str | None = None, **notify: Any) -> dict[str, Any]:
    return {
        "watcher": WATCH,
        "sla": {"ack_escalation": escalation or ["1h"]},
        "notify": {"base_url": base_url, "smtp": f"smtp://127.0.0.1:{smtp_port}", "from": "tp@example.com",
                   "min_severity": "high", "backoff": "100ms", "timeout": "2s", "lease": "4s",
                   "people": people(receiver, wang_hours=wang_hours),
                   "rota": [{"region": "*", "levels": [["wang.fang"], ["li.lei"]]}], **notify},
    }


async def critical_incident(base: str, msg_id: str = "i1") -> str:
    # weather: a conflict would also open its urgent complaint (contract §10), and an accident pool alerts, all paged
    async with await phone(base, "guide", "g1") as ws:
        ack = await ask(ws, {"type": "incident", "id": msg_id, "tour_id": "T1", "kind": "weather",
                             "severity": "critical", "summary": "a hailstorm stopped the coach",
                             "travellers_affected": 2, "location": {"lat": 25.0389, "lon": 102.7183}}, False)
        while ack["type"] not in ("ack", "error"):  # the guide also hears the tour's earlier incidents pushed
            ack = json.loads(await ws.recv())
    assert ack["type"] == "ack", ack
    return str(ack["incident_id"])


async def the_alert(client: aioredis.Redis) -> dict[str, Any]:
    store = AlertStore(client, make_settings("redis://unused"))

    async def find() -> dict[str, Any] | None:
        found = [a for a in await store.list({"open", "acknowledged"}, lambda _r: True) if a["kind"] == "incident"]
        return found[0] if found else None

    return await eventually(find, "the incident's alert")


async def audit(client: aioredis.Redis, alert_id: str) -> list[dict[str, Any]]:
    store = AlertStore(client, make_settings("redis://unused"))
    return [e for e in await store.audit(alert_id) if e.get("action") == "notified"]


async def test_a_critical_incident_pages_level_0_by_email_and_webhook(app_factory, redis_client) -> None:
    with smtp_server() as (mailbox, port):
        async with webhook_receiver() as receiver, app_factory(
                conf(receiver, port), run_watcher=True) as (base, _app):
            await register_tour(base, "T1")
            await critical_incident(base)
            alert = await the_alert(redis_client)
            alert_id = alert["alert_id"]
            hit = (await eventually(lambda: asyncio.sleep(0, receiver.of("wang")), "the webhook page"))[0]
            assert hit.key == f"{alert_id}:0:wang.fang:webhook"
            assert hit.body["alert"]["alert_id"] == alert_id and hit.body["level"] == 0
            assert hit.body["person"] == "wang.fang" and hit.body["act_url"].startswith("http://127.0.0.1:9/act/")
            assert "冰雹" not in hit.body["text"] and "恶劣天气" in hit.body["text"]  # said in Chinese, her language
            mail = (await eventually(lambda: asyncio.sleep(0, mailbox.to("wang.fang@example.com")), "the e-mail"))[0]
            assert alert_id in mail["Subject"] and mail["X-Tourpulse-Alert"] == alert_id
            text = body_text(mail)
            assert "/act/" in text and "openstreetmap.org/?mlat=25.03890" in text and "1796" not in text

            async def both_recorded() -> list[dict[str, Any]] | None:
                entries = await audit(redis_client, alert_id)
                return entries if len(entries) == 2 else None

            entries = await both_recorded() or await eventually(both_recorded, "two notified entries")
            assert {(e["person"], e["channel"], e["level"], e["result"]) for e in entries} == {
                ("wang.fang", "email", 0, "sent"), ("wang.fang", "webhook", 0, "sent")}
            stored = await AlertStore(redis_client, make_settings("redis://unused")).get(alert_id)
            assert stored is not None and stored["notified"]["wang.fang"]["result"] == "sent"
            assert receiver.of("li") == []  # level 1 is not paged before escalation
            async with httpx.AsyncClient(base_url=base) as http:
                metrics = (await http.get("/metrics")).text
                act = await http.get(hit.body["act_url"].split("127.0.0.1:9", 1)[1])  # said to her, in Chinese
            assert act.status_code == 200 and "确认收到" in act.text and "恶劣天气" in act.text
            assert "openstreetmap.org" in act.text and act.headers["cache-control"] == "no-store"
            assert 'tourpulse_pages_total{channel="webhook",result="sent"} 1' in metrics
            assert 'tourpulse_pages_total{channel="email",result="sent"} 1' in metrics
            assert "tourpulse_page_seconds_count" in metrics


async def test_nobody_acks_so_level_1_is_paged_and_the_link_acks_and_stops_escalation(app_factory,
                                                                                     redis_client) -> None:
    with smtp_server() as (_mailbox, port):
        async with webhook_receiver() as receiver:
            doc = conf(receiver, port, escalation=["1s", "2500ms"])
            async with app_factory(doc, run_watcher=True) as (base, _app):
                await register_tour(base, "T1")
                await critical_incident(base)
                alert_id = (await the_alert(redis_client))["alert_id"]
                hit = (await eventually(lambda: asyncio.sleep(0, receiver.of("li")), "the level-1 page"))[0]
                assert hit.key == f"{alert_id}:1:li.lei:webhook"
                assert alert_id in hit.body["text"] and hit.body["blocks"][1]["elements"][0]["url"]
                act_url = hit.body["blocks"][1]["elements"][0]["url"]
                path = act_url.split("127.0.0.1:9", 1)[1]
                async with httpx.AsyncClient(base_url=base) as http:
                    shown = await http.get(path)
                    assert shown.status_code == 200 and "a hailstorm stopped the coach" in shown.text
                    assert "form-action 'self'" in shown.headers["content-security-policy"]
                    forged = await http.post(path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB"))
                    assert forged.status_code == 403
                    expired = sign_link(SECRET, alert_id, "li.lei", time.time() - 25 * 3600)
                    assert (await http.post(f"/act/{expired}")).status_code == 410
                    stored = await AlertStore(redis_client, make_settings("redis://unused")).get(alert_id)
                    assert stored is not None and stored["status"] == "open"  # neither acknowledged anything
                    done = await http.post(path)
                    assert done.status_code == 200 and "acknowledged this alert" in done.text
                    again = await http.post(path)
                    assert again.status_code == 200
                stored = await AlertStore(redis_client, make_settings("redis://unused")).get(alert_id)
                assert stored is not None and stored["status"] == "acknowledged"
                assert stored["escalation_level"] == 1
                # the level-2 clock fires (its deadline leaves the set) and finds the alert acknowledged
                shard = keys.shard_of("T1", 16)
                await eventually(lambda: redis_client.exists(keys.fired(shard, f"esc:{alert_id}:2")),
                                 "the level-2 clock to fire")
                await eventually(lambda: _settled(redis_client), "the watcher to finish its events")
                stored = await AlertStore(redis_client, make_settings("redis://unused")).get(alert_id)
                assert stored is not None and stored["escalation_level"] == 1
                assert not await redis_client.exists(keys.page_job(f"{alert_id}:2:li.lei:webhook"))
                acts = [e for e in await AlertStore(redis_client, make_settings("redis://unused")).audit(alert_id)
                        if e.get("action") == "ack"]
                assert len(acts) == 1 and acts[0]["by"] == "link:li.lei"
    assert len(receiver.of("li")) == 1


async def _settled(client: aioredis.Redis) -> bool:
    stream = keys.events(keys.shard_of("T1", 16))
    groups = await client.xinfo_groups(stream)
    group = next(g for g in groups if g["name"] in (keys.GROUP, keys.GROUP.encode()))
    return int(group["pending"]) == 0 and int(group.get("lag") or 0) == 0


async def test_a_receiver_failing_twice_then_succeeding_records_exactly_one_delivery(app_factory,
                                                                                   redis_client) -> None:
    with smtp_server() as (_mailbox, port):
        async with webhook_receiver() as receiver:
            receiver.plans["wang"] = ["fail", "fail"]
            async with app_factory(conf(receiver, port), run_watcher=True) as (base, _app):
                await register_tour(base, "T1")
                await critical_incident(base)
                alert_id = (await the_alert(redis_client))["alert_id"]

                async def delivered() -> list[dict[str, Any]] | None:
                    entries = [e for e in await audit(redis_client, alert_id) if e["channel"] == "webhook"]
                    return entries if any(e["result"] == "sent" for e in entries) else None

                entries = await eventually(delivered, "the third attempt to get through")
                assert [(e["result"], e["attempt"]) for e in entries] == [("http 503", 1), ("http 503", 2),
                                                                          ("sent", 3)]
                assert len({h.key for h in receiver.of("wang")}) == 1 and len(receiver.of("wang")) == 3
                job = await redis_client.hgetall(keys.page_job(f"{alert_id}:0:wang.fang:webhook"))
                assert job[b"state"] == b"done" and not await redis_client.zscore(
                    keys.PAGE_DUE, f"{alert_id}:0:wang.fang:webhook")
                async with httpx.AsyncClient(base_url=base) as http:
                    metrics = (await http.get("/metrics")).text
                assert 'tourpulse_pages_total{channel="webhook",result="retried"} 2' in metrics


async def test_a_4xx_is_given_up_and_a_receiver_down_is_retried(app_factory, redis_client) -> None:
    with smtp_server() as (_mailbox, port):
        async with webhook_receiver() as receiver:
            receiver.plans["wang"] = ["bad", "bad", "bad", "bad"]
            doc = conf(receiver, port)
            doc["notify"]["people"][1]["webhook"] = "http://127.0.0.1:9/nobody-listens"
            doc["notify"]["rota"] = [{"region": "*", "levels": [["wang.fang", "li.lei"]]}]
            async with app_factory(doc, run_watcher=True) as (base, _app):
                await register_tour(base, "T1")
                await critical_incident(base)
                alert_id = (await the_alert(redis_client))["alert_id"]

                async def given_up() -> bool:
                    job = await redis_client.hget(keys.page_job(f"{alert_id}:0:wang.fang:webhook"), "state")
                    down = [e for e in await audit(redis_client, alert_id) if e["person"] == "li.lei"]
                    return job == b"failed" and len(down) >= 2

                await eventually(given_up, "the 4xx page to be given up and the down one retried")
                stored = await AlertStore(redis_client, make_settings("redis://unused")).get(alert_id)
                assert stored is not None and stored["notified"]["wang.fang"]["result"] == "http 400"
                assert stored["notified"]["li.lei"]["result"].startswith("error:")
                assert len(receiver.of("wang")) == 3


async def test_a_person_off_duty_is_skipped(app_factory, redis_client) -> None:
    # wang.fang's hours start two hours from now in Shanghai: level 0 is all off duty, so level 1 is paged at once
    local = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8)))
    start, end = local + dt.timedelta(hours=2), local + dt.timedelta(hours=3)
    hours = f"{start:%H}:00-{end:%H}:00"
    with smtp_server() as (mailbox, port):
        async with webhook_receiver() as receiver, app_factory(
                conf(receiver, port, wang_hours=hours), run_watcher=True) as (base, _app):
            await register_tour(base, "T1")
            await critical_incident(base)
            alert_id = (await the_alert(redis_client))["alert_id"]
            hit = (await eventually(lambda: asyncio.sleep(0, receiver.of("li")), "li.lei's page"))[0]
            assert hit.key == f"{alert_id}:0:li.lei:webhook"
            job = await redis_client.hgetall(keys.page_job(f"{alert_id}:0:li.lei:webhook"))
            assert job[b"rota_level"] == b"1"
            assert receiver.of("wang") == [] and mailbox.messages == []


def test_a_bad_configuration_refuses_to_start_naming_the_key(tmp_path: Path, redis_url: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[notify]\nbase_url = "https://tp.example.com"\n\n[[notify.people]]\nid = "wang.fang"\n'
                   'webhook = "https://hooks.example.com/a"\n\n[[notify.rota]]\nregion = "*"\n'
                   'levels = [["wang.fang"], ["bob"]]\n')
    env = {**os.environ, "REDIS_URL": redis_url, "TOURPULSE_CONFIG": str(bad), "TOURPULSE_SECRET": "x" * 32,
           "TOURPULSE_DATA_DIR": str(tmp_path)}
    watcher = subprocess.run([sys.executable, "-m", "alerts"], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=WAIT)
    assert watcher.returncode == 2
    assert "levels[1]: unknown person id 'bob'" in watcher.stderr
    serve = subprocess.run([sys.executable, "-m", "server.cli", "serve", "--config", str(bad), "--port", "0"],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=WAIT)
    assert serve.returncode != 0 and "unknown person id 'bob'" in serve.stderr


def start_watcher(redis_url: str, doc: dict[str, Any], watcher_id: str) -> subprocess.Popen[str]:
    spec = json.dumps({"redis_url": redis_url, "doc": doc, "id": watcher_id})
    return subprocess.Popen([sys.executable, str(ROOT / "tests/e2e/watcher_proc.py"), spec],
                            stdout=subprocess.PIPE, text=True)


def stop(proc: subprocess.Popen[str], kill: bool = False) -> None:
    if kill:
        proc.kill()
    else:
        proc.terminate()
    proc.wait(timeout=WAIT)
    assert proc.stdout is not None
    proc.stdout.close()


async def test_a_watcher_killed_mid_delivery_neither_loses_nor_doubles_the_page(app_factory, redis_url,
                                                                                redis_client) -> None:
    with smtp_server() as (_mailbox, port):
        async with webhook_receiver() as receiver:
            receiver.plans["wang"] = ["hang"]  # the first attempt is in flight when its watcher dies
            doc = conf(receiver, port)
            doc["notify"]["people"][0].pop("email")
            async with app_factory(doc) as (base, _app):
                victim = start_watcher(redis_url, doc, "victim")
                try:
                    await register_tour(base, "T1")
                    await critical_incident(base)
                    alert_id = (await the_alert(redis_client))["alert_id"]
                    await eventually(lambda: asyncio.sleep(0, receiver.of("wang")), "the page in flight")
                finally:
                    stop(victim, kill=True)
                job_id = f"{alert_id}:0:wang.fang:webhook"
                assert (await redis_client.hget(keys.page_job(job_id), "state")) == b"sending"
                assert await audit(redis_client, alert_id) == []  # nothing recorded: the attempt never finished
                heir = start_watcher(redis_url, doc, "heir")
                try:
                    async def recorded() -> list[dict[str, Any]] | None:
                        entries = await audit(redis_client, alert_id)
                        return entries or None

                    entries = await eventually(recorded, "the heir to send the page again")
                finally:
                    stop(heir)
            assert [(e["person"], e["channel"], e["result"], e["attempt"]) for e in entries] == [
                ("wang.fang", "webhook", "sent", 2)]
            hits = receiver.of("wang")
            assert len(hits) == 2 and {h.key for h in hits} == {job_id}  # resent once, with the same key
            assert (await redis_client.hget(keys.page_job(job_id), "state")) == b"done"


async def test_a_hanging_webhook_is_cut_off_and_retried(app_factory, redis_client) -> None:
    with smtp_server() as (_mailbox, port):
        async with webhook_receiver() as receiver:
            receiver.plans["wang"] = ["hang"]
            async with app_factory(conf(receiver, port, timeout="300ms"), run_watcher=True) as (base, _app):
                await register_tour(base, "T1")
                await critical_incident(base)
                alert_id = (await the_alert(redis_client))["alert_id"]

                async def delivered() -> list[dict[str, Any]] | None:
                    entries = [e for e in await audit(redis_client, alert_id) if e["channel"] == "webhook"]
                    return entries if any(e["result"] == "sent" for e in entries) else None

                entries = await eventually(delivered, "the retry after the timeout")
                assert [(e["result"], e["attempt"]) for e in entries] == [("timeout", 1), ("sent", 2)]


async def test_two_watchers_send_each_page_once_and_assigning_pages_the_assignee(app_factory, redis_url,
                                                                                redis_client) -> None:
    from alerts.watcher import Watcher
    from tests.conftest import token

    with smtp_server() as (mailbox, port):
        async with webhook_receiver() as receiver:
            doc = conf(receiver, port)
            settings = make_settings(redis_url, doc)
            watchers = [Watcher(settings, watcher_id=f"w{n}") for n in range(2)]
            async with app_factory(doc) as (base, _app):
                for watcher in watchers:
                    await watcher.start()
                try:
                    await register_tour(base, "T1")
                    for n in range(3):
                        await critical_incident(base, f"i{n}")

                    async def all_sent() -> bool:
                        return len(receiver.of("wang")) >= 3 and len(mailbox.messages) >= 3

                    await eventually(all_sent, "three alerts paged")
                    alert_id = (await the_alert(redis_client))["alert_id"]
                    admin = {"Authorization": f"Bearer {token('admin', 'ops', regions=('*',))}"}
                    async with httpx.AsyncClient(base_url=base) as http:
                        answer = await http.post(f"/api/alerts/{alert_id}/assign", json={"assignee": "li.lei"},
                                                 headers=admin)
                        assert answer.status_code == 200, answer.text
                    hit = (await eventually(lambda: asyncio.sleep(0, receiver.of("li")), "the assignee's page"))[0]
                    assert hit.key == f"{alert_id}:0:li.lei:webhook"
                    job = await redis_client.hgetall(keys.page_job(hit.key or ""))
                    assert job[b"reason"] == b"assign"
                finally:
                    for watcher in watchers:
                        await watcher.stop()
            keys_seen = [h.key for h in receiver.of("wang")]
            assert len(keys_seen) == 3 and len(set(keys_seen)) == 3  # one page per alert, whichever watcher sent it
            assert len(mailbox.messages) == 3 and len({m["Message-ID"] for m in mailbox.messages}) == 3


async def test_smtp_logs_in_with_the_urls_credentials(app_factory, redis_client) -> None:
    with smtp_server(login=("tp@example.com", "s3cret/+")) as (mailbox, port):
        async with webhook_receiver() as receiver:
            doc = conf(receiver, port)
            doc["notify"]["smtp"] = f"smtp://tp%40example.com:s3cret%2F%2B@127.0.0.1:{port}"
            doc["notify"]["people"][1]["email"] = "li.lei@example.com"
            doc["notify"]["rota"] = [{"region": "*", "levels": [["wang.fang", "li.lei"]]}]
            async with app_factory(doc, run_watcher=True) as (base, _app):
                await register_tour(base, "T1")
                await critical_incident(base)
                await eventually(lambda: asyncio.sleep(0, len(mailbox.messages) == 2), "both e-mails")
    assert {m["To"] for m in mailbox.messages} == {"wang.fang@example.com", "li.lei@example.com"}
    assert mailbox.logins == ["tp@example.com", "tp@example.com"]


async def test_a_refused_smtp_login_is_recorded(app_factory, redis_client) -> None:
    with smtp_server(login=("tp@example.com", "right")) as (mailbox, port):
        async with webhook_receiver() as receiver:
            doc = conf(receiver, port)
            doc["notify"]["smtp"] = f"smtp://tp%40example.com:wrong@127.0.0.1:{port}"
            async with app_factory(doc, run_watcher=True) as (base, _app):
                await register_tour(base, "T1")
                await critical_incident(base)
                alert_id = (await the_alert(redis_client))["alert_id"]

                async def refused() -> list[dict[str, Any]] | None:
                    entries = [e for e in await audit(redis_client, alert_id) if e["channel"] == "email"]
                    return entries or None

                entry = (await eventually(refused, "the refused login recorded"))[0]
                assert entry["result"] == "smtp 535" and mailbox.messages == []


async def test_smtp_upgrades_with_starttls_when_offered(app_factory, redis_client, tmp_path: Path,
                                                        monkeypatch) -> None:
    cert, key = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted the way a real CA would be; the name is checked
    with smtp_server(login=("tp", "pw"), tls=(cert, key)) as (mailbox, port):
        async with webhook_receiver() as receiver:
            doc = conf(receiver, port)
            doc["notify"]["smtp"] = f"smtp://tp:pw@127.0.0.1:{port}"
            async with app_factory(doc, run_watcher=True) as (base, _app):
                await register_tour(base, "T1")
                await critical_incident(base)
                await eventually(lambda: asyncio.sleep(0, mailbox.messages), "the e-mail over TLS")
    assert mailbox.tls == [True] and mailbox.logins == ["tp"]


async def test_chat_robots_get_their_own_shapes_and_dingtalk_a_valid_signature(app_factory, redis_client) -> None:
    import base64
    import hashlib
    import hmac

    with smtp_server() as (_mailbox, port):
        async with webhook_receiver() as receiver:
            doc = conf(receiver, port)
            doc["notify"]["people"] = [
                {"id": "ding", "webhook": receiver.url("ding") + "?access_token=T", "format": "dingtalk",
                 "secret": "SECabc", "timezone": "Asia/Shanghai"},
                {"id": "wecom", "webhook": receiver.url("wecom"), "format": "wecom", "language": "en"}]
            doc["notify"]["rota"] = [{"region": "*", "levels": [["ding", "wecom"]]}]
            async with app_factory(doc, run_watcher=True) as (base, _app):
                await register_tour(base, "T1")
                await critical_incident(base)
                alert_id = (await the_alert(redis_client))["alert_id"]
                ding = (await eventually(lambda: asyncio.sleep(0, receiver.of("ding")), "the DingTalk page"))[0]
                wecom = (await eventually(lambda: asyncio.sleep(0, receiver.of("wecom")), "the WeCom page"))[0]
    stamp = ding.query["timestamp"]
    expected = base64.b64encode(hmac.new(b"SECabc", f"{stamp}\nSECabc".encode(), hashlib.sha256).digest()).decode()
    assert ding.query["sign"] == expected and ding.query["access_token"] == "T"
    assert abs(int(stamp) / 1000 - time.time()) < WAIT
    assert ding.body["msgtype"] == "markdown" and alert_id in ding.body["markdown"]["text"]
    assert "/act/" in ding.body["markdown"]["text"] and "恶劣天气" in ding.body["markdown"]["text"]
    assert wecom.body["msgtype"] == "markdown" and alert_id in wecom.body["markdown"]["content"]
    assert "Acknowledge" in wecom.body["markdown"]["content"]


async def test_paging_works_the_same_on_a_cluster(app_factory, cluster_url: str) -> None:
    from server.db.client import close_client
    from server.db.client import redis_client as make_client

    client = make_client(cluster_url)
    try:
        with smtp_server() as (mailbox, port):
            async with webhook_receiver() as receiver:
                async with app_factory(conf(receiver, port), run_watcher=True, url=cluster_url) as (base, _app):
                    await register_tour(base, "T1")
                    await critical_incident(base)
                    alert_id = (await the_alert(client))["alert_id"]
                    hit = (await eventually(lambda: asyncio.sleep(0, receiver.of("wang")), "the page"))[0]
                    await eventually(lambda: asyncio.sleep(0, mailbox.messages), "the e-mail")

                    async def both_recorded() -> bool:
                        return len(await audit(client, alert_id)) == 2

                    await eventually(both_recorded, "two notified entries")
                    async with httpx.AsyncClient(base_url=base) as http:
                        done = await http.post(hit.body["act_url"].split("127.0.0.1:9", 1)[1])
                    assert done.status_code == 200
                    stored = await AlertStore(client, make_settings("redis://unused")).get(alert_id)
        assert hit.key == f"{alert_id}:0:wang.fang:webhook"
        assert stored is not None and stored["status"] == "acknowledged"
        assert stored["notified"]["wang.fang"]["result"] == "sent"
    finally:
        await close_client(client)
