"""The order of one tour's effects (alerts.scheduling), with plain futures standing in for the writer's calls: what
is started when, what waits for what, and whose failure is whose. No Redis: the end-to-end tests run the same
guarantees through a real writer (tests/e2e/test_watcher_crash.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from alerts.rules.effects import Effect, PullResources, SetDeadline
from alerts.scheduling import EffectFailed, Step, apply_in_order, storage_trouble


def clock(name: str) -> SetDeadline:
    return SetDeadline(name, 1e10, "k", "T1")


PULL = PullResources("I1", "T1", "yn", ("vehicle",), 1)


class Writer:
    """Starts each effect as the applier does (a single step: a call queued now, answered a loop turn later; a
    pull: a coroutine) and logs what happens, in order."""

    def __init__(self, failures: dict[str, BaseException] | None = None,
                 followups: set[str] | frozenset[str] = frozenset()) -> None:
        self.log: list[str] = []
        self.failures = failures or {}
        self.followups = followups

    def call(self, name: str) -> asyncio.Future[Any]:
        self.log.append(f"write {name}")
        future = asyncio.get_running_loop().create_future()

        def answer() -> None:
            self.log.append(f"answer {name}")
            failure = self.failures.get(name)
            future.set_exception(failure) if failure is not None else future.set_result("OK")

        asyncio.get_running_loop().call_soon(answer)
        return future

    def start(self, effect: Effect, index: int, event: dict[str, Any], now: float) -> Any:
        name = f"{event['seq']}.{index}"
        if effect is PULL:
            async def pull() -> None:
                self.log.append(f"pull {name}")
                await self.call(f"{name}p")

            return pull()
        if isinstance(effect, str):
            raise TypeError(f"cannot encode {effect}")
        then = (lambda _reply: [self.call(f"{name}+")]) if name in self.followups else None
        return Step(self.call(name), then)


def plan(*events: list[Any]) -> list[tuple[dict[str, Any], list[Any]]]:
    return [({"tour_id": "T1", "seq": str(n)}, effects) for n, effects in enumerate(events, start=1)]


async def test_an_events_calls_go_out_together_and_the_next_events_after_their_answers() -> None:
    writer = Writer()
    await apply_in_order(plan([clock("a"), clock("b")], [clock("c")]), writer.start, 0.0)
    assert writer.log == ["write 1.0", "write 1.1", "answer 1.0", "answer 1.1", "write 2.0", "answer 2.0"]


async def test_a_multi_step_effect_waits_for_everything_before_it_and_runs_alone() -> None:
    writer = Writer()
    await apply_in_order(plan([clock("a"), PULL, clock("b")]), writer.start, 0.0)
    assert writer.log == ["write 1.0", "answer 1.0", "pull 1.1", "write 1.1p", "answer 1.1p", "write 1.2",
                          "answer 1.2"]


async def test_a_follow_up_goes_out_ahead_of_the_next_event_and_is_awaited_after_it() -> None:
    writer = Writer(followups={"1.0"})
    await apply_in_order(plan([clock("a")], [clock("b")]), writer.start, 0.0)
    assert writer.log == ["write 1.0", "answer 1.0", "write 1.0+", "write 2.0", "answer 1.0+", "answer 2.0"]


@pytest.mark.parametrize(("first", "failures", "followups", "charged", "written"), [
    # the event's other call settles too; no later event's call is written
    (["a", "b"], {"1.0": ResponseError("WRONGTYPE")}, set(), "1", {"1.0", "1.1"}),
    (["a"], {"2.0": ResponseError("ERR script")}, set(), "2", {"1.0", "2.0"}),
    # a follow-up's failure goes to the event whose answer called for it (the next event's call had gone out)
    (["a"], {"1.0+": ResponseError("WRONGTYPE")}, {"1.0"}, "1", {"1.0", "1.0+", "2.0"}),
])
async def test_an_error_reply_is_charged_to_its_own_event_and_stops_the_tour(
        first: list[str], failures: dict[str, BaseException], followups: set[str], charged: str,
        written: set[str]) -> None:
    writer = Writer(failures, followups)
    with pytest.raises(EffectFailed) as failed:
        await apply_in_order(plan([clock(n) for n in first], [clock("c")], [clock("d")]), writer.start, 0.0)
    event, error = failed.value.args
    assert event["seq"] == charged and "ResponseError" in error
    assert {line.split()[1] for line in writer.log if line.startswith("write")} == written
    assert all(f"answer {name}" in writer.log for name in written)  # nothing is left in flight


async def test_storage_trouble_is_raised_as_it_is_once_everything_settled() -> None:
    writer = Writer({"1.0": RedisConnectionError("gone")})
    with pytest.raises(RedisConnectionError):
        await apply_in_order(plan([clock("a"), clock("b")], [clock("c")]), writer.start, 0.0)
    assert writer.log == ["write 1.0", "write 1.1", "answer 1.0", "answer 1.1"]


async def test_an_effect_that_cannot_start_fails_its_event_after_what_it_started_settles() -> None:
    writer = Writer()
    with pytest.raises(EffectFailed) as failed:
        await apply_in_order(plan([clock("a")], [clock("b"), "unencodable"], [clock("c")]), writer.start, 0.0)
    assert failed.value.args[0]["seq"] == "2" and "cannot encode" in failed.value.args[1]
    assert writer.log == ["write 1.0", "answer 1.0", "write 2.0", "answer 2.0"]


@pytest.mark.parametrize(("error", "trouble"), [
    (RedisConnectionError("reset"), True),
    (ResponseError("LOADING Redis is loading the dataset in memory"), True),
    (ResponseError("OOM command not allowed"), True),
    (ResponseError("READONLY You can't write against a read only replica"), True),
    (ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), False),
    (ResponseError("ERR Error running script"), False),
])
def test_storage_trouble_is_an_outage_not_an_error_in_the_call(error: Exception, trouble: bool) -> None:
    assert storage_trouble(error) is trouble  # type: ignore[arg-type]
