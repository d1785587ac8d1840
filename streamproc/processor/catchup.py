"""Catching up after a rebalance, before firing the wake-ups that fell due meanwhile.

When a worker takes partitions over (a worker died, or the group changed), their backlog may hold
claims and resolves that arrived while they had no owner, and the pages that fell due during the
outage are already in the wake schedule. Spec §3 says nothing scheduled at or after a claim is
sent, so the backlog must be read first.

Barriers mark "the end of the backlog": right after a rebalance the worker appends an empty record
carrying `BARRIER_HEADER` (a token new with every rebalance) to each incidents partition it owns.
When the first stage has read all of them back, every event that was waiting there has been
re-keyed into `events`; the worker then appends the same kind of barrier to each events partition
it owns, and a partition's wake-ups are held until the second stage reads its barrier back.
Barriers of other workers or of earlier rebalances are skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

from streamproc.kafka.headers import BARRIER_HEADER


def barrier_token(headers: object) -> bytes | None:
    """The barrier token of a record's headers (Kafka headers: a sequence of (name, value))."""
    if not headers:
        return None
    for name, value in headers:  # type: ignore[attr-defined]
        if name == BARRIER_HEADER:
            return bytes(value)
    return None


@dataclass
class CatchUp:
    token: bytes = b""
    incidents: set[int] = field(default_factory=set)
    """Own incidents partitions whose barrier has not come back to the first stage."""
    events: set[int] = field(default_factory=set)
    """Own events partitions whose wake-ups are held."""

    def start(self, incidents: Collection[int], events: Collection[int]) -> bytes:
        """A rebalance completed: hold every events partition; returns the new token."""
        self.token = uuid.uuid4().hex.encode()
        self.incidents = set(incidents)
        self.events = set(events)
        return self.token

    def incidents_read(self, partition: int, token: bytes) -> bool:
        """The first stage read a barrier; True when that was the last one it waited for
        (the events barriers are due now)."""
        if token != self.token or partition not in self.incidents:
            return False
        self.incidents.discard(partition)
        return not self.incidents

    def events_read(self, partition: int, token: bytes) -> bool:
        """The second stage read a barrier; True when it released a partition's wake-ups."""
        if token != self.token or partition not in self.events or self.incidents:
            return False
        self.events.discard(partition)
        return True
