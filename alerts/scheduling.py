"""The order in which one tour's effects reach Redis: queued calls, writer lanes, follow-ups, and whose failure is
whose. The applier starts each effect's step (:meth:`alerts.applier.EffectApplier.apply_one`); this module decides
when each is started and awaited, so the consumer only reads, folds and commits.

The guarantees (docs/design.md), all kept before the consumer acks anything:

- A tour's effects land in stream order. The tour is pinned to one writer lane, which sends calls in the order
  they were queued, so an event's single-step effects (an upsert, its deadlines, a notice: never two on the same
  key) are all started before the first is awaited; a multi-step effect (a pool pull) waits for everything before
  it and runs alone.
- An event's calls are written once every earlier event's own calls were answered without error, so should one
  fail, no later event's call has landed: the retry (or, for a poison event, the fold without it) is the first to
  apply them.
- What those answers call for (an opened alert's ack clocks, a route's category alert: keys no event's own calls
  touch) is queued at once, ahead of the next event's calls, and awaited after them: it costs the tour no round trip
  of its own. It lands before the tour's entries are acked, and a failure of it is charged to the event whose answer
  called for it; by then the next event's own calls may have landed (folded with that event, whose own calls had
  landed too), so should such a failure come back every time, the fold without the dead-lettered event finds its
  successor's effects applied already.
- Storage trouble stops the whole read (retried as it is); an error reply that will come back every time (a script
  error) is charged to its own event alone, as :class:`EffectFailed`.
- Whatever is abandoned (a cancellation: the lease lost, the shard dropped) is cancelled, so a call not yet written
  is never written, and a failure nobody will await is not reported as never retrieved.
"""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from redis.exceptions import RedisError, ResponseError

from alerts.rules.crisis_effects import Push
from alerts.rules.effects import (
    ClearDeadline,
    CountComplaint,
    Effect,
    EscalateAlert,
    IncidentChanged,
    ResolveAlert,
    SendNotice,
    SetDeadline,
    UpsertAlert,
)

# one script call each, whose order against the tour's other steps is all that matters (what a reply calls for,
# an upsert's escalation clocks or a complaint count's category alert, follows on keys no effect's own call
# touches): a tour's run of these goes out pipelined on one writer lane, which keeps their order; any other effect
# (a pool pull or release: several dependent calls) waits for everything before it and runs alone
SINGLE_STEP = (UpsertAlert, ResolveAlert, EscalateAlert, SetDeadline, ClearDeadline, SendNotice, IncidentChanged,
               CountComplaint, Push)

Planned = list[tuple[dict[str, Any], list[Effect]]]  # one tour's events, in stream order, with their effects
Start = Callable[[Effect, int, dict[str, Any], float], Awaitable[Any]]  # starts an event's index-th effect
InFlight = tuple[dict[str, Any], list[Awaitable[Any]]]  # an event and its follow-ups, queued but not awaited

_TRANSIENT_REPLIES = ("OOM", "READONLY", "LOADING", "BUSY", "MASTERDOWN", "NOSCRIPT", "TRYAGAIN", "CLUSTERDOWN",
                      "MOVED", "ASK")  # a cluster's slot moving (a failover): storage trouble, not the event's fault


def storage_trouble(exc: RedisError) -> bool:
    """An outage worth retrying as it is (connection, timeout, a server not ready), not an error in the call."""
    if isinstance(exc, ResponseError):
        return str(exc).startswith(_TRANSIENT_REPLIES)
    return True


class EffectFailed(Exception):
    """Applying an event's effects failed for a reason other than storage: ``args`` = (event, traceback)."""


class Step:
    """A started effect: its script call is queued already. Its reply may call for more (``then`` queues the
    follow-up calls and returns them, possibly none): awaiting the step awaits the call, then each of those.
    :func:`apply_in_order` awaits the reply alone first, so the tour's next event can be written while the
    follow-ups are in flight. Cancelling it cancels the call, which the writer then never writes if it has not yet."""

    __slots__ = ("call", "then")

    def __init__(self, call: Awaitable[Any], then: Callable[[Any], list[Awaitable[Any]]] | None = None) -> None:
        self.call, self.then = call, then

    def __await__(self) -> Generator[Any, None, None]:
        reply = yield from self.call.__await__()
        if self.then is not None:
            for more in self.then(reply):
                yield from more.__await__()


