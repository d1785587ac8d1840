"""A confluent-kafka Producer for asyncio code: each record's delivery report resolves a future.

librdkafka calls delivery reports from `poll()`; a background thread polls and hands each
report to the event loop. Used by the senders (delivery log) and the HTTP API (events), both
of which must not answer or move on before the broker has a record.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

Record = tuple[str, bytes | None, bytes | None, int | None, list[tuple[str, bytes]] | None]
"""(topic, key, value, partition, headers), as `AsyncProducer.enqueue_all` takes them; a value of
None is a tombstone (compacted topics)."""


def _settle_all(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class AsyncProducer:
    def __init__(self, config: dict[str, Any], loop: asyncio.AbstractEventLoop, name: str = "producer") -> None:
        self._loop = loop
        self._batch: list[tuple[Record, asyncio.Future[None]]] | None = None
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

    def enqueue_all(self, records: list[Record]) -> asyncio.Future[None]:
        """Hands (topic, key, value, partition, headers) records to librdkafka in order; the one
        future resolves once the broker has all of them, or raises with the first error. One
        hand-over to the event loop per call, not per record (the worker's batches are large).
        When librdkafka's local queue is full it blocks (the calling thread) until the polling
        thread has drained some: back-pressure that only a very large backlog reaches."""
        future: asyncio.Future[None] = self._loop.create_future()
        if not records:
            future.set_result(None)
            return future
        outstanding = [len(records)]
        errors: list[KafkaError] = []

        def settle() -> None:
            if future.done():
                return
            if errors:
                future.set_exception(KafkaException(errors[0]))
            else:
                future.set_result(None)

        def report(err: KafkaError | None, _msg: Any) -> None:  # on the polling thread
            if err is not None:
                errors.append(err)
            outstanding[0] -= 1
            if outstanding[0] == 0:
                self._loop.call_soon_threadsafe(settle)

        produce = self.producer.produce
        for topic, key, value, partition, headers in records:
            kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": report}
            if partition is not None:
                kwargs["partition"] = partition
            if headers:
                kwargs["headers"] = headers
            while True:
                try:
                    produce(topic, **kwargs)
                    break
                except BufferError:
                    time.sleep(0.01)
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

    def write(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[None]:
        """Like `produce` (the future resolves once the broker has the record), but records
        written in the same turn of the event loop are handed to librdkafka together, by
        `enqueue_all` at the end of the turn: one delivery future and one hand-over back to
        the loop for all of them, not one per record. A failure fails every record of its
        batch (the first error). Call it on the loop."""
        raw_key = key.encode() if isinstance(key, str) else key
        future: asyncio.Future[None] = self._loop.create_future()
        batch = self._batch
        if batch is None:
            batch = self._batch = []
            self._loop.call_soon(self._write_batch)
        batch.append(((topic, raw_key, value, partition, headers), future))
        return future

    def _write_batch(self) -> None:
        batch = self._batch or []
        self._batch = None
        waiters = [future for _record, future in batch]
        try:
            done = self.enqueue_all([record for record, _future in batch])
        except Exception as exc:
            _settle_all(waiters, exc)
            return
        done.add_done_callback(
            lambda f: _settle_all(waiters, asyncio.CancelledError() if f.cancelled() else f.exception())
        )

    def close(self, timeout: float = 10.0) -> None:
        self.producer.flush(timeout)
        self._stop.set()
        self._thread.join(timeout)
