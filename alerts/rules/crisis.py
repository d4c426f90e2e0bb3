"""Crisis state of one tour (contract §11) and its fold: who the tour's people are, the safety checks sent to it
and each person's answer, and each person's choice on a notice with choices. Pure.

It lives beside the rest of a tour's folded state (``TourState.crisis``) and is saved in the same hash, one field
per record, so a flush writes what changed:

- ``p:<sub>``  a traveller known to the tour (joined or connected, or answered for by a guide)
- ``k:<check_id>``  a safety check sent to the tour: message, deadline, repeat, whether its deadline fired
- ``a:<check_id>\\t<sub>``  one person's latest answer to a check
- ``n:<notice_id>\\t<sub>``  one person's latest choice on a notice

Each record also holds its own ids, so nothing is parsed back out of a field name (subs are the issuer's). A later
answer (by ``at``, then by arrival) replaces an earlier one: a tally or roll-up counts each person once, however
often a phone re-sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from alerts.rules.clocks import iso
from guide_app_api.codec import packb, unpackb
from server.core.keys import parse_seq

PREFIXES = ("p:", "k:", "a:", "n:")
SEP = "\t"

# event types and deadline kinds this module folds
EVENT_TYPES = frozenset({"person", "safety_check", "safety_reply", "notice_reply"})
DEADLINE_KINDS = frozenset({"safety_repeat", "safety_deadline"})


@dataclass(slots=True)
class Person:
    sub: str
    role: str
    name: str | None
    at: float

    def pack(self) -> list[Any]:
        return [self.sub, self.role, self.name, self.at]


@dataclass(slots=True)
class CheckTrack:
    check_id: str
    message: str
    started_at: float
    deadline: float
    repeat: float
    closed: bool = False  # its deadline fired

    def pack(self) -> list[Any]:
        return [self.check_id, self.message, self.started_at, self.deadline, self.repeat, self.closed]


@dataclass(slots=True)
class Answer:
    check_id: str
    sub: str
    role: str
    status: str  # safe | need_help
    at: float
    seq: str
    note: str | None = None
    location: dict[str, float] | None = None
    by: str | None = None  # the guide who answered for this traveller
    late: bool = False
    helped: bool = False  # a safety_help alert was opened for this person and check (kept across answers)
    at_iso: str = ""  # `at` as the roll-up shows it, formatted once here rather than ten thousand times per read
    # the person's row of the roll-up as JSON, rendered once here (with the name known then): a roll-up of ten
    # thousand people joins these instead of encoding ten thousand maps on every read
    row_json: str = ""

    def pack(self) -> list[Any]:
        return [self.check_id, self.sub, self.role, self.status, self.at, self.seq, self.note, self.location,
                self.by, self.late, self.helped, self.at_iso, self.row_json]

    def row(self, name: str | None) -> dict[str, Any]:
        """The person's row of the roll-up (``GET /api/safety-checks/{check_id}``)."""
        return {"sub": self.sub, "name": name, "role": self.role, "status": self.status,
                "at": self.at_iso or iso(self.at), "note": self.note, "location": self.location, "late": self.late,
                "by": self.by}


@dataclass(slots=True)
class Choice:
    notice_id: str
    sub: str
    role: str
    choice: int
    at: float
    seq: str

    def pack(self) -> list[Any]:
        return [self.notice_id, self.sub, self.role, self.choice, self.at, self.seq]


