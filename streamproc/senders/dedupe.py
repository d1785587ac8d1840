"""At most once per message id: the set of ids already handled.

Filled from `streamproc.deliveries` when a worker takes partitions over (see
`delivery_log.read_delivered`) and from the worker's own delivery records as it goes.
Ids are forgotten after the dedupe window, which bounds memory and re-read time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from streamproc.timeutil import to_us
from streamproc.wire.deliveries import HANDLED, Delivery


class DeliveredSet:
    def __init__(self, window: float, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock
        self._ids: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, message_id: str, at: float | None = None) -> None:
        self._ids[message_id] = self._clock() if at is None else at
        self._ids.move_to_end(message_id)
        self.prune()

    def load(self, records: Iterable[Delivery]) -> int:
        """Add the ids that records settle (sent, failed, dropped, fallback); returns how many."""
        cutoff = self._clock() - self.window
        count = 0
        for record in records:
            at = to_us(record.at) / 1e6
            if record.status in HANDLED and at >= cutoff:
                self._ids[record.message_id] = at
                count += 1
        self.prune()
        return count

    def prune(self) -> None:
        cutoff = self._clock() - self.window
        while self._ids:
            message_id, at = next(iter(self._ids.items()))
            if at >= cutoff:
                break
            del self._ids[message_id]
