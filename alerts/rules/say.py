"""One way to say an alert to a person: per kind, a sentence and labelled fields, in the reader's language.

Pages (e-mail, chat webhooks) and the act page use it; the board's cards use its port ``said.js`` (same sentences,
same labels: change both together). What a person reads never holds raw JSON, epoch seconds or internal ids: a
dispatched resource is its partner, capacity and a ``tel:`` link; a location is coordinates with a map link; times
are local clock times with their age; a complaint is the traveller's own words. The raw ``details`` stay in the API.
Pure: the time and the reader's time zone are arguments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

MAP_URL = "https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=16/{lat}/{lon}"
RESOURCE_KINDS = ("vehicle", "lodging", "medical", "guide", "interpreter")

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "severity": "Severity", "tour": "Tour", "region": "Region", "level": "Escalation level",
        "opened": "Opened", "incident": "Incident", "affected": "Travellers affected", "location": "Location",
        "guide": "Guide", "words": "In their words", "score": "Score", "day": "Day", "mean": "Mean",
        "ratings": "Ratings", "due": "Was due", "waiting": "Incidents waiting", "share": "Share",
        "dispatched": "Sent ({kind})", "shortfall": "Short by", "alert": "Alert", "assignee": "Assigned to",
        "low": "low", "medium": "medium", "high": "high", "critical": "critical",
        "vehicle": "vehicle", "lodging": "lodging", "medical": "medical", "guide_r": "guide",
        "interpreter": "interpreter",
    },
    "zh": {
        "severity": "严重程度", "tour": "团", "region": "区域", "level": "升级级别", "opened": "发生时间",
        "incident": "事件", "affected": "受影响游客", "location": "位置", "guide": "导游", "words": "游客原话",
        "score": "评分", "day": "日期", "mean": "平均分", "ratings": "评分人数", "due": "应完成时间",
        "waiting": "等待中的事件", "share": "占比", "dispatched": "已派出（{kind}）", "shortfall": "缺口",
        "alert": "告警", "assignee": "负责人",
        "low": "低", "medium": "中", "high": "高", "critical": "紧急",
        "vehicle": "车辆", "lodging": "住宿", "medical": "医疗", "guide_r": "导游", "interpreter": "翻译",
    },
}

SENTENCES: dict[str, dict[str, str]] = {
    "en": {
        "incident": "{incident} on tour {tour}: {summary}",
        "urgent_complaint": "Urgent complaint on tour {tour}: a traveller rated {score}",
        "complaint": "Complaint on tour {tour}",
        "score_below_threshold": "Tour {tour} scores {mean} on {day}, below {threshold}",
        "score_drop": "Tour {tour} dropped from {previous} to {mean} on {day}",
        "sla_breach": "Missed deadline on tour {tour}: {summary}",
        "pool_exhausted": "No {resource} free in {region}",
        "category_share": "{category} complaints are {share} of route {route}",
        "other": "{summary}",
    },
    "zh": {
        "incident": "{tour} 团发生{incident}：{summary}",
        "urgent_complaint": "{tour} 团有紧急投诉：游客评分 {score}",
        "complaint": "{tour} 团有投诉",
        "score_below_threshold": "{tour} 团 {day} 平均分 {mean}，低于 {threshold}",
        "score_drop": "{tour} 团 {day} 评分由 {previous} 降至 {mean}",
        "sla_breach": "{tour} 团超时未处理：{summary}",
        "pool_exhausted": "{region} 没有空闲的{resource}",
        "category_share": "线路 {route} 的投诉中{category}占 {share}",
        "other": "{summary}",
    },
}

INCIDENT_KINDS = {
    "zh": {"medical": "医疗事件", "accident": "事故", "vehicle_breakdown": "车辆故障", "lodging_problem": "住宿问题",
           "weather": "恶劣天气", "attraction_closed": "景点关闭", "complaint": "投诉", "lost_document": "证件丢失",
           "delay": "延误", "conflict": "冲突", "other": "事件"},
    "en": {},
}


@dataclass(frozen=True, slots=True)
class Field:
    label: str
    text: str
    href: str | None = None  # tel:, https: map link; never markup


@dataclass(frozen=True, slots=True)
class Said:
    sentence: str
    fields: tuple[Field, ...]


def _num(value: Any) -> Any:
    """A number as a browser writes it (``4.0`` -> ``4``), so the board's port says the same."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _lang(lang: str) -> str:
    return lang if lang in LABELS else "en"


def clock(epoch: float, now: float, zone: str, lang: str) -> str:
    """``14:05 (12 min ago)`` in the reader's zone; the date too when it is not today there."""
    tz = ZoneInfo(zone)
    at, today = dt.datetime.fromtimestamp(epoch, tz), dt.datetime.fromtimestamp(now, tz)
    text = at.strftime("%H:%M") if at.date() == today.date() else at.strftime("%Y-%m-%d %H:%M")
    return f"{text} ({age(now - epoch, lang)})"


