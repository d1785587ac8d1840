"""The `flood` stage (spec §7), keyed by user: downgrade, then batching.

Messages that flood control could change arrive from `escalate` on `streamproc.flood`, with the
claims and resolves of the instances a user was sent batching messages of; batch times come back
as tick records on the same topic (the ticker). Same rules as `escalate`: outputs acknowledged
before the state is written. Users' states are kept in memory between batches
(`Runtime.flood_states`): in a storm a state holds every held message.
"""

from __future__ import annotations

from typing import Any

from streamproc.flood import UserFloodState
from streamproc.kafka.headers import correlation_headers, correlation_of
from streamproc.processor.batches import records
from streamproc.processor.faustfix import make_current
from streamproc.processor.producer import Outputs, Record
from streamproc.processor.records import load_flood_state, on_flood_record
from streamproc.processor.runtime import Runtime
from streamproc.processor.worklog import now_us


class FloodStage:
    def __init__(self, runtime: Runtime, table: Any, outputs: Outputs) -> None:
        self.runtime, self.table, self.outputs = runtime, table, outputs

    async def on_batch(self, batch: list[Any]) -> None:
        runtime = self.runtime
        states: dict[bytes, tuple[Any, UserFloodState | None, bool]] = {}
        pending: list[Record] = []
        for event in batch:
            key: bytes | None = event.key
            if key is None:
                continue
            make_current(event)
            if key in states:
                _, state, changed = states[key]
            elif key in runtime.flood_states:
                state, changed = runtime.flood_states[key], False
            else:
                state, changed = load_flood_state(self.table.get(key)), False
            message = event.message
            processed = on_flood_record(runtime.flood, state, event.value, now_us(), message.partition, message.offset)
            states[key] = (event, processed.state, changed or processed.changed)
            pending.extend(records(processed.outputs, correlation_headers(correlation_of(message.headers))))
        await self.outputs.send(pending)
        for key, (event, state, changed) in states.items():
            if changed and state is not None:
                make_current(event)
                self.table[key] = state.model_dump_json().encode()
            runtime.flood_states[key] = state
            runtime.set_wake(
                key.decode(),
                event.message.partition,
                state.wake_at if state is not None else None,
                runtime.flood_schedule,
            )
