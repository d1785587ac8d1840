"""Small helpers for tests that talk to the real Kafka broker (see the `kafka_bootstrap` fixture).

Import from tests as ``from tests.kafkautil import create_topic, unique_name``.
"""

from __future__ import annotations

import random
import socket
import time
import uuid

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic


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
