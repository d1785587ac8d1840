"""A message on its way through the sender pipeline, with where it came from."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from streamproc.wire.outcomes import Message


@dataclass(eq=False)
class Pending:
    message: Message
    partition: int
    offset: int
    attempts: int = 0
    """Vendor calls made so far."""
    appended_at: float | None = None
    """The Kafka record's timestamp (seconds since the epoch), for latency figures."""
    queued_at: float = field(default_factory=time.monotonic)
    generation: int = 0
    """Which ownership of the partition it was read under; a stale one is never sent."""
    correlation_id: str | None = None
    """The record's correlation id header (`streamproc.kafka.headers`), for logs and the delivery record."""

    @property
    def urgent(self) -> bool:
        """urgent and high pages take the fast lane."""
        return self.message.priority in ("urgent", "high")
