"""Topic names and record keys: the one place that says what goes where.

Every name starts with a namespace, `streamproc` unless `STREAMPROC_NAMESPACE` says otherwise,
so several independent stacks (or test cases) can share one Kafka cluster. The namespace is
also the Faust app id, hence the consumer group and the table changelog's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

NAMESPACE = os.environ.get("STREAMPROC_NAMESPACE", "streamproc")
DEFAULT_PARTITIONS = 12


@dataclass(frozen=True)
class Topics:
    namespace: str = "streamproc"

    @property
    def incidents(self) -> str:
        """Events (spec §2), keyed by incident id."""
        return f"{self.namespace}.incidents"

    @property
    def ticks(self) -> str:
        """Wake-ups, co-partitioned with incidents and keyed by incident id."""
        return f"{self.namespace}.ticks"

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

    def messages(self, mode: str) -> str:
        """`<namespace>.messages.<mode>`: rendered messages for one contact mode."""
        return f"{self.namespace}.messages.{mode}"


CURRENT = Topics(NAMESPACE)
INCIDENTS = CURRENT.incidents
TICKS = CURRENT.ticks
OUTCOMES = CURRENT.outcomes
DEADLETTER = CURRENT.deadletter
DELIVERIES = CURRENT.deliveries
MESSAGES_PREFIX = f"{NAMESPACE}.messages."


def messages_topic(mode: str) -> str:
    return CURRENT.messages(mode)


def message_key(user: str) -> bytes:
    """Messages are keyed by user so one person's pages stay in order on one partition."""
    return user.encode()