@dataclass(slots=True)
class CrisisState:
    people: dict[str, Person] = field(default_factory=dict)  # travellers only: guides come from the registration
    checks: dict[str, CheckTrack] = field(default_factory=dict)
    answers: dict[str, dict[str, Answer]] = field(default_factory=dict)  # check_id -> sub -> answer
    choices: dict[str, dict[str, Choice]] = field(default_factory=dict)  # notice_id -> sub -> choice
    touched: set[str] = field(default_factory=set, compare=False)

    # --- writes, each marking its field for the next save ---------------------------------------------------
    def put_person(self, person: Person) -> None:
        self.people[person.sub] = person
        self.touched.add(f"p:{person.sub}")

    def put_check(self, check: CheckTrack) -> None:
        self.checks[check.check_id] = check
        self.touched.add(f"k:{check.check_id}")

    def put_answer(self, answer: Answer) -> None:
        self.answers.setdefault(answer.check_id, {})[answer.sub] = answer
        self.touched.add(f"a:{answer.check_id}{SEP}{answer.sub}")

    def put_choice(self, choice: Choice) -> None:
        self.choices.setdefault(choice.notice_id, {})[choice.sub] = choice
        self.touched.add(f"n:{choice.notice_id}{SEP}{choice.sub}")

    # --- storage ---------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        out = [f"p:{sub}" for sub in self.people] + [f"k:{cid}" for cid in self.checks]
        out += [f"a:{cid}{SEP}{sub}" for cid, answers in self.answers.items() for sub in answers]
        out += [f"n:{nid}{SEP}{sub}" for nid, chosen in self.choices.items() for sub in chosen]
        return out

    def field_value(self, name: str) -> bytes:
        kind, rest = name[:2], name[2:]
        if kind == "p:":
            return packb(self.people[rest].pack())
        if kind == "k:":
            return packb(self.checks[rest].pack())
        first, _, sub = rest.partition(SEP)
        record = self.answers[first][sub] if kind == "a:" else self.choices[first][sub]
        return packb(record.pack())

    def load(self, name: str, blob: bytes) -> None:
        """One saved field back into the state (the inverse of :meth:`field_value`)."""
        row = unpackb(blob)
        kind = name[:2]
        if kind == "p:":
            person = Person(*row)
            self.people[person.sub] = person
        elif kind == "k:":
            check = CheckTrack(*row)
            self.checks[check.check_id] = check
        elif kind == "a:":
            answer = Answer(*row)
            self.answers.setdefault(answer.check_id, {})[answer.sub] = answer
        elif kind == "n:":
            choice = Choice(*row)
            self.choices.setdefault(choice.notice_id, {})[choice.sub] = choice

    def take_touched(self) -> set[str]:
        touched, self.touched = self.touched, set()
        return touched


def is_crisis_field(name: str) -> bool:
    return name[:2] in PREFIXES


def load_fields(fields: Mapping[bytes | str, bytes], only_check: str | None = None,
                only_notice: str | None = None) -> CrisisState:
    """The crisis part of a saved tour state (what the API reads); ``only_*`` skips the other records."""
    state = CrisisState()
    for raw, blob in fields.items():
        name = raw.decode() if isinstance(raw, bytes) else raw
        kind = name[:2]
        if kind not in PREFIXES:
            continue
        if kind == "a:" and only_check is not None and not name.startswith(f"a:{only_check}{SEP}"):
            continue
        if kind == "n:" and only_notice is not None and not name.startswith(f"n:{only_notice}{SEP}"):
            continue
        state.load(name, blob)
    return state


def load_records(blobs: Iterable[bytes], kind: str) -> CrisisState:
    """Many saved answers (``kind`` ``a:``) or choices (``n:``) at once, decoded in one pass: a roll-up of ten
    thousand people reads ten thousand of them."""
    state = CrisisState()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)  # codec.unpackb's options, in one pass
    unpacker.feed(b"".join(blobs))
    if kind == "a:":
        for row in unpacker:
            answer = Answer(*row)
            state.answers.setdefault(answer.check_id, {})[answer.sub] = answer
    else:
        for row in unpacker:
            choice = Choice(*row)
            state.choices.setdefault(choice.notice_id, {})[choice.sub] = choice
    return state


# --- the fold --------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class CrisisFolded:
    """What one crisis event changed, for the rules."""

    type: str
    changed: bool = False
    check_id: str | None = None
    check_new: bool = False
    answer: Answer | None = None  # the answer this event made current (None: stale or unknown check)
    help_new: bool = False  # the first need_help of this person on this check: open its alert
    deadline_kind: str | None = None  # safety_repeat | safety_deadline
    deadline_due: bool = False  # the deadline's check is still open (not closed before)


def _newer(at: float, seq: str, old_at: float, old_seq: str) -> bool:
    if at != old_at:
        return at > old_at
    return parse_seq(seq) >= parse_seq(old_seq)


def fold_crisis(crisis: CrisisState, event: dict[str, Any]) -> CrisisFolded:
    kind = str(event.get("type"))
    if kind == "person":
        return _fold_person(crisis, event)
    if kind == "safety_check":
        return _fold_check(crisis, event)
    if kind == "safety_reply":
        return _fold_answer(crisis, event)
    if kind == "notice_reply":
        return _fold_choice(crisis, event)
    if kind == "deadline":
        return _fold_deadline(crisis, event)
    return CrisisFolded(kind)


