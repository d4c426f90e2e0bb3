"""Settings: read once at start-up into frozen dataclasses and passed down explicitly.

No other module reads the environment. Every threshold and deadline of the contract (§2) lives here with
its default; a TOML file (``--config`` or ``TOURPULSE_CONFIG``) overrides any of them. A bad value fails
loudly at start-up, never later.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from server.core.notify_config import NotifyConfigError, NotifySettings, parse_notify

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_UNIT_BYTES = {"B": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3, "KB": 1000, "MB": 1000 ** 2, "GB": 1000 ** 3}
# an HMAC key shorter than this is guessable or a mistake (an empty file): every entry point refuses it
MIN_SECRET_BYTES = 16


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


def parse_duration(value: str | int | float) -> float:
    """``"90s"``, ``"10m"``, ``"2h"``, ``"7d"`` (or a bare number of seconds) -> seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ConfigError(f"negative duration: {value!r}")
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f'not a duration: {value!r} (expected e.g. "90s", "10m", "2h")')
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def parse_size(value: str | int) -> int:
    """``"1MiB"``, ``"64KiB"``, ``"500KB"`` (or a bare number of bytes) -> bytes."""
    if isinstance(value, bool):
        raise ConfigError(f"not a size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"negative size: {value!r}")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError(f'not a size: {value!r} (expected e.g. "1MiB", "64KiB")')
    return int(match.group(1)) * _UNIT_BYTES[match.group(2) or "B"]


# An English word matches at the start of a word and may run on ("injur" finds "injured", "late" is not in
# "chocolate"); Chinese words match anywhere. Each group was checked against real phrasings both ways
# (tests/unit/test_classify.py): a bare "abandoned", "burned" or "吵" would flag an abandoned temple, a burned
# steak or a noisy room, so the phrases here are the ones people use when it happens to them.
DEFAULT_URGENT_KEYWORDS: tuple[str, ...] = (
    # English: injury and danger
    "injur", "hurt", "bleed", "hospital", "ambulance", "unsafe", "danger", "accident", "assault", "attack",
    "fracture", "sprain", "broken bone", "broke my", "fell down", "fell over", "slipped and fell", "had a fall",
    "fainted", "unconscious", "concussion", "stitches", "twisted my ankle", "allergic reaction", "food poisoning",
    "emergency", "police",
    # English: quarrels, threats and abuse
    "fight", "fought", "quarrel", "argument with", "argued with", "shouted at", "shouting at", "yelled at",
    "screamed at", "swore at", "punched", "slapped", "pushed me", "pushed us", "shoved", "threat", "harass",
    "abuse", "abusive", "insulted", "humiliat", "bullied", "bully", "intimidat", "groped", "discriminat", "racist",
    # English: theft and lost documents
    "stolen", "stole", "theft", "thief", "robbed", "robbery", "pickpocket", "mugged", "snatched my",
    "wallet is missing", "wallet was missing", "wallet missing", "lost passport", "lost my passport",
    "passport lost", "passport is missing", "lost document",
    # English: left behind
    "left behind", "left me behind", "left us behind", "left without me", "left without us", "abandoned us",
    "abandoned me", "stranded", "forgot us", "forgot me", "nobody waited for",
    # Chinese: injury and danger
    "受伤", "流血", "医院", "救护车", "不安全", "危险", "事故", "骨折", "扭伤", "摔倒", "摔伤", "摔了一跤",
    "晕倒", "昏迷", "过敏反应", "严重过敏", "烫伤", "住院", "急诊", "食物中毒", "报警", "警察", "紧急",
    # Chinese: quarrels, threats and abuse
    "打架", "冲突", "吵架", "争吵", "吵起来", "骂人", "骂我", "骂了", "打人", "打了我", "被打", "动手",
    "推了我", "威胁", "恐吓", "骚扰", "辱骂", "侮辱", "欺负", "虐待", "歧视",
    # Chinese: theft and lost documents
    "被偷", "偷了", "偷走", "被盗", "抢劫", "被抢", "小偷", "扒手", "钱包丢", "钱包不见", "护照丢", "丢了护照",
    "证件丢",
    # Chinese: left behind
    "被落下", "把我们落下", "把我落下", "丢下我", "扔下", "甩下", "没等我", "被抛下", "走散", "找不到团",
)

DEFAULT_KIND_NEEDS: Mapping[str, tuple[str, ...]] = {
    "vehicle_breakdown": ("vehicle",),
    "medical": ("medical",),
    "lodging_problem": ("lodging",),
    "accident": ("medical", "vehicle"),
}


@dataclass(frozen=True, slots=True)
class RuleSettings:
    score_threshold: float = 4.0
    min_ratings: int = 3
    drop_delta: float = 1.0
    category_share: float = 0.15
    # a route's complaints must reach this count before a category's share means anything
    category_min_complaints: int = 10
    # the trailing window of a route's complaints a category's share is judged over (whole days)
    category_window: float = 30 * 86400.0
    urgent_keywords: tuple[str, ...] = DEFAULT_URGENT_KEYWORDS
    # a tour-day rated by fewer than this share of the travellers who use the app opens `low_response`
    min_response_rate: float = 0.5


@dataclass(frozen=True, slots=True)
class SlaSettings:
    attraction_alternatives: float = 600.0
    urgent_complaint_solution: float = 7200.0
    urgent_complaint_followup: float = 86400.0
    complaint_response: float = 172800.0
    ack_escalation: tuple[float, ...] = (300.0, 900.0)
    prompt_hour: int = 20
    # a daily prompt that fell due longer ago than this is skipped, not sent in the middle of the night
    prompt_skip_after: float = 7200.0
    # the second prompt to the travellers who have not rated yet; -1: an hour after `prompt_hour`
    reprompt_hour: int = -1
    # the local hour a tour-day's response is judged (`low_response`)
    response_check_hour: int = 22

    @property
    def reprompt_at(self) -> int:
        return min(23, self.prompt_hour + 1) if self.reprompt_hour < 0 else self.reprompt_hour


@dataclass(frozen=True, slots=True)
class TargetSettings:
    """The yardsticks reports measure against (contract §10)."""

    csat: float = 0.9  # share of ratings of 4 or 5
    nps: float = 40.0
    handling: float = 86400.0  # a complaint handled (answered) within this


@dataclass(frozen=True, slots=True)
class LimitSettings:
    messages_per_second: float = 20.0
    burst: int = 50
    bad_frames_per_minute: int = 10
    max_frame_bytes: int = 65536
    # §13: what one sender, one slow phone, one request or one token may cost the service
    connections_per_sender: int = 5
    send_queue: int = 256
    handshake_timeout: float = 10.0
    max_body: int = 1024 * 1024
    max_token_ttl: float = 90 * 86400.0


@dataclass(frozen=True, slots=True)
class PoolSettings:
    kind_needs: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KIND_NEEDS))
    # region -> neighbouring regions tried, in order, when the region itself has nothing that fits
    neighbours: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StorageSettings:
    shards: int = 16
    retention: float = 30 * 86400.0
    idempotency_ttl: float = 7 * 86400.0
    # board resume window: alert changes kept this long (and at most this many) for `since`
    changes_maxlen: int = 100_000
    # what an ack waits for (contract §14): "write" (in Redis memory), "fsync" (the primary's AOF fsynced),
    # "replica" (a replica has it too); incidents, safety and follow-up replies: "auto" = fsync where the server
    # can (AOF and WAITAOF), else write
    ack_after: str = "write"
    ack_after_incident: str = "auto"


