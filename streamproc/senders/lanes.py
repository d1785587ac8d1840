"""Fairness and priority: what the worker sends next.

Two lanes: urgent and high pages go before medium and low ones waiting in the same
worker. Within a lane, applications take turns (round robin), so one application's
flood cannot starve another's pages; within an application, first in, first out.
A message coming back for a retry goes to the front of its application's queue.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator

from streamproc.senders import metrics
from streamproc.senders.pending import Pending
from streamproc.wire.common import PRIORITIES


class RoundRobin:
    """FIFO per application; `pop` serves applications in turn."""

    def __init__(self) -> None:
        self._queues: OrderedDict[str, deque[Pending]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Pending]:
        for queue in self._queues.values():
            yield from queue

    def push(self, item: Pending, front: bool = False) -> None:
        queue = self._queues.get(item.message.application)
        if queue is None:
            queue = self._queues[item.message.application] = deque()
        if front:
            queue.appendleft(item)
        else:
            queue.append(item)
        self._size += 1

    def pop(self) -> Pending | None:
        if not self._queues:
            return None
        app, queue = next(iter(self._queues.items()))
        item = queue.popleft()
        self._size -= 1
        if queue:
            self._queues.move_to_end(app)  # its turn is over; the others go first
        else:
            del self._queues[app]
        return item

    def remove_if(self, predicate: Callable[[Pending], bool]) -> list[Pending]:
        removed: list[Pending] = []
        for app in list(self._queues):
            queue = self._queues[app]
            kept = deque(i for i in queue if not predicate(i))
            removed.extend(i for i in queue if predicate(i))
            if kept:
                self._queues[app] = kept
            else:
                del self._queues[app]
        self._size -= len(removed)
        return removed


class Lanes:
    """The two lanes, plus an event so the dispatcher can wait for work. What waits in them is
    exported as `streamproc_sender_queued{mode, priority}`."""

    def __init__(self, mode: str = "") -> None:
        self.fast = RoundRobin()
        self.slow = RoundRobin()
        self._ready = asyncio.Event()
        self._queued = {p: metrics.QUEUED.labels(mode, p) for p in PRIORITIES}

    def __len__(self) -> int:
        return len(self.fast) + len(self.slow)

    def push(self, item: Pending, front: bool = False) -> None:
        (self.fast if item.urgent else self.slow).push(item, front)
        self._queued[item.message.priority].inc()
        self._ready.set()

    def pop(self) -> Pending | None:
        item = self.fast.pop() or self.slow.pop()
        if item is not None:
            self._queued[item.message.priority].dec()
        if not self:
            self._ready.clear()
        return item

    async def get(self) -> Pending:
        while True:
            item = self.pop()
            if item is not None:
                return item
            await self._ready.wait()

    def remove_if(self, predicate: Callable[[Pending], bool]) -> list[Pending]:
        removed = self.fast.remove_if(predicate) + self.slow.remove_if(predicate)
        for item in removed:
            self._queued[item.message.priority].dec()
        if not self:
            self._ready.clear()
        return removed
