"""Topic names, record keys and the key -> partition function: the one place that says what goes where.

Every name starts with a namespace, `streamproc` unless `STREAMPROC_NAMESPACE` says otherwise,
so several independent stacks (or test cases) can share one Kafka cluster. The namespace is
also the Faust app id, hence the consumer group and the table changelog's name.

Producers of `incidents` may use any client, partitioner and key (spec §2). The processor never
relies on where they put a record: its first stage re-produces every event to `events`, keyed by
incident id and placed by `partition_for`, and everything else keyed by incident id (ticks, the
table, the wake-up schedule) is placed by the same function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.partitioner import murmur2

from streamproc.config import environment

MessagesOf = Callable[[str], str]
"""mode -> its message topic (`Topics.messages`)."""

NAMESPACE = environment.namespace()
DEFAULT_PARTITIONS = environment.DEFAULT_PARTITIONS


@dataclass(frozen=True)
class Topics:
    namespace: str = environment.DEFAULT_NAMESPACE

    @property
    def incidents(self) -> str:
        """Events (spec §2), keyed by incident id."""
        return f"{self.namespace}.incidents"

    @property
    def events(self) -> str:
        """Internal: validated events re-keyed by incident id and placed by `partition_for`.
        Co-partitioned with ticks and the escalations table."""
        return f"{self.namespace}.events"

    @property
    def ticks(self) -> str:
        """Internal: wake-ups, keyed by incident id and placed by `partition_for` (like `events`)."""
        return f"{self.namespace}.ticks"

    @property
    def flood(self) -> str:
        """Internal: messages that flood control (spec §7) may change, the claims and resolves that
        batches need, and its wake-ups; keyed by user and placed by `partition_for`."""
        return f"{self.namespace}.flood"

    @property
    def outcomes(self) -> str:
        """undeliverable / dropped / exhausted outcomes and audit records, keyed by incident id."""
        return f"{self.namespace}.outcomes"

    @property
    def deadletter(self) -> str:
        """Input that could not be processed, with the reason."""
        return f"{self.namespace}.deadletter"

    @property
    def deliveries(self) -> str:
        """What the senders did with each message, keyed like the message topics."""
        return f"{self.namespace}.deliveries"

    @property
    def status(self) -> str:
        """The current summary of every incident instance, keyed by incident id (compacted;
        `streamproc.wire.status`). Any partition count: its readers read every partition."""
        return f"{self.namespace}.status"

    def changelog(self, table: str) -> str:
        """Faust's changelog of a worker table (the namespace is the Faust app id)."""
        return f"{self.namespace}-{table}-changelog"

    @property
    def assignor_leader(self) -> str:
        """Faust's partition assignor's own topic."""
        return f"{self.namespace}-__assignor-__leader"

    def messages(self, mode: str) -> str:
        """`<namespace>.messages.<mode>`: rendered messages for one contact mode."""
        return f"{self.namespace}.messages.{mode}"


CURRENT = Topics(NAMESPACE)
INCIDENTS = CURRENT.incidents
EVENTS = CURRENT.events
TICKS = CURRENT.ticks
FLOOD = CURRENT.flood
OUTCOMES = CURRENT.outcomes
DEADLETTER = CURRENT.deadletter
DELIVERIES = CURRENT.deliveries
STATUS = CURRENT.status
ESCALATIONS_TABLE = "escalations"
FLOOD_TABLE = "flood"
TABLES = (ESCALATIONS_TABLE, FLOOD_TABLE)
"""The worker's Faust tables (each has a changelog topic, made by `kafka.admin`)."""
MESSAGES_PREFIX = f"{NAMESPACE}.messages."


def messages_topic(mode: str) -> str:
    return CURRENT.messages(mode)


def message_key(user: str) -> bytes:
    """Messages are keyed by user so one person's pages stay in order on one partition."""
    return user.encode()


def partition_for(key: bytes, partitions: int) -> int:
    """The processor's one key -> partition function (Java's murmur2, as Faust's producer uses)."""
    partition: int = (murmur2(key) & 0x7FFFFFFF) % partitions
    return partition