@dataclass(frozen=True, slots=True)
class WatcherSettings:
    batch: int = 500
    block: float = 1.0
    lease_ttl: float = 10.0
    max_deliveries: int = 5
    tick: float = 1.0
    # folded states are saved (and their entries acked) at most this long after their events were read
    flush: float = 0.1


@dataclass(frozen=True, slots=True)
class ServerSettings:
    base_url: str = ""  # §9: the origin of join links; empty = the origin of the request


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str | None = None
    secret: bytes = b""
    # PORT: where a web process listens; a watcher (`python -m alerts`) serves its /metrics there when set
    port: int | None = None
    data_dir: Path = Path("var")
    rules: RuleSettings = field(default_factory=RuleSettings)
    sla: SlaSettings = field(default_factory=SlaSettings)
    targets: TargetSettings = field(default_factory=TargetSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    pool: PoolSettings = field(default_factory=PoolSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    watcher: WatcherSettings = field(default_factory=WatcherSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)  # contract §12, parsed by notify_config


ACK_MODES = ("write", "fsync", "replica")
_CHOICES = {"ack_after": ACK_MODES, "ack_after_incident": ("auto", *ACK_MODES)}

_DURATION_FIELDS = {
    "attraction_alternatives", "urgent_complaint_solution", "urgent_complaint_followup", "complaint_response",
    "prompt_skip_after", "retention", "idempotency_ttl", "block", "lease_ttl", "tick", "flush",
    "handshake_timeout", "max_token_ttl", "handling", "category_window",
}
_SIZE_FIELDS = {"max_body"}


def _coerce(section: str, name: str, default: Any, value: Any) -> Any:
    where = f"[{section}] {name}"
    try:
        if name == "ack_escalation":
            if not isinstance(value, list):
                raise ConfigError("expected a list of durations")
            return tuple(parse_duration(v) for v in value)
        if name in _DURATION_FIELDS:
            return parse_duration(value)
        if name in _SIZE_FIELDS:
            return parse_size(value)
        if name == "urgent_keywords":
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError("expected a list of non-empty strings")
            return tuple(v.lower() for v in value)
        if name in ("kind_needs", "neighbours"):
            if not isinstance(value, dict):
                raise ConfigError("expected a table")
            return {str(k): tuple(str(x) for x in v) for k, v in value.items()}
        if name == "base_url":
            if not isinstance(value, str) or (value and not value.startswith(("http://", "https://"))):
                raise ConfigError("expected an http(s) URL")
            return value.rstrip("/")
        if name in _CHOICES:
            if value not in _CHOICES[name]:
                raise ConfigError("expected one of " + ", ".join(f'"{c}"' for c in _CHOICES[name]))
            return value
        if isinstance(default, bool) or isinstance(value, bool):
            raise ConfigError("booleans are not accepted here")
        if isinstance(default, int):
            if not isinstance(value, int):
                raise ConfigError("expected an integer")
            return value
        if isinstance(default, float):
            if not isinstance(value, int | float):
                raise ConfigError("expected a number")
            return float(value)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    raise ConfigError(f"{where}: unsupported setting")


def _section(cls: Any, section: str, values: Mapping[str, Any]) -> Any:
    base = cls()
    known = {f.name for f in fields(cls)}
    changes = {}
    for name, value in values.items():
        if name not in known:
            raise ConfigError(f"[{section}] unknown setting {name!r}")
        changes[name] = _coerce(section, name, getattr(base, name), value)
    return replace(base, **changes)


_SECTIONS = {
    "rules": RuleSettings, "sla": SlaSettings, "targets": TargetSettings, "limits": LimitSettings,
    "pool": PoolSettings, "storage": StorageSettings, "watcher": WatcherSettings, "server": ServerSettings,
}


def settings_from_mapping(doc: Mapping[str, Any], **top: Any) -> Settings:
    """Build settings from a parsed TOML document (tests use this directly)."""
    parts: dict[str, Any] = {}
    for section, values in doc.items():
        if section == "notify" and isinstance(values, Mapping):
            try:
                parts["notify"] = parse_notify(values)
            except NotifyConfigError as exc:
                raise ConfigError(str(exc)) from None
            continue
        if section not in _SECTIONS:
            raise ConfigError(f"unknown section [{section}]")
        if not isinstance(values, Mapping):
            raise ConfigError(f"[{section}] must be a table")
        parts[section] = _section(_SECTIONS[section], section, values)
    settings = Settings(**parts, **top)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if not 1 <= s.rules.score_threshold <= 5:
        raise ConfigError("[rules] score_threshold must be within 1..5")
    if s.rules.min_ratings < 1:
        raise ConfigError("[rules] min_ratings must be at least 1")
    if not 0 <= s.sla.prompt_hour <= 23:
        raise ConfigError("[sla] prompt_hour must be within 0..23")
    if not -1 <= s.sla.reprompt_hour <= 23 or not 0 <= s.sla.response_check_hour <= 23:
        raise ConfigError("[sla] reprompt_hour and response_check_hour must be within 0..23")
    if not 0.0 <= s.targets.csat <= 1.0 or not -100.0 <= s.targets.nps <= 100.0:
        raise ConfigError("[targets] csat must be within 0..1 and nps within -100..100")
    if not 0.0 <= s.rules.min_response_rate <= 1.0:
        raise ConfigError("[rules] min_response_rate must be within 0..1")
    if s.limits.messages_per_second <= 0 or s.limits.burst < 1:
        raise ConfigError("[limits] messages_per_second and burst must be positive")
    limits = s.limits
    if limits.connections_per_sender < 1 or limits.send_queue < 1 or limits.max_body < 1:
        raise ConfigError("[limits] connections_per_sender, send_queue and max_body must be positive")
    if limits.handshake_timeout <= 0 or limits.max_token_ttl <= 0:
        raise ConfigError("[limits] handshake_timeout and max_token_ttl must be positive")
    if not 1 <= s.storage.shards <= 1024:
        raise ConfigError("[storage] shards must be within 1..1024")


def check_secret(secret: bytes, where: str) -> bytes:
    """The signing key, or ConfigError: an empty or short key would let anyone sign tokens."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ConfigError(f"{where} is {'empty' if not secret else 'too short'}: the signing secret must be at "
                          f"least {MIN_SECRET_BYTES} bytes")
    return secret


def private_dir(path: Path) -> Path:
    """The data dir (and its parents we create) readable by us only: it holds the secret, the AOF, the password."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def load_secret(data_dir: Path) -> bytes:
    """The dev signing key: generated once and kept under the data dir (mode 0600)."""
    path = data_dir / "secret.key"
    if path.exists():
        return check_secret(path.read_text().strip().encode(), str(path))
    private_dir(data_dir)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key.encode()


def load_settings(config_file: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """The one place the environment is read."""
    env = os.environ if environ is None else environ
    config_file = config_file or env.get("TOURPULSE_CONFIG") or None
    doc: dict[str, Any] = {}
    if config_file:
        try:
            doc = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {config_file}: {exc}") from None
    data_dir = Path(env.get("TOURPULSE_DATA_DIR") or "var")
    secret_text = env.get("TOURPULSE_SECRET")
    if secret_text is not None:  # set but empty is a mistake, not a request for the dev key
        secret = check_secret(secret_text.encode(), "TOURPULSE_SECRET")
    else:
        secret = load_secret(data_dir)
    port_text = env.get("PORT") or ""
    if port_text and not port_text.isdigit():
        raise ConfigError(f"PORT must be a number, not {port_text!r}")
    return settings_from_mapping(doc, redis_url=env.get("REDIS_URL") or None, secret=secret, data_dir=data_dir,
                                 port=int(port_text) if port_text else None)
