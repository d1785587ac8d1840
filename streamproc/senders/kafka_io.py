"""The senders' Kafka plumbing (confluent-kafka): topics, the delivery log, offsets,
the rebuild of delivered ids, and the follower of claim/resolve audit records.

At most once per message id rests on one ordering, per message:

    vendor call returns -> delivery record acknowledged by the broker -> offset committable

A worker killed after the record is acknowledged loses nothing: whoever takes the
partition over re-reads the same-numbered partition of `streamproc.deliveries` before
consuming and skips the ids found there. The one window left is between the vendor's
answer and the broker's acknowledgement of the record (a produce round trip, a few ms on
a healthy cluster; `linger.ms` is kept small for this reason). A kill inside it sends
that page again. Recording *before* the call would close it, but would turn a crash into
a page never sent, which is the worse failure for an on-call system.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pydantic import ValidationError

from streamproc.kafka import admin, security
from streamproc.kafka import topics as names
from streamproc.kafka.bridge import AsyncProducer
from streamproc.kafka.deliveries import delivery_bytes
from streamproc.kafka.headers import correlation_headers
from streamproc.senders.claims import Claims
from streamproc.senders.pending import Pending
from streamproc.wire.deliveries import Delivery, parse_delivery
from streamproc.wire.outcomes import Audit, Message, outcome_dict

log = logging.getLogger(__name__)

CRASH_ENV = "STREAMPROC_SENDER_CRASH_AFTER_RECORDS"
"""Test hook: SIGKILL this process right after the Nth `sent` record is acknowledged,
before its offset can be committed (the worst moment that must not cause a second page)."""

AUDIT_KINDS = frozenset({"triggered", "claimed", "unclaimed", "resolved", "absorbed"})


@dataclass(frozen=True)
class Topics:
    """Topic names, with an optional prefix so tests (and side-by-side stacks) stay apart."""

    prefix: str = ""

    def messages(self, mode: str) -> str:
        return self.prefix + names.messages_topic(mode)

    @property
    def deliveries(self) -> str:
        return self.prefix + names.DELIVERIES

    @property
    def outcomes(self) -> str:
        return self.prefix + names.OUTCOMES


def client_config(bootstrap: str) -> dict[str, Any]:
    return security.client_config(bootstrap, **{"client.id": f"streamproc-sender-{os.getpid()}"})


# ------------------------------------------------------------------------------------------ topics
def ensure_topics(bootstrap: str, modes: Iterable[str], topics: Topics, timeout: float = 30.0) -> dict[str, int]:
    """The senders' topics, made and checked by `kafka.admin.ensure_topics`: the message topics of
    `modes` (and email's, for fallbacks) co-partitioned with the deliveries topic, and outcomes."""
    wanted = {
        **admin.message_topics([*modes, "email"], topics.messages, topics.deliveries, names.DEFAULT_PARTITIONS),
        topics.outcomes: admin.TopicSpec(names.DEFAULT_PARTITIONS),
    }
    return admin.ensure_topics(bootstrap, timeout=timeout, wanted=wanted)


# ----------------------------------------------------------------------------------- the producer
def sender_producer(bootstrap: str, loop: asyncio.AbstractEventLoop) -> AsyncProducer:
    """The senders' producer: idempotent (acks=all, no duplicates from retries), short linger
    (the crash window is one produce round trip), Java-compatible partitioner (other clients
    key by user)."""
    return AsyncProducer(
        {
            **client_config(bootstrap),
            "enable.idempotence": True,
            "linger.ms": 2,
            "partitioner": "murmur2_random",
            "message.timeout.ms": 60000,
        },
        loop,
        name="sender-producer",
    )


# ------------------------------------------------------------------------------------------ offsets
class OffsetTracker:
    """Which offsets of each partition are settled, and so what may be committed: the lowest
    offset still unsettled (or one past the highest read). Thread-safe: offsets are tracked
    by the consumer thread and settled on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, deque[int]] = {}
        self._settled: dict[int, set[int]] = {}
        self._next: dict[int, int] = {}

    def track(self, partition: int, offset: int) -> None:
        with self._lock:
            self._pending.setdefault(partition, deque()).append(offset)
            self._settled.setdefault(partition, set())
            self._next[partition] = offset + 1

    def done(self, partition: int, offset: int) -> None:
        with self._lock:
            pending = self._pending.get(partition)
            if pending is None:
                return  # revoked meanwhile; its record is written, which is what matters
            settled = self._settled[partition]
            settled.add(offset)
            while pending and pending[0] in settled:
                settled.discard(pending.popleft())

    def committable(self, partitions: Iterable[int] | None = None) -> dict[int, int]:
        with self._lock:
            chosen = self._next if partitions is None else [p for p in partitions if p in self._next]
            return {p: (self._pending[p][0] if self._pending[p] else self._next[p]) for p in chosen}

    def forget(self, partitions: Iterable[int]) -> None:
        with self._lock:
            for partition in partitions:
                self._pending.pop(partition, None)
                self._settled.pop(partition, None)
                self._next.pop(partition, None)


# ------------------------------------------------------------------------------------- the sink
class KafkaSink:
    """The pipeline's `Sink` on Kafka, for one mode."""

    def __init__(
        self,
        producer: AsyncProducer,
        tracker: OffsetTracker,
        topics: Topics,
        co_partitioned: bool,
        email_co_partitioned: bool,
    ) -> None:
        self._producer = producer
        self._tracker = tracker
        self._topics = topics
        self._co_partitioned = co_partitioned
        self._email_co_partitioned = email_co_partitioned
        crash_after = os.environ.get(CRASH_ENV)
        self._crash_after = int(crash_after) if crash_after else None
        self._sent = 0

    async def record(self, delivery: Delivery, pending: Pending) -> None:
        partition = pending.partition if self._co_partitioned else None
        # `write`: the records of sends settled in the same turn of the loop go to the broker together.
        await self._producer.write(
            self._topics.deliveries,
            pending.message.user,
            delivery_bytes(delivery),
            partition,
            correlation_headers(pending.correlation_id),
        )
        if delivery.status == "sent" and self._crash_after is not None:
            self._sent += 1
            if self._sent >= self._crash_after:
                log.warning("%s=%d: killing this worker before the commit", CRASH_ENV, self._crash_after)
                os.kill(os.getpid(), signal.SIGKILL)

    async def requeue(self, message: Message, pending: Pending) -> None:
        partition = pending.partition if self._email_co_partitioned else None
        body = json.dumps(outcome_dict(message), separators=(",", ":"), ensure_ascii=False).encode()
        await self._producer.write(
            self._topics.messages("email"), message.user, body, partition, correlation_headers(pending.correlation_id)
        )

    def done(self, pending: Pending) -> None:
        self._tracker.done(pending.partition, pending.offset)


# ------------------------------------------------------------------------------------- read-backs
def _start_offsets(consumer: Consumer, topic: str, partitions: Iterable[int], since: float) -> list[TopicPartition]:
    """Per partition, the first offset at or after `since` (epoch seconds); partitions with
    nothing that recent are left out."""
    wanted = [TopicPartition(topic, p, int(since * 1000)) for p in partitions]
    deadline = time.monotonic() + 30
    while True:
        try:
            found = consumer.offsets_for_times(wanted, timeout=10)
            return [tp for tp in found if tp.offset >= 0]
        except KafkaException as exc:
            # Fresh topics answer NOT_LEADER_FOR_PARTITION for a moment (librdkafka does not
            # flag it retriable here); a broker restart does too. Retry anything, for a while.
            if time.monotonic() > deadline:
                raise
            log.info("offsets for %s not available yet (%s); retrying", topic, exc)
            time.sleep(0.2)


def read_delivered(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int] | None,
    window: float,
    timeout: float = 30.0,
) -> list[Delivery]:
    """Delivery records of the last `window` seconds on the given partitions (all when
    None), up to the end as it is now. Blocking; runs in the consumer thread on assign."""
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": f"streamproc-sender-rebuild-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 50,  # reach the end sooner: assignment waits for this read
        }
    )
    records: list[Delivery] = []
    try:
        if partitions is None:
            partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        starts = _start_offsets(consumer, topic, partitions, time.time() - window)
        ends = {}
        for tp in starts:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > tp.offset:
                ends[tp.partition] = high
        starts = [tp for tp in starts if tp.partition in ends]
        if not starts:
            return records
        consumer.assign(starts)
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            partition, offset, error = msg.partition(), msg.offset(), msg.error()
            if error is None:
                try:
                    records.append(parse_delivery(msg.value() or b""))
                except ValidationError:
                    log.warning("skipping a bad record on %s[%s]@%s", topic, partition, offset)
                if partition in ends and offset is not None and offset + 1 >= ends[partition]:
                    del ends[partition]
            elif error.code() == KafkaError._PARTITION_EOF and partition is not None:
                ends.pop(partition, None)
        if ends:
            log.error("rebuild of %s timed out with partitions %s unread", topic, sorted(ends))
    finally:
        consumer.close()
    return records


