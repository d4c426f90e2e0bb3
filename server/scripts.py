"""Lua scripts bound to a client: ``script(redis, "name")(keys=[...], args=[...])`` (EVALSHA, loading on NOSCRIPT).

The sources live in ``server/lua/`` and are named by :data:`server.keys.SCRIPTS`; hot paths in web processes go
through :class:`server.writer.ScriptWriter` instead, which pipelines them.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import AsyncScript

from server.keys import SCRIPTS

_bound: dict[tuple[int, str], AsyncScript] = {}


def script(redis: Any, name: str) -> AsyncScript:
    key = (id(redis), name)
    bound = _bound.get(key)
    if bound is None or bound.registered_client is not redis:
        bound = _bound[key] = redis.register_script(SCRIPTS[name])
    return bound
