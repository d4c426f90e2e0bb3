"""The pipelined writer: calls pinned to a lane reach Redis in the order they were queued, however many are in
flight on however many lanes; each caller gets its own result."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from server.db.writer import LANE, ScriptWriter, StorageUnavailable


async def _pinned_pushes(writer: ScriptWriter, lane: int, key: str, count: int) -> list[int]:
    LANE.set(lane)  # this task's calls, and only this task's, go to one lane
    futures = [writer.command("RPUSH", key, n) for n in range(count)]
    return list(await asyncio.gather(*futures))


async def test_a_pinned_caller_keeps_its_order_across_many_calls_in_flight(redis_url: str,
                                                                           redis_client: aioredis.Redis) -> None:
    writer = ScriptWriter(redis_url, max_batch=16, lanes=2)
    await writer.start()
    try:
        lengths = await asyncio.gather(*(_pinned_pushes(writer, lane, f"order:{lane}:{n}", 500)
                                         for n in range(4) for lane in (0, 1)))
    finally:
        await writer.stop()
    for n in range(4):
        for lane in (0, 1):
            assert await redis_client.lrange(f"order:{lane}:{n}", 0, -1) == [str(i).encode() for i in range(500)]
    assert all(result == list(range(1, 501)) for result in lengths)  # each caller got its own reply
    assert writer.batches > 8 * 500 / 16 - 1  # batches were bounded, so many were in flight per lane


async def test_unpinned_calls_spread_over_the_lanes_and_an_error_reply_stays_with_its_call(
        redis_url: str, redis_client: aioredis.Redis) -> None:
    writer = ScriptWriter(redis_url, lanes=2)
    await writer.start()
    try:
        await redis_client.set("text", "x")
        good = [writer.command("INCR", "counter") for _ in range(100)]
        bad = writer.command("INCR", "text")
        results = await asyncio.gather(*good)
        with pytest.raises(ResponseError, match="not an integer"):
            await bad
    finally:
        await writer.stop()
    assert sorted(results) == list(range(1, 101))
    assert await redis_client.get("counter") == b"100"
    assert {conn.connected for conn in writer.conns} == {False}  # both lanes closed on stop


async def test_scripts_lost_by_the_server_are_loaded_again_and_every_call_goes_through(
        redis_url: str, redis_client: aioredis.Redis) -> None:
    """A restarted or flushed server has forgotten the scripts: each call that missed one is tried once more,
    after the scripts are loaded again in the same stream, and answers as if nothing had happened."""
    writer = ScriptWriter(redis_url, max_batch=8)
    await writer.start()
    try:
        await writer.run("release_lease", ["lease:x"], ["w1"])  # a script call goes through
        await redis_client.script_flush()
        results = await asyncio.gather(*(writer.run("release_lease", [f"lease:{n}"], ["w1"]) for n in range(40)))
        assert results == [0] * 40
        assert writer.calls >= 1 + 40 + 40  # each of the 40 was tried twice
        await redis_client.set("lease:y", "w1")
        assert await writer.run("release_lease", ["lease:y"], ["w1"]) == 1
    finally:
        await writer.stop()
    assert await redis_client.exists("lease:y") == 0


async def test_a_dropped_connection_fails_the_calls_in_flight_and_the_next_call_connects_again(
        redis_url: str, redis_client: aioredis.Redis) -> None:
    writer = ScriptWriter(redis_url)
    await writer.start()
    try:
        assert await writer.command("INCR", "n") == 1
        blocked = writer.command("BLPOP", "nothing", 0)  # in flight until its connection goes
        await asyncio.sleep(0.2)
        await redis_client.client_kill_filter(_type="normal", skipme=True)  # every client but this one
        with pytest.raises(StorageUnavailable):
            await blocked
        assert await writer.command("INCR", "n") == 2
    finally:
        await writer.stop()


async def _reconnecting_slowly(writer: ScriptWriter, seconds: float) -> None:
    """Drop lane 0's connection and make its next connect take ``seconds``."""
    lane = writer.lanes[0]
    real_connect = lane.conn.connect

    async def slow_connect() -> None:
        await asyncio.sleep(seconds)
        await real_connect()

    lane.conn.abort()
    await asyncio.sleep(0.05)
    lane.conn.connect = slow_connect  # type: ignore[method-assign]


async def test_a_call_given_up_while_its_lane_reconnects_is_never_written(redis_url: str,
                                                                          redis_client: aioredis.Redis) -> None:
    """A caller cancelled (its lease lost, its shard dropped) must not have its write land later, even when it gave
    up while the lane was connecting again; so too a step of an event abandoned before it was awaited."""
    from alerts.scheduling import Step, settle

    writer = ScriptWriter(redis_url, max_batch=1)
    await writer.start()
    try:
        await _reconnecting_slowly(writer, 0.3)
        LANE.set(0)
        first = writer.command("INCR", "first")
        second = Step(writer.command("INCR", "second"), lambda reply: [])
        settling = asyncio.create_task(settle({"seq": "1-0"}, [first, second]))
        await asyncio.sleep(0.1)  # the lane is connecting again with `first`; `second` waits in the queue
        settling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await settling
        await asyncio.sleep(0.6)
        assert await writer.command("INCR", "after") == 1  # the lane is back
    finally:
        await writer.stop()
    assert await redis_client.get("first") is None
    assert await redis_client.get("second") is None


async def test_stopping_while_a_lane_reconnects_fails_its_calls(redis_url: str) -> None:
    writer = ScriptWriter(redis_url)
    await writer.start()
    await _reconnecting_slowly(writer, 3600)
    pending = writer.command("INCR", "n")
    await asyncio.sleep(0.05)
    await writer.stop()
    with pytest.raises(StorageUnavailable):
        await asyncio.wait_for(pending, 1)
    with pytest.raises(StorageUnavailable):  # and a call after stop fails at once rather than wait for nobody
        await asyncio.wait_for(writer.command("INCR", "n"), 1)


async def test_an_argument_that_cannot_be_sent_fails_its_own_call_only(redis_url: str,
                                                                       redis_client: aioredis.Redis) -> None:
    writer = ScriptWriter(redis_url)
    await writer.start()
    try:
        calls = [writer.command("INCR", "ok"), writer.command("SET", "bad", object()),  # type: ignore[arg-type]
                 writer.command("INCR", "ok")]
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await writer.stop()
    assert outcomes[0] == 1 and outcomes[2] == 2 and isinstance(outcomes[1], Exception)
    assert await redis_client.exists("bad") == 0


async def test_a_connection_whose_replies_stop_is_dropped_and_its_calls_fail(
        redis_url: str, redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that stops answering (paused, hung, a network half gone) must not hold its callers for ever: once
    replies stop for REPLY_TIMEOUT while calls wait, the watchdog drops the connection, they fail as storage
    trouble, and the next call connects again."""
    import server.db.writer as writer_module

    monkeypatch.setattr(writer_module, "REPLY_TIMEOUT", 0.5)
    writer = ScriptWriter(redis_url)
    await writer.start()
    try:
        assert await writer.command("INCR", "n") == 1
        await redis_client.execute_command("CLIENT", "PAUSE", 2500, "ALL")
        with pytest.raises(StorageUnavailable):
            await asyncio.wait_for(writer.command("INCR", "n"), 10)
        await asyncio.sleep(2.5)  # the pause ends
        assert await writer.command("GET", "n") in (b"1", b"2")  # the dropped call may or may not have run
    finally:
        await writer.stop()
