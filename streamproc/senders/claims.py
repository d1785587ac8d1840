"""Claimed or resolved: whether a queued page is still wanted.

Fed by the `Audit` records on `streamproc.outcomes` (a follower in `kafka_io`). A page whose
incident instance has been claimed or resolved by the time it reaches the front of the
queue is dropped with a delivery record saying so; an unclaim makes its pages wanted again.
The follower reads asynchronously, so a claim made milliseconds before a send can still
lose the race: the window is the follower's lag, not the queue's length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from streamproc.timeutil import to_us
from streamproc.wire.outcomes import Audit

Verdict = Literal["dropped-claimed", "dropped-resolved"]


class Claims:
    def __init__(self, window: float = 86400.0, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock
        self._state: dict[tuple[str, int], tuple[Verdict, float]] = {}

    def apply(self, audit: Audit) -> None:
        key = (audit.incident_id, audit.instance)
        at = to_us(audit.at) / 1e6
        current = self._state.get(key)
        if current is not None and current[0] == "dropped-resolved":
            return  # resolved is final for an instance
        if audit.kind == "resolved":
            self._state[key] = ("dropped-resolved", at)
        elif audit.kind == "claimed":
            self._state[key] = ("dropped-claimed", at)
        elif audit.kind == "unclaimed":
            self._state.pop(key, None)

    def verdict(self, incident_id: str, instance: int) -> Verdict | None:
        found = self._state.get((incident_id, instance))
        return found[0] if found else None

    def prune(self) -> None:
        cutoff = self._clock() - self.window
        for key in [k for k, (_, at) in self._state.items() if at < cutoff]:
            del self._state[key]
