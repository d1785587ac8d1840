"""Read a topic's recent records back, up to its end as it is now: a bounded read, outside any
consumer group, for state rebuilt on start or on a partition's assignment (the senders' delivered
ids). Following a topic and staying live is `kafka.follow.TopicFollower`'s job.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamproc.kafka.clients import consumer_config

log = logging.getLogger(__name__)

START_OFFSETS_PATIENCE = 30.0
"""Seconds `start_offsets` keeps asking while the broker cannot answer."""


def start_offsets(consumer: Consumer, topic: str, partitions: Iterable[int], since: float) -> list[TopicPartition]:
    """Per partition, the first offset at or after `since` (epoch seconds); partitions with
    nothing that recent are left out."""
    wanted = [TopicPartition(topic, p, int(since * 1000)) for p in partitions]
    deadline = time.monotonic() + START_OFFSETS_PATIENCE
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


def read_recent(
    bootstrap: str,
    topic: str,
    partitions: Iterable[int] | None,
    since: float,
    *,
    group: str,
    client: str,
    timeout: float = 30.0,
) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of the records of `topic` from `since` (epoch seconds) on the
    given partitions (all when None), up to the end as it is now, in each partition's order.
    `group` prefixes the (never joined, never committed) group id, `client` is the client id.
    Blocking; a partition not read to its end within `timeout` is logged as an error."""
    consumer = Consumer(
        consumer_config(
            bootstrap,
            f"{group}-{uuid.uuid4().hex[:8]}",
            **{
                "client.id": client,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 50,  # reach the end sooner: whoever asked waits for this read
            },
        )
    )
    records: list[tuple[int, int, bytes]] = []
    try:
        if partitions is None:
            partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        starts = start_offsets(consumer, topic, partitions, since)
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
                if partition is not None and offset is not None:
                    records.append((partition, offset, msg.value() or b""))
                    if partition in ends and offset + 1 >= ends[partition]:
                        del ends[partition]
            elif error.code() == KafkaError._PARTITION_EOF and partition is not None:
                ends.pop(partition, None)
        if ends:
            log.error("reading back %s timed out with partitions %s unread", topic, sorted(ends))
    finally:
        consumer.close()
    return records


__all__ = ["read_recent", "start_offsets"]
