"""What a worker does when its partitions change hands.

On revocation it forgets what it held of the partitions it loses (wake-ups, parsed states, silence
books, flood states). When a rebalance is complete it rebuilds the wake schedule from the table for
the partitions it now owns, and holds their wake-ups until both stages have read the backlog that
built up while they had no owner (`catchup.py`): barriers behind the incidents backlog first, then,
when stage 1 has read them, behind the events backlog.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from streamproc.kafka import topics
from streamproc.processor import metrics
from streamproc.processor.escalate import EscalateStage
from streamproc.processor.producer import Outputs
from streamproc.processor.records import load_flood_state, owned_entries, owned_states
from streamproc.processor.rekey import RekeyStage
from streamproc.processor.runtime import Runtime
from streamproc.processor.summaries import worker_wake

log = logging.getLogger("streamproc.worker")


class Rebalance:
    def __init__(
        self,
        app: Any,
        runtime: Runtime,
        table: Any,
        flood_table: Any,
        escalate: EscalateStage,
        rekey: RekeyStage,
        outputs: Outputs,
        partitions: int,
    ) -> None:
        self.app, self.runtime, self.table, self.flood_table = app, runtime, table, flood_table
        self.escalate, self.rekey, self.outputs, self.partitions = escalate, rekey, outputs, partitions

    def active_partitions(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def rebuild(self, actives: set[int]) -> None:
        """Derive the wake schedule (and the parsed states) from the table for the partitions owned."""
        runtime = self.runtime
        runtime.schedule.clear()
        metrics.open_escalations.clear()
        runtime.silences.clear()
        self.escalate.cache.clear()
        items = list(self.table.items())
        for key, raw in items:
            if key is not None:
                runtime.silences.load(key, raw, actives)
        owned = []
        for key, partition, state in owned_states(items, self.partitions, actives):
            runtime.schedule.set(key.decode(), partition, worker_wake(state))
            metrics.open_escalations.set(key.decode(), partition, state.status)
            runtime.silences.track(runtime.engine, key, partition, state)
            owned.append((key, state))
        self.escalate.cache.fill(owned)
        runtime.flood_schedule.clear()
        runtime.flood_states.clear()
        for key, partition, flood_state in owned_entries(
            list(self.flood_table.items()), self.partitions, actives, load_flood_state
        ):
            runtime.flood_schedule.set(key.decode(), partition, flood_state.wake_at)
        log.info(
            "wake schedule rebuilt: %d incidents and %d users pending on partitions %s",
            len(runtime.schedule),
            len(runtime.flood_schedule),
            sorted(actives),
        )

    async def on_revoked(self, sender: Any, revoked: Any, **kwargs: Any) -> None:
        runtime = self.runtime
        runtime.ready = False
        events = {tp.partition for tp in revoked if tp.topic == topics.EVENTS}
        runtime.schedule.drop_partitions(events)
        runtime.flood_schedule.drop_partitions({tp.partition for tp in revoked if tp.topic == topics.FLOOD})
        runtime.flood_states.clear()
        runtime.backlog.clear()
        runtime.lagging = set()
        self.escalate.cache.clear()
        metrics.open_escalations.drop_partitions(events)
        runtime.silences.drop_partitions(events)

    async def on_rebalanced(self, sender: Any, **kwargs: Any) -> None:
        runtime = self.runtime
        metrics.rebalanced(getattr(self.app.tables, "recovery", None), time.monotonic())
        actives = self.active_partitions(topics.EVENTS)
        self.rebuild(actives)
        owned_incidents = self.active_partitions(topics.INCIDENTS)
        token = runtime.catchup.start(owned_incidents, actives)
        if owned_incidents:
            await self.outputs.send(self.rekey.barriers(topics.INCIDENTS, owned_incidents, token))
        else:
            await self.outputs.send(self.rekey.barriers(topics.EVENTS, actives, token))
        runtime.ready = True
        runtime.changed.set()
