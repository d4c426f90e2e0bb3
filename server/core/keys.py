"""Every Redis key name, in one module that web and watcher both import.

Three families of keys, each behind its own hash tag so that every Lua script and MULTI touches one
slot and the same code runs on Redis Cluster (see docs/design.md):

- ``tp:{s<N>}:...``  one shard: event stream, idempotency keys, tours, incidents, folded state, deadlines
- ``tp:{alerts}:...``  alert records, their dedup index, the alert-changes stream, per-region indexes
- ``tp:{pool:<region>}:...``  one region's emergency resources, holds and waiting queue

Plus a few that stand alone (notices, the tour index). A step that spans families is a sequence of
idempotent single-slot steps, never one transaction.

The Lua scripts that use them live in ``server/db/lua/`` (:data:`server.db.scripts.SCRIPTS`).
"""

from __future__ import annotations

import zlib

PREFIX = "tp"

# --- how long keys live ----------------------------------------------------------------------------------
# Every fixed lifetime (seconds) and stream bound, named once; docs/operations.md §7 lists what each keeps.
# The configurable ones are settings: ``[storage] idempotency_ttl`` (:func:`idem`, :func:`notice_idem`),
# ``retention`` (the shard streams; resolved alerts and their audit), ``changes_maxlen`` (:data:`ALERT_CHANGES`),
# ``[watcher] lease_ttl`` (:func:`lease`).
EFFECT_MARKER_TTL = 7 * 86400
"""An applied effect's marker (:func:`alert_applied`, :func:`route_complaint_token`, an alert action's idem key):
a replay of its event within this is applied once."""
NOTICE_SENT_TTL = 7 * 86400
"""A published push's marker (:func:`notice_sent`): published again within this, it is not sent twice."""
FIRED_TTL = 8 * 86400
"""A fired deadline's marker (:func:`fired`): a replayed event within this cannot arm it again."""
NOTICES_MAXLEN = 200_000
"""About this many pushes stay in :data:`NOTICES` (``MAXLEN ~``)."""
ALERT_INDEX_BOUND = 100_000
"""The index of every alert (:data:`ALERT_ALL`) keeps the most recently opened this many."""
POOL_AUDIT_MAXLEN = 10_000
"""About this many entries stay in each region's :func:`pool_audit` (``MAXLEN ~``)."""
DEAD_LETTERS_MAXLEN = 100_000
"""About this many entries stay in each shard's :func:`dead_letters` (``MAXLEN ~``)."""


def shard_of(tour_id: str, shards: int) -> int:
    """A stable shard for a tour: the same on every process and every run."""
    return zlib.crc32(tour_id.encode()) % shards


def shard_tag(shard: int) -> str:
    return f"{PREFIX}:{{s{shard}}}"


# --- one shard -------------------------------------------------------------------------------------------
def events(shard: int) -> str:
    """The shard's event stream: ratings, incidents, updates, tour changes, fired deadlines."""
    return f"{shard_tag(shard)}:events"


def idem(shard: int, sender: str, msg_id: str) -> str:
    """Idempotency key of one client message: ``digest|seq|extra``, kept for ``idempotency_ttl``."""
    return f"{shard_tag(shard)}:idem:{sender}:{msg_id}"


def tour(shard: int, tour_id: str) -> str:
    """A tour's registration (hash): route, region, guides, dates, timezone, travellers."""
    return f"{shard_tag(shard)}:tour:{tour_id}"


def incident(shard: int, incident_id: str) -> str:
    """An incident's guard record (hash: tour_id, status), written with the event that changes it."""
    return f"{shard_tag(shard)}:inc:{incident_id}"


def state(shard: int, tour_id: str) -> str:
    """A tour's folded state (msgpack), written by the watcher that owns the shard."""
    return f"{shard_tag(shard)}:state:{tour_id}"


def deadlines(shard: int) -> str:
    """Sorted set of the shard's deadline ids by due time (epoch seconds)."""
    return f"{shard_tag(shard)}:deadlines"


def deadline(shard: int, deadline_id: str) -> str:
    """One deadline's payload (msgpack), beside its entry in :func:`deadlines`."""
    return f"{deadline_prefix(shard)}{deadline_id}"


def deadline_prefix(shard: int) -> str:
    return f"{shard_tag(shard)}:deadline:"


def fired(shard: int, deadline_id: str) -> str:
    """Marks a deadline that fired, so a replayed event cannot arm it again."""
    return f"{fired_prefix(shard)}{deadline_id}"


def fired_prefix(shard: int) -> str:
    return f"{shard_tag(shard)}:fired:"


def lease(shard: int) -> str:
    """Which watcher owns the shard (value: watcher id), expiring unless renewed."""
    return f"{shard_tag(shard)}:lease"


def dead_letters(shard: int) -> str:
    """Entries that failed ``max_deliveries`` times, with the error."""
    return f"{shard_tag(shard)}:dead"


GROUP = "watchers"


def parse_seq(seq: str) -> tuple[int, int]:
    """A stream id (``<ms>-<n>``, or ``<ms>``) as a comparable pair; ValueError when it is not one."""
    ms, sep, n = seq.partition("-")
    if not ms.isdigit() or (sep and not n.isdigit()):
        raise ValueError(f"not a stream id: {seq!r}")
    return int(ms), int(n or 0)

