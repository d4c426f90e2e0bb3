"""Who may say what about which tour: pure checks on a token's scope, and incident ids that name their tour.

An incident id is ``<tour_id>~<10 hex>``: made from the sender and the client's message id, so a re-sent
incident gets the same id without a lookup, and any process can tell an update's tour (and so its shard)
from the id alone.
``~`` never occurs in a tour id.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection

from guide_app_api.errors import Forbidden, NotFound

INCIDENT_SEP = "~"


def make_incident_id(tour_id: str, sender: str, msg_id: str) -> str:
    digest = hashlib.blake2b(f"{sender}\x00{msg_id}".encode(), digest_size=5).hexdigest()
    return f"{tour_id}{INCIDENT_SEP}{digest}"


def incident_tour(incident_id: str, msg_id: str | None = None) -> str:
    """The tour an incident id belongs to; NotFound for an id we could never have issued."""
    tour_id, sep, digest = incident_id.rpartition(INCIDENT_SEP)
    if not sep or not tour_id or len(digest) != 10:
        raise NotFound(f"no incident {incident_id!r}", field="incident_id", msg_id=msg_id)
    return tour_id


def check_tour(tours: Collection[str], tour_id: str, msg_id: str | None, field: str = "tour_id") -> None:
    """A traveller or guide acts only on the tours its token names."""
    if tour_id not in tours:
        raise Forbidden(f"your token does not cover tour {tour_id!r}", field=field, msg_id=msg_id)


_FOLLOWUP = re.compile(r"followup:(urgent_complaint:([A-Za-z0-9_.-]{1,64}):\d{4}-\d{2}-\d{2}:(.+?)(?:#\d+)?)")


def followup_subject(notice_id: str, msg_id: str | None = None) -> tuple[str, str, str]:
    """A traveller's follow-up notice id (``followup:urgent_complaint:<tour>:<day>:<traveller>[#n]``) ->
    (the complaint's dedup key, tour, traveller); NotFound for an id that names no traveller's follow-up."""
    match = _FOLLOWUP.fullmatch(notice_id)
    if match is None:
        raise NotFound(f"no follow-up {notice_id[:100]!r}", field="notice_id", msg_id=msg_id)
    return match.group(1), match.group(2), match.group(3)
