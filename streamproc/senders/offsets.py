"""Which offsets of a mode's partitions are settled, and so what the consumer may commit."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable


class OffsetTracker:
    """Which offsets of each partition are settled, and so what may be committed: the lowest
    offset still unsettled (or one past the highest read). Thread-safe: offsets are tracked
    by the consumer thread and settled on the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, deque[int]] = {}
        self._settled: dict[int, set[int]] = {}
        self._next: dict[int, int] = {}

    def track(self, partition: int, offset: int) -> None:
        with self._lock:
            self._pending.setdefault(partition, deque()).append(offset)
            self._settled.setdefault(partition, set())
            self._next[partition] = offset + 1

    def done(self, partition: int, offset: int) -> None:
        with self._lock:
            pending = self._pending.get(partition)
            if pending is None:
                return  # revoked meanwhile; its record is written, which is what matters
            settled = self._settled[partition]
            settled.add(offset)
            while pending and pending[0] in settled:
                settled.discard(pending.popleft())

    def committable(self, partitions: Iterable[int] | None = None) -> dict[int, int]:
        with self._lock:
            chosen = self._next if partitions is None else [p for p in partitions if p in self._next]
            return {p: (self._pending[p][0] if self._pending[p] else self._next[p]) for p in chosen}

    def forget(self, partitions: Iterable[int]) -> None:
        with self._lock:
            for partition in partitions:
                self._pending.pop(partition, None)
                self._settled.pop(partition, None)
                self._next.pop(partition, None)


__all__ = ["OffsetTracker"]
