"""`faustfix`'s fetching, without a broker: with no active partition Faust's fetch loop waits for
one to be resumed (it slept 1 s, and stalled every rebalance's end by up to that much), and
aiokafka's fetcher asks an idle broker for idle fetches."""

from __future__ import annotations

import asyncio

import faust
import pytest
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.protocol.fetch import FetchRequest
from faust.types import TP

from streamproc.processor.faustfix import (
    FETCH_MAX_WAIT_MS,
    FETCH_MIN_BYTES,
    IDLE_AFTER_EMPTY_FETCHES,
    IDLE_FETCH_MAX_WAIT_MS,
    AdaptiveFetcher,
    Transport,
)

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


async def test_a_broker_with_nothing_to_give_gets_idle_fetches_and_busy_ones_again_when_records_come(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`AdaptiveFetcher` on aiokafka's own `FetchRequest`s, with the broker's answers scripted:
    records or none, per node."""
    answers: list[bool] = []

    def actions(self: Fetcher, assignment: object) -> tuple[list[tuple[int, FetchRequest]], dict, float, bool, list]:
        requests = [
            (node, FetchRequest(FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES, 50 * 2**20, 0, [("t.events", [(0, 0, 2**20)])]))
            for node in (1, 2)
        ]
        return requests, {}, 0.2, False, []

    async def fetch(self: Fetcher, assignment: object, node_id: int, request: FetchRequest) -> bool:
        return answers.pop(0)

    monkeypatch.setattr(Fetcher, "_get_actions_per_node", actions)
    monkeypatch.setattr(Fetcher, "_proc_fetch_request", fetch)
    fetcher = AdaptiveFetcher.adopt(Fetcher.__new__(Fetcher))  # no client: only the two methods run

    def asked(node: int) -> tuple[int, int]:
        request = dict(fetcher._get_actions_per_node(None)[0])[node]
        return request._max_wait_ms, request._min_bytes

    async def answer(node: int, records: bool) -> None:
        answers.append(records)
        assert await fetcher._proc_fetch_request(None, node, None) is records

    busy, idle = (FETCH_MAX_WAIT_MS, FETCH_MIN_BYTES), (IDLE_FETCH_MAX_WAIT_MS, 1)
    assert asked(1) == busy
    for _ in range(IDLE_AFTER_EMPTY_FETCHES - 1):
        await answer(1, False)
    assert asked(1) == busy, "still busy before the tenth empty answer"
    await answer(1, False)
    assert asked(1) == idle
    assert asked(2) == busy, "each broker on its own"
    await answer(1, True)
    assert asked(1) == busy, "records make it busy again at once"