class OutcomesFollower(threading.Thread):
    """Follows `streamproc.outcomes` from `window` seconds ago and feeds claim/resolve audit
    records to `Claims` on the event loop. Never commits: every worker reads it all."""

    def __init__(
        self, bootstrap: str, topic: str, claims: Claims, loop: asyncio.AbstractEventLoop, window: float
    ) -> None:
        super().__init__(name="sender-outcomes", daemon=True)
        self._servers = bootstrap
        self._topic = topic
        self._claims = claims
        self._loop = loop
        self._window = window
        self.stopping = threading.Event()
        self.caught_up = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._follow()
            except Exception:
                # Start over from the window's beginning: applying audits again is harmless.
                log.exception("outcomes follower failed; starting over in 1s")
                self.stopping.wait(1.0)

    def _follow(self) -> None:
        consumer = Consumer(
            {
                **client_config(self._servers),
                "group.id": f"streamproc-sender-outcomes-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
            }
        )
        try:
            partitions = list(consumer.list_topics(self._topic, timeout=10).topics[self._topic].partitions)
            starts = {tp.partition: tp.offset for tp in _start_offsets(
                consumer, self._topic, partitions, time.time() - self._window
            )}  # fmt: skip
            targets: dict[int, int] = {}
            for p in partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(self._topic, p), timeout=10)
                starts.setdefault(p, high)  # nothing recent: from the end as it is now
                if high > starts[p]:
                    targets[p] = high
            consumer.assign([TopicPartition(self._topic, p, starts[p]) for p in partitions])
            if not targets:
                self.caught_up.set()
            while not self.stopping.is_set():
                msg = consumer.poll(0.2)
                if msg is None or msg.error() is not None:
                    continue
                self._apply(msg.value())
                partition, offset = msg.partition(), msg.offset()
                if not self.caught_up.is_set() and partition in targets and offset is not None:
                    if offset + 1 >= targets[partition]:
                        del targets[partition]
                    if not targets:
                        self.caught_up.set()
        finally:
            consumer.close()

    def _apply(self, value: bytes | None) -> None:
        try:
            data = json.loads(value or b"")
        except ValueError:
            return
        if not isinstance(data, dict) or data.get("kind") not in AUDIT_KINDS:
            return  # other outcomes (undeliverable, dropped, exhausted) share the topic
        try:
            audit = Audit.model_validate(data)
        except ValidationError:
            return
        self._loop.call_soon_threadsafe(self._claims.apply, audit)


__all__ = [
    "CRASH_ENV",
    "KafkaSink",
    "OffsetTracker",
    "OutcomesFollower",
    "Topics",
    "ensure_topics",
    "read_delivered",
    "sender_producer",
]
