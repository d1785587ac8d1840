"""How far each stage has read its own partitions, against what the consumer knows is there.

A wake-up applied on the worker (`escalate.py`) must not overtake an event that is already on
Kafka for its incident: a claim appended 1.5 s before a repeat is due, but still in the backlog of
a busy worker, must be applied first, as spec §3 orders events before sends of the same instant.
When tick records went through Kafka the agent read them behind that backlog; now the ticker holds
a partition's wake-ups while stage 2 has records of that partition it has not read, and every
wake-up while stage 1 has unread records on an incidents partition it owns (a claim there may go
to any events partition). What neither stage has fetched yet (the few ms of a fetch) is not seen:
the same margin a tick record had.

Measured in the bench's failover run on a loaded machine: without the hold, 7 pages went out
that a claim made 1.5 s before them should have stopped (the claim was still in the backlog);
with it, none. A lighter rule that waited only for the records known when the wake-ups fell due
still let 4 through (under load the consumer's own view of the log end lags too).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from streamproc.kafka import topics

Highwater = Callable[[str, int], "int | None"]
"""(topic, partition) -> the next offset the consumer knows will be written, or None."""


class Backlog:
    def __init__(self) -> None:
        self.incidents: dict[int, int] = {}
        """Own incidents partitions -> the last offset stage 1 has finished with."""
        self.events: dict[int, int] = {}
        """Own events partitions -> the last offset stage 2 has read (a wake-up waits for the
        batch under way, `Runtime.stage_lock`)."""

    def read_incident(self, partition: int, offset: int) -> None:
        if offset > self.incidents.get(partition, -1):
            self.incidents[partition] = offset

    def read_event(self, partition: int, offset: int) -> None:
        if offset > self.events.get(partition, -1):
            self.events[partition] = offset

    def clear(self) -> None:
        """A rebalance: partitions are read again from their committed offsets (until stage 1 or
        2 reads a record of a partition, nothing is known of it; the catch-up barriers hold its
        wake-ups meanwhile)."""
        self.incidents.clear()
        self.events.clear()

    def lagging(self, highwater: Highwater, events_partitions: Collection[int]) -> set[int]:
        """The events partitions whose due wake-ups must wait for unread records."""
        held: set[int] = set()
        for partition, offset in self.incidents.items():
            end = highwater(topics.INCIDENTS, partition)
            if end is not None and end > offset + 1:
                held = set(events_partitions)
                break
        else:
            for partition, offset in self.events.items():
                end = highwater(topics.EVENTS, partition)
                if end is not None and end > offset + 1:
                    held.add(partition)
        return held
