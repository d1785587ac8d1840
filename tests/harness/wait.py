"""Waiting on a condition, never on the clock alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient

if TYPE_CHECKING:
    from tests.harness.procs import Proc

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str | Callable[[], str],
    *,
    interval: float = 0.05,
    procs: Iterable[Proc] = (),
) -> T:
    """`predicate()`'s first true value, asked every `interval` s; AssertionError after `timeout` s,
    or as soon as one of `procs` has exited (with the tail of its log)."""
    deadline = time.monotonic() + timeout
    watched = list(procs)
    while True:
        value = predicate()
        if value:
            return value
        for proc in watched:
            proc.check_alive()
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what if isinstance(what, str) else what()}")
        time.sleep(interval)


def group_assigned(bootstrap: str, group: str, members: int | None = None) -> bool:
    """Whether consumer group `group` is stable (with `members` members, when given) and each of its
    members has partitions: what a consumer of it will read from now on, it reads."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        info: Any = admin.describe_consumer_groups([group])[group].result(timeout=5)
    except Exception:  # not there yet
        return False
    return bool(
        info.state == ConsumerGroupState.STABLE
        and (members is None or len(info.members) == members)
        and info.members
        and all(m.assignment.topic_partitions for m in info.members)
    )


def committed_to_end(bootstrap: str, group: str, topic: str) -> bool:
    """Whether consumer group `group` has committed every partition of `topic` up to its end now:
    it has handled every record there."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = [TopicPartition(topic, p) for p in meta.partitions]
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions]
        committed = consumer.committed(partitions, timeout=10)
        return all(c.offset >= end for c, end in zip(committed, ends, strict=True) if end > 0)
    finally:
        consumer.close()
