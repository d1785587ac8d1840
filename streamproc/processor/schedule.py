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
    _heaps: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)
    """partition -> its wake-ups (time, generation, key), earliest first. One heap per partition:
    a partition whose wake-ups are held (catch-up, a stage's backlog) costs nothing to skip, where
    one heap made every look pop and push back all of them (thousands in a burst)."""
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
        heapq.heappush(self._heaps.setdefault(partition, []), (wake_at, self._generation, key))

    def next_due(self, held: Collection[int] = ()) -> int | None:
        """The earliest time anything outside the `held` partitions may be due (possibly a
        superseded entry: an early look)."""
        times = [heap[0][0] for partition, heap in self._heaps.items() if heap and partition not in held]
        return min(times) if times else None

    def wake_of(self, key: str) -> int | None:
        entry = self._wake.get(key)
        return entry[0] if entry else None

    def drop_partitions(self, partitions: frozenset[int] | builtins.set[int]) -> None:
        for key in [k for k, (_, p, _) in self._wake.items() if p in partitions]:
            del self._wake[key]
        for partition in partitions:
            self._heaps.pop(partition, None)

    def clear(self) -> None:
        self._wake.clear()
        self._heaps.clear()

    def pop_due(self, now_us: int, held: Collection[int] = ()) -> list[tuple[str, int]]:
        """Keys whose wake time has come, with that time; each is re-armed for `now + retry`.
        Keys on `held` partitions stay as they are."""
        due: list[tuple[str, int]] = []
        for partition, heap in self._heaps.items():
            if partition in held:
                continue
            while heap and heap[0][0] <= now_us:
                _, generation, key = heapq.heappop(heap)
                entry = self._wake.get(key)
                if entry is None or entry[2] != generation or entry[1] != partition:
                    continue  # superseded or dropped
                due.append((key, entry[0]))
                self._generation += 1
                self._wake[key] = (entry[0], entry[1], self._generation)
                heapq.heappush(heap, (now_us + self.retry_us, self._generation, key))
        due.sort(key=lambda item: item[1])
        return due
