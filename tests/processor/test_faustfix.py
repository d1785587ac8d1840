"""`faustfix.Consumer`'s fetch loop, without a broker: with no active partition it waits for one
to be resumed, where Faust's slept 1 s and stalled every rebalance's end by up to that much."""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP

from streamproc.processor.faustfix import Transport

STREAM = TP("t.events", 0)


async def test_the_fetch_loop_wakes_as_soon_as_a_partition_is_resumed() -> None:
    app = faust.App("faustfix-test", broker="kafka://127.0.0.1:1")
    app.transport = Transport(app.conf.broker_consumer, app)
    consumer = app.consumer
    consumer.pause_partitions({STREAM})
    consumer._set_active_tps(set())  # what a rebalance's recovery leaves: nothing active yet
    assert consumer.flow_active

    waiting = asyncio.ensure_future(consumer._wait_next_records(timeout=1.0))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not waiting.done(), "with no active partition the loop waits"

    consumer.resume_partitions({STREAM})
    for _ in range(20):  # a few turns of the loop, no clock: Faust's 1 s sleep would still be on
        await asyncio.sleep(0)
        if waiting.done():
            break
    assert waiting.done(), "the fetch loop did not wake when a partition was resumed"
    assert waiting.result() == ({}, set())
    assert consumer._get_active_partitions() == {STREAM}
