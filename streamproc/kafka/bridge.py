"""A confluent-kafka Producer for asyncio code: each record's delivery report resolves a future.

librdkafka calls delivery reports from `poll()`; a background thread polls and hands each
report to the event loop. Used by the senders (delivery log) and the HTTP API (events), both
of which must not answer or move on before the broker has a record.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer


class AsyncProducer:
    def __init__(self, config: dict[str, Any], loop: asyncio.AbstractEventLoop, name: str = "producer") -> None:
        self._loop = loop
        self.producer = Producer(config)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def enqueue(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[None]:
        """Hands the record to librdkafka; the future resolves once the broker has it (or raises
        KafkaException). Raises BufferError when the local queue is full."""
        future: asyncio.Future[None] = self._loop.create_future()

        def report(err: KafkaError | None, _msg: Any) -> None:
            def settle() -> None:
                if future.done():
                    return
                if err is None:
                    future.set_result(None)
                else:
                    future.set_exception(KafkaException(err))

            self._loop.call_soon_threadsafe(settle)

        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": report}
        if partition is not None:
            kwargs["partition"] = partition
        if headers:
            kwargs["headers"] = headers
        self.producer.produce(topic, **kwargs)
        return future

    async def produce(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Resolves once the broker has the record (raises if it could not be written).
        Waits while librdkafka's local queue is full."""
        raw_key = key.encode() if isinstance(key, str) else key
        while True:
            try:
                future = self.enqueue(topic, raw_key, value, partition, headers)
                break
            except BufferError:  # local queue full: let it drain
                await asyncio.sleep(0.05)
        await future

    def close(self, timeout: float = 10.0) -> None:
        self.producer.flush(timeout)
        self._stop.set()
        self._thread.join(timeout)
