"""The in-memory wake-up schedule of one worker's active partitions.

Derived state only: the table is the truth, and the schedule is rebuilt from it whenever
partitions are assigned. A fired entry is re-armed after `retry_us` until the agent reports a
new wake time for the key, so a lost tick record cannot strand an escalation.
"""

from __future__ import annotations

import builtins
import heapq
from collections.abc import Collection
from dataclasses import dataclass, field


@dataclass
class WakeSchedule:
    retry_us: int = 5_000_000
    _heap: list[tuple[int, int, str]] = field(default_factory=list)
    _wake: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """key -> (wake time, partition, generation)."""
    _generation: int = 0

    def __len__(self) -> int:
        return len(self._wake)

    def by_partition(self) -> dict[int, tuple[int, int]]:
        """partition -> (scheduled wake-ups, the earliest one), for `streamproc inspect workers`."""
        out: dict[int, tuple[int, int]] = {}
        for wake_at, partition, _ in self._wake.values():
            count, earliest = out.get(partition, (0, wake_at))
            out[partition] = (count + 1, min(earliest, wake_at))
        return out

    def set(self, key: str, partition: int, wake_at: int | None) -> None:
        """Record the next wake time of a key (None: nothing to do)."""
        if wake_at is None:
            self._wake.pop(key, None)
            return
        current = self._wake.get(key)
        if current is not None and current[0] == wake_at and current[1] == partition:
            return
        self._generation += 1
        self._wake[key] = (wake_at, partition, self._generation)
        heapq.heappush(self._heap, (wake_at, self._generation, key))

    def next_due(self, held: Collection[int] = ()) -> int | None:
        """The earliest time anything outside the `held` partitions may be due (possibly a
        superseded entry: an early look)."""
        if not held:
            return self._heap[0][0] if self._heap else None
        times = [at for at, _, key in self._heap if key in self._wake and self._wake[key][1] not in held]
        return min(times) if times else None

    def wake_of(self, key: str) -> int | None:
        entry = self._wake.get(key)
        return entry[0] if entry else None

    def drop_partitions(self, partitions: frozenset[int] | builtins.set[int]) -> None:
        for key in [k for k, (_, p, _) in self._wake.items() if p in partitions]:
            del self._wake[key]

    def clear(self) -> None:
        self._wake.clear()
        self._heap.clear()

    def pop_due(self, now_us: int, held: Collection[int] = ()) -> list[tuple[str, int]]:
        """Keys whose wake time has come, with that time; each is re-armed for `now + retry`.
        Keys on `held` partitions stay as they are."""
        due: list[tuple[str, int]] = []
        kept: list[tuple[int, int, str]] = []
        while self._heap and self._heap[0][0] <= now_us:
            item = heapq.heappop(self._heap)
            _, generation, key = item
            entry = self._wake.get(key)
            if entry is None or entry[2] != generation:
                continue  # superseded or dropped
            if entry[1] in held:
                kept.append(item)
                continue
            due.append((key, entry[0]))
            self._generation += 1
            self._wake[key] = (entry[0], entry[1], self._generation)
            heapq.heappush(self._heap, (now_us + self.retry_us, self._generation, key))
        for item in kept:
            heapq.heappush(self._heap, item)
        return due