WATCHERS = f"{PREFIX}:watchers"
"""Sorted set of live watcher ids by last heartbeat (how many share the shards)."""


def route_category_day(route: str, day: str) -> str:
    """A route's complaints counted on one UTC day, by category (hash): the buckets of the trailing window."""
    return f"{route_category_prefix(route)}{day}"


def route_category_prefix(route: str) -> str:
    return f"{PREFIX}:{{route:{route}}}:cat:"


def route_category_window(route: str) -> str:
    """A route's complaints in its trailing window, by category (hash): the sum of the buckets it holds."""
    return f"{PREFIX}:{{route:{route}}}:catwin"


def route_category_days(route: str) -> str:
    """The days whose buckets the window total holds (set)."""
    return f"{PREFIX}:{{route:{route}}}:catdays"


def route_complaint_token(route: str, token: str) -> str:
    return f"{PREFIX}:{{route:{route}}}:counted:{token}"


# --- alerts ----------------------------------------------------------------------------------------------
ALERTS_TAG = f"{PREFIX}:{{alerts}}"
"""The alert scripts (``alert_lib.lua``) are given this prefix and build from it, beside the keys below, the
per-region sets of open and acknowledged alert ids (``active:<region>``) and the alert id counter (``next``)."""
ALERT_CHANGES = f"{ALERTS_TAG}:changes"


def alert(alert_id: str) -> str:
    return f"{ALERTS_TAG}:alert:{alert_id}"


def alert_dedup(dedup_key: str) -> str:
    """Open-or-acknowledged alert id for one condition on one subject."""
    return f"{ALERTS_TAG}:dedup:{dedup_key}"


def alert_active(region: str) -> str:
    """Set of a region's open and acknowledged alert ids: ``alert_lib.lua`` builds it from the prefix, and a
    board's paged snapshot names it (``alert_snapshot_page.lua`` pages it with SSCAN)."""
    return f"{ALERTS_TAG}:active:{region}"


ALERT_REGIONS = f"{ALERTS_TAG}:regions"
ALERT_ALL = f"{ALERTS_TAG}:all"


def alert_applied(token: str) -> str:
    """Marks that one event's effect on the alerts was applied (so a replay counts once)."""
    return f"{ALERTS_TAG}:fx:{token}"


def alert_audit(alert_id: str) -> str:
    return f"{ALERTS_TAG}:audit:{alert_id}"


# --- emergency pool --------------------------------------------------------------------------------------
def pool_tag(region: str) -> str:
    return f"{PREFIX}:{{pool:{region}}}"


def pool_resource(region: str, resource_id: str) -> str:
    return f"{pool_resource_prefix(region)}{resource_id}"


def pool_resource_prefix(region: str) -> str:
    """Scripts build names of resources they learn only inside the script (ties, served queues) from it."""
    return f"{pool_tag(region)}:res:"


def pool_free(region: str, kind: str) -> str:
    """Sorted set of free resources of one kind, by capacity."""
    return f"{pool_tag(region)}:free:{kind}"


def pool_all(region: str) -> str:
    """Set of every resource id of the region."""
    return f"{pool_tag(region)}:all"


def pool_hold(region: str, incident_id: str, request: str) -> str:
    """The resource one incident's request holds (so a retried pull returns the same one)."""
    return f"{pool_hold_prefix(region)}{incident_id}:{request}"


def pool_hold_prefix(region: str) -> str:
    """``pool_hold`` = this + ``<incident_id>:<request>`` (release writes holds of served waiters)."""
    return f"{pool_tag(region)}:hold:"


def pool_holds_of(region: str, incident_id: str) -> str:
    """Set of the region's resource ids an incident holds."""
    return f"{pool_holds_prefix(region)}{incident_id}"


def pool_holds_prefix(region: str) -> str:
    return f"{pool_tag(region)}:holds:"


def pool_queue(region: str, kind: str) -> str:
    """Incidents waiting for a resource of one kind, in arrival order."""
    return f"{pool_tag(region)}:queue:{kind}"


def pool_audit(region: str) -> str:
    return f"{pool_tag(region)}:audit"


POOL_REGIONS = f"{PREFIX}:pool-regions"

# --- standalone ------------------------------------------------------------------------------------------
NOTICES_TAG = f"{PREFIX}:{{notices}}"
NOTICES = f"{NOTICES_TAG}:stream"
"""Notices and incident changes for phones (field ``n``: JSON), tailed by every web process."""
NOTICE_READS = f"{NOTICES_TAG}:reads"
"""Stream of ``notice_read`` confirmations (field ``e``: msgpack)."""
TOUR_INDEX = f"{PREFIX}:tours"
RESOURCE_INDEX = f"{PREFIX}:resources"


def notice_idem(sender: str, msg_id: str) -> str:
    return f"{NOTICES_TAG}:idem:{sender}:{msg_id}"


def notice_sent(notice_id: str) -> str:
    """Marks a notice published, so a replayed effect never sends it twice."""
    return f"{NOTICES_TAG}:sent:{notice_id}"


