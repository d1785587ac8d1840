"""How far each stage has read its own partitions, against what the consumer knows is there.

A wake-up applied on the worker (`escalate.py`) must not overtake an event that is already on
Kafka for its incident: a claim appended 1.5 s before a repeat is due, but still in the backlog of
a busy worker, must be applied first, as spec §3 orders events before sends of the same instant.
When tick records went through Kafka the agent read them behind that backlog; now the ticker holds
a partition's wake-ups while stage 2 has records of that partition it has not read, and every
wake-up while stage 1 has unread records on an incidents partition it owns (a claim there may go
to any events partition). What neither stage has fetched yet (the few ms of a fetch) is not seen:
the same margin a tick record had.

The wait is for the records that were there when the wake-ups fell due (the ends the consumer
knew then), not for whatever arrives meanwhile: at 100 incidents a second on one worker some
partition nearly always has a record in flight, and waiting for "nothing unread anywhere" held
repeats back for seconds (make bench paced-100s: every page due -> accepted p99 2.6 s, against
0.5 s before). Measured in the bench's failover run on a machine loaded by other work (load 10):
without any hold 7 pages went out that a claim made 1.5 s earlier should have stopped, with this
rule 4 (under such load the consumer's own view of the log end lags too), on a quiet machine 0.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from streamproc.kafka import topics

Highwater = Callable[[str, int], "int | None"]
"""(topic, partition) -> the next offset the consumer knows will be written, or None."""


class Backlog:
    def __init__(self) -> None:
        self._waits: dict[tuple[str, int], int] = {}
        """(topic, partition) -> the end to read up to before the held wake-ups run."""
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
        self._waits.clear()

    def _read(self, topic: str, partition: int) -> int:
        return (self.incidents if topic == topics.INCIDENTS else self.events).get(partition, -1)

    def lagging(self, highwater: Highwater, events_partitions: Collection[int]) -> set[int]:
        """The events partitions whose due wake-ups must wait for unread records: those unread when
        the wait began, until they are read; a new wait begins only when the last one is over.
        Called when wake-ups are due."""
        if self._waits:
            self._waits = {tp: end for tp, end in self._waits.items() if end > self._read(*tp) + 1}
        else:
            for topic, read in ((topics.INCIDENTS, self.incidents), (topics.EVENTS, self.events)):
                for partition, offset in read.items():
                    end = highwater(topic, partition)
                    if end is not None and end > offset + 1:
                        self._waits[(topic, partition)] = end
        held: set[int] = set()
        for topic, partition in self._waits:
            if topic == topics.INCIDENTS:
                return set(events_partitions)
            held.add(partition)
        return held
