"""A primary's failover under load (contract §14): real cluster (its own ``tourpulse dev-cluster``), two web
processes, two watchers, phones that resend on ``unavailable``; ``kill -9`` of the primary of the first tour's
shard. With ``ack_after = "replica"`` nothing acked is lost, every incident opens one alert, no vehicle is lent
twice, and phones wait a few seconds at most."""

from __future__ import annotations

import pytest

from bench.common import Ctx
from bench.failover import drill
from tests.e2e.cluster_helpers import running_dev_cluster

pytestmark = pytest.mark.slow


@pytest.mark.timeout(180)
async def test_a_primary_killed_under_load_loses_no_acked_event_and_opens_each_alert_once(tmp_path) -> None:
    with running_dev_cluster(tmp_path / "cluster") as (url, _proc):
        ctx = Ctx(redis_url=url, quick=True)
        try:
            figures = await drill(ctx, ack_after="replica", before=3.0, after=15.0)
        finally:
            ctx.stop_all()
    print(figures)
    assert figures["acked_before_kill"] > 0 and figures["acked"] > figures["acked_before_kill"]
    assert figures["lost_acked"] == 0
    assert figures["incidents"] > 0
    assert figures["incidents_without_one_alert"] == 0 and figures["duplicate_alerts"] == 0
    assert figures["double_bookings"] == 0
    # phones were answered `unavailable` while a replica ack could not be had, re-sent, and got through
    assert figures["unavailable_answers"] > 0
    assert figures["unavailable_s"] < 15
