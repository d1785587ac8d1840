"""Follow topics outside any consumer group: read every partition to its end, then stay live.

The reader of the API's indexes (who was paged, `api.paged_reader`; the silences, `api.silences`)
and of the status index (`incidents.index`). A thread assigns every partition of its topics by
hand (it joins no consumer group and commits nothing, so every reader holds everything), from
`start_ms()` (`offsets_for_times` on the record timestamps; None: from the beginning) and hands
each record, with its timestamp, to `apply_message`. It starts over after an error: `starting()`
is called before each read, and applying records again must be harmless to a subclass that does
not start afresh there.

`caught_up` is set once the thread has read up to the end the topics had when it started;
`sync()` waits (bounded) until it has read up to the end they have now (read your writes).
Partitions added while it runs are picked up at the next restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from streamproc.kafka.security import client_config

log = logging.getLogger(__name__)

_LIST_OFFSETS_TRY = 1.0
"""Seconds one ask for the partitions' end offsets may take before it is asked again."""


class TopicFollower:
    """Subclasses say what to do with a record (`apply_message`), where to start (`start_ms`) and
    what to do now and then (`housekeeping`, called about every poll)."""

    name = "follower"

    def __init__(self, bootstrap: str, topics: tuple[str, ...], clock: Callable[[], float] = time.time) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self._clock = clock
        self._lock = threading.Condition()
        self._positions: dict[tuple[str, int], int] = {}  # next offset to read, by (topic, partition)
        self.caught_up = threading.Event()
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._admin: AdminClient | None = None

    # ------------------------------------------------------------------------------------- hooks
    def apply_message(self, topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int | None) -> None:
        """One record; `timestamp_ms` is its record timestamp (None when the record has none)."""
        raise NotImplementedError

    def starting(self) -> None:
        """Called on the reading thread, the lock held, each time a read (re)starts from `start_ms()`,
        before any of its records: a subclass that rebuilds everything from its topics clears here."""

    def start_ms(self) -> int | None:
        """Where to start reading: the first record at or after this time (ms); None: the beginning."""
        return None

    def housekeeping(self) -> None:
        """Called between polls on the reading thread."""

    def status(self) -> str:
        return "caught up" if self.caught_up.is_set() else "catching up"

    # -------------------------------------------------------------------------------- the reader
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"streamproc-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        quiet = True
        while not self.stopping.is_set():
            try:
                self._follow()
            except Exception as exc:
                # A broker that has just made the topics answers "not leader" (or has no metadata
                # for them yet) for a moment: the first failure before the topics were ever read
                # is said quietly, any other out loud.
                transient = quiet and isinstance(exc, KafkaException) and not self.caught_up.is_set()
                quiet = False
                level = logging.INFO if transient else logging.WARNING
                log.log(level, "%s: reading %s failed (%s); starting over in 1 s", self.name, self.topics, exc)
                self.stopping.wait(1.0)

    def _config(self) -> dict[str, Any]:
        return client_config(
            self.bootstrap,
            **{
                "client.id": f"streamproc-{self.name}-{os.getpid()}",
                # Never subscribed nor committed: a group id is only what librdkafka wants to see.
                "group.id": f"streamproc-{self.name}-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
            },
        )

    def _follow(self) -> None:
        consumer = Consumer(self._config())
        try:
            since_ms = self.start_ms()
            assignment: list[TopicPartition] = []
            targets: dict[tuple[str, int], int] = {}
            for topic in self.topics:
                meta = consumer.list_topics(topic, timeout=3).topics.get(topic)
                if meta is None or meta.error is not None or not meta.partitions:
                    raise KafkaException(f"topic {topic} is not available ({getattr(meta, 'error', 'missing')})")
                partitions = sorted(meta.partitions)
                found: dict[int, int] = {}
                if since_ms is not None:
                    found = {
                        tp.partition: tp.offset
                        for tp in consumer.offsets_for_times(
                            [TopicPartition(topic, p, since_ms) for p in partitions], timeout=10
                        )
                    }
                for partition in partitions:
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                    start = low if since_ms is None else found[partition]
                    if start < 0:
                        start = high  # nothing that recent: from the end
                    assignment.append(TopicPartition(topic, partition, start))
                    if high > start:
                        targets[(topic, partition)] = high
            with self._lock:
                self.starting()
                self._positions = {(tp.topic, tp.partition): tp.offset for tp in assignment}
                self._lock.notify_all()
            consumer.assign(assignment)
            if not targets:
                self.caught_up.set()
            while not self.stopping.is_set():
                msg = consumer.poll(0.2)
                if msg is None:
                    self._advance(consumer.position(assignment))
                else:
                    where, partition, offset = msg.topic(), msg.partition(), msg.offset()
                    if msg.error() is None and where is not None and partition is not None and offset is not None:
                        _kind, timestamp = msg.timestamp()
                        self.apply_message(where, msg.key(), msg.value(), timestamp if timestamp > 0 else None)
                        self._advance([TopicPartition(where, partition, offset + 1)])
                if not self.caught_up.is_set():
                    with self._lock:
                        reached = all(self._positions.get(k, 0) >= end for k, end in targets.items())
                    if reached:
                        log.info("%s: caught up with %s", self.name, ", ".join(self.topics))
                        self.caught_up.set()
                self.housekeeping()
        finally:
            consumer.close()

    def _advance(self, positions: Iterable[TopicPartition]) -> None:
        """Record how far each partition has been read (positions also move past records that
        are not data, such as transaction markers)."""
        with self._lock:
            moved = False
            for tp in positions:
                key = (tp.topic, tp.partition)
                if tp.offset >= 0 and tp.offset > self._positions.get(key, -1):
                    self._positions[key] = tp.offset
                    moved = True
            if moved:
                self._lock.notify_all()

    # ------------------------------------------------------------------------------- read your writes
    def wait_synced(self, timeout: float) -> bool:
        """Blocking: until the reader has read every partition to its end as of this call."""
        deadline = time.monotonic() + timeout
        if not self.caught_up.wait(timeout):
            return False
        with self._lock:
            partitions = list(self._positions)
        if not partitions:
            return True
        with self._lock:
            if self._admin is None:
                self._admin = AdminClient(
                    client_config(self.bootstrap, **{"client.id": f"streamproc-{self.name}-{os.getpid()}"})
                )
            admin = self._admin
        ends = self._ends(admin, partitions, deadline)
        if ends is None:
            return False
        with self._lock:
            while not self.stopping.is_set():
                if all(self._positions.get(k, 0) >= end for k, end in ends.items()):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return False

    def _ends(
        self, admin: AdminClient, partitions: list[tuple[str, int]], deadline: float
    ) -> dict[tuple[str, int], int] | None:
        """The end offset of each partition now. A failed or slow answer (a busy broker, a leader
        that moved) is asked again, each try bounded, until `deadline`; None when none came."""
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        error: BaseException | None = None
        while (remaining := deadline - time.monotonic()) > 0 and not self.stopping.is_set():
            attempt = min(remaining, _LIST_OFFSETS_TRY)
            futures = admin.list_offsets({TopicPartition(t, p): latest for t, p in partitions}, request_timeout=attempt)
            try:
                return {
                    (tp.topic, tp.partition): future.result(timeout=attempt).offset for tp, future in futures.items()
                }
            except Exception as exc:
                error = exc
        log.warning("%s: could not read the ends of %s (%r)", self.name, self.topics, error)
        return None

    async def sync(self, timeout: float = 3.0) -> bool:
        """Until the reader reflects everything on its topics as of now (False: not within `timeout`)."""
        return await asyncio.to_thread(self.wait_synced, timeout)
