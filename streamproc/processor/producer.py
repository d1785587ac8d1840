"""The worker's output producer: librdkafka (confluent-kafka) instead of Faust's aiokafka one.

Producing is most of a busy worker's time, and aiokafka does it in Python on the event loop;
librdkafka batches, compresses and sends on its own threads. Idempotent, so the records of each
partition keep the order in which they were handed over (barriers behind the events before them).
Made on first use, inside the running event loop that awaits its acknowledgements.
"""

from __future__ import annotations

import asyncio

from streamproc.kafka.bridge import AsyncProducer, Record
from streamproc.kafka.clients import producer_config

__all__ = ["Outputs", "Record"]


class Outputs:
    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer: AsyncProducer | None = None

    def send(self, records: list[Record]) -> asyncio.Future[None]:
        """Enqueues `records` in order; resolves once the broker has acknowledged all of them."""
        if self._producer is None:
            self._producer = AsyncProducer(
                producer_config(self._bootstrap, **{"linger.ms": 1, "queue.buffering.max.messages": 1_000_000}),
                asyncio.get_running_loop(),
                name="outputs",
            )
        return self._producer.enqueue_all(records)

    def close(self, timeout: float = 10.0) -> None:
        if self._producer is not None:
            self._producer.close(timeout)
            self._producer = None
