"""Saying an alert to a person, each channel's shape, and the signed acknowledge links: pure, no loop, no Redis."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest

from alerts.paging.formats import dingtalk_url, email_message, webhook_request
from alerts.rules.say import as_text, say
from server.core.act_links import ExpiredLink, ForgedLink, act_url, sign_link, verify_link
from server.core.notify_config import Person

NOW = 1796364240.0  # 2026-12-04 06:04 UTC, 14 minutes after OPENED
OPENED = "2026-12-04T05:50:00Z"


def incident_alert(**over: Any) -> dict[str, Any]:
    alert = {
        "alert_id": "A42", "kind": "incident", "severity": "critical", "status": "open", "tour_id": "T1",
        "region": "yunnan", "summary": "T1: medical - traveller fainted", "count": 1, "escalation_level": 0,
        "assignee": None, "opened_at": OPENED, "updated_at": OPENED,
        "details": {
            "incident_id": "T1~0000000001", "kind": "medical", "severity": "critical",
            "summary": "traveller fainted at Stone Forest", "guide": "g1", "travellers_affected": 1,
            "location": {"lat": 24.8166, "lon": 103.3231},
            "dispatched_medical": {"dispatched": {"resource_id": "med-7", "kind": "medical", "capacity": 2,
                                                  "partner": "Kunming First Aid", "contact": "+86 871 6500 1234",
                                                  "held_since": 1796405050.16, "held_by": "T1~0000000001"},
                                   "region": "yunnan", "fallback": False},
            "shortfall_medical": 0,
        },
    }
    alert.update(over)
    return alert


def complaint_alert() -> dict[str, Any]:
    return {"alert_id": "A43", "kind": "urgent_complaint", "severity": "high", "status": "open", "tour_id": "T1",
            "region": "yunnan", "summary": "...", "escalation_level": 1, "assignee": "li.lei",
            "opened_at": OPENED, "details": {"traveller": "t9", "day": "2026-12-04", "score": 1,
                                             "comment": "导游把我们丢在景区了", "rating_seq": "1796405050160-0"}}


def test_an_incident_is_said_with_partner_capacity_tel_map_and_local_time() -> None:
    said = say(incident_alert(), "en", "Asia/Shanghai", NOW)
    assert said.sentence == "Medical on tour T1: traveller fainted at Stone Forest"
    fields = {f.label: f for f in said.fields}
    assert fields["Sent (medical)"].text == "Kunming First Aid · 2 · +86 871 6500 1234"
    assert fields["Sent (medical)"].href == "tel:+868716500123" + "4"
    assert fields["Location"].text == "24.81660, 103.32310"
    assert fields["Location"].href and "mlat=24.81660&mlon=103.32310" in fields["Location"].href
    assert fields["Opened"].text == "13:50 (14 min ago)"  # Shanghai's clock, with its age
    text = as_text(said)
    for raw in ("1796405050", "T1~", "med-7", "held_", "{", "dispatched_"):
        assert raw not in text, raw


def test_chinese_readers_read_chinese_and_a_complaint_in_its_own_words() -> None:
    said = say(complaint_alert(), "zh", "Asia/Shanghai", NOW)
    assert said.sentence == "T1 团有紧急投诉：游客评分 1"
    fields = {f.label: f.text for f in said.fields}
    assert fields["游客原话"] == "“导游把我们丢在景区了”"
    assert fields["严重程度"] == "高" and fields["升级级别"] == "1" and fields["负责人"] == "li.lei"
    assert fields["发生时间"] == "13:50 (14 分钟前)"
    assert "1796405050160" not in as_text(said)
    zh = say(incident_alert(), "zh", "Asia/Shanghai", NOW)
    assert zh.sentence.startswith("T1 团发生医疗事件") and any(f.label == "已派出（医疗）" for f in zh.fields)


@pytest.mark.parametrize("kind", ["score_below_threshold", "score_drop", "sla_breach", "pool_exhausted",
                                  "category_share", "complaint", "something_new"])
def test_every_kind_is_said_without_raw_details(kind: str) -> None:
    details = {"day": "2026-12-04", "mean": 2.4, "count": 5, "threshold": 4.0, "previous_mean": 4.5,
               "due": "2026-12-04T04:00:00Z", "deadline_id": "urgent_solution:x", "incidents": ["T1~1", "T2~2"],
               "kind": "vehicle", "route": "Yunnan 6 days", "category": "food", "share": 0.4, "counts": {"food": 4}}
    alert = {"alert_id": "A1", "kind": kind, "severity": "high", "status": "open", "tour_id": "T1",
             "region": "yunnan", "summary": "a summary", "escalation_level": 0, "opened_at": OPENED,
             "details": details}
    for lang in ("en", "zh"):
        said = say(alert, lang, "UTC", NOW)
        assert said.sentence and "{" not in said.sentence
        assert "T1~1" not in as_text(said) and "urgent_solution" not in as_text(said)


def person(fmt: str, **over: Any) -> Person:
    base: dict[str, Any] = {"id": "wang.fang", "name": "王芳", "webhook": "https://oapi.example.com/robot?x=1",
                            "format": fmt, "secret": "SEC123", "timezone": "Asia/Shanghai", "language": "zh",
                            "email": "wf@example.com"}
    base.update(over)
    return Person(**base)


@pytest.mark.parametrize("fmt", ["json", "slack", "wecom", "dingtalk"])
def test_every_format_names_the_alert_and_holds_the_act_link(fmt: str) -> None:
    alert = incident_alert()
    said = say(alert, "zh", "Asia/Shanghai", NOW)
    act = "https://tp.example.com/act/abc.def"
    url, body = webhook_request(person(fmt), alert, said, 0, act, "https://tp.example.com/board", NOW)
    flat = json.dumps(body, ensure_ascii=False)
    assert "A42" in flat and act in flat and "https://tp.example.com/board" in flat
    if fmt == "json":
        assert set(body) >= {"alert", "level", "person", "act_url"} and body["alert"] == alert
    elif fmt == "slack":
        assert body["blocks"][1]["elements"][0]["url"] == act and "tel:" in flat
    elif fmt == "wecom":
        assert body["msgtype"] == "markdown" and "确认收到" in body["markdown"]["content"]
    else:
        assert body["msgtype"] == "markdown" and body["markdown"]["title"]
        assert "sign=" in url and url.startswith("https://oapi.example.com/robot?x=1&timestamp=")


def test_dingtalk_signs_as_documented() -> None:
    url = dingtalk_url("https://oapi.dingtalk.com/robot/send?access_token=T", "SEC123", 1700000000.123)
    query = parse_qs(urlsplit(url).query)
    assert query["timestamp"] == ["1700000000123"]
    expected = base64.b64encode(hmac.new(b"SEC123", b"1700000000123\nSEC123", hashlib.sha256).digest()).decode()
    assert query["sign"] == [expected]  # parse_qs undoes the URL encoding DingTalk asks for
    assert "%" in url.split("sign=")[1] or re.fullmatch(r"[A-Za-z0-9]+", unquote_plus(url.split("sign=")[1]))
    assert dingtalk_url("https://x.example.com/r", None, 1.0) == "https://x.example.com/r"


def test_the_email_says_it_and_links_it() -> None:
    alert = incident_alert()
    msg = email_message(person("json"), alert, say(alert, "zh", "Asia/Shanghai", NOW), 1,
                        "https://tp.example.com/act/abc.def", "https://tp.example.com/board", "tp@example.com",
                        "A42:1:wang.fang:email")
    assert msg["To"] == "wf@example.com" and "A42" in msg["Subject"] and msg["X-Tourpulse-Alert"] == "A42"
    assert msg["Message-ID"] == "<A42.1.wang.fang.email@tourpulse>"
    two_lines = dict(alert, details={**alert["details"], "summary": "line one\r\nBcc: x@example.com"})
    msg2 = email_message(person("json"), two_lines, say(two_lines, "en", "UTC", NOW), 0, "https://a.example.com/x",
                         "https://a.example.com/board", "tp@example.com", "A42:0:wang.fang:email")
    assert "\n" not in msg2["Subject"] and msg2["Bcc"] is None and "line one Bcc:" in msg2["Subject"]
    body = msg.get_content()
    assert "https://tp.example.com/act/abc.def" in body and "Kunming First Aid" in body and "1796405050" not in body


def test_act_links_are_signed_for_one_alert_and_person_for_24_hours() -> None:
    secret = b"s" * 32
    link = sign_link(secret, "A42", "wang.fang", NOW)
    assert verify_link(secret, link, NOW + 3600).alert_id == "A42"
    with pytest.raises(ExpiredLink):
        verify_link(secret, link, NOW + 24 * 3600)
    with pytest.raises(ForgedLink):
        verify_link(b"t" * 32, link, NOW)
    payload, signature = link.split(".")
    other = sign_link(secret, "A43", "wang.fang", NOW).split(".")[0]
    for forged in (f"{other}.{signature}", f"{payload}.{signature[:-2]}", "nonsense", "", "a.b.c", "é.é"):
        with pytest.raises(ForgedLink):
            verify_link(secret, forged, NOW)
    assert act_url("https://tp.example.com/", secret, "A42", "wang.fang", NOW).startswith(
        "https://tp.example.com/act/")


def test_phone_text_never_makes_links_or_lines_in_chat_messages() -> None:
    hostile = "fell [Acknowledge](https://evil.example.com) <!channel> **now**\n# heading"
    alert = incident_alert(details={**incident_alert()["details"], "summary": hostile})
    said = say(alert, "en", "UTC", NOW)
    act = "https://tp.example.com/act/abc.def"
    for fmt in ("wecom", "dingtalk"):
        _url, body = webhook_request(person(fmt), alert, said, 0, act, "https://tp.example.com/board", NOW)
        text = body["markdown"]["content" if fmt == "wecom" else "text"]
        assert "](https://evil" not in text and "\n# heading" not in text and "[确认收到](" + act + ")" in text
    _url, body = webhook_request(person("slack"), alert, said, 0, act, "https://tp.example.com/board", NOW)
    section = body["blocks"][0]["text"]["text"]
    assert "<!channel>" not in section and "&lt;!channel&gt;" in section
