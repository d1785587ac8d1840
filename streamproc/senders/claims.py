"""Claimed or resolved: whether a queued page is still wanted.

Fed by the `Audit` records on `streamproc.outcomes` (`audit_follower.py`). A page whose
incident instance has been claimed or resolved by the time it reaches the front of the
queue is dropped with a delivery record saying so.

"Claimed" is judged by time, not by the latest state: a page is stale when it was scheduled
before a claim of its instance. The engine schedules nothing at or after a claim until an
unclaim, and an unclaim's re-pages are scheduled at the unclaim time, after the claim; so a
re-page is sent even when it reaches the sender before the follower has read the unclaim.
The follower reads asynchronously, so a claim made milliseconds before a send can still
lose the race: the window is the follower's lag, not the queue's length.

Batch messages (spec §7, `Message.batch`) stand for several incidents, and are dropped only
when every one of them is settled (`batch_verdict`); one open member is enough to send the
batch. A batch names incidents, not instances: its first member's instance is the message's
`instance`; for the others the member is the instance that was open at the batch time `b`,
which is the lowest instance of the incident known here that was not resolved at or before
`b` (instances of one incident follow each other, and every instance but the newest ends with
a resolve record). An incident with no such instance known has no claim or resolve record
since `b` (or none within the window): it is open, and the batch is sent. A member instance
is settled when:

- it is resolved; or
- it was claimed after `b` (the time rule above: a later unclaim does not bring it back, as
  the restarted step pages anew, with messages of its own); or
- its latest record is a claim, whenever that claim was (the batching stage may have formed
  the batch before it learnt of the claim). A claim at or before `b` followed by an unclaim
  is not a settled member: the unclaim reopened it, as spec §7 says of membership.

When every member is resolved the verdict is `dropped-resolved`, else `dropped-claimed`.
Ordinary pages keep the time rule alone (`verdict`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from streamproc.timeutil import to_us
from streamproc.wire.outcomes import Audit

Verdict = Literal["dropped-claimed", "dropped-resolved"]


@dataclass
class _Instance:
    claimed_at: int | None = None
    """µs: the latest claim of the instance."""
    claimed: bool = False
    """The latest claim/unclaim record read is a claim (for batches only)."""
    resolved_at: int | None = None
    """µs: when the instance was resolved."""
    seen: float = 0.0
    """Wall time of the last audit record, for pruning."""


class Claims:
    def __init__(self, window: float = 86400.0, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock
        self._state: dict[str, dict[int, _Instance]] = {}
        """incident id -> instance -> what the audit records say."""

    def apply(self, audit: Audit) -> None:
        entry = self._state.setdefault(audit.incident_id, {}).setdefault(audit.instance, _Instance())
        entry.seen = to_us(audit.at) / 1e6
        at = to_us(audit.at)
        if audit.kind == "resolved":
            entry.resolved_at = at if entry.resolved_at is None else min(entry.resolved_at, at)
        elif audit.kind == "claimed":
            entry.claimed_at = at if entry.claimed_at is None else max(entry.claimed_at, at)
            entry.claimed = True
        elif audit.kind == "unclaimed":
            # For ordinary pages this changes nothing: pages from before the claim stay stale,
            # and the restarted step's pages are scheduled after the claim.
            entry.claimed = False

    def _entry(self, incident_id: str, instance: int) -> _Instance | None:
        return self._state.get(incident_id, {}).get(instance)

    def verdict(self, incident_id: str, instance: int, scheduled_at_us: int) -> Verdict | None:
        """Why a page scheduled at `scheduled_at_us` is no longer wanted, or None."""
        entry = self._entry(incident_id, instance)
        if entry is None:
            return None
        if entry.resolved_at is not None:
            return "dropped-resolved"
        if entry.claimed_at is not None and scheduled_at_us < entry.claimed_at:
            return "dropped-claimed"
        return None

    def member_instance(self, incident_id: str, batch_at_us: int) -> int | None:
        """The instance of `incident_id` that was open at the batch time, as far as the audit
        records read say: the lowest known one not resolved at or before it (None: not known)."""
        instances = self._state.get(incident_id, {})
        open_then = [n for n, e in instances.items() if e.resolved_at is None or e.resolved_at > batch_at_us]
        return min(open_then) if open_then else None

    def batch_verdict(self, incident_ids: Iterable[str], first: tuple[str, int], batch_at_us: int) -> Verdict | None:
        """Why a batch message at `batch_at_us` whose first member is `first` (incident,
        instance) is no longer wanted: every member settled. None: at least one is open."""
        verdicts: set[Verdict] = set()
        for incident_id in incident_ids:
            instance = first[1] if incident_id == first[0] else self.member_instance(incident_id, batch_at_us)
            entry = None if instance is None else self._entry(incident_id, instance)
            if entry is None:
                return None
            if entry.resolved_at is not None:
                verdicts.add("dropped-resolved")
            elif entry.claimed or (entry.claimed_at is not None and batch_at_us < entry.claimed_at):
                verdicts.add("dropped-claimed")
            else:
                return None
        if not verdicts:
            return None
        return "dropped-resolved" if verdicts == {"dropped-resolved"} else "dropped-claimed"

    def prune(self) -> None:
        cutoff = self._clock() - self.window
        for incident_id, instances in list(self._state.items()):
            for n in [n for n, entry in instances.items() if entry.seen < cutoff]:
                del instances[n]
            if not instances:
                del self._state[incident_id]
