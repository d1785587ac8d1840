"""The one topic reader of the tests, and topic creation.

`read` reads every partition of its topics from the beginning with a consumer of its own (no
group, nothing committed), either up to the end offsets as they are when it is called (whatever
Kafka acknowledged before is there), or until a condition on what it read holds.
"""

from __future__ import annotations

import json
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streamproc.processor.catchup import barrier_token

if TYPE_CHECKING:
    from tests.harness.procs import Proc

T = TypeVar("T")


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    timestamp: int
    """ms: the record's time (create or append time, as the topic keeps it)"""

    @property
    def json(self) -> Any:
        """The value as JSON; None for an empty value (a tombstone, a processor's barrier)."""
        return json.loads(self.value) if self.value else None

    @property
    def barrier(self) -> bool:
        """One of the processor's catch-up barriers (docs/architecture.md), not an event."""
        return barrier_token(list(self.headers.items())) is not None


def read(
    bootstrap: str,
    topics: str | Iterable[str],
    until: Callable[[list[T]], object] | None = None,
    *,
    convert: Callable[[Record], T | None] = lambda r: r,  # type: ignore[assignment,return-value]
    settle: float = 0.0,
    quiet: float = 0.0,
    timeout: float = 30.0,
    must: bool = True,
    watch: Iterable[Proc] = (),
) -> list[T]:
    """`convert(record)` of each record of `topics` from the beginning (None: left out), per
    partition in offset order.

    until=None: up to the end offsets as of this call.
    until=f: until `f(records)` holds; then `settle` more seconds (to see records that must not be
    there), or until nothing new arrived for `quiet` seconds.
    At `timeout`: AssertionError when `must`, else what was read by then; AssertionError at once
    when one of the processes of `watch` exits (with the end of its log)."""
    watched = list(watch)
    names = [topics] if isinstance(topics, str) else list(topics)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"harness-read-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            "fetch.wait.max.ms": 20,
        }
    )
    out: list[T] = []
    deadline = time.monotonic() + timeout
    try:
        partitions = [TopicPartition(t, p) for t in names for p in _partitions(consumer, t, deadline)]
        ends: dict[tuple[str, int], int] = {}
        if until is None:
            for tp in partitions:
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                if high > low:
                    ends[(tp.topic, tp.partition)] = high
            partitions = [tp for tp in partitions if (tp.topic, tp.partition) in ends]
            if not partitions:
                return out
        consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in partitions])
        done_at: float | None = None
        last_new = checked_at = time.monotonic()
        checked_len = -1
        while True:
            msg = consumer.poll(0.05)
            now = time.monotonic()
            if msg is not None and msg.error() is None:
                last_new = now
                record = Record(
                    msg.topic() or "",
                    msg.partition() or 0,
                    msg.offset() or 0,
                    msg.key(),
                    msg.value(),
                    _headers(msg.headers()),
                    msg.timestamp()[1],
                )
                if until is None and record.offset + 1 >= ends.get((record.topic, record.partition), 0):
                    ends.pop((record.topic, record.partition), None)
                converted = convert(record)
                if converted is not None:
                    out.append(converted)
            if until is None:
                if not ends:
                    return out
            else:
                # The condition is asked again when something new was read and the stream paused
                # (or 0.2 s passed): asked after every record, a long read would cost n².
                if done_at is None and len(out) != checked_len and (msg is None or now - checked_at > 0.2):
                    checked_at, checked_len = now, len(out)
                    if until(out):
                        done_at = now
                if done_at is not None and now - done_at >= settle and now - last_new >= quiet:
                    return out
            for proc in watched:
                proc.check_alive()
            if now > deadline:
                if not must:
                    return out
                left = f"partitions {sorted(ends)} not read to their end" if until is None else "the condition"
                raise AssertionError(f"{', '.join(names)}: {left} within {timeout} s ({len(out)} records read)")
    finally:
        consumer.close()


def _headers(headers: Any) -> dict[str, bytes]:
    """A record's headers (a list of (name, value) from librdkafka) by name; a value-less one as b""."""
    return {str(name): bytes(value or b"") for name, value in headers or []}


def _partitions(consumer: Consumer, topic: str, deadline: float) -> list[int]:
    """The partitions of `topic`, waiting for it to exist (a process under test may create it)."""
    while True:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None and meta.partitions:
            return sorted(meta.partitions)
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {topic} does not exist")
        time.sleep(0.05)


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[tuple[bytes | None, Any]]:
    """(key, JSON value) of every record of `topic` up to its end now."""
    return read(bootstrap, topic, convert=lambda r: (r.key, r.json), timeout=timeout)


def json_values(record: Record) -> Any:
    """`convert` for `read`: the JSON value, leaving out empty records (tombstones, barriers)."""
    return record.json


def unique_name(prefix: str) -> str:
    """A topic / group name no other test (or earlier session) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(
    bootstrap: str, name: str, partitions: int, config: dict[str, str] | None = None, timeout: float = 30.0
) -> None:
    """Create `name` with `partitions` partitions (replication factor 1) and wait until every
    partition has a leader, so producers/consumers can use it right away. An existing topic with
    the same partition count is accepted."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout,
    )
    try:
        futures[name].result(timeout=timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    deadline = time.monotonic() + timeout
    while True:
        topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {name!r} not ready after {timeout} s: {topic}")
        time.sleep(0.05)


def free_ports(count: int) -> int:
    """A port p with p .. p + count - 1 free, for a broker of tools/kafka/kafka.sh (its client port
    and the controller's, p + 1; a SASL_SSL listener next). Chosen below Linux's ephemeral range
    (32768 and up): a port from there, free when checked, can be taken by the next outgoing
    connection before the broker binds it (seen: "failed to bind to 127.0.0.1:36822")."""
    for _ in range(200):
        port = random.randrange(20000, 32000 - count)
        if all(_bindable(p) for p in range(port, port + count)):
            return port
    raise RuntimeError(f"no {count} free ports in a row below 32000")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