async def apply_in_order(planned: Planned, start: Start, now: float) -> None:
    """One tour's effects, in stream order, with the guarantees of this module's docstring. The caller has pinned
    the tour to a writer lane."""
    behind: InFlight | None = None  # the previous event's follow-ups in flight
    for event, effects in planned:
        started: list[Awaitable[Any]] = []
        unstarted = ""
        try:
            for index, effect in enumerate(effects):
                if isinstance(effect, SINGLE_STEP):
                    started.append(start(effect, index, event, now))
                    continue
                # a multi-step effect: after everything before it has landed, and alone
                await _land(behind, event, started, hold=False)
                behind, started = None, []
                await settle(event, [start(effect, index, event, now)])
        except (RedisError, EffectFailed, asyncio.CancelledError):
            raise
        except Exception:  # noqa: BLE001 - an effect that could not even start (its arguments): this event's
            unstarted = traceback.format_exc()  # fault, once what it and the events before it started settle
        if unstarted:
            await _land(behind, event, started, hold=False)
            raise EffectFailed(event, unstarted)
        behind = await _land(behind, event, started)
    if behind is not None:
        await settle(*behind)


async def _land(behind: InFlight | None, event: dict[str, Any], started: list[Awaitable[Any]],
                hold: bool = True) -> InFlight | None:
    """The previous event's follow-ups (written first), then the answers to this event's calls. Returns this
    event's follow-ups, in flight (``hold``), or awaits them too. Everything here settles before a failure is
    raised: storage trouble first, else the earlier event's."""
    failures: list[BaseException] = []
    if behind is not None:
        try:
            await settle(*behind)
        except asyncio.CancelledError:
            abandon(started)
            raise
        except (RedisError, EffectFailed) as exc:
            failures.append(exc)
    followups: list[Awaitable[Any]] = []
    try:
        followups = await settle(event, started, hold=hold and not failures)
    except (RedisError, EffectFailed) as exc:
        failures.append(exc)
    if failures:
        raise next((f for f in failures if isinstance(f, RedisError)), failures[0])
    return (event, followups) if followups else None


async def settle(event: dict[str, Any], steps: list[Awaitable[Any]], hold: bool = False) -> list[Awaitable[Any]]:
    """Await an event's steps in flight, in turn (their calls are queued already, so this costs no round trip
    each), then what their replies called for; every one settles before a failure is raised. ``hold``: what the
    replies called for is returned instead, queued but not awaited (unless a step failed)."""
    failures: list[BaseException] = []
    followups: list[Awaitable[Any]] = []
    for n, step in enumerate(steps):
        try:
            if isinstance(step, Step):  # its reply; what that calls for is queued at once
                reply = await step.call
                if step.then is not None:
                    followups += step.then(reply)
            else:
                await step
        except asyncio.CancelledError:
            abandon(steps[n + 1:] + followups)
            raise
        except Exception as exc:  # noqa: BLE001 - classified below, once all have settled
            failures.append(exc)
    if followups and (failures or not hold):
        try:
            await settle(event, followups)
        except RedisError as exc:
            failures.append(exc)
        except EffectFailed as exc:
            failures.append(exc.__cause__ or exc)
        followups = []
    for failure in failures:
        if isinstance(failure, RedisError) and storage_trouble(failure):
            raise failure
    if failures:
        raise EffectFailed(event, "".join(traceback.format_exception(failures[0]))) from failures[0]
    return followups


def abandon(steps: list[Awaitable[Any]]) -> None:
    """Nobody will await these: a call not yet written is not written, and the outcome of one already answered is
    taken (so a failure among them is not reported as never retrieved)."""
    for step in steps:
        call = step.call if isinstance(step, Step) else step
        if isinstance(call, asyncio.Future):
            if call.done() and not call.cancelled():
                call.exception()
            call.cancel()
        elif isinstance(call, Coroutine):
            call.close()