def age(seconds: float, lang: str) -> str:
    seconds = max(0.0, seconds)
    minutes, hours, days = int(seconds // 60), int(seconds // 3600), int(seconds // 86400)
    if lang == "zh":
        return ("刚刚" if minutes < 1 else f"{minutes} 分钟前" if hours < 1 else f"{hours} 小时前" if days < 1
                else f"{days} 天前")
    return ("just now" if minutes < 1 else f"{minutes} min ago" if hours < 1 else f"{hours} h ago" if days < 1
            else f"{days} d ago")


def _epoch(iso_text: Any) -> float | None:
    if not isinstance(iso_text, str):
        return None
    try:
        return dt.datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def location_field(location: Any, label: str) -> Field | None:
    if not isinstance(location, Mapping):
        return None
    lat, lon = location.get("lat"), location.get("lon")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float):
        return None
    return Field(label, f"{lat:.5f}, {lon:.5f}", MAP_URL.format(lat=f"{lat:.5f}", lon=f"{lon:.5f}"))


def dispatched_fields(details: Mapping[str, Any], words: Mapping[str, str]) -> list[Field]:
    out: list[Field] = []
    for kind in RESOURCE_KINDS:
        sent = details.get(f"dispatched_{kind}")
        resource = sent.get("dispatched") if isinstance(sent, Mapping) else None
        if isinstance(resource, Mapping):
            label = words["dispatched"].format(kind=words["guide_r" if kind == "guide" else kind])
            text = str(resource.get("partner") or "-")
            if resource.get("capacity") is not None:
                text += f" · {resource['capacity']}"
            contact = str(resource.get("contact") or "")
            phone = "".join(c for c in contact if c.isdigit() or c == "+")
            if contact:
                text += f" · {contact}"
            out.append(Field(label, text, f"tel:{phone}" if len(phone) >= 5 else None))
        shortfall = details.get(f"shortfall_{kind}")
        if isinstance(shortfall, int) and shortfall > 0:
            out.append(Field(words["shortfall"], str(shortfall)))
    return out


def say(alert: Mapping[str, Any], lang: str, zone: str, now: float) -> Said:
    """The alert as a sentence and labelled fields for a reader of ``lang`` in time zone ``zone``."""
    lang = _lang(lang)
    words, sentences = LABELS[lang], SENTENCES[lang]
    d: Mapping[str, Any] = alert.get("details") if isinstance(alert.get("details"), Mapping) else {}  # type: ignore[assignment]
    kind = str(alert.get("kind"))
    tour = alert.get("tour_id") or "-"
    severity = str(alert.get("severity"))
    facts = {"tour": tour, "summary": alert.get("summary") or "", "region": alert.get("region") or "-",
             "score": _num(d.get("score", "-")), "mean": _num(d.get("mean", "-")), "day": d.get("day", "-"),
             "threshold": _num(d.get("threshold", "-")), "previous": _num(d.get("previous_mean", "-")),
             "route": d.get("route", "-"), "category": d.get("category", "-"),
             "share": f"{float(d['share']):.0%}" if isinstance(d.get("share"), int | float) else "-",
             "resource": words.get("guide_r" if d.get("kind") == "guide" else str(d.get("kind")), d.get("kind", "-")),
             "incident": INCIDENT_KINDS[lang].get(str(d.get("kind")), str(d.get("kind", "")).replace("_", " "))}
    facts = {name: "-" if value is None else value for name, value in facts.items()}
    if kind == "incident":
        facts["summary"] = d.get("summary") or alert.get("summary") or ""
        if lang == "en":
            facts["incident"] = str(facts["incident"]).capitalize()
    sentence = sentences.get(kind, sentences["other"]).format(**facts)
    fields: list[Field] = [Field(words["severity"], words.get(severity, severity))]
    if alert.get("tour_id"):
        fields.append(Field(words["tour"], str(tour)))
    fields.append(Field(words["region"], str(alert.get("region") or "-")))
    if kind in ("urgent_complaint", "complaint") and d.get("comment"):
        fields.append(Field(words["words"], f"“{d['comment']}”"))
    if kind in ("score_below_threshold", "score_drop") and d.get("count") is not None:
        fields.append(Field(words["ratings"], str(d["count"])))
    if kind == "incident":
        if d.get("travellers_affected") is not None:
            fields.append(Field(words["affected"], str(d["travellers_affected"])))
        if d.get("guide"):
            fields.append(Field(words["guide"], str(d["guide"])))
    loc = location_field(d.get("location"), words["location"])
    if loc is not None:
        fields.append(loc)
    fields += dispatched_fields(d, words)
    if kind == "sla_breach" and _epoch(d.get("due")) is not None:
        fields.append(Field(words["due"], clock(_epoch(d.get("due")) or 0.0, now, zone, lang)))
    if kind == "pool_exhausted" and isinstance(d.get("incidents"), list):
        fields.append(Field(words["waiting"], str(len(d["incidents"]))))
    if int(alert.get("escalation_level") or 0) > 0:
        fields.append(Field(words["level"], str(alert["escalation_level"])))
    if alert.get("assignee"):
        fields.append(Field(words["assignee"], str(alert["assignee"])))
    opened = _epoch(alert.get("opened_at"))
    if opened is not None:
        fields.append(Field(words["opened"], clock(opened, now, zone, lang)))
    return Said(sentence=sentence, fields=tuple(fields))


def as_text(said: Said) -> str:
    """Plain text: the sentence, then ``label: text`` lines (a link after its text)."""
    lines = [said.sentence, ""]
    for f in said.fields:
        lines.append(f"{f.label}: {f.text}" + (f" <{f.href}>" if f.href and not f.href.startswith("tel:") else ""))
    return "\n".join(lines)
