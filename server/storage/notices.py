"""Pushes to phones as stored data: notices (risk warnings, progress, prompts, follow-ups) and incident changes.

Anyone publishes with :func:`publish` (once per push id, however often asked) into the notices stream; the web
processes' :class:`server.web.hub.NoticeHub` delivers from there.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from server.core import keys
from server.db.scripts import ScriptRunner, to_json


async def publish(runner: ScriptRunner, push_id: str, push: dict[str, Any]) -> str:
    """Publish a push (``type`` notice or incident, with ``tour_id`` and ``audience``) once; returns its seq."""
    seq = await publish_call(runner, push_id, push)
    return seq.decode() if isinstance(seq, bytes) else str(seq)


def publish_call(runner: ScriptRunner, push_id: str, push: dict[str, Any]) -> Awaitable[Any]:
    """:func:`publish`, started now (``ScriptRunner.call``); its reply is the seq."""
    return runner.call("publish_notice", [keys.notice_sent(push_id), keys.NOTICES],
                       [to_json(push), keys.NOTICE_SENT_TTL, keys.NOTICES_MAXLEN])


def incident_push(tour_id: str, incident: dict[str, Any]) -> dict[str, Any]:
    """An incident change for the guides of its tour."""
    return {"type": "incident", "tour_id": tour_id, "incident": incident, "audience": "guides"}


def dispatched(incident_id: str, resource: dict[str, Any] | None, region: str, *, fallback: bool,
               shortfall: int) -> dict[str, Any]:
    """What the guides hear when the pool sends something for their incident (partner, contact in ``resource``)."""
    return {"incident_id": incident_id, "dispatched": resource, "kind": resource.get("kind") if resource else None,
            "region": region, "fallback": fallback, "shortfall": shortfall}
