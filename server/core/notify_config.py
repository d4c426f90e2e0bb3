"""The ``[notify]`` configuration (contract §12): people, rotas, levels and duty hours, parsed once at start-up into
frozen dataclasses.

Start-up checks syntax and references (an unknown person id, a bad time zone, a malformed URL) and names the bad
key in the error; it never tries to reach a mail server or a webhook. Pure and stdlib only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SEVERITIES = ("low", "medium", "high", "critical")
FORMATS = ("json", "slack", "wecom", "dingtalk")
LANGUAGES = ("zh", "en")
# a person whose time zone is one of these reads Chinese unless their entry says otherwise
CHINESE_ZONES = frozenset({"Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "Asia/Urumqi", "Asia/Hong_Kong",
                           "Asia/Macau", "Asia/Taipei", "PRC"})
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class NotifyConfigError(ValueError):
    """A ``[notify]`` value is missing or malformed; the message starts with the key."""


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    ssl: bool = False  # smtps://: TLS from the first byte; smtp://: STARTTLS when the server offers it


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    email: str | None = None
    webhook: str | None = None
    format: str = "json"
    secret: str | None = None
    # duty hours as minutes after local midnight, [start, end); end < start wraps past midnight; None: always
    hours: tuple[int, int] | None = None
    timezone: str = "UTC"
    language: str = "en"

    @property
    def channels(self) -> tuple[str, ...]:
        return (("email",) if self.email else ()) + (("webhook",) if self.webhook else ())


@dataclass(frozen=True, slots=True)
class NotifySettings:
    base_url: str = "http://127.0.0.1:8000"
    smtp: SmtpServer | None = None
    from_addr: str = "tourpulse@localhost"
    min_severity: str = "high"
    people: Mapping[str, Person] = field(default_factory=dict)
    # region (or "*") -> levels, each a tuple of person ids
    rotas: Mapping[str, tuple[tuple[str, ...], ...]] = field(default_factory=dict)
    timeout: float = 10.0       # one webhook or SMTP exchange; a slower one is cut off and retried
    retry_for: float = 3600.0   # a page still failing this long after it was queued is given up
    backoff: float = 2.0        # first retry after this, doubling each time ...
    backoff_max: float = 300.0  # ... up to this
    lease: float = 60.0         # a page claimed by a sender that died is sent again after this

    @property
    def enabled(self) -> bool:
        return bool(self.people)


def _duration(where: str, value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise NotifyConfigError(f'{where}: not a duration: {value!r} (expected e.g. "500ms", "10s", "1h")')
    return float(match.group(1)) * _UNIT[match.group(2)]


def _text(where: str, value: Any, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise NotifyConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _http_url(where: str, value: Any) -> str:
    text = _text(where, value) or ""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifyConfigError(f"{where}: expected an http(s) URL, got {text!r}")
    return text


def parse_hours(where: str, value: Any) -> tuple[int, int]:
    match = _HOURS.match(value) if isinstance(value, str) else None
    if not match:
        raise NotifyConfigError(f'{where}: expected "HH:MM-HH:MM" (e.g. "08:00-22:00"), got {value!r}')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end > 24 * 60 or start == end:
        raise NotifyConfigError(f"{where}: {value!r} is an empty or impossible span")
    return start, end


def parse_smtp(where: str, value: Any) -> SmtpServer:
    text = _text(where, value) or ""
    parts = urlsplit(text)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise NotifyConfigError(f"{where}: expected smtp://[user:pass@]host[:port] or smtps://..., got a "
                                f"{parts.scheme or 'schemeless'} URL")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 587)
    except ValueError:
        raise NotifyConfigError(f"{where}: bad port") from None
    return SmtpServer(host=parts.hostname, port=port, user=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None, ssl=parts.scheme == "smtps")


_PERSON_KEYS = {"id", "name", "email", "webhook", "format", "secret", "hours", "timezone", "language"}


def parse_person(index: int, raw: Any) -> Person:
    where = f"[[notify.people]] #{index + 1}"
    if not isinstance(raw, Mapping):
        raise NotifyConfigError(f"{where}: must be a table")
    pid = raw.get("id")
    if not isinstance(pid, str) or not _ID.match(pid):
        raise NotifyConfigError(f"{where} id: expected 1-64 letters, digits or . _ - @, got {pid!r}")
    where = f'[[notify.people]] id "{pid}"'
    for name in raw:
        if name not in _PERSON_KEYS:
            raise NotifyConfigError(f"{where}: unknown setting {name!r}")
    email = _text(f"{where} email", raw.get("email"), optional=True)
    if email is not None and not _EMAIL.match(email):
        raise NotifyConfigError(f"{where} email: not an e-mail address: {email!r}")
    webhook = None if raw.get("webhook") is None else _http_url(f"{where} webhook", raw["webhook"])
    fmt = raw.get("format", "json")
    if fmt not in FORMATS:
        raise NotifyConfigError(f"{where} format: unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    zone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise NotifyConfigError(f"{where} timezone: unknown time zone {zone!r}") from None
    language = raw.get("language", "zh" if zone in CHINESE_ZONES else "en")
    if language not in LANGUAGES:
        raise NotifyConfigError(f"{where} language: expected one of {', '.join(LANGUAGES)}, got {language!r}")
    hours = None if raw.get("hours") is None else parse_hours(f"{where} hours", raw["hours"])
    return Person(id=pid, name=_text(f"{where} name", raw.get("name", pid)) or pid, email=email, webhook=webhook,
                  format=fmt, secret=_text(f"{where} secret", raw.get("secret"), optional=True), hours=hours,
                  timezone=zone, language=language)


def parse_rota(index: int, raw: Any, people: Mapping[str, Person]) -> tuple[str, tuple[tuple[str, ...], ...]]:
    where = f"[[notify.rota]] #{index + 1}"
    if not isinstance(raw, Mapping):
        raise NotifyConfigError(f"{where}: must be a table")
    for name in raw:
        if name not in ("region", "levels"):
            raise NotifyConfigError(f"{where}: unknown setting {name!r}")
    region = _text(f"{where} region", raw.get("region")) or ""
    where = f'[[notify.rota]] region "{region}"'
    levels = raw.get("levels")
    if not isinstance(levels, list) or not levels:
        raise NotifyConfigError(f"{where} levels: expected a non-empty list of lists of person ids")
    out: list[tuple[str, ...]] = []
    for n, level in enumerate(levels):
        if not isinstance(level, list) or not level:
            raise NotifyConfigError(f"{where} levels[{n}]: expected a non-empty list of person ids")
        for pid in level:
            if pid not in people:
                raise NotifyConfigError(f"{where} levels[{n}]: unknown person id {pid!r}")
        out.append(tuple(level))
    return region, tuple(out)


_TOP_KEYS = {"base_url", "smtp", "from", "min_severity", "people", "rota", "timeout", "retry_for", "backoff",
             "backoff_max", "lease"}


def parse_notify(values: Mapping[str, Any]) -> NotifySettings:
    """The ``[notify]`` table as settings; :class:`NotifyConfigError` naming the first bad key."""
    for name in values:
        if name not in _TOP_KEYS:
            raise NotifyConfigError(f"[notify] unknown setting {name!r}")
    base = NotifySettings()
    min_severity = values.get("min_severity", base.min_severity)
    if min_severity not in SEVERITIES:
        raise NotifyConfigError(f"[notify] min_severity: expected one of {', '.join(SEVERITIES)}, "
                                f"got {min_severity!r}")
    people_raw = values.get("people", [])
    if not isinstance(people_raw, list):
        raise NotifyConfigError("[notify] people: expected an array of tables ([[notify.people]])")
    people: dict[str, Person] = {}
    for i, raw in enumerate(people_raw):
        person = parse_person(i, raw)
        if person.id in people:
            raise NotifyConfigError(f'[[notify.people]] id "{person.id}": defined twice')
        people[person.id] = person
    rota_raw = values.get("rota", [])
    if not isinstance(rota_raw, list):
        raise NotifyConfigError("[notify] rota: expected an array of tables ([[notify.rota]])")
    rotas: dict[str, tuple[tuple[str, ...], ...]] = {}
    for i, raw in enumerate(rota_raw):
        region, levels = parse_rota(i, raw, people)
        if region in rotas:
            raise NotifyConfigError(f'[[notify.rota]] region "{region}": defined twice')
        rotas[region] = levels
    from_addr = _text("[notify] from", values.get("from", base.from_addr)) or ""
    if not _EMAIL.match(from_addr) and not from_addr.endswith("@localhost"):
        raise NotifyConfigError(f"[notify] from: not an e-mail address: {from_addr!r}")
    smtp = None if values.get("smtp") is None else parse_smtp("[notify] smtp", values["smtp"])
    if smtp is None and any(p.email for p in people.values()):
        first = next(p.id for p in people.values() if p.email)
        raise NotifyConfigError(f'[notify] smtp: needed, since [[notify.people]] id "{first}" has an email')
    timings = {name: _duration(f"[notify] {name}", values[name])
               for name in ("timeout", "retry_for", "backoff", "backoff_max", "lease") if name in values}
    settings = NotifySettings(
        base_url=_http_url("[notify] base_url", values.get("base_url", base.base_url)).rstrip("/"),
        smtp=smtp, from_addr=from_addr, min_severity=min_severity, people=people, rotas=rotas, **timings)
    if settings.timeout <= 0 or settings.backoff <= 0:
        raise NotifyConfigError("[notify] timeout and backoff must be positive")
    if settings.lease <= settings.timeout:
        raise NotifyConfigError("[notify] lease: must be longer than timeout (a page in flight would be sent twice)")
    return settings
