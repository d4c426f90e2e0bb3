"""Who uses the app on a tour: the travellers who joined or connected with a token of it (contract §10).

The web process calls :func:`seen_call` when a traveller's phone connects (and the join page when a traveller
joins); the first time for a tour it appends a ``seen`` event to the tour's shard stream, which the watcher folds
into the tour's state. The second prompt to rate and the response check count these travellers.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from guide_app_api.codec import packb
from server.core import keys
from server.db.scripts import ScriptRunner

SEEN_TTL = 60 * 86400  # longer than any tour; renewed at each connection


def seen_call(runner: ScriptRunner, shards: int, tour_id: str, traveller: str, now: float) -> Awaitable[Any]:
    """Mark ``traveller`` as using the app on ``tour_id``, started now; its reply is 1 the first time, else 0."""
    shard = keys.shard_of(tour_id, shards)
    event = {"type": "seen", "tour_id": tour_id, "traveller": traveller, "sender": "system",  # the server saw it
             "msg_id": f"seen:{traveller}", "at": now, "received_at": now}
    return runner.call("seen", [keys.seen(shard, tour_id), keys.events(shard)], [traveller, packb(event), SEEN_TTL])
