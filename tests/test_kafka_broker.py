"""Smoke test of the real broker: keyed produce + consumer-group consume round trip."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from tests.harness import create_topic, unique_name

pytestmark = pytest.mark.kafka

N_RECORDS = 100
N_KEYS = 25  # 4 records per key, so "same key -> same partition" is actually tested
PARTITIONS = 4


def _text(raw: bytes | str | None) -> str:
    assert isinstance(raw, bytes)
    return raw.decode()


def _partition(msg: Message) -> int:
    partition = msg.partition()
    assert partition is not None
    return partition


def test_keyed_produce_consume_roundtrip(kafka_bootstrap: str) -> None:
    topic = unique_name("broker-smoke")
    create_topic(kafka_bootstrap, topic, PARTITIONS)

    sent = [(f"incident-{i % N_KEYS}", f"value-{i}") for i in range(N_RECORDS)]
    delivered: dict[str, set[int]] = defaultdict(set)  # key -> partitions from the delivery reports
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(err)
        else:
            delivered[_text(msg.key())].add(_partition(msg))

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for key, value in sent:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "not all records were delivered within 30 s"
    assert errors == []

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": unique_name("broker-smoke-group"),
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[tuple[str, str, int]] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(received) < N_RECORDS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received.append((_text(msg.key()), _text(msg.value()), _partition(msg)))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()

    # Every record arrived exactly once.
    assert len(received) == N_RECORDS
    assert sorted((k, v) for k, v, _ in received) == sorted(sent)

    # Same key -> same partition (consumer side agrees with the producer's delivery reports),
    # and per-key order is preserved.
    consumed_partitions: dict[str, set[int]] = defaultdict(set)
    for key, _, partition in received:
        consumed_partitions[key].add(partition)
    assert all(len(p) == 1 for p in consumed_partitions.values()), consumed_partitions
    assert consumed_partitions == delivered
    for key in {k for k, _ in sent}:
        assert [v for k, v, _ in received if k == key] == [v for k, v in sent if k == key]

    # The keys are really spread over the partitions (murmur2 partitioner, deterministic).
    assert len(set().union(*consumed_partitions.values())) > 1
