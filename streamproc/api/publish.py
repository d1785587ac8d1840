"""Writes events to `streamproc.incidents` and waits until the broker has every one of them.

The producer is idempotent with acks=all; `message.timeout.ms` is the configured produce
timeout, so a write Kafka cannot take fails within it and the caller answers 503. A request's
events are all validated before any is produced (nothing of an invalid batch is written); a
batch Kafka fails part-way is answered 503 as a whole, and the events that did get in are
harmless to send again: triggers of an open incident are absorbed, claims and resolves are
idempotent, and an `event_id` makes any re-delivered event a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaException

from streamproc.api.errors import Unavailable
from streamproc.kafka import topics
from streamproc.kafka.bridge import AsyncProducer
from streamproc.kafka.clients import producer_config
from streamproc.kafka.headers import correlation_headers
from streamproc.logs import context
from streamproc.wire.events import AnyEvent

log = logging.getLogger(__name__)


def event_bytes(event: AnyEvent) -> bytes:
    """Compact JSON in UTF-8 (pydantic-core's serializer: some 4x faster than model_dump + json.dumps)."""
    return event.model_dump_json(exclude_none=True).encode()


class Publisher:
    def __init__(self, bootstrap: str, timeout: float, topic: str = topics.INCIDENTS) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self.topic = topic
        self._producer: AsyncProducer | None = None
        self._ready_at = 0.0
        self._ready = False

    def _get(self) -> AsyncProducer:
        if self._producer is None:
            config = producer_config(
                self.bootstrap,
                **{"message.timeout.ms": int(self.timeout * 1000), "client.id": "streamproc-api"},
            )
            self._producer = AsyncProducer(config, asyncio.get_running_loop(), name="api-producer")
        return self._producer

    async def publish(self, events: Sequence[AnyEvent]) -> None:
        """Returns once the broker acknowledged every event; raises Unavailable otherwise."""
        producer = self._get()
        futures: list[asyncio.Future[None]] = []
        headers = correlation_headers(context().get("correlation_id"))  # the request's (api/server.py)
        try:
            for event in events:
                futures.append(producer.enqueue(self.topic, event.key.encode(), event_bytes(event), None, headers))
        except BufferError as exc:
            raise Unavailable(f"the producer queue is full ({exc})") from exc
        except KafkaException as exc:
            raise Unavailable(str(exc.args[0])) from exc
        try:
            async with asyncio.timeout(self.timeout + 2.0):
                results = await asyncio.gather(*futures, return_exceptions=True)
        except TimeoutError as exc:
            raise Unavailable(f"no acknowledgement within {self.timeout:g} s") from exc
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            first = failures[0]
            error = first.args[0] if isinstance(first, KafkaException) and first.args else first
            if getattr(error, "fatal", lambda: False)():
                log.error("producer fatal error (%s): starting a new producer", error)
                self._replace()
            raise Unavailable(f"{len(failures)} of {len(futures)} event(s) not written: {error}")
        if log.isEnabledFor(logging.INFO):
            ids = list(dict.fromkeys(e.key for e in events))
            fields = {"incident_id": ids[0]} if len(ids) == 1 else {"incident_ids": ids}
            log.info(
                "%d event(s) written: %s",
                len(events),
                ", ".join(e.type for e in events),
                extra={**fields, "application": events[0].application if events else None},
            )

    def _replace(self) -> None:
        old, self._producer = self._producer, None
        if old is not None:
            old.close(0)

    async def ready(self) -> tuple[bool, str]:
        """Whether the broker answers and the incidents topic has leaders (cached for a second)."""
        now = time.monotonic()
        if now - self._ready_at < 1.0:
            return self._ready, "cached"
        producer = self._get()

        def probe() -> tuple[bool, str]:
            try:
                meta = producer.producer.list_topics(topic=self.topic, timeout=2)
            except KafkaException as exc:
                return False, str(exc.args[0])
            topic: Any = meta.topics.get(self.topic)
            if topic is None or topic.error is not None:
                return False, f"topic {self.topic}: {getattr(topic, 'error', 'missing')}"
            if not topic.partitions or any(p.leader < 0 for p in topic.partitions.values()):
                return False, f"topic {self.topic}: partitions without a leader"
            return True, "ok"

        self._ready, reason = await asyncio.to_thread(probe)
        self._ready_at = time.monotonic()
        return self._ready, reason

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(self.timeout)
            self._producer = None
