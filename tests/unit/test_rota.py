"""The [notify] configuration and the pure paging decisions: who is paged at level n at time t."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.rules.rota import classify_status, level_people, next_attempt, on_duty, pages_for, still_wanted
from server.core.notify_config import NotifySettings
from server.core.settings import ConfigError, settings_from_mapping


def notify_doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "base_url": "https://tp.example.com",
        "smtp": "smtp://u:p@127.0.0.1:2525",
        "from": "tp@example.com",
        "min_severity": "high",
        "people": [
            {"id": "wang.fang", "name": "王芳", "email": "wf@example.com", "webhook": "https://h.example.com/a",
             "format": "dingtalk", "secret": "s3", "hours": "08:00-22:00", "timezone": "Asia/Shanghai"},
            {"id": "li.lei", "name": "Li Lei", "webhook": "https://h.example.com/b", "format": "slack"},
            {"id": "night", "name": "Night owl", "email": "n@example.com", "hours": "22:00-06:00",
             "timezone": "Europe/London"},
        ],
        "rota": [
            {"region": "sichuan", "levels": [["wang.fang"], ["li.lei", "night"]]},
            {"region": "*", "levels": [["li.lei"]]},
        ],
    }
    doc.update(over)
    return doc


def notify(**over: Any) -> NotifySettings:
    return settings_from_mapping({"notify": notify_doc(**over)}).notify


def at(zone: str, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 12, 4, hour, minute, tzinfo=ZoneInfo(zone)).timestamp()


def alert(**over: Any) -> dict[str, Any]:
    base = {"alert_id": "A7", "kind": "incident", "severity": "critical", "status": "open", "region": "sichuan",
            "escalation_level": 0, "assignee": None}
    base.update(over)
    return base


def test_parsed_into_frozen_settings() -> None:
    n = notify()
    assert n.enabled and n.min_severity == "high" and n.base_url == "https://tp.example.com"
    assert n.smtp is not None and (n.smtp.host, n.smtp.port, n.smtp.user, n.smtp.ssl) == ("127.0.0.1", 2525, "u",
                                                                                          False)
    wf = n.people["wang.fang"]
    assert wf.hours == (480, 1320) and wf.language == "zh" and wf.channels == ("email", "webhook")
    assert n.people["li.lei"].language == "en" and n.people["li.lei"].channels == ("webhook",)
    assert n.rotas["sichuan"] == (("wang.fang",), ("li.lei", "night"))
    with pytest.raises(AttributeError):
        wf.name = "x"  # type: ignore[misc]


def test_no_notify_section_pages_nobody() -> None:
    assert not settings_from_mapping({}).notify.enabled
    assert pages_for(alert(), settings_from_mapping({}).notify, 0.0) == []


@pytest.mark.parametrize(("change", "named"), [
    ({"rota": [{"region": "x", "levels": [["bob"]]}]}, "levels[0]: unknown person id 'bob'"),
    ({"min_severity": "urgent"}, "[notify] min_severity"),
    ({"colour": "red"}, "[notify] unknown setting 'colour'"),
    ({"base_url": "ftp://x"}, "[notify] base_url"),
    ({"smtp": "http://mail"}, "[notify] smtp"),
    ({"smtp": None}, "[notify] smtp: needed"),
    ({"timeout": "soon"}, "[notify] timeout"),
    ({"people": [{"id": "a", "format": "teams"}]}, 'id "a" format: unknown format'),
    ({"people": [{"id": "a", "hours": "8-22"}]}, 'id "a" hours'),
    ({"people": [{"id": "a", "hours": "25:00-02:00"}]}, 'id "a" hours'),
    ({"people": [{"id": "a", "timezone": "Mars/Base"}]}, 'id "a" timezone'),
    ({"people": [{"id": "a", "email": "nope"}]}, 'id "a" email'),
    ({"people": [{"id": "a", "webhook": "hooks/x"}]}, 'id "a" webhook'),
    ({"people": [{"id": "a", "language": "fr"}]}, 'id "a" language'),
    ({"people": [{"id": "a", "phone": "1"}]}, "unknown setting 'phone'"),
    ({"people": [{"id": "a"}, {"id": "a"}]}, 'id "a": defined twice'),
    ({"people": [{"id": "a b"}]}, "#1 id"),
    ({"rota": [{"region": "x", "levels": []}]}, 'region "x" levels'),
    ({"rota": [{"region": "*", "levels": [["li.lei"]]}, {"region": "*", "levels": [["li.lei"]]}]},
     'region "*": defined twice'),
])
def test_a_bad_notify_value_is_refused_naming_its_key(change: dict[str, Any], named: str) -> None:
    doc = notify_doc(**change)
    if "people" in change and not any(p.get("email") for p in change["people"]):
        doc["rota"] = []
    with pytest.raises(ConfigError) as err:
        settings_from_mapping({"notify": doc})
    assert named in str(err.value)


@pytest.mark.parametrize(("hours", "zone", "hour", "minute", "expected"), [
    ("08:00-22:00", "Asia/Shanghai", 8, 0, True),
    ("08:00-22:00", "Asia/Shanghai", 21, 59, True),
    ("08:00-22:00", "Asia/Shanghai", 22, 0, False),
    ("08:00-22:00", "Asia/Shanghai", 3, 0, False),
    ("22:00-06:00", "Europe/London", 23, 30, True),
    ("22:00-06:00", "Europe/London", 5, 59, True),
    ("22:00-06:00", "Europe/London", 12, 0, False),
    ("00:00-24:00", "UTC", 23, 59, True),
])
def test_duty_hours_are_read_in_the_persons_time_zone(hours: str, zone: str, hour: int, minute: int,
                                                      expected: bool) -> None:
    person = notify(people=[{"id": "p", "hours": hours, "timezone": zone, "webhook": "https://h.example.com/"}],
                    rota=[]).people["p"]
    assert on_duty(person, at(zone, hour, minute)) is expected


def test_levels_by_region_with_star_fallback_and_the_last_repeating() -> None:
    n = notify()
    noon = at("Asia/Shanghai", 12)  # 04:00 in London: night is on duty too
    assert [p.id for p in level_people(n, "sichuan", 0, noon)[1]] == ["wang.fang"]
    assert [p.id for p in level_people(n, "sichuan", 1, noon)[1]] == ["li.lei", "night"]
    assert level_people(n, "sichuan", 5, noon)[0] == 1  # beyond the last: the last again
    assert [p.id for p in level_people(n, "yunnan", 0, noon)[1]] == ["li.lei"]
    assert level_people(notify(rota=[{"region": "x", "levels": [["li.lei"]]}]), "y", 0, noon)[1] == ()


def test_a_level_all_off_duty_passes_to_the_next_at_once() -> None:
    n = notify()
    three_am = at("Asia/Shanghai", 3)  # wang.fang sleeps (08-22 Shanghai); it is 19:00 in London
    rota_level, people = level_people(n, "sichuan", 0, three_am)
    assert rota_level == 1 and [p.id for p in people] == ["li.lei"]  # night's shift starts at 22:00 London
    pages = pages_for(alert(), n, three_am)
    assert {(p.level, p.person, p.channel, p.rota_level) for p in pages} == {(0, "li.lei", "webhook", 1)}


def test_pages_for_an_alert_each_with_its_identity() -> None:
    n = notify()
    noon = at("Asia/Shanghai", 12)
    pages = pages_for(alert(), n, noon)
    assert sorted(p.job_id for p in pages) == ["A7:0:wang.fang:email", "A7:0:wang.fang:webhook"]
    assert pages_for(alert(severity="medium"), n, noon) == []  # below min_severity
    assert pages_for(alert(status="acknowledged"), n, noon) == []  # acknowledged: no more rota pages
    escalated = pages_for(alert(escalation_level=1), n, noon)
    assert sorted(p.job_id for p in escalated) == ["A7:1:li.lei:webhook", "A7:1:night:email"]


def test_assigning_pages_the_assignee_when_it_names_a_person() -> None:
    n = notify()
    noon = at("Asia/Shanghai", 12)
    pages = pages_for(alert(status="acknowledged", severity="low", assignee="li.lei"), n, noon)
    assert [(p.job_id, p.reason) for p in pages] == [("A7:0:li.lei:webhook", "assign")]
    assert pages_for(alert(status="acknowledged", assignee="somebody else"), n, noon) == []
    assert pages_for(alert(status="resolved", assignee="li.lei"), n, noon) == []
    assert still_wanted("assign", "acknowledged") and not still_wanted("rota", "acknowledged")


def test_retries_back_off_for_an_hour_and_4xx_not_forever() -> None:
    n = notify(backoff="2s", backoff_max="5m", retry_for="1h")
    assert next_attempt("temporary", 1, 0.0, 10.0, n) == 12.0
    assert next_attempt("temporary", 3, 0.0, 10.0, n) == 18.0
    assert next_attempt("temporary", 20, 0.0, 100.0, n) == 400.0  # capped at backoff_max
    assert next_attempt("temporary", 20, 0.0, 3500.0, n) is None  # past the hour
    assert next_attempt("permanent", 1, 0.0, 10.0, n) == 12.0
    assert next_attempt("permanent", 3, 0.0, 10.0, n) is None
    assert [classify_status(s) for s in (200, 204, 400, 404, 408, 429, 500, 503)] == [
        "sent", "sent", "permanent", "permanent", "temporary", "temporary", "temporary", "temporary"]