# --- joining a tour (§9) ------------------------------------------------------------------------------------
JOIN_TAG = f"{PREFIX}:{{join}}"
"""One slot for every join code and each tour's current one, so re-issuing (kill the old, store the new) is one
script."""


def join_code_prefix() -> str:
    """``join_issue.lua`` builds the old code's key from this when it replaces it."""
    return f"{JOIN_TAG}:code:"


def join_code(code: str) -> str:
    """A join code's record (JSON: ``tour_id``, ``expires_at``), expiring with the code."""
    return f"{join_code_prefix()}{code}"


def join_current(tour_id: str) -> str:
    """The tour's current join code (issuing another replaces it)."""
    return f"{JOIN_TAG}:tour:{tour_id}"


def joined(tour_id: str) -> str:
    """Hash of the travellers who joined the tour through a code: sub -> display name (may be empty)."""
    return f"{JOIN_TAG}:joined:{tour_id}"


def join_rate(address: str, minute: int) -> str:
    """Joins from one address in one minute (a counter that expires), for the 60-a-minute limit."""
    return f"{PREFIX}:join-rate:{address}:{minute}"


# --- §11 crisis: people of a tour, safety checks, notices with choices ------------------------------------------
def people(shard: int, tour_id: str) -> str:
    """Set of the subs of travellers who joined or connected with a token of the tour (beside its stream, so the
    ``person`` event that tells the watcher is appended in the same step): the tour's people of a safety check
    (§11), and the travellers who use the app of the second prompt and the response check (§10)."""
    return f"{shard_tag(shard)}:people:{tour_id}"


def people_names(shard: int, tour_id: str) -> str:
    """Hash of the display names travellers gave when they joined (sub -> name): only those who gave one."""
    return f"{shard_tag(shard)}:names:{tour_id}"


def open_checks(shard: int, tour_id: str) -> str:
    """Sorted set of the tour's safety checks by deadline (epoch s): ``check_start.lua`` sends a check to a tour once
    by it. (What a connecting phone is sent, each web process keeps in memory: ``server.web.crisis_phones``.)"""
    return f"{shard_tag(shard)}:checks:{tour_id}"


CRISIS_TAG = f"{PREFIX}:{{crisis}}"
CRISIS_RECENT = f"{CRISIS_TAG}:recent"
"""Sorted set of ``check:<id>`` and ``group:<id>`` by creation time: what the board's crisis panel lists."""


def safety_check(check_id: str) -> str:
    """A safety check as sent (JSON): message, deadline, repeat, tours, regions, who started it."""
    return f"{CRISIS_TAG}:check:{check_id}"


def notice_group(group_id: str) -> str:
    """A notice send with choices (JSON): title, body, choices, and the notice id of each tour."""
    return f"{CRISIS_TAG}:group:{group_id}"


def notice_meta(notice_id: str) -> str:
    """One tour's notice with choices (JSON: group_id, tour_id, number of choices): what a reply is checked against."""
    return f"{CRISIS_TAG}:notice:{notice_id}"


def notice_read_by(notice_id: str) -> str:
    """Hash of one notice's read receipts: ``<role>:<sub>`` -> when (ISO 8601), the first read kept."""
    return f"{NOTICES_TAG}:readby:{notice_id}"


# --- paging (contract §12): in the {alerts} slot, so a delivered page and the alert's audit are one step ---------
PAGE_DUE = f"{ALERTS_TAG}:pages:due"
"""Sorted set of page job ids by when they are next due: queued now, retried later, or back after a lease."""
PAGE_DONE_TTL = 8 * 86400
"""A page's job (:func:`page_job`) lives at least this long (or ``[storage] retention``, if longer) once finished:
a later change of its alert within this never pages the same identity again."""
PAGE_GROUP = "pagers"
"""The consumer group of watchers that read :data:`ALERT_CHANGES` to decide pages."""


def page_job(job_id: str) -> str:
    """One page (hash): alert, level, person, channel, state, attempts. Its existence is the page's identity:
    ``<alert_id>:<level>:<person>:<channel>`` is written once, ever."""
    return f"{page_job_prefix()}{job_id}"


def page_job_prefix() -> str:
    """``alert_page_claim.lua`` builds the jobs it finds due from :data:`ALERTS_TAG` + ``:page:`` the same way."""
    return f"{ALERTS_TAG}:page:"
# --- revocations (§13) -----------------------------------------------------------------------------------
REVOKED_TAG = f"{PREFIX}:{{revoked}}"
REVOKED = f"{REVOKED_TAG}:subs"
"""Hash: ``<role>:<sub>`` (or ``*:<sub>`` for every role) -> epoch ms of the latest revocation. A token of that
sub whose ``iat`` is at or before it is refused; entries older than ``max_token_ttl`` refuse nothing live."""
REVOKED_VERSION = f"{REVOKED_TAG}:version"
"""Bumped with every revocation (same slot as :data:`REVOKED`): web processes poll it and re-read the hash only
when it moved."""


def revoked_field(sub: str, role: str | None) -> str:
    return f"{role or '*'}:{sub}"
