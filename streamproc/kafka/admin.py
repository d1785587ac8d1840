"""Topic set-up: every topic streamproc uses, created up front with the right partition counts.

Co-partitioning matters: events, ticks and the table changelog must have the same count, and
each message topic the same count as the deliveries topic the senders write. The incidents
topic may have any count (the processor re-keys it into `events`); a missing one is created
with the processor's.
"""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from streamproc.kafka import topics
from streamproc.kafka.security import check_access, client_config
from streamproc.wire.common import MODES


def all_topics(partitions: int, names: topics.Topics = topics.CURRENT) -> dict[str, int]:
    wanted = {
        names.incidents: partitions,
        names.events: partitions,
        names.ticks: partitions,
        names.flood: partitions,
        names.outcomes: partitions,
        names.deliveries: partitions,
        names.deadletter: 1,
    }
    for mode in MODES:
        if mode != "drop":
            wanted[names.messages(mode)] = partitions
    # Faust's own topics, made here rather than by each worker at start: Faust asks the broker for
    # each one in turn, twice, and a restarted worker spent seconds on it, longer than the session
    # timeout that lets a quick restart keep its partitions (the app sets topic_allow_declare=False).
    for table in topics.TABLES:
        wanted[names.changelog(table)] = partitions
    wanted[names.assignor_leader] = 1
    return wanted


COMPACTED = {"cleanup.policy": "compact"}
"""The changelogs keep the latest state of each key, as Faust makes them."""


def topic_config(name: str, names: topics.Topics) -> dict[str, str]:
    return COMPACTED if name in {names.changelog(t) for t in topics.TABLES} else {}


def ensure_topics(bootstrap: str, partitions: int = topics.DEFAULT_PARTITIONS, timeout: float = 30.0,
                  names: topics.Topics = topics.CURRENT) -> dict[str, int]:
    """Create missing topics; returns the partition count of each (existing ones keep theirs)."""
    check_access(bootstrap)  # a refused password or certificate is named now, not after `timeout`
    admin = AdminClient(client_config(bootstrap))
    wanted = all_topics(partitions, names)
    deadline = time.monotonic() + timeout
    while True:
        meta = admin.list_topics(timeout=10)
        missing = [name for name in wanted if name not in meta.topics]
        if not missing:
            return {name: len(meta.topics[name].partitions) for name in wanted}
        futures = admin.create_topics([NewTopic(name, wanted[name], 1, config=topic_config(name, names))
                                       for name in missing])
        for future in futures.values():
            try:
                future.result(timeout=10)
            except Exception as exc:  # already exists (a race with another worker) is fine
                if "TOPIC_ALREADY_EXISTS" not in str(exc) and time.monotonic() > deadline:
                    raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not created in time: {missing}")
        time.sleep(0.2)
