"""Safety checks, notices with choices and the people of a tour, as stored data (contract §11).

The web side writes what starts things (a check to its tours, a notice group, a person who connected); the
watcher folds the events that follow into each tour's state (``alerts/rules/crisis.py``), and what a roll-up or a
tally shows is read back from those states here. Every tour's part is one script in its shard's slot; the records
that span tours (a check, a group) stand alone under ``{crisis}`` and are written before any tour is told.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

import redis.asyncio as aioredis

from alerts.rules.clocks import iso
from alerts.rules.crisis import SEP, CrisisState, Person, load_records, row_json
from alerts.rules.crisis_rules import check_push
from guide_app_api.codec import packb
from server.core import keys
from server.db.scripts import RedisScripts, ScriptRunner
from server.storage.notices import publish_call
from server.storage.tours import Tour

RECORD_TTL = 30 * 86400  # checks and groups are read for a month (the CSV goes to the authorities after)
RECENT_KEEP = 200


def new_id(prefix: str) -> str:
    """Letters, digits and ``-`` only, sortable by time: ``chk-<ms hex>-<random>``."""
    return f"{prefix}-{time.time_ns() // 1_000_000:x}-{secrets.token_hex(4)}"


# --- people ------------------------------------------------------------------------------------------------------
def person_event(tour_id: str, sub: str, name: str | None, now: float) -> dict[str, Any]:
    return {"type": "person", "tour_id": tour_id, "person": sub, "name": name, "sender": "system",
            "msg_id": f"person:{sub}", "at": now, "received_at": now}


def record_person(runner: ScriptRunner, shards: int, tour_id: str, sub: str, name: str | None,
                  now: float) -> Any:
    """A traveller joined or connected with a token of the tour: known to it from now on (started at once)."""
    shard = keys.shard_of(tour_id, shards)
    return runner.call("person", [keys.people(shard, tour_id), keys.events(shard), keys.people_names(shard, tour_id)],
                       [sub, packb(person_event(tour_id, sub, name, now)), name or ""])


# --- safety checks -----------------------------------------------------------------------------------------------
def request_check_id(sender: str, request_id: str) -> str:
    """The check id of a request that names its own ``id``: a retried request names the same check."""
    return "chk-" + hashlib.blake2b(f"{sender}\x00{request_id}".encode(), digest_size=8).hexdigest()


async def start_check(redis: aioredis.Redis, runner: ScriptRunner, shards: int,
                      check: dict[str, Any]) -> dict[str, Any]:
    """Store the check, then send it to each of its tours (each tour once, however often this is repeated). A check
    stored already under the same id (a retried request) is the one sent, as first stored: what a crash between the
    steps left unsent goes out now, nothing twice. Returns the check sent."""
    check_id = check["check_id"]
    if not await redis.set(keys.safety_check(check_id), json.dumps(check), ex=RECORD_TTL, nx=True):
        check = await load_record(redis, keys.safety_check(check_id)) or check
    pipe = redis.pipeline(transaction=False)  # one key: nothing to make atomic (and a Cluster takes it)
    pipe.zadd(keys.CRISIS_RECENT, {f"check:{check_id}": check["created_at"]})
    pipe.zremrangebyrank(keys.CRISIS_RECENT, 0, -RECENT_KEEP - 1)
    await pipe.execute()
    calls = []
    for tour_id in check["tour_ids"]:
        shard = keys.shard_of(tour_id, shards)
        event = {"type": "safety_check", "tour_id": tour_id, "check_id": check_id, "message": check["message"],
                 "deadline": check["deadline"], "repeat": check["repeat"], "sender": check["by"],
                 "msg_id": f"check:{check_id}", "at": check["created_at"], "received_at": check["created_at"]}
        calls.append(runner.call("check_start", [keys.open_checks(shard, tour_id), keys.events(shard)],
                                 [check_id, check["deadline"], packb(event)]))
    for call in calls:
        await call
    # the phones hear it now, not once the watcher reaches it (a backlog must not delay an emergency); the
    # watcher's own push of it (the same push id) then publishes nothing, and stands in should this step not run
    pushes = [publish_call(runner, f"check:{check_id}:{tour_id}:0",
                           check_push(check_id, check["message"], check["deadline"], tour_id))
              for tour_id in check["tour_ids"]]
    for push in pushes:
        await push
    return check


async def load_record(redis: aioredis.Redis, key: str) -> dict[str, Any] | None:
    raw = await redis.get(key)
    return json.loads(raw) if raw else None


async def crisis_states(redis: aioredis.Redis, shards: int, tour_ids: list[str], *, check_id: str | None = None,
                        notice_ids: Mapping[str, str] | None = None) -> dict[str, tuple[CrisisState, set[str]]]:
    """Each tour's folded answers to ``check_id`` (or choices on its notice in ``notice_ids``), and the travellers
    recorded as its people (ahead of the fold by at most a flush), with their names. Only those records are read
    (HSCAN with a pattern: a tour's state also holds its ratings), one script call per shard (``crisis_read``)."""
    by_shard: dict[int, list[str]] = {}
    for tour_id in tour_ids:
        by_shard.setdefault(keys.shard_of(tour_id, shards), []).append(tour_id)
    runner = RedisScripts(redis)
    calls = []
    for shard, tours in by_shard.items():
        script_keys, patterns = [], []
        for tour_id in tours:
            script_keys += [keys.state(shard, tour_id), keys.people(shard, tour_id),
                            keys.people_names(shard, tour_id)]
            record = f"a:{check_id}" if check_id is not None else f"n:{(notice_ids or {}).get(tour_id, '')}"
            patterns.append(_glob_escape(record + SEP) + "*")
        calls.append((tours, runner.call("crisis_read", script_keys, patterns)))
    out = {}
    for tours, call in calls:
        for tour_id, (records, members, names) in zip(tours, await call, strict=True):
            state = load_records(records[1::2], "a:" if check_id is not None else "n:")
            for raw_sub, raw_name in zip(names[::2], names[1::2], strict=True):
                sub = raw_sub.decode()
                state.people[sub] = Person(sub, "traveller", raw_name.decode(), 0.0)
            out[tour_id] = (state, {m.decode() for m in members})
    return out


def _glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis glob pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _counts() -> dict[str, int]:
    return {"safe": 0, "need_help": 0, "unanswered": 0, "unknown": 0}


def rollup(check: dict[str, Any], tours: Mapping[str, Tour | None],
           states: Mapping[str, tuple[CrisisState, set[str]]], *, people: bool = True) -> dict[str, Any]:
    """The roll-up of a check, overall and per tour: each person's latest answer, or unanswered; ``unknown`` is
    the tour's registered travellers minus the travellers known to it. ``people=False``: the counts alone."""
    overall, parts = _rollup(check, tours, states, "rows" if people else "counts")
    per_tour = {tour_id: {**counts, "people": rows} if people else counts for tour_id, (counts, rows) in parts.items()}
    return {**_head(check), "overall": overall, "tours": per_tour}


def rollup_json(check: dict[str, Any], tours: Mapping[str, Tour | None],
                states: Mapping[str, tuple[CrisisState, set[str]]]) -> str:
    """:func:`rollup` as the JSON text of the HTTP answer. Each answer's row was rendered when it was folded, so
    ten thousand people cost a join of strings, not ten thousand maps to build and encode on every read."""
    overall, parts = _rollup(check, tours, states, "json")
    head = row_json({**_head(check), "overall": overall})
    tours_json = ",".join(
        f'{row_json(tour_id)}:{row_json(counts)[:-1]},"people":[{",".join(rows)}]}}'
        for tour_id, (counts, rows) in parts.items())
    return f'{head[:-1]},"tours":{{{tours_json}}}}}'


def _head(check: dict[str, Any]) -> dict[str, Any]:
    return {"check_id": check["check_id"], "message": check["message"], "deadline": iso(check["deadline"]),
            "created_at": iso(check["created_at"]), "tour_ids": check["tour_ids"]}


def _rollup(check: dict[str, Any], tours: Mapping[str, Tour | None],
            states: Mapping[str, tuple[CrisisState, set[str]]],
            mode: str) -> tuple[dict[str, int], dict[str, tuple[dict[str, int], list[Any]]]]:
    """Overall counts, and per tour its counts and its people's rows: maps (``rows``), JSON texts (``json``) or
    none (``counts``). Written for ten thousand people: one plain loop, no object per person."""
    check_id = check["check_id"]
    overall = _counts()
    parts: dict[str, tuple[dict[str, int], list[Any]]] = {}
    for tour_id in check["tour_ids"]:
        tour = tours.get(tour_id)
        crisis, recorded = states.get(tour_id, (CrisisState(), set()))
        answers = crisis.answers.get(check_id, {})
        names = {sub: person.name for sub, person in crisis.people.items()}
        guides = list(dict.fromkeys(tour.guides)) if tour else []
        guide_set = set(guides)
        # the travellers known to it: joined or connected (the fold may not have seen them yet), named, or only
        # ever answered for by their guide
        order = guides + sorted((recorded | names.keys() | answers.keys()) - guide_set)
        rows: list[Any] = []
        safe = need_help = unanswered = travellers = 0
        for sub in order:
            answer = answers.get(sub)
            if answer is None:
                role = "guide" if sub in guide_set else "traveller"
                if mode != "counts":
                    row = {"sub": sub, "name": names.get(sub), "role": role, "status": "unanswered", "at": None,
                           "note": None, "location": None, "late": False, "by": None}
                    rows.append(row_json(row) if mode == "json" else row)
                unanswered += 1
            else:
                role = "guide" if sub in guide_set else answer.role
                if mode == "json" and answer.row_json and role == answer.role and _named(answer, names.get(sub)):
                    rows.append(answer.row_json)  # rendered when folded, and still what it says
                elif mode != "counts":
                    row = {**answer.row(names.get(sub)), "role": role}
                    rows.append(row_json(row) if mode == "json" else row)
                if answer.status == "safe":
                    safe += 1
                else:
                    need_help += 1
            if role == "traveller":
                travellers += 1
        counts = {"safe": safe, "need_help": need_help, "unanswered": unanswered,
                  "unknown": max(0, (tour.travellers if tour else 0) - travellers)}
        for name, value in counts.items():
            overall[name] += value
        parts[tour_id] = (counts, rows)
    return overall, parts


def _named(answer: Any, name: str | None) -> bool:
    """Whether the row rendered at the fold carries the person's name as known now (a name given later is not)."""
    return name is None or f'"name":{row_json(name)},' in answer.row_json


CSV_COLUMNS = ("check_id", "tour_id", "sub", "name", "role", "status", "at", "late", "note", "lat", "lon", "by")


def rollup_csv(roll: dict[str, Any]) -> str:
    """One row per person, for the authorities."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for tour_id, part in roll["tours"].items():
        for row in part["people"]:
            location = row["location"] or {}
            writer.writerow([roll["check_id"], tour_id, row["sub"], row["name"] or "", row["role"], row["status"],
                             row["at"] or "", "yes" if row["late"] else "", _safe_cell(row["note"] or ""),
                             location.get("lat", ""), location.get("lon", ""), row["by"] or ""])
    return out.getvalue()


def _safe_cell(text: str) -> str:
    """A note opened in a spreadsheet must not run as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- notices with choices ----------------------------------------------------------------------------------------
MAX_CHOICE_TEXT = 200


def valid_choices(value: Any) -> bool:
    return (isinstance(value, list) and 2 <= len(value) <= 5
            and all(isinstance(c, str) and 0 < len(c.strip()) <= MAX_CHOICE_TEXT for c in value))


def new_group(kind: str, claims: Any, request_id: str, title: str, body: str, choices: list[str], audience: str,
              tour_ids: Iterable[str], regions: Iterable[str], now: float) -> dict[str, Any]:
    """A send to several tours as one group. Its id is made from the sender and the request's ``id`` (a retried
    request names the same group, as it names the same notices): letters, digits and ``-`` only."""
    digest = hashlib.blake2b(f"{kind}\x00{claims.sub}\x00{request_id}".encode(), digest_size=8).hexdigest()
    tours = list(dict.fromkeys(tour_ids))
    return {"group_id": f"grp-{digest}", "kind": kind, "title": title, "body": body, "choices": choices,
            "audience": audience, "created_at": now, "tour_ids": tours, "by": f"{claims.role}:{claims.sub}",
            "regions": sorted(set(regions)),
            "notices": [{"tour_id": t, "notice_id": f"{kind}:{claims.sub}:{request_id}:{t}"} for t in tours]}


async def store_group(redis: aioredis.Redis, group: dict[str, Any]) -> None:
    """The group and each tour's notice meta, before any phone can reply to one."""
    pipe = redis.pipeline(transaction=False)  # {crisis} slot throughout
    for item in group["notices"]:
        meta = {"group_id": group["group_id"], "tour_id": item["tour_id"], "choices": len(group["choices"])}
        pipe.set(keys.notice_meta(item["notice_id"]), json.dumps(meta), ex=RECORD_TTL)
    pipe.set(keys.notice_group(group["group_id"]), json.dumps(group), ex=RECORD_TTL)
    pipe.zadd(keys.CRISIS_RECENT, {f"group:{group['group_id']}": group["created_at"]})
    pipe.zremrangebyrank(keys.CRISIS_RECENT, 0, -RECENT_KEEP - 1)
    await pipe.execute()


async def read_receipts(redis: aioredis.Redis, notice_ids: list[str]) -> list[dict[str, str]]:
    pipe = redis.pipeline(transaction=False)
    for notice_id in notice_ids:
        pipe.hgetall(keys.notice_read_by(notice_id))
    out = []
    for raw in await pipe.execute():
        out.append({k.decode(): v.decode() for k, v in raw.items()})
    return out


def tally(group: dict[str, Any], tours: Mapping[str, Tour | None],
          states: Mapping[str, tuple[CrisisState, set[str]]], reads: list[dict[str, str]]) -> dict[str, Any]:
    """A notice group with its recipients, reads and the count of each choice, overall and per tour."""
    choices = group["choices"]
    overall = {"recipients": 0, "reads": 0, "counts": [0] * len(choices)}
    per_tour = {}
    for item, read_by in zip(group["notices"], reads, strict=True):
        tour_id, notice_id = item["tour_id"], item["notice_id"]
        tour = tours.get(tour_id)
        crisis, recorded = states.get(tour_id, (CrisisState(), set()))
        audience = group.get("audience", "all")
        guides = len(tour.guides) if tour else 0
        travellers = len(set(crisis.people) | recorded)
        recipients = (guides if audience != "travellers" else 0) + (travellers if audience != "guides" else 0)
        counts = [0] * len(choices)
        for chosen in crisis.choices.get(notice_id, {}).values():
            if 0 <= chosen.choice < len(counts):
                counts[chosen.choice] += 1
        receipts = [{"sender": who, "at": at} for who, at in sorted(read_by.items())]
        per_tour[tour_id] = {"notice_id": notice_id, "recipients": recipients, "reads": len(receipts),
                             "read_by": receipts,
                             "choices": [{"text": t, "count": c} for t, c in zip(choices, counts, strict=True)]}
        overall["recipients"] += recipients
        overall["reads"] += len(receipts)
        overall["counts"] = [a + b for a, b in zip(overall["counts"], counts, strict=True)]
    return {"group_id": group["group_id"], "kind": group["kind"], "title": group["title"], "body": group["body"],
            "created_at": iso(group["created_at"]), "recipients": overall["recipients"], "reads": overall["reads"],
            "choices": [{"text": t, "count": c} for t, c in zip(choices, overall["counts"], strict=True)],
            "tours": per_tour}