def _fold_person(crisis: CrisisState, event: dict[str, Any]) -> CrisisFolded:
    sub = str(event["person"])
    known = crisis.people.get(sub)
    name = event.get("name")
    if known is not None and (not name or name == known.name):
        return CrisisFolded("person")
    crisis.put_person(Person(sub, "traveller", name or (known.name if known else None), float(event["at"])))
    return CrisisFolded("person", changed=True)


def _fold_check(crisis: CrisisState, event: dict[str, Any]) -> CrisisFolded:
    check_id = str(event["check_id"])
    folded = CrisisFolded("safety_check", check_id=check_id)
    if check_id in crisis.checks:
        return folded
    crisis.put_check(CheckTrack(check_id, str(event.get("message") or ""), float(event["at"]),
                                float(event["deadline"]), float(event["repeat"])))
    folded.changed = folded.check_new = True
    return folded


def _fold_answer(crisis: CrisisState, event: dict[str, Any]) -> CrisisFolded:
    check_id = str(event["check_id"])
    folded = CrisisFolded("safety_reply", check_id=check_id)
    check = crisis.checks.get(check_id)
    if check is None:
        return folded  # the web process checked the check exists; a tour it was not sent to folds nothing
    sub, role = str(event["person"]), str(event.get("person_role") or "traveller")
    at, seq = float(event["at"]), str(event["seq"])
    answers = crisis.answers.get(check_id, {})
    previous = answers.get(sub)
    if previous is not None and not _newer(at, seq, previous.at, previous.seq):
        return folded  # an older answer arriving late (an offline phone): the newer one stands
    if role == "traveller" and sub not in crisis.people:
        # a guide answered for a traveller who never connected: now they are known
        crisis.put_person(Person(sub, "traveller", None, at))
    answer = Answer(check_id, sub, role, str(event["status"]), at, seq, event.get("note"), event.get("location"),
                    event.get("by"), late=at > check.deadline, helped=previous.helped if previous else False,
                    at_iso=iso(at))
    if answer.status == "need_help" and not answer.helped:
        answer.helped = folded.help_new = True
    known = crisis.people.get(sub)
    answer.row_json = row_json(answer.row(known.name if known else None))
    crisis.put_answer(answer)
    folded.changed, folded.answer = True, answer
    return folded


def _fold_choice(crisis: CrisisState, event: dict[str, Any]) -> CrisisFolded:
    notice_id, sub = str(event["notice_id"]), str(event["person"])
    at, seq = float(event["at"]), str(event["seq"])
    previous = crisis.choices.get(notice_id, {}).get(sub)
    if previous is not None and not _newer(at, seq, previous.at, previous.seq):
        return CrisisFolded("notice_reply")
    crisis.put_choice(Choice(notice_id, sub, str(event.get("person_role") or "traveller"), int(event["choice"]),
                             at, seq))
    return CrisisFolded("notice_reply", changed=True)


def _fold_deadline(crisis: CrisisState, event: dict[str, Any]) -> CrisisFolded:
    kind = str(event.get("kind"))
    check_id = str((event.get("subject") or {}).get("check_id"))
    folded = CrisisFolded("deadline", check_id=check_id, deadline_kind=kind)
    check = crisis.checks.get(check_id)
    if check is None or check.closed:
        return folded
    folded.deadline_due = True
    if kind == "safety_deadline":
        check.closed = True
        crisis.touched.add(f"k:{check_id}")
        folded.changed = True
    return folded


_row_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def row_json(row: dict[str, Any]) -> str:
    """A roll-up row as the HTTP answer writes it (compact JSON, UTF-8 kept)."""
    return _row_encode(row)


# --- what the roll-up and the rules read ------------------------------------------------------------------------
def people_of(crisis: CrisisState, guides: Iterable[str]) -> list[Person]:
    """The tour's people: its registered guides, then every known traveller."""
    out = [Person(str(g), "guide", None, 0.0) for g in guides]
    seen = {p.sub for p in out}
    out += [p for sub, p in sorted(crisis.people.items()) if sub not in seen]
    return out


def unanswered(crisis: CrisisState, check_id: str, guides: Iterable[str]) -> list[Person]:
    answers = crisis.answers.get(check_id, {})
    return [p for p in people_of(crisis, guides) if p.sub not in answers]
