"""Client settings shared by every confluent-kafka producer and consumer we create (the process's
security settings included: `security.client_config`).

`murmur2_random` is the Java (and aiokafka) partitioner: records produced here with a key land
on the same partition as records Faust produces with that key. Without it, an incident and its
wake-up ticks could land on different partitions, and so on different workers.
"""

from __future__ import annotations

import os
from typing import Any

from streamproc.kafka.security import client_config


def client_id(role: str) -> str:
    """`streamproc-<role>-<pid>`: how the brokers' logs name this process's clients of one role."""
    return f"streamproc-{role}-{os.getpid()}"


def producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return client_config(
        bootstrap,
        **{"partitioner": "murmur2_random", "enable.idempotence": True, "acks": "all", "linger.ms": 2, **extra},
    )


def consumer_config(bootstrap: str, group: str, **extra: Any) -> dict[str, Any]:
    return client_config(
        bootstrap, **{"group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest", **extra}
    )
