"""Rate limits with a moved clock: nothing here sleeps."""

from __future__ import annotations

import pytest

from guide_app_api.ratelimit import BadFrameWindow, TokenBucket

T0 = 1_700_000_000.0


def takes(bucket: TokenBucket, n: int, now: float) -> int:
    return sum(bucket.take(now) for _ in range(n))


def test_bucket_starts_full_and_allows_a_burst() -> None:
    bucket = TokenBucket(rate=20, burst=50, now=T0)
    assert takes(bucket, 60, T0) == 50
    assert not bucket.take(T0)


@pytest.mark.parametrize(("elapsed", "allowed"), [(0.0625, 1), (0.5, 10), (1.0, 20), (2.5, 50), (3600, 50)])
def test_bucket_refills_at_rate_up_to_burst(elapsed: float, allowed: int) -> None:
    bucket = TokenBucket(rate=20, burst=50, now=T0)
    takes(bucket, 50, T0)
    assert takes(bucket, 100, T0 + elapsed) == allowed


def test_bucket_sustains_its_rate() -> None:
    bucket = TokenBucket(rate=20, burst=50, now=T0)
    takes(bucket, 50, T0)
    granted = sum(bucket.take(T0 + i * 0.01) for i in range(1, 1001))  # 100 msg/s offered for 10 s
    assert granted == pytest.approx(200, abs=1)


def test_bucket_ignores_a_clock_stepping_back() -> None:
    bucket = TokenBucket(rate=1, burst=2, now=T0)
    assert takes(bucket, 2, T0) == 2
    assert not bucket.take(T0 - 100)
    assert not bucket.take(T0 + 0.5)  # stepping back did not reset the refill point
    assert bucket.take(T0 + 1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (1, 0)])
def test_bucket_rejects_nonsense(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate, burst, T0)


def test_bad_frames_within_the_limit_never_trip() -> None:
    window = BadFrameWindow(10)
    assert not any(window.record(T0 + i) for i in range(10))


def test_bad_frames_trip_once_over_the_limit_in_a_minute() -> None:
    window = BadFrameWindow(10)
    results = [window.record(T0 + i) for i in range(11)]
    assert results == [False] * 10 + [True]


def test_bad_frames_spread_over_more_than_a_minute_do_not_trip() -> None:
    window = BadFrameWindow(10)
    # one every 6 s: at most 10 within any 60 s window, forever
    assert not any(window.record(T0 + 6.0 * i) for i in range(1000))
    assert len(window.times) == 11  # memory stays bounded


def test_bad_frames_old_ones_age_out() -> None:
    window = BadFrameWindow(3)
    for i in range(3):
        assert not window.record(T0 + i)
    assert not window.record(T0 + 61)  # T0 fell out of the minute: 3 within it
    assert not window.record(T0 + 61.5)  # T0 + 1 too
    assert window.record(T0 + 61.75)  # T0 + 2, 61, 61.5, 61.75: four within 60 s


def test_zero_limit_trips_on_the_first_bad_frame() -> None:
    assert BadFrameWindow(0).record(T0)
