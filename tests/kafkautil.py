"""Small helpers for tests that talk to the real Kafka broker (see the `kafka_bootstrap` fixture).

Import from tests as ``from tests.kafkautil import create_topic, unique_name``.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


def unique_name(prefix: str) -> str:
    """A topic / group name no other test (or earlier session) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(
    bootstrap: str,
    name: str,
    partitions: int,
    config: dict[str, str] | None = None,
    timeout: float = 30.0,
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
        time.sleep(0.1)
