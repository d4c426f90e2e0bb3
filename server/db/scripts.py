"""Lua scripts bound to a client: ``script(redis, "name")(keys=[...], args=[...])`` (EVALSHA, loading on NOSCRIPT).

The sources live in ``server/db/lua/`` and are named by :data:`SCRIPTS`; hot paths in web processes go
through :class:`server.db.writer.ScriptWriter` instead, which pipelines them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from importlib import resources
from typing import Any, Protocol

from redis.commands.core import AsyncScript


# --- the sources -------------------------------------------------------------------------------------------------
def _load_scripts() -> dict[str, str]:
    """Every runnable script by name. ``alert_*`` and ``pool_*`` scripts get their family's library
    (``alert_lib.lua``, ``pool_lib.lua``) in front, so any runner can load any of them as it is."""
    folder = resources.files(__package__).joinpath("lua")
    sources = {
        entry.name.removesuffix(".lua"): entry.read_text()
        for entry in folder.iterdir()
        if entry.name.endswith(".lua")
    }
    libs = {family: sources.pop(f"{family}_lib") for family in ("alert", "pool")}
    for name in sources:
        family = name.split("_", 1)[0]
        if family in libs:
            sources[name] = libs[family] + "\n" + sources[name]
    return sources


SCRIPTS: dict[str, str] = _load_scripts()


_bound: dict[tuple[int, str], AsyncScript] = {}


# JSON arguments of the scripts, compact and in UTF-8; one encoder, as json.dumps builds one per call when given
# options (a cost on the watcher's hot path)
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_INFINITIES = (float("-inf"), float("inf"))


def to_json(value: Any) -> str:
    """``value`` as compact JSON. Most are a number or a word (an alert's details are one argument each): those
    are written here as the encoder writes them, which otherwise builds a C encoder for every single value."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and value == value and value not in _INFINITIES:
        return float.__repr__(value)
    if value is None:
        return "null"
    return _encode(value)  # a string goes straight to the C escaper; containers, bools and the rest as they are


def as_text(value: Any) -> str:
    """A reply (bytes from hiredis) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def script(redis: Any, name: str) -> AsyncScript:
    key = (id(redis), name)
    bound = _bound.get(key)
    if bound is None or bound.registered_client is not redis:
        bound = _bound[key] = redis.register_script(SCRIPTS[name])
    return bound


class ScriptRunner(Protocol):
    """Runs a script of :data:`SCRIPTS` by name. Connection trouble raises a redis ConnectionError,
    an error reply a redis ResponseError, through either runner."""

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

    def call(self, name: str, keys: list[str], args: list[Any]) -> Awaitable[Any]:
        """Start a call now and await its result later: calls started in turn by one caller pinned to a writer
        lane reach Redis in that order, however they are awaited."""
        ...


class RedisScripts:
    """A runner over a redis-py client: one EVALSHA per call. Enough where calls are rare (HTTP handlers); hot
    paths use :class:`server.db.writer.ScriptWriter`, which pipelines its callers' calls over one raw connection."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await script(self.redis, name)(keys=list(keys), args=list(args))

    def call(self, name: str, keys: list[str], args: list[Any]) -> Awaitable[Any]:
        return asyncio.ensure_future(self.run(name, keys, args))  # a pool of connections: no order kept
