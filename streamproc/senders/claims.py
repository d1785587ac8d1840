"""Claimed or resolved: whether a queued page is still wanted.

Fed by the `Audit` records on `streamproc.outcomes` (a follower in `kafka_io`). A page whose
incident instance has been claimed or resolved by the time it reaches the front of the
queue is dropped with a delivery record saying so.

"Claimed" is judged by time, not by the latest state: a page is stale when it was scheduled
before a claim of its instance. The engine schedules nothing at or after a claim until an
unclaim, and an unclaim's re-pages are scheduled at the unclaim time, after the claim; so a
re-page is sent even when it reaches the sender before the follower has read the unclaim.
The follower reads asynchronously, so a claim made milliseconds before a send can still
lose the race: the window is the follower's lag, not the queue's length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from streamproc.timeutil import to_us
from streamproc.wire.outcomes import Audit

Verdict = Literal["dropped-claimed", "dropped-resolved"]


@dataclass
class _Instance:
    claimed_at: int | None = None
    """µs: the latest claim of the instance."""
    resolved: bool = False
    seen: float = 0.0
    """Wall time of the last audit record, for pruning."""


class Claims:
    def __init__(self, window: float = 86400.0, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock
        self._state: dict[tuple[str, int], _Instance] = {}

    def apply(self, audit: Audit) -> None:
        key = (audit.incident_id, audit.instance)
        entry = self._state.setdefault(key, _Instance())
        entry.seen = to_us(audit.at) / 1e6
        if audit.kind == "resolved":
            entry.resolved = True
        elif audit.kind == "claimed":
            at = to_us(audit.at)
            entry.claimed_at = at if entry.claimed_at is None else max(entry.claimed_at, at)
        # "unclaimed" changes nothing: pages from before the claim stay stale, and the
        # restarted step's pages are scheduled after the claim.

    def verdict(self, incident_id: str, instance: int, scheduled_at_us: int) -> Verdict | None:
        """Why a page scheduled at `scheduled_at_us` is no longer wanted, or None."""
        entry = self._state.get((incident_id, instance))
        if entry is None:
            return None
        if entry.resolved:
            return "dropped-resolved"
        if entry.claimed_at is not None and scheduled_at_us < entry.claimed_at:
            return "dropped-claimed"
        return None

    def prune(self) -> None:
        cutoff = self._clock() - self.window
        for key in [k for k, entry in self._state.items() if entry.seen < cutoff]:
            del self._state[key]
