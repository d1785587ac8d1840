"""The ticker: time, for the partitions this worker owns.

It watches the in-memory wake schedules and, when an incident's wake time has come, has the
escalation stage apply it at once (`EscalateStage.on_wakeups`), on this worker, without a round
trip through Kafka. Users' batch times (spec §7) still go out as tick records on
`streamproc.flood`, whose stage reads them like its other records. It sleeps until the next wake
time (at most `tick_interval`), woken early when an earlier one is scheduled, and after a batch of
wake-ups for at least `gather` s, so that under load they come in batches. Partitions
still reading their backlog after a rebalance (`catchup.py`) keep their wake-ups for later, so a
claim that arrived meanwhile is applied before the pages that fell due meanwhile (spec §3).
"""

from __future__ import annotations

import asyncio
import contextlib

from streamproc.kafka import topics
from streamproc.processor import metrics
from streamproc.processor.backlog import Highwater
from streamproc.processor.batches import whole
from streamproc.processor.escalate import EscalateStage
from streamproc.processor.producer import Outputs, Record
from streamproc.processor.runtime import Runtime
from streamproc.processor.worklog import now_us
from streamproc.wire.records import FloodTick


async def run_ticker(
    runtime: Runtime,
    escalate: EscalateStage,
    outputs: Outputs,
    partitions: int,
    tick_interval: float,
    batch_max: int,
    highwater: Highwater,
    gather: float = 0.0,
) -> None:
    while True:
        held: set[int] = set()
        if runtime.ready:
            now = now_us()
            # Partitions still reading a backlog keep their wake-ups: after a rebalance (catch-up),
            # and while a stage has records on Kafka it has not read (`backlog.py`).
            earliest = runtime.schedule.next_due()
            due_now = earliest is not None and earliest <= now
            runtime.lagging = runtime.backlog.lagging(highwater, range(partitions)) if due_now else set()
            held = runtime.catchup.events | runtime.lagging
            due = runtime.schedule.pop_due(now, held=held)
            for _, at in due:
                metrics.wakeup(at, now)
            ticks: list[Record] = []
            # Batch times; held like the escalations' while claims may still be in a backlog.
            for key, at in runtime.flood_schedule.pop_due(now, held=runtime.catchup.events):
                encoded = key.encode()
                ticks.append(
                    (
                        topics.FLOOD,
                        encoded,
                        FloodTick(user=key, due=at).model_dump_json().encode(),
                        topics.partition_for(encoded, partitions),
                        None,
                    )
                )
            if ticks:
                outputs.send(ticks)  # not awaited, as ever: late or duplicate ticks are harmless
            for start in range(0, len(due), batch_max):
                await whole(escalate.on_wakeups(due[start : start + batch_max]))
            if due and gather > 0:
                # Under load wake-ups fall due one at a time, and each batch is a round of
                # acknowledgements with the stage's lock held, the records waiting meanwhile:
                # let the next ones gather for a moment.
                await asyncio.sleep(gather)
        nxt = None
        if runtime.ready:
            # Held wake-ups wait for `runtime.changed`: a stage that finishes a batch while some
            # are held, or a catch-up barrier read, wakes the ticker.
            times = (
                runtime.schedule.next_due(held=held),
                runtime.flood_schedule.next_due(held=runtime.catchup.events),
            )
            nxt = min((t for t in times if t is not None), default=None)
        delay = tick_interval if nxt is None else (nxt - now_us()) / 1_000_000
        runtime.changed.clear()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(runtime.changed.wait(), min(delay, tick_interval * 5))
