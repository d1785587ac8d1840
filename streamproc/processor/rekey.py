"""Stage 1, `rekey`: what any client wrote to `streamproc.incidents`, re-keyed into `streamproc.events`.

Any producer, any partitioner, any key (or none): every valid event is re-produced keyed by its
incident id on the partition `topics.partition_for` gives; bad input goes to the dead-letter topic
(`records.on_incident_record`). The batch's acknowledgements are awaited before Faust may commit
its offsets, so a crash repeats an event (harmless: same `event_id`, same `at`) but never skips
one, and each source partition's order is kept (one request in flight per partition).
"""

from __future__ import annotations

from typing import Any

from streamproc.kafka import topics
from streamproc.kafka.headers import BARRIER_HEADER, correlation_headers, correlation_of, new_correlation_id
from streamproc.processor import metrics
from streamproc.processor.batches import records
from streamproc.processor.catchup import barrier_token
from streamproc.processor.producer import Outputs, Record
from streamproc.processor.records import Output, on_incident_record
from streamproc.processor.runtime import Runtime
from streamproc.processor.worklog import log_rekeyed, now_us


class RekeyStage:
    def __init__(self, runtime: Runtime, outputs: Outputs, partitions: int) -> None:
        self.runtime, self.outputs, self.partitions = runtime, outputs, partitions

    def barriers(self, topic: str, owned: set[int], token: bytes) -> list[Record]:
        """Catch-up barriers (`catchup.py`), one per owned partition of `topic`."""
        return records([Output(topic, None, b"", p) for p in sorted(owned)], [(BARRIER_HEADER, token)])

    async def on_batch(self, batch: list[Any]) -> None:
        pending: list[Record] = []
        done: list[tuple[list[Output], str, int, int]] = []
        runtime = self.runtime
        for event in batch:
            message = event.message
            token = barrier_token(message.headers)
            if token is not None:
                if runtime.catchup.incidents_read(message.partition, token):
                    # Behind everything re-keyed before it.
                    pending.extend(self.barriers(topics.EVENTS, runtime.catchup.events, token))
                continue
            timestamp = round(message.timestamp * 1000) * 1000
            # The correlation id comes with the record (the API, or any client, sets the header)
            # or is made here; it goes on with the event.
            correlation_id = correlation_of(message.headers) or new_correlation_id()
            rekeyed = on_incident_record(
                runtime.engine, event.key, event.value, timestamp, message.partition, message.offset, self.partitions
            )
            pending.extend(records(rekeyed, correlation_headers(correlation_id)))
            done.append((rekeyed, correlation_id, message.partition, message.offset))
        await self.outputs.send(pending)
        for event in batch:
            runtime.backlog.read_incident(event.message.partition, event.message.offset)
        if runtime.lagging:
            runtime.changed.set()
        now = now_us()
        for rekeyed, correlation_id, source_partition, offset in done:
            metrics.count(rekeyed, now)
            log_rekeyed(rekeyed[0], correlation_id, source_partition, offset)
